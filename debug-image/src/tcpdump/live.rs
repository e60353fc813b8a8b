//! The live capture loop: poll the ring, the stop signals and stdin; hand
//! packets to the sink until `-c` is reached or something says stop; then
//! collect what the kernel still holds and print tcpdump's statistics.

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::args::{Direction, Plan};
use super::capture::{Capture, Captured, Stats};
use super::sink::Sink;
use super::stop::{Reason, Stopper};
use crate::cli::Failure;

/// Where captured packets go, and how many went.
struct Consumer<'a> {
    sink: &'a mut dyn Sink,
    direction: Direction,
    limit: Option<u64>,
    captured: u64,
    failure: Option<Failure>,
}

impl Consumer<'_> {
    fn take(&mut self, c: Captured<'_>) -> ControlFlow<()> {
        let wanted = match self.direction {
            Direction::InOut => true,
            Direction::In => !c.outgoing,
            Direction::Out => c.outgoing,
        };
        if !wanted {
            return ControlFlow::Continue(());
        }
        if let Err(e) = self.sink.packet(&c.frame) {
            self.failure = Some(e);
            return ControlFlow::Break(());
        }
        self.captured += 1;
        if self.limit.is_some_and(|l| self.captured >= l) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Runs the capture to its end; returns how many packets were captured
/// and the kernel's counts.
pub fn run(
    plan: &Plan,
    capture: &mut Capture,
    stopper: &Stopper,
    sink: &mut dyn Sink,
) -> Result<(u64, Stats), Failure> {
    let mut consumer = Consumer {
        sink,
        direction: plan.direction,
        limit: plan.count,
        captured: 0,
        failure: None,
    };
    let ring_error = |e: io::Error| Failure::msg(format!("reading the capture ring: {e}"));
    let mut stopped_by: Option<Reason> = None;
    loop {
        let mut fds = vec![
            PollFd::new(capture.as_fd(), PollFlags::POLLIN),
            PollFd::new(stopper.signal_fd(), PollFlags::POLLIN),
        ];
        if let Some(stdin) = stopper.stdin_fd() {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(250u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Failure::msg(format!("poll: {e}"))),
        }
        let stdin_event = fds
            .get(2)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        let flow = capture
            .read_ready(|c| consumer.take(c))
            .map_err(ring_error)?;
        if let Some(e) = consumer.failure.take() {
            return Err(e);
        }
        if flow.is_break() {
            break;
        }
        consumer.sink.flush()?;
        if let Some(r) = stopper.pending_signal() {
            stopped_by = Some(r);
            break;
        }
        if stdin_event && stopper.stdin_ended() {
            stopped_by = Some(Reason::StdinClosed);
            break;
        }
    }
    if stopped_by.is_some() {
        // The kernel hands over a partly filled block when its retire
        // timer fires: wait for that, then take what it holds.
        let deadline = Instant::now() + capture.retire * 2 + Duration::from_millis(50);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut fds = [PollFd::new(capture.as_fd(), PollFlags::POLLIN)];
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let ready = poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0);
            let flow = capture
                .read_ready(|c| consumer.take(c))
                .map_err(ring_error)?;
            if let Some(e) = consumer.failure.take() {
                return Err(e);
            }
            if flow.is_break() || ready == 0 {
                break;
            }
        }
    }
    consumer.sink.flush()?;
    let stats = capture
        .stats()
        .map_err(|e| Failure::msg(format!("reading capture statistics: {e}")))?;
    Ok((consumer.captured, stats))
}

/// tcpdump's three lines.
pub fn print_stats(captured: u64, stats: Stats) -> io::Result<()> {
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let mut err = io::stderr().lock();
    writeln!(err, "{captured} packet{} captured", plural(captured))?;
    writeln!(
        err,
        "{} packet{} received by filter",
        stats.received,
        plural(stats.received)
    )?;
    writeln!(
        err,
        "{} packet{} dropped by kernel",
        stats.dropped,
        plural(stats.dropped)
    )
}
