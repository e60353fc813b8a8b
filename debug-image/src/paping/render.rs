//! paping's output: its text lines (`Connected to 198.51.100.2:
//! time=0.42ms protocol=TCP port=8080`, "Connection statistics", ...)
//! extended with named failures and more statistics, or `-o json`: one JSON
//! object per line, one per probe, then the summary.

use std::io::{self, Write};
use std::net::IpAddr;

use netdiag_wire::OutputFormat;
use serde::Serialize;

use super::probe::{Outcome, Probe};
use super::stats::Summary;

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

/// One `-o json` line per probe.
#[derive(Serialize)]
struct ProbeEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    host: &'a str,
    address: IpAddr,
    port: u16,
    /// connected, refused, timed_out, no_route, reset_after_connect, error
    result: &'static str,
    time_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// The last `-o json` line.
#[derive(Serialize)]
struct SummaryEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    host: &'a str,
    address: IpAddr,
    port: u16,
    #[serde(flatten)]
    summary: &'a Summary,
}

/// Where results go, in the chosen format.
pub struct Printer<W: Write> {
    out: W,
    format: OutputFormat,
    color: bool,
    host: String,
    ip: IpAddr,
    port: u16,
}

/// `1234` µs as paping prints it: `1.23ms`.
fn ms(us: f64) -> String {
    format!("{:.2}ms", us / 1000.0)
}

impl<W: Write> Printer<W> {
    pub fn new(
        out: W,
        format: OutputFormat,
        color: bool,
        host: &str,
        ip: IpAddr,
        port: u16,
    ) -> Self {
        Printer {
            out,
            format,
            color,
            host: host.to_owned(),
            ip,
            port,
        }
    }

