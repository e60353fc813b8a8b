//! The agent when `kubectl-netdiag` runs it: the protocol of
//! [`netdiag_wire::frame`] around an unchanged tool.
//!
//! The tool runs as a child process (this same binary); this process
//! copies its stdout to the attach stream byte for byte (counting it),
//! frames its stderr (with that count, to keep the order), feeds its stdin from stdin frames, and reports its
//! exit code and stdout byte count in-band. Nothing runs before the plugin's start signal; no
//! signal within the deadline, a stop frame, the attach stream closing, or
//! SIGTERM/SIGINT from the kubelet all end the tool: SIGINT first (tools
//! print their summaries), SIGKILL after a grace period. The child also
//! asks the kernel to kill it if this process dies, so nothing can keep
//! running in someone's pod without us.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use netdiag_wire::exit;
use netdiag_wire::frame::{self, Decoder, ExitReport, Frame, Kind, StderrChunk};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{self, SigSet, Signal};
use nix::unistd::Pid;

/// Set on the tool's process so it arranges to die with us.
pub const CHILD_ENV: &str = "NETDIAG_ATTACHED_CHILD";
/// Between SIGINT and SIGKILL: long enough for a summary, short enough to
/// stay well inside the 5 s the plugin promises.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Reads of the tool's stdout (64 KiB each) before its stderr gets a turn.
const STDOUT_READS_PER_TURN: usize = 16;

enum Event {
    Frame(Frame),
    /// Our stdin ended or broke: the plugin is gone.
    StdinClosed,
    ProtocolError(String),
    /// SIGTERM or SIGINT delivered to the agent itself.
    Signal(Signal),
    ToolExited(ExitStatus),
}

/// Called first thing in the child: take the signals the agent blocked
/// for itself (the mask survives exec, and std does not reset it), and die
/// when the attached agent dies.
pub fn arm_parent_death_signal() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    let _ = signals.thread_unblock();
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    // The parent may have died before the line above: then we were
    // re-parented and must not run on.
    if nix::unistd::getppid() == Pid::from_raw(1) {
        std::process::exit(i32::from(exit::FAILURE));
    }
}

/// Runs `tool_args` (tool name first) under the protocol.
pub fn run(version: &str, tool_args: Vec<OsString>) -> ExitCode {
    if version != frame::PROTOCOL_VERSION {
        eprintln!(
            "netdiag-agent: kubectl-netdiag speaks protocol {version:?}, this agent {:?}; use the agent image of the same release",
            frame::PROTOCOL_VERSION
        );
        return ExitCode::from(exit::FAILURE);
    }
    // Signals are taken by a thread of ours (blocked everywhere else; the
    // child inherits the mask and unblocks them first thing).
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    let _ = signals.thread_block();

    let (events, inbox) = mpsc::channel();
    spawn_signal_listener(signals, events.clone());
    spawn_stdin_reader(events.clone());

    let deadline = start_timeout();
    match wait_for_start(&inbox, deadline) {
        Ok(()) => {}
        Err(reason) => {
            // Nobody reads framed stderr now: say it plainly (kubectl logs).
            eprintln!("netdiag-agent: {reason}; exiting");
            return ExitCode::from(exit::FAILURE);
        }
    }

    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let spawned = Command::new(exe)
        .args(&tool_args)
        .env_remove(frame::PROTOCOL_ENV)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let text = format!("netdiag-agent: cannot start the tool: {e}\n");
            let _ = send_frames(&StderrChunk::encode(0, text.as_bytes()));
            let report = ExitReport {
                code: exit::FAILURE,
                stdout_bytes: Some(0),
            };
            let _ = send_frames(&report.encode().encode());
            return ExitCode::from(exit::FAILURE);
        }
    };
    let _ = send_frames(&Frame::new(Kind::Started, vec![]).encode());
    let output_pump = spawn_output_pump(&mut child);
    let tool_stdin = child.stdin.take();
    let pid = Pid::from_raw(child.id() as i32);
    spawn_waiter(child, events);

    let status = supervise(&inbox, pid, tool_stdin);
    let stdout_bytes = output_pump.and_then(|p| p.join().ok());
    let code = exit_code(status);
    let report = ExitReport { code, stdout_bytes };
    let _ = send_frames(&report.encode().encode());
    ExitCode::from(code)
}

fn start_timeout() -> Duration {
    let secs = std::env::var(frame::START_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(frame::DEFAULT_START_TIMEOUT_SECS);
    Duration::from_secs(secs)
}

fn wait_for_start(inbox: &Receiver<Event>, timeout: Duration) -> Result<(), String> {
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match inbox.recv_timeout(left) {
            Ok(Event::Frame(f)) if f.kind == Kind::Start => return Ok(()),
            Ok(Event::Frame(f)) if f.kind == Kind::Stop => {
                return Err("stopped before start".into());
            }
            Ok(Event::Frame(_)) => continue,
            Ok(Event::StdinClosed) => {
                return Err("kubectl-netdiag went away before starting the tool".into());
            }
            Ok(Event::ProtocolError(e)) => return Err(format!("unexpected input on stdin ({e})")),
            Ok(Event::Signal(s)) => return Err(format!("{s} before start")),
            Ok(Event::ToolExited(_)) => unreachable!("no tool yet"),
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "no start signal from kubectl-netdiag within {}s",
                    timeout.as_secs()
                ));
            }
            Err(RecvTimeoutError::Disconnected) => return Err("input closed".into()),
        }
    }
}

