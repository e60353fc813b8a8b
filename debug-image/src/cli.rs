//! What every tool's command line shares: one-line errors, `-o json`,
//! and a quiet exit when the reader of our output goes away.
//!
//! Errors follow one shape, `TOOL: what was wrong; what to do`, on a single
//! line, exit code 1. A closed stdout (`netdiag-agent ss | head -1`) is not an
//! error: the tool stops writing and exits 0, as ripgrep does.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::process::ExitCode;

use clap::Parser;
use netdiag_wire::exit;

/// Why a tool stopped early.
#[derive(Debug)]
pub enum Failure {
    /// Bad input or a failed operation; the text is the whole error line
    /// without the tool prefix.
    Message(String),
    /// `--help`/`--version` already printed: exit with this code.
    Exit(u8),
    /// Our stdout was closed by its reader: stop quietly.
    BrokenPipe,
}

impl Failure {
    pub fn msg(text: impl Into<String>) -> Self {
        Failure::Message(text.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Message(m) => f.write_str(m),
            Failure::Exit(code) => write!(f, "exit {code}"),
            Failure::BrokenPipe => f.write_str("broken pipe"),
        }
    }
}

/// Writing our output failed: a closed pipe is quiet, anything else is named.
impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::BrokenPipe
        } else {
            Failure::Message(format!("writing output: {e}"))
        }
    }
}

/// Attaches the operation and its subject to an I/O error from the system.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Failure>;
}

impl<T> Context<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure::Message(format!("{}: {}", what(), describe_io_error(&e))))
    }
}

/// Runs a tool's async part on a current-thread runtime (every tool here
/// is one sequential exchange, and a pod's CPU is not ours to spread over
/// threads). Returns without waiting for a read of stdin that may still be
/// blocked in tokio's helper thread: such a read cannot be cancelled.
pub fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::msg(format!("cannot start the I/O runtime: {e}")))?;
    let outcome = runtime.block_on(future);
    runtime.shutdown_background();
    outcome
}

/// The system's words for an error, with the hint an SRE needs for the
/// permission errors they will meet in a locked-down pod.
pub fn describe_io_error(e: &io::Error) -> String {
    let base = e.to_string();
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            format!("{base} (the agent lacks a privilege this needs)")
        }
        _ => base,
    }
}

/// Runs a tool body and turns its outcome into the process exit code,
/// printing the one error line for failures.
pub fn finish(tool: &str, outcome: Result<u8, Failure>) -> ExitCode {
    match outcome {
        Ok(code) | Err(Failure::Exit(code)) => ExitCode::from(code),
        Err(Failure::BrokenPipe) => ExitCode::SUCCESS,
        Err(Failure::Message(m)) => {
            eprintln!("{tool}: {m}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

/// Parses a tool's arguments with clap, turning clap's multi-line errors
/// into our one-line form and printing `--help`/`--version` itself.
pub fn parse<P: Parser>(tool: &str, args: Vec<OsString>) -> Result<P, Failure> {
    match P::try_parse_from(args) {
        Ok(parsed) => Ok(parsed),
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                use std::io::Write;
                let text = e.render().to_string();
                let mut out = io::stdout().lock();
                out.write_all(text.as_bytes())?;
                Err(Failure::Exit(exit::SUCCESS))
            }
            _ => {
                let rendered = e.render().to_string();
                let first = rendered
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("invalid arguments");
                let first = first.strip_prefix("error: ").unwrap_or(first);
                Err(Failure::msg(format!("{first}; see '{tool} --help'")))
            }
        },
    }
}

/// Rewrites `-o json` (also `-ojson`, `-o=json`, and a short-flag cluster
/// ending in `o` followed by `json`, as in `-tno json`) into `--output=json`.
///
/// Needed because the classic tools already own `-o` (ss: show timers), and
/// users type `-o json` for structured output everywhere in netdiag. A bare
/// `-o` not followed by `json`/`text` keeps its classic meaning.
pub fn rewrite_output_flag(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter().peekable();
    let is_format =
        |a: Option<&OsString>| matches!(a.and_then(|a| a.to_str()), Some("json" | "text"));
    while let Some(arg) = iter.next() {
        let Some(s) = arg.to_str().map(str::to_owned) else {
            out.push(arg);
            continue;
        };
        if s == "--" {
            out.push(arg);
            out.extend(iter);
            break;
        }
        if let Some(fmt) = s
            .strip_prefix("-o=")
            .or_else(|| s.strip_prefix("-o"))
            .filter(|f| matches!(*f, "json" | "text"))
        {
            out.push(format!("--output={fmt}").into());
            continue;
        }
        let is_cluster = s.starts_with('-') && !s.starts_with("--") && s.len() >= 2;
        if is_cluster && s.ends_with('o') && is_format(iter.peek()) {
            let fmt = iter.next().unwrap();
            let rest = &s[..s.len() - 1];
            if rest != "-" {
                out.push(rest.into());
            }
            out.push(format!("--output={}", fmt.to_string_lossy()).into());
            continue;
        }
        out.push(arg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(args: &[&str]) -> Vec<String> {
        rewrite_output_flag(args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn output_flag_forms() {
        assert_eq!(rw(&["ss", "-o", "json"]), ["ss", "--output=json"]);
        assert_eq!(rw(&["ss", "-ojson"]), ["ss", "--output=json"]);
        assert_eq!(rw(&["ss", "-o=json"]), ["ss", "--output=json"]);
        assert_eq!(rw(&["ss", "-tno", "json"]), ["ss", "-tn", "--output=json"]);
        assert_eq!(
            rw(&["ss", "-o", "state", "established"]),
            ["ss", "-o", "state", "established"]
        );
        assert_eq!(rw(&["ss", "-to", "-n"]), ["ss", "-to", "-n"]);
        assert_eq!(rw(&["ss", "--output", "json"]), ["ss", "--output", "json"]);
    }
}
