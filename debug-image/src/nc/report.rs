//! netcat's messages, word for word, on stderr.
//!
//! Scripts and people grep for these lines, so they are exactly Debian's
//! `netcat-openbsd` 1.219's: `Connection to H P port [tcp/SERVICE]
//! succeeded!`, `nc: connect to H port P (tcp) failed: REASON`, `nc: connect
//! to H port P (tcp) timed out: Operation now in progress`, `Listening on A
//! P`, `Bound on A P`, `Connection received on A P`. Addresses are always
//! numeric: netcat's reverse lookups go through libc, which we do not use.
//!
//! A closed stderr (`nc -zv ... 2>&1 | head -1`) stops the tool quietly
//! instead of panicking as `eprintln!` would.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use super::args::Proto;
use crate::cli::Failure;
use crate::services;

/// Why one connection attempt failed.
#[derive(Debug)]
pub enum ConnectError {
    /// No answer within `-w`.
    TimedOut,
    /// The system's answer (refused, unreachable, ...).
    Os(io::Error),
    /// `-uz`: the probe datagrams drew an ICMP port unreachable. netcat
    /// counts the port as closed without a word, even with `-v`.
    UdpRefused,
}

/// The system's words for an error, without Rust's " (os error N)" tail:
/// what netcat prints through `warn()`.
pub fn os_words(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Writes the messages; knows how netcat names the destination.
pub struct Reporter {
    /// The destination as the user typed it.
    pub host: String,
    pub proto: Proto,
    /// `-n`: no service names, no "(address)" after a host name.
    pub numeric: bool,
}

impl Reporter {
    /// ` (198.51.100.1)` after a name, nothing after a literal.
    fn address_note(&self, ip: IpAddr) -> String {
        if self.numeric || self.host == ip.to_string() {
            String::new()
        } else {
            format!(" ({ip})")
        }
    }

    pub fn succeeded(&self, ip: IpAddr, port: u16) -> Result<(), Failure> {
        let service = if self.numeric {
            None
        } else {
            services::name_by_port(port, self.proto.name())
        };
        line(format_args!(
            "Connection to {}{} {port} port [{}/{}] succeeded!",
            self.host,
            self.address_note(ip),
            self.proto.name(),
            service.unwrap_or("*")
        ))
    }

    pub fn failed(&self, ip: IpAddr, port: u16, error: &ConnectError) -> Result<(), Failure> {
        let (verb, why) = match error {
            ConnectError::TimedOut => ("timed out", "Operation now in progress".to_owned()),
            ConnectError::Os(e) => ("failed", os_words(e)),
            ConnectError::UdpRefused => return Ok(()),
        };
        line(format_args!(
            "nc: connect to {}{} port {port} ({}) {verb}: {why}",
            self.host,
            self.address_note(ip),
            self.proto.name()
        ))
    }
}

/// `Listening on 0.0.0.0 8080` (TCP) or `Bound on 0.0.0.0 5353` (UDP).
pub fn listening(proto: Proto, local: SocketAddr) -> Result<(), Failure> {
    let what = match proto {
        Proto::Tcp => "Listening on",
        Proto::Udp => "Bound on",
    };
    line(format_args!("{what} {} {}", local.ip(), local.port()))
}

/// `Connection received on 198.51.100.2 40000`.
pub fn received(peer: SocketAddr) -> Result<(), Failure> {
    line(format_args!(
        "Connection received on {} {}",
        peer.ip(),
        peer.port()
    ))
}

fn line(text: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut err = io::stderr().lock();
    writeln!(err, "{text}").map_err(|e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::BrokenPipe
        } else {
            Failure::msg(format!("writing to stderr: {e}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_words_drop_the_errno_suffix() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(os_words(&e), "Connection refused");
        let e = io::Error::from_raw_os_error(libc::ENETUNREACH);
        assert_eq!(os_words(&e), "Network is unreachable");
    }

    #[test]
    fn address_note_only_after_names() {
        let r = Reporter {
            host: "web.test".into(),
            proto: Proto::Tcp,
            numeric: false,
        };
        assert_eq!(
            r.address_note("198.51.100.1".parse().unwrap()),
            " (198.51.100.1)"
        );
        let r = Reporter {
            host: "198.51.100.1".into(),
            proto: Proto::Tcp,
            numeric: false,
        };
        assert_eq!(r.address_note("198.51.100.1".parse().unwrap()), "");
    }
}