    fn paint(&self, color: &'static str, text: &str) -> String {
        if self.color {
            format!("{color}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    /// `Connecting to web [198.51.100.2] on TCP 8080:` (text only).
    pub fn header(&mut self) -> io::Result<()> {
        if self.format == OutputFormat::Json {
            return Ok(());
        }
        let target = if self.host == self.ip.to_string() {
            self.host.clone()
        } else {
            format!("{} [{}]", self.host, self.ip)
        };
        writeln!(self.out, "\nConnecting to {target} on TCP {}:\n", self.port)?;
        self.out.flush()
    }

    pub fn probe(&mut self, seq: u64, probe: &Probe) -> io::Result<()> {
        if self.format == OutputFormat::Json {
            let error = match &probe.outcome {
                Outcome::NoRoute(why) | Outcome::Other(why) => Some(why.as_str()),
                _ => None,
            };
            let event = ProbeEvent {
                kind: "probe",
                seq,
                host: &self.host,
                address: self.ip,
                port: self.port,
                result: probe.outcome.name(),
                time_us: probe.time_us,
                error,
            };
            return json_line(&mut self.out, &event);
        }
        let time = ms(probe.time_us as f64);
        let tail = format!("protocol=TCP port={}", self.port);
        let ip = self.ip;
        let line = match &probe.outcome {
            Outcome::Connected => format!(
                "{} {ip}: time={time} {tail}",
                self.paint(GREEN, "Connected to")
            ),
            Outcome::Refused => format!(
                "{} {ip}: time={time} {tail} (RST: nothing listening on the port)",
                self.paint(RED, "Connection refused by")
            ),
            Outcome::TimedOut => format!(
                "{} {ip}: time={time} {tail} (no answer: a firewall dropping SYNs, or the host is down)",
                self.paint(RED, "Connection timed out to")
            ),
            Outcome::NoRoute(why) => format!(
                "{} {ip}: time={time} {tail} ({why})",
                self.paint(RED, "No route to")
            ),
            Outcome::ResetAfterConnect => format!(
                "{} {ip}: time={time} {tail} (accepted, then reset: a proxy or an overflowing server)",
                self.paint(RED, "Connection reset after connect by")
            ),
            Outcome::Other(why) => format!(
                "{} {ip}: {tail} ({why})",
                self.paint(RED, "Connection failed to")
            ),
        };
        writeln!(self.out, "{line}")?;
        self.out.flush()
    }

    pub fn summary(&mut self, s: &Summary) -> io::Result<()> {
        if self.format == OutputFormat::Json {
            let event = SummaryEvent {
                kind: "summary",
                host: &self.host,
                address: self.ip,
                port: self.port,
                summary: s,
            };
            return json_line(&mut self.out, &event);
        }
        let f = &s.failures;
        writeln!(self.out, "\nConnection statistics:")?;
        writeln!(
            self.out,
            "\tAttempted = {}, Connected = {}, Failed = {} ({:.2}%)",
            s.attempted, s.connected, s.failed, s.loss_percent
        )?;
        if s.failed > 0 {
            writeln!(
                self.out,
                "\tRefused = {}, Timed out = {}, No route = {}, Reset after connect = {}, Other = {}",
                f.refused, f.timed_out, f.no_route, f.reset_after_connect, f.other
            )?;
        }
        if let Some(t) = &s.time_us {
            writeln!(self.out, "Approximate connection times:")?;
            writeln!(
                self.out,
                "\tMinimum = {}, Maximum = {}, Average = {}",
                ms(t.min as f64),
                ms(t.max as f64),
                ms(t.avg)
            )?;
            writeln!(
                self.out,
                "\tStddev = {}, p50 = {}, p95 = {}, p99 = {}, Jitter = {}",
                ms(t.stddev),
                ms(t.p50 as f64),
                ms(t.p95 as f64),
                ms(t.p99 as f64),
                ms(t.jitter)
            )?;
        }
        self.out.flush()
    }
}

/// One JSON object and a newline, flushed: a reader sees each probe at once.
fn json_line(out: &mut impl Write, event: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, event).map_err(io::Error::other)?;
    out.write_all(b"\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paping::stats::Stats;

    fn printer(format: OutputFormat) -> Printer<Vec<u8>> {
        Printer::new(
            Vec::new(),
            format,
            false,
            "198.51.100.2",
            "198.51.100.2".parse().unwrap(),
            8080,
        )
    }

    #[test]
    fn text_lines_as_paping_prints_them() {
        let mut p = printer(OutputFormat::Text);
        p.header().unwrap();
        let mut stats = Stats::default();
        for probe in [
            Probe {
                outcome: Outcome::Connected,
                time_us: 420,
            },
            Probe {
                outcome: Outcome::Refused,
                time_us: 210,
            },
        ] {
            p.probe(1, &probe).unwrap();
            stats.record(&probe.outcome, probe.time_us);
        }
        p.summary(&stats.summary()).unwrap();
        let text = String::from_utf8(p.out).unwrap();
        assert_eq!(
            text,
            "\nConnecting to 198.51.100.2 on TCP 8080:\n\n\
             Connected to 198.51.100.2: time=0.42ms protocol=TCP port=8080\n\
             Connection refused by 198.51.100.2: time=0.21ms protocol=TCP port=8080 (RST: nothing listening on the port)\n\
             \nConnection statistics:\n\
             \tAttempted = 2, Connected = 1, Failed = 1 (50.00%)\n\
             \tRefused = 1, Timed out = 0, No route = 0, Reset after connect = 0, Other = 0\n\
             Approximate connection times:\n\
             \tMinimum = 0.42ms, Maximum = 0.42ms, Average = 0.42ms\n\
             \tStddev = 0.00ms, p50 = 0.42ms, p95 = 0.42ms, p99 = 0.42ms, Jitter = 0.00ms\n"
        );
    }

    #[test]
    fn json_is_one_object_per_line() {
        let mut p = printer(OutputFormat::Json);
        p.header().unwrap();
        let probe = Probe {
            outcome: Outcome::NoRoute("Network is unreachable".into()),
            time_us: 12,
        };
        p.probe(1, &probe).unwrap();
        let mut stats = Stats::default();
        stats.record(&probe.outcome, probe.time_us);
        p.summary(&stats.summary()).unwrap();
        let text = String::from_utf8(p.out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["type"], "probe");
        assert_eq!(lines[0]["result"], "no_route");
        assert_eq!(lines[0]["error"], "Network is unreachable");
        assert_eq!(lines[0]["time_us"], 12);
        assert_eq!(lines[1]["type"], "summary");
        assert_eq!(lines[1]["failed"], 1);
        assert_eq!(lines[1]["failures"]["no_route"], 1);
        assert_eq!(lines[1]["time_us"], serde_json::Value::Null);
    }
}
