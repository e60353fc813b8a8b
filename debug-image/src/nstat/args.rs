//! `nstat`'s command line: iproute2 nstat 6.1's flags as typed (clap), then
//! the [`Options`] they mean, checked before anything is read.
//!
//! nstat's flags: `-a/--ignore`, `-z/--zeros`, `-r/--reset`,
//! `-s/--noupdate`, `-n/--nooutput`, `-j/--json`, `-p/--pretty`,
//! `-V`/`-v/--version`, `-h/--help`, and PATTERN arguments. Its daemon
//! (`-d/--scan SECS`, and `-t/--interval SECS`, which only tunes the daemon)
//! cannot work in a one-shot agent and is refused with an explanation.
//! The agent adds `--drops`, `-x/--extended` and `-o json`.

use std::ffi::OsString;

use clap::{ArgAction, Parser};
use netdiag_wire::OutputFormat;

use super::glob::Glob;
use super::report::Filter;
use crate::cli::{self, Failure};

/// `nstat`: kernel protocol counters, like iproute2 nstat.
#[derive(Parser, Debug)]
#[command(
    name = "nstat",
    version,
    disable_version_flag = true,
    about = "Protocol counters from /proc/net/{snmp,netstat,snmp6}, like iproute2 nstat",
    after_help = "PATTERN: shell globs on counter names, e.g. 'TcpExt*' 'Udp*Errors'.\n\n\
        By default nstat prints what grew since its last run, remembered in\n\
        $NSTAT_HISTORY or /tmp/.nstat.u<uid>; without a usable history file it\n\
        prints absolute values (as with -a) and says so.\n\n\
        --drops lists only counters of loss and overflow, with their meaning.\n\
        -x adds conntrack statistics and sockstat socket counts.\n\
        -o json prints one JSON document with every counter (zeros included)."
)]
pub struct NstatArgs {
    /// Ignore history: print absolute values
    #[arg(short = 'a', long = "ignore")]
    pub ignore: bool,
    /// Show entries with zero activity
    #[arg(short = 'z', long = "zeros")]
    pub zeros: bool,
    /// Reset history
    #[arg(short = 'r', long = "reset")]
    pub reset: bool,
    /// Don't update history
    #[arg(short = 's', long = "noupdate")]
    pub noupdate: bool,
    /// Update history only, print nothing
    #[arg(short = 'n', long = "nooutput")]
    pub nooutput: bool,
    /// Format output in JSON, like iproute2 nstat
    #[arg(short = 'j', long = "json", conflicts_with = "output")]
    pub json: bool,
    /// Pretty-print -j
    #[arg(short = 'p', long = "pretty")]
    pub pretty: bool,
    /// nstat's daemon mode: not supported by the agent
    #[arg(short = 'd', long = "scan", value_name = "SECS")]
    pub scan: Option<String>,
    /// Averaging interval of nstat's daemon: not supported by the agent
    #[arg(short = 't', long = "interval", value_name = "SECS")]
    pub interval: Option<String>,
    /// Only counters that mean loss or overflow, each with its meaning
    #[arg(long)]
    pub drops: bool,
    /// Also conntrack statistics and sockstat socket counts
    #[arg(short = 'x', long)]
    pub extended: bool,
    /// Output format: text (like nstat) or json
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub output: OutputFormat,
    /// Print version
    #[arg(short = 'V', short_alias = 'v', long, action = ArgAction::Version)]
    pub version: Option<bool>,
    /// Counter names to show (shell globs)
    #[arg(value_name = "PATTERN")]
    pub patterns: Vec<String>,
}

/// How the counters are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// nstat's columns.
    Text,
    /// nstat's `-j`, optionally pretty.
    NstatJson { pretty: bool },
    /// The agent's `-o json` document.
    Json,
}

/// The run the flags ask for.
#[derive(Debug)]
pub struct Options {
    /// `-a`: print absolute values.
    pub ignore_history: bool,
    /// `-z` (implied by `-o json`): include zero values in the output.
    pub show_zeros: bool,
    /// `-z` as typed: nstat records zeros in the history only then.
    pub record_zeros: bool,
    pub reset_history: bool,
    pub update_history: bool,
    pub print: bool,
    pub format: Format,
    pub filter: Filter,
}

