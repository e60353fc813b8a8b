//! Processes a test starts: guarded so they die with the test, and bounded in
//! time so a hung tool fails the test instead of hanging the run.
//!
//! [`ChildGuard`] sends a process's stdout and stderr to files rather than
//! pipes: a server that prints a lot can never block on a full pipe nobody
//! reads, and the test can look at what it printed so far at any moment
//! ([`ChildGuard::stdout`]), which is how readiness is usually detected.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a command that should finish promptly may take before the test
/// fails (generous: the machine is shared and may be busy compiling).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the pollers here look again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A running child process that is killed (SIGKILL) and reaped on drop.
pub struct ChildGuard {
    child: Child,
    what: String,
    /// Where stdout and stderr go; `None` when the caller set up stdio.
    logs: Option<CaptureFiles>,
}

/// The files holding a child's stdout and stderr; removed on drop.
struct CaptureFiles {
    stdout: PathBuf,
    stderr: PathBuf,
}

impl CaptureFiles {
    fn new() -> CaptureFiles {
        let base = std::env::temp_dir().join(crate::unique_name("out"));
        CaptureFiles {
            stdout: base.with_extension("stdout"),
            stderr: base.with_extension("stderr"),
        }
    }
}

impl Drop for CaptureFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.stdout);
        let _ = std::fs::remove_file(&self.stderr);
    }
}

fn create(path: &PathBuf) -> File {
    File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()))
}

impl ChildGuard {
    /// Starts `cmd` with stdin from /dev/null and stdout/stderr captured to
    /// files. `what` names it in panic messages ("nc server in nd-x-1-2").
    /// Panics if it cannot be started.
    pub fn spawn(what: &str, cmd: &mut Command) -> ChildGuard {
        let logs = CaptureFiles::new();
        cmd.stdin(Stdio::null())
            .stdout(create(&logs.stdout))
            .stderr(create(&logs.stderr));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what} ({cmd:?}): {e}"));
        ChildGuard {
            child,
            what: what.to_owned(),
            logs: Some(logs),
        }
    }

    /// Guards a child the caller started with its own stdio (pipes to stream
    /// from, for example). [`stdout`](Self::stdout) and
    /// [`stderr`](Self::stderr) are then empty.
    pub fn adopt(what: &str, child: Child) -> ChildGuard {
        ChildGuard {
            child,
            what: what.to_owned(),
            logs: None,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What this process is, as given at spawn.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The underlying child, e.g. to take a pipe of an adopted child.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Everything the process has written to stdout so far (lossy UTF-8).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout_bytes()).into_owned()
    }

    /// Everything the process has written to stderr so far (lossy UTF-8).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr_bytes()).into_owned()
    }

    pub fn stdout_bytes(&self) -> Vec<u8> {
        self.logs
            .as_ref()
            .and_then(|l| std::fs::read(&l.stdout).ok())
            .unwrap_or_default()
    }

    pub fn stderr_bytes(&self) -> Vec<u8> {
        self.logs
            .as_ref()
            .and_then(|l| std::fs::read(&l.stderr).ok())
            .unwrap_or_default()
    }

    /// The exit status if the process has ended, `None` while it runs.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.what))
    }

    /// Sends `signal` (e.g. SIGINT to make tcpdump flush and exit).
    pub fn signal(&self, signal: Signal) {
        // The child is not reaped before we wait for it, so its pid cannot
        // have been reused; a process that already exited is a zombie and
        // ignores the signal.
        let _ = kill(Pid::from_raw(self.child.id() as i32), signal);
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits for the process to exit on its own and returns its status and
    /// captured output. Panics (after killing it) if it is still running
    /// after `timeout`.
    pub fn finish(mut self, timeout: Duration) -> Output {
        match self.wait_timeout(timeout) {
            Some(status) => Output {
                status,
                stdout: self.stdout_bytes(),
                stderr: self.stderr_bytes(),
            },
            None => panic!(
                "{} still running after {timeout:?}; stdout so far:\n{}\nstderr so far:\n{}",
                self.what,
                self.stdout(),
                self.stderr()
            ),
        }
    }

    /// Sends `signal`, then behaves like [`finish`](Self::finish).
    pub fn stop(self, signal: Signal, timeout: Duration) -> Output {
        self.signal(signal);
        self.finish(timeout)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Quiet on purpose: this also runs while a failed test unwinds.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to completion (stdin from /dev/null) and returns its output,
/// without judging the exit status. Panics if it takes longer than `timeout`.
pub fn output(cmd: &mut Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    ChildGuard::spawn(&what, cmd).finish(timeout)
}

/// Like [`output`], but also panics, showing stderr, when the command exits
/// non-zero.
pub fn checked(cmd: &mut Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let out = ChildGuard::spawn(&what, cmd).finish(timeout);
    assert_success(&what, &out);
    out
}

/// Panics with the command's stderr and stdout unless it exited 0.
pub fn assert_success(what: &str, out: &Output) {
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\nstderr:\n{}\nstdout:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// Polls `condition` every 20 ms until it returns true; panics naming `what`
/// if that has not happened within `timeout`. For readiness ("the server
/// listens", "the namespace is gone"), never for fixed sleeps.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
