//! `paping`'s command line: paping's own flags (`-p`, `-c`, `-t`,
//! `--nocolor`), our `-i` interval, and netdiag's `-o json`.

use std::ffi::OsString;
use std::time::Duration;

use clap::Parser;
use netdiag_wire::OutputFormat;

use crate::cli::{self, Failure};

/// `paping`: TCP connect latency and loss, one connect per probe.
#[derive(Parser, Debug)]
#[command(
    name = "paping",
    version,
    about = "TCP connect latency and loss over time, like paping: each probe is one TCP connect",
    override_usage = "paping HOST -p PORT [-c COUNT] [-t TIMEOUT_MS] [-i INTERVAL_MS] [--nocolor] [-o json]",
    after_help = "Runs until COUNT probes, Ctrl-C/SIGTERM, or the end of piped stdin, then prints a summary.\n\
        Failures are named: refused (RST: nothing listening), timed out (no answer), no route, \
        reset after connect.\n\
        Exit status: 0 when at least one probe connected, 1 when all failed."
)]
pub struct PapingArgs {
    /// Host name or address to connect to
    #[arg(value_name = "HOST")]
    pub host: Option<String>,
    /// TCP port to connect to
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port: Option<String>,
    /// Number of probes (default: until stopped)
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<String>,
    /// Time to wait for each connect, in milliseconds
    #[arg(
        short = 't',
        long = "timeout",
        value_name = "TIMEOUT_MS",
        default_value = "1000"
    )]
    pub timeout: String,
    /// Time between the starts of two probes, in milliseconds
    #[arg(
        short = 'i',
        long = "interval",
        value_name = "INTERVAL_MS",
        default_value = "1000"
    )]
    pub interval: String,
    /// Do not color the output
    #[arg(long = "nocolor")]
    pub nocolor: bool,
    /// Output format: text, or json (one object per probe, then the summary)
    #[arg(long = "output", value_name = "FORMAT", default_value = "text")]
    pub output: OutputFormat,
}

/// What to do, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub host: String,
    pub port: u16,
    pub count: Option<u64>,
    pub timeout: Duration,
    pub interval: Duration,
    pub color: bool,
    pub output: OutputFormat,
}

/// Longest accepted timeout or interval: a day.
const MAX_MS: u64 = 86_400_000;

pub fn parse(args: Vec<OsString>) -> Result<PapingArgs, Failure> {
    cli::parse("paping", cli::rewrite_output_flag(args))
}

/// Checks the flags; `color` says whether color is possible at all
/// (stdout is a terminal).
pub fn interpret(a: PapingArgs, terminal: bool) -> Result<Plan, String> {
    let Some(host) = a.host else {
        return Err("missing destination host; usage: paping HOST -p PORT [-c COUNT]".into());
    };
    let Some(port) = a.port else {
        return Err(format!(
            "missing port; give it with -p, e.g. 'paping {host} -p 443'"
        ));
    };
    let port = match port.parse::<u64>() {
        Ok(p @ 1..=65535) => p as u16,
        _ => {
            return Err(format!(
                "port number invalid: {port}; give a TCP port 1-65535 with -p"
            ));
        }
    };
    let count = match a.count {
        None => None,
        Some(c) => match c.parse::<u64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(format!(
                    "count invalid: {c}; give a whole number of probes above 0 with -c"
                ));
            }
        },
    };
    let timeout = milliseconds(&a.timeout, "timeout", "-t", 1)?;
    let interval = milliseconds(&a.interval, "interval", "-i", 0)?;
    Ok(Plan {
        host,
        port,
        count,
        timeout,
        interval,
        color: terminal && !a.nocolor && a.output == OutputFormat::Text,
        output: a.output,
    })
}

fn milliseconds(s: &str, what: &str, flag: &str, min: u64) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(ms) if (min..=MAX_MS).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "{what} invalid: {s}; give whole milliseconds from {min} to {MAX_MS} with {flag}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let mut full = vec![OsString::from("paping")];
        full.extend(args.iter().map(OsString::from));
        match parse(full) {
            Ok(a) => interpret(a, true),
            Err(Failure::Message(m)) => Err(m),
            Err(other) => Err(other.to_string()),
        }
    }

    #[test]
    fn flags_in_any_order_with_defaults() {
        let p = plan(&["198.51.100.1", "-p", "8080", "-c", "5"]).unwrap();
        assert_eq!(
            p,
            Plan {
                host: "198.51.100.1".into(),
                port: 8080,
                count: Some(5),
                timeout: Duration::from_millis(1000),
                interval: Duration::from_millis(1000),
                color: true,
                output: OutputFormat::Text,
            }
        );
        let p = plan(&[
            "-p", "443", "--count", "3", "-t", "200", "-i", "0", "web", "-o", "json",
        ])
        .unwrap();
        assert_eq!(p.host, "web");
        assert_eq!(p.interval, Duration::ZERO);
        assert_eq!(p.timeout, Duration::from_millis(200));
        assert_eq!(p.output, OutputFormat::Json);
        assert!(!p.color);
        assert!(!plan(&["h", "-p", "1", "--nocolor"]).unwrap().color);
    }

    #[test]
    fn bad_input_is_one_line() {
        for (args, start) in [
            (&["h"][..], "missing port; give it with -p"),
            (&["-p", "80"][..], "missing destination host"),
            (&["h", "-p", "70000"][..], "port number invalid: 70000"),
            (&["h", "-p", "abc"][..], "port number invalid: abc"),
            (&["h", "-p", "0"][..], "port number invalid: 0"),
            (&["h", "-p", "1", "-c", "0"][..], "count invalid: 0"),
            (&["h", "-p", "1", "-t", "0"][..], "timeout invalid: 0"),
            (
                &["h", "-p", "1", "-i", "-5"][..],
                "unexpected argument '-5'",
            ),
            (&["h", "-p", "1", "-i", "x"][..], "interval invalid: x"),
        ] {
            let err = plan(args).unwrap_err();
            assert!(err.starts_with(start), "{args:?}: {err}");
            assert!(!err.contains('\n'), "{args:?}: {err}");
        }
    }
}
