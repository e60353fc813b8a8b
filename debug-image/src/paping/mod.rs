//! `paping`: TCP connect latency and loss over time, for "ping works but
//! the port doesn't". Each probe is one TCP connect; the summary adds
//! stddev, p50/p95/p99 and jitter to paping's min/max/average, and failures
//! are named by cause.
//!
//! `paping HOST -p PORT [-c COUNT] [-t TIMEOUT_MS] [-i INTERVAL_MS] [--nocolor] [-o json]`
//!
//! parse ([`args`]) → run (resolve once, then [`probe::run`] every interval,
//! counted in [`stats`]) → render ([`render`]: paping's lines, or one JSON
//! object per probe and one for the summary). The run ends after COUNT
//! probes, on SIGINT/SIGTERM, or when a piped stdin reaches EOF (how
//! kubectl-netdiag says "stop"; a terminal, /dev/null or a file on stdin is
//! never read); a probe in flight at that moment is abandoned and not
//! counted. Exit 0 when at least one probe connected, 1 when all failed.
//!
//! # What is measured
//!
//! The time of connect() alone, in microseconds, on the monotonic clock
//! (see [`probe`]). Probes start every INTERVAL (the next starts at once if
//! one took longer); after a successful connect the socket is watched for a
//! reset until the next probe is due, at most [`RESET_WATCH`] and never
//! beyond the timeout, so "reset after connect" is caught without delaying
//! the schedule.
//!
//! # Why TIME-WAIT and conntrack do not skew the results
//!
//! Repeated connects to one port can measure the host's own bookkeeping
//! instead of the network: a source port still in TIME-WAIT on either end,
//! or a stale conntrack entry for the same 4-tuple on a node or firewall,
//! can make a SYN be answered with a challenge ACK, dropped as invalid, or
//! delayed by a retransmission. paping avoids both:
//!
//! - every probe is a new socket, never bound, so the kernel picks the
//!   source port at connect() time; Linux advances through the ephemeral
//!   range per destination, so consecutive probes use different ports and a
//!   4-tuple comes back only after the whole range (~28,000 probes);
//! - each connection is closed with SO_LINGER 0, i.e. an RST instead of a
//!   FIN handshake: neither end enters TIME-WAIT, the server frees the
//!   connection at once, and conntrack moves the entry to CLOSE (10 s)
//!   rather than TIME_WAIT (120 s), so no state piles up over a long run.
//!
//! No capability is needed: these are ordinary TCP sockets.

mod args;
pub mod probe;
mod render;
pub mod stats;

use std::ffi::OsString;
use std::io::{self, IsTerminal};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::process::ExitCode;
use std::time::Duration;

use netdiag_wire::exit;
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use crate::cli::{self, Failure};
use crate::nc::resolve::{self, Family};
use args::Plan;
use render::Printer;
use stats::Stats;

/// Longest watch for a reset after a successful connect.
pub const RESET_WATCH: Duration = Duration::from_millis(200);

pub fn main(args: Vec<OsString>) -> ExitCode {
    cli::finish("paping", run(args))
}

fn run(args: Vec<OsString>) -> Result<u8, Failure> {
    let parsed = args::parse(args)?;
    let plan = args::interpret(parsed, io::stdout().is_terminal()).map_err(Failure::Message)?;
    cli::block_on(execute(plan))
}

async fn execute(plan: Plan) -> Result<u8, Failure> {
    let addrs = resolve::resolve(&plan.host, Family::Any, false)
        .await
        .map_err(Failure::Message)?;
    let ip = addrs[0];
    let dest = SocketAddr::new(ip, plan.port);

    let stop = stop_requested()?;
    tokio::pin!(stop);
    let mut printer = Printer::new(
        io::stdout().lock(),
        plan.output,
        plan.color,
        &plan.host,
        ip,
        plan.port,
    );
    printer.header()?;

    let mut stats = Stats::default();
    let mut seq: u64 = 0;
    loop {
        if plan.count.is_some_and(|c| seq >= c) {
            break;
        }
        seq += 1;
        let started = Instant::now();
        let next_due = started + plan.interval;
        let watch = RESET_WATCH.min(plan.timeout);
        let result = tokio::select! {
            p = probe::run(dest, plan.timeout, watch_until(next_due, watch)) => Some(p),
            () = &mut stop => None,
        };
        let Some(result) = result else { break };
        stats.record(&result.outcome, result.time_us);
        printer.probe(seq, &result)?;
        if plan.count.is_some_and(|c| seq >= c) {
            break;
        }
        // A deadline already passed would still wait for the timer's next
        // millisecond tick: back-to-back probes (-i 0) skip the timer.
        if next_due > Instant::now() {
            let stopped = tokio::select! {
                () = tokio::time::sleep_until(next_due) => false,
                () = &mut stop => true,
            };
            if stopped {
                break;
            }
        }
    }
    printer.summary(&stats.summary())?;
    Ok(if stats.connected > 0 {
        exit::SUCCESS
    } else {
        exit::FAILURE
    })
}

/// The reset watch of a probe started now: until the next probe is due,
/// at most `limit`. Computed up front: the connect's own duration is
/// unknown yet, so the watch may end a little after `next_due`, by at most
/// the connect time.
fn watch_until(next_due: Instant, limit: Duration) -> Duration {
    next_due
        .saturating_duration_since(Instant::now())
        .min(limit)
}

/// Completes when the run should stop: SIGINT, SIGTERM, or EOF on a piped
/// stdin. Signal handlers are installed now, before the first probe.
fn stop_requested() -> Result<impl Future<Output = ()>, Failure> {
    let handler = |kind: SignalKind| {
        signal(kind).map_err(|e| Failure::msg(format!("installing a signal handler: {e}")))
    };
    let mut interrupt = handler(SignalKind::interrupt())?;
    let mut terminate = handler(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            () = stdin_closed() => {}
        }
    })
}

/// Completes at EOF (or an error) on stdin when stdin is a pipe or a
/// socket, i.e. someone is feeding us and may go away; never otherwise.
async fn stdin_closed() {
    // A duplicate of the descriptor: inspecting it must not close fd 0.
    let piped = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata())
        .map(|m| m.file_type().is_fifo() || m.file_type().is_socket())
        .unwrap_or(false);
    if !piped {
        return std::future::pending().await;
    }
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stdin.read(&mut buf).await
        && n > 0
    {}
}
