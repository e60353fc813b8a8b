//! One paping probe: a fresh TCP socket, one timed connect(), a short
//! watch for a reset, and a close that sends RST.
//!
//! The time is `std::time::Instant` (CLOCK_MONOTONIC) read just before the
//! non-blocking connect() is issued and just after the kernel reports the
//! handshake's result, so it is the SYN → SYN-ACK round trip plus the
//! wake-up of this thread: socket creation, the watch and the close are
//! outside it.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpSocket;

/// How one probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Connected,
    /// RST to our SYN (ECONNREFUSED): nothing listens on the port, or a
    /// firewall rejects with a reset.
    Refused,
    /// No answer within the timeout: a firewall dropping, or a dead host.
    TimedOut,
    /// EHOSTUNREACH / ENETUNREACH (the system's words kept).
    NoRoute(String),
    /// Accepted, then reset before the watch ended: an overflowing accept
    /// queue with `tcp_abort_on_overflow`, or a proxy whose upstream failed.
    ResetAfterConnect,
    /// Anything else (the system's words): EPERM from a local firewall,
    /// EADDRNOTAVAIL when ephemeral ports run out, ...
    Other(String),
}

impl Outcome {
    /// The name used in JSON and the summary.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Connected => "connected",
            Outcome::Refused => "refused",
            Outcome::TimedOut => "timed_out",
            Outcome::NoRoute(_) => "no_route",
            Outcome::ResetAfterConnect => "reset_after_connect",
            Outcome::Other(_) => "error",
        }
    }
}

/// A finished probe.
#[derive(Debug, Clone)]
pub struct Probe {
    pub outcome: Outcome,
    /// connect()'s duration in µs (for a timeout: how long we waited).
    pub time_us: u64,
}

/// Connects to `dest` once, giving up after `timeout`; when connected,
/// watches up to `watch` for a reset before closing.
pub async fn run(dest: SocketAddr, timeout: Duration, watch: Duration) -> Probe {
    let socket = match new_socket(dest) {
        Ok(s) => s,
        Err(e) => {
            return Probe {
                outcome: classify(&e),
                time_us: 0,
            };
        }
    };
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, socket.connect(dest)).await;
    let time_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let stream = match result {
        Err(_) => {
            return Probe {
                outcome: Outcome::TimedOut,
                time_us,
            };
        }
        Ok(Err(e)) => {
            return Probe {
                outcome: classify(&e),
                time_us,
            };
        }
        Ok(Ok(stream)) => stream,
    };
    if !watch.is_zero() {
        // Until data (a banner), an orderly close (FIN) or a reset arrives.
        let _ = tokio::time::timeout(watch, stream.readable()).await;
    }
    // Only a reset is a failure; data, a FIN, or nothing yet are fine.
    let mut byte = [0u8; 1];
    let outcome = match stream.try_read(&mut byte) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Outcome::ResetAfterConnect,
        _ => Outcome::Connected,
    };
    // Dropping the stream closes it; SO_LINGER 0 (set below) makes that an
    // RST, so neither end keeps the connection in TIME-WAIT.
    drop(stream);
    Probe { outcome, time_us }
}

/// A new socket whose close sends RST.
fn new_socket(dest: SocketAddr) -> io::Result<TcpSocket> {
    let socket = match dest {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_zero_linger()?;
    Ok(socket)
}

fn classify(e: &io::Error) -> Outcome {
    let words = crate::nc::os_words(e);
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Outcome::Refused,
        Some(libc::ETIMEDOUT) => Outcome::TimedOut,
        Some(libc::EHOSTUNREACH | libc::ENETUNREACH) => Outcome::NoRoute(words),
        // A reset answering the SYN is ECONNREFUSED; connect() reports
        // ECONNRESET only when the handshake completed and the reset came
        // before we looked (a server that accepts and aborts at once, on a
        // busy machine).
        Some(libc::ECONNRESET) => Outcome::ResetAfterConnect,
        _ => Outcome::Other(words),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_named_by_cause() {
        let e = |code| io::Error::from_raw_os_error(code);
        assert_eq!(classify(&e(libc::ECONNREFUSED)), Outcome::Refused);
        assert_eq!(classify(&e(libc::ETIMEDOUT)), Outcome::TimedOut);
        assert_eq!(
            classify(&e(libc::ENETUNREACH)),
            Outcome::NoRoute("Network is unreachable".into())
        );
        assert_eq!(
            classify(&e(libc::EHOSTUNREACH)),
            Outcome::NoRoute("No route to host".into())
        );
        assert_eq!(classify(&e(libc::ECONNRESET)), Outcome::ResetAfterConnect);
        assert_eq!(
            classify(&e(libc::EPERM)),
            Outcome::Other("Operation not permitted".into())
        );
    }
}