impl Options {
    /// Whether the history file is opened at all: nstat skips it only for
    /// `-a -s` (nothing to read, nothing to write).
    pub fn uses_history(&self) -> bool {
        !self.ignore_history || self.update_history
    }
}

pub fn parse(args: Vec<OsString>) -> Result<Options, Failure> {
    let args: NstatArgs = cli::parse("nstat", cli::rewrite_output_flag(args))?;
    interpret(args).map_err(Failure::Message)
}

const NO_DAEMON: &str = "is nstat's daemon mode, which the agent does not run \
    (each call is one-shot); run 'nstat' twice and read the increments between the runs";

fn interpret(a: NstatArgs) -> Result<Options, String> {
    if let Some(secs) = &a.scan {
        return Err(format!("-d/--scan {secs} {NO_DAEMON}"));
    }
    if let Some(secs) = &a.interval {
        return Err(format!("-t/--interval {secs} {NO_DAEMON}"));
    }
    let patterns = a
        .patterns
        .iter()
        .map(|p| Glob::new(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{e}; patterns are shell globs such as 'TcpExt*' or 'Udp*Errors'"))?;
    let format = match (a.output, a.json) {
        (OutputFormat::Json, _) => Format::Json,
        (OutputFormat::Text, true) => Format::NstatJson { pretty: a.pretty },
        (OutputFormat::Text, false) => Format::Text,
    };
    let structured = format == Format::Json;
    Ok(Options {
        ignore_history: a.ignore,
        show_zeros: a.zeros || structured,
        record_zeros: a.zeros,
        reset_history: a.reset,
        update_history: !a.noupdate,
        print: !a.nooutput,
        format,
        filter: Filter {
            patterns,
            drops: a.drops,
            extended: a.extended || structured,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(args: &[&str]) -> Options {
        let args = std::iter::once("nstat")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        parse(args).unwrap()
    }

    fn parse_err(args: &[&str]) -> String {
        let args = std::iter::once("nstat")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        match parse(args) {
            Err(Failure::Message(m)) => m,
            other => panic!(
                "expected an error for {args:?}, got {other:?}",
                args = args_dbg(&other)
            ),
        }
    }

    fn args_dbg(r: &Result<Options, Failure>) -> String {
        format!("{r:?}")
    }

    #[test]
    fn nstat_flags() {
        let o = parse_ok(&["-az"]);
        assert!(o.ignore_history && o.show_zeros && o.record_zeros && o.print && o.update_history);
        assert!(o.uses_history(), "-a alone still records the history");
        let o = parse_ok(&["-a", "-s"]);
        assert!(!o.uses_history());
        let o = parse_ok(&["--nooutput", "--reset"]);
        assert!(!o.print && o.reset_history);
        let o = parse_ok(&["-jp", "TcpExt*", "Udp*"]);
        assert_eq!(o.format, Format::NstatJson { pretty: true });
        assert_eq!(o.filter.patterns.len(), 2);
        // getopt permutes: flags after patterns still count.
        let o = parse_ok(&["Ip*", "-a"]);
        assert!(o.ignore_history);
    }

    #[test]
    fn structured_output_implies_zeros_and_extras_but_not_recorded_zeros() {
        let o = parse_ok(&["-o", "json", "--drops"]);
        assert_eq!(o.format, Format::Json);
        assert!(o.show_zeros && !o.record_zeros);
        assert!(o.filter.extended && o.filter.drops);
    }

    #[test]
    fn refusals_are_one_line_and_say_what_to_do() {
        let e = parse_err(&["-d", "5"]);
        assert!(e.starts_with("-d/--scan 5 is nstat's daemon mode"), "{e}");
        assert!(e.contains("run 'nstat' twice"));
        assert!(parse_err(&["-t", "60"]).starts_with("-t/--interval 60"));
        let e = parse_err(&["Tcp[Ext"]);
        assert!(
            e.starts_with("bad pattern \"Tcp[Ext\": '[' is never closed"),
            "{e}"
        );
        let e = parse_err(&["--bogus"]);
        assert!(
            e.contains("--bogus") && e.ends_with("see 'nstat --help'"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        let e = parse_err(&["-j", "-o", "json"]);
        assert!(e.contains("cannot be used with"), "{e}");
    }
}