/// Feeds the tool and stops it when asked or abandoned; returns its status.
fn supervise(inbox: &Receiver<Event>, pid: Pid, mut tool_stdin: Option<ChildStdin>) -> ExitStatus {
    let mut kill_at: Option<Instant> = None;
    loop {
        let event = match kill_at {
            Some(at) => match inbox.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(e) => e,
                Err(_) => {
                    let _ = signal::kill(pid, Signal::SIGKILL);
                    kill_at = Some(Instant::now() + Duration::from_secs(3600));
                    continue;
                }
            },
            None => match inbox.recv() {
                Ok(e) => e,
                Err(_) => unreachable!("the waiter thread holds a sender until the tool exits"),
            },
        };
        let mut stop = || {
            if kill_at.is_none() {
                let _ = signal::kill(pid, Signal::SIGINT);
                kill_at = Some(Instant::now() + STOP_GRACE);
            }
        };
        match event {
            Event::ToolExited(status) => return status,
            Event::Frame(f) => match f.kind {
                Kind::Stdin => {
                    if let Some(stdin) = tool_stdin.as_mut() {
                        // The tool may have closed its stdin: not an error.
                        if stdin.write_all(&f.payload).is_err() {
                            tool_stdin = None;
                        }
                    }
                }
                Kind::StdinEof => tool_stdin = None,
                Kind::Stop => stop(),
                Kind::Start | Kind::Stderr | Kind::Exit | Kind::Started => {}
            },
            Event::StdinClosed | Event::ProtocolError(_) | Event::Signal(_) => stop(),
        }
    }
}

fn spawn_stdin_reader(events: Sender<Event>) {
    thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut decoder = Decoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = events.send(Event::StdinClosed);
                    return;
                }
                Ok(n) => decoder.push(&buf[..n]),
            }
            loop {
                match decoder.next_frame() {
                    Ok(Some(f)) => {
                        if events.send(Event::Frame(f)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = events.send(Event::ProtocolError(e.0));
                        return;
                    }
                }
            }
        }
    });
}

fn spawn_signal_listener(signals: SigSet, events: Sender<Event>) {
    thread::spawn(move || {
        while let Ok(sig) = signals.wait() {
            if events.send(Event::Signal(sig)).is_err() {
                return;
            }
        }
    });
}

/// Copies the tool's stdout to ours unchanged, counting the bytes so the
/// exit report can tell the plugin when it has everything, and frames its
/// stderr with the count of stdout bytes written before it.
///
/// One thread polls both pipes and always empties stdout first: whatever
/// the tool wrote to stdout before a stderr write is already in the stdout
/// pipe when the stderr one becomes readable, so it is counted before the
/// stderr bytes are framed. (A tool flooding stdout is read at most
/// [`STDOUT_READS_PER_TURN`] times in a row, so stderr is never starved.)
fn spawn_output_pump(child: &mut Child) -> Option<thread::JoinHandle<u64>> {
    let mut tool_stdout = child.stdout.take()?;
    let mut tool_stderr = child.stderr.take()?;
    for fd in [tool_stdout.as_fd(), tool_stderr.as_fd()] {
        let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).ok()?);
        fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).ok()?;
    }
    Some(thread::spawn(move || {
        let mut out = io::stdout().lock();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        let (mut stdout_open, mut stderr_open) = (true, true);
        while stdout_open || stderr_open {
            let readable = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
            let (stdout_ready, stderr_ready) = {
                let mut fds = [
                    PollFd::new(tool_stdout.as_fd(), PollFlags::POLLIN),
                    PollFd::new(tool_stderr.as_fd(), PollFlags::POLLIN),
                ];
                let watched = if stdout_open { 0..2 } else { 1..2 };
                let watched = if stderr_open { watched } else { 0..1 };
                match poll(&mut fds[watched.clone()], PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                }
                let ready = |i: usize| {
                    watched.contains(&i) && fds[i].revents().is_some_and(|r| r.intersects(readable))
                };
                (ready(0), ready(1))
            };
            if stdout_ready {
                for _ in 0..STDOUT_READS_PER_TURN {
                    match tool_stdout.read(&mut buf) {
                        Ok(0) => stdout_open = false,
                        Ok(n) => {
                            // Nobody reads us any more: keep draining the
                            // tool so it is not blocked, but stop counting
                            // what is lost.
                            if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_ok() {
                                total += n as u64;
                            }
                            continue;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => stdout_open = false,
                    }
                    break;
                }
            }
            if stderr_ready {
                loop {
                    match tool_stderr.read(&mut buf) {
                        Ok(0) => stderr_open = false,
                        Ok(n) => {
                            if send_frames(&StderrChunk::encode(total, &buf[..n])).is_ok() {
                                continue;
                            }
                            // The plugin is gone; keep draining stdout.
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => stderr_open = false,
                    }
                    break;
                }
            }
        }
        total
    }))
}

fn spawn_waiter(mut child: Child, events: Sender<Event>) {
    thread::spawn(move || {
        if let Ok(status) = child.wait() {
            let _ = events.send(Event::ToolExited(status));
        }
    });
}

fn send_frames(bytes: &[u8]) -> io::Result<()> {
    let mut err = io::stderr().lock();
    err.write_all(bytes)?;
    err.flush()
}

/// The code a shell would report: the exit code, or 128 + signal.
fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        _ => exit::FAILURE,
    }
}
