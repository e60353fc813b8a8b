//! When a live capture stops: SIGINT, SIGTERM, or the end of stdin.
//!
//! The signals are blocked and read from a signalfd, so they arrive in the
//! capture's poll loop like any other event (no handler, nothing async).
//! Stdin is watched only when it is a pipe or a socket: that is how
//! `kubectl netdiag` (and a script) says "enough" — closing our input —
//! while a terminal or /dev/null as stdin never stops the capture.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::{SFlag, fstat};

/// Why the capture ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Signal(Signal),
    StdinClosed,
}

pub struct Stopper {
    signals: SignalFd,
    /// stdin, when its end should stop the capture.
    stdin: Option<io::Stdin>,
}

impl Stopper {
    /// Blocks SIGINT and SIGTERM for this thread and starts listening.
    pub fn new() -> io::Result<Stopper> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGINT);
        mask.add(Signal::SIGTERM);
        mask.thread_block().map_err(io::Error::from)?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(io::Error::from)?;
        let watch_stdin = fstat(io::stdin().as_fd()).is_ok_and(|st| {
            let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            kind == SFlag::S_IFIFO || kind == SFlag::S_IFSOCK
        });
        Ok(Stopper {
            signals,
            stdin: watch_stdin.then(io::stdin),
        })
    }

    pub fn signal_fd(&self) -> BorrowedFd<'_> {
        self.signals.as_fd()
    }

    /// stdin, when its end should stop the capture.
    pub fn stdin_fd(&self) -> Option<BorrowedFd<'_>> {
        self.stdin.as_ref().map(|s| s.as_fd())
    }

    /// A signal that arrived, if any.
    pub fn pending_signal(&self) -> Option<Reason> {
        match self.signals.read_signal() {
            Ok(Some(info)) => Signal::try_from(info.ssi_signo as i32)
                .ok()
                .map(Reason::Signal),
            _ => None,
        }
    }

    /// Consumes what stdin has ready; `true` at its end (or when it
    /// cannot be read any more).
    pub fn stdin_ended(&self) -> bool {
        let Some(stdin) = &self.stdin else {
            return false;
        };
        let mut buf = [0u8; 4096];
        !matches!(stdin.lock().read(&mut buf), Ok(n) if n > 0)
    }
}
