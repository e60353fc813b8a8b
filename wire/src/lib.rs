//! What `kubectl-netdiag` and `netdiag-agent` agree on.
//!
//! Kept deliberately tiny and free of platform code, because the plugin builds
//! on Linux, macOS and Windows while the agent is Linux-only:
//!
//! - [`exit`]: the exit codes every tool uses, so the plugin can pass the
//!   agent's code through unchanged and scripts can rely on them.
//! - [`OutputFormat`]: the `-o text|json` choice shared by every tool.
//! - [`frame`]: the framing on the agent's stdin and stderr when the plugin
//!   runs it (start signal, end of input, stop, exit code in-band).

pub mod frame;

pub mod exit {
    //! Exit codes. Stable: scripts depend on them.

    /// The tool ran and found what it looked for (or simply ran).
    pub const SUCCESS: u8 = 0;
    /// Bad input or a failed operation, with one error line on stderr.
    pub const FAILURE: u8 = 1;
    /// `dig`: no server could be reached (dig's own code, kept for scripts).
    pub const DIG_NO_SERVERS: u8 = 9;
    /// The tool was stopped by Ctrl-C (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
}

use std::fmt;
use std::str::FromStr;

/// How a tool renders its results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The classic tool's text layout.
    #[default]
    Text,
    /// One structured JSON document (or one JSON object per line for streams).
    Json,
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "unknown output format \"{other}\"; expected \"text\" or \"json\""
            )),
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_format_round_trips() {
        for f in [OutputFormat::Text, OutputFormat::Json] {
            assert_eq!(f.to_string().parse::<OutputFormat>(), Ok(f));
        }
        assert!(
            "yaml"
                .parse::<OutputFormat>()
                .unwrap_err()
                .contains("\"yaml\"")
        );
    }
}
