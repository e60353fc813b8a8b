//! Streaming a started agent: its stdout to ours byte for byte, its framed
//! stderr decoded to ours, our stdin framed to it (for tools that read
//! stdin), Ctrl-C and a closed output pipe turned into a stop frame, and
//! its in-band exit code as ours.
//!
//! The attach stdin is never closed while the tool runs: on
//! `v4.channel.k8s.io` that would close the whole stream and lose the tail
//! of stdout. End of our input is a frame instead. Our input is sent only
//! after the agent reports the tool started, so an attach that turns out to
//! be too early (and is retried) consumes none of it.

use std::time::Duration;

use kube::api::AttachedProcess;
use netdiag_wire::exit;
use netdiag_wire::frame::{Decoder, ExitReport, Frame, Kind, StderrChunk};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::PluginError;

/// After the exit frame, stdout may still be in flight (the kubelet
/// forwards stdout and stderr independently): wait this long for its end.
const STDOUT_DRAIN: Duration = Duration::from_secs(3);
/// After a stop frame, how long the agent has to report its exit.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// After the connection ended, output already received may still be on
/// its way to our stdout: finish once it has been quiet this long...
const CLOSED_QUIET: Duration = Duration::from_millis(30);
/// ...or at the latest this long after the end.
const CLOSED_DRAIN: Duration = Duration::from_millis(500);

/// How a stream ended.
pub enum End {
    /// The tool finished (or was stopped) with this exit code.
    Exit(u8),
    /// The stream closed before the agent said the tool started: the
    /// kubelet let us in before the container could take an attach. The
    /// caller may attach again; none of the user's input was consumed.
    NotStarted,
}

/// The user's stdin, read once for the whole session: `Some(bytes)`, then
/// `None` at its end.
pub type Input = mpsc::Receiver<Option<Vec<u8>>>;

/// Reads our stdin in the background (only for tools that take input).
pub fn read_stdin() -> Input {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None).await;
                    return;
                }
                Ok(n) => {
                    if tx.send(Some(buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

enum Event {
    Started,
    Exit(ExitReport),
    /// The tool wrote to stderr.
    Stderr(StderrChunk),
    /// The agent's stderr stream ended.
    StderrClosed,
    ProtocolError(String),
    /// Our stdout reader went away (`| head`).
    OutputClosed,
    /// This many bytes of the tool's output were copied to our stdout.
    Output(u64),
    /// The attach connection ended (cleanly or not).
    ConnectionEnded,
    StdoutDone,
    Interrupt,
}

/// `start_by`: when the agent has not said the tool started by then, the
/// stream is given up as [`End::NotStarted`] (the start-up timeout).
pub async fn run(
    mut process: AttachedProcess,
    mut input: Option<&mut Input>,
    start_by: tokio::time::Instant,
) -> Result<End, PluginError> {
    let mut agent_stdin = process.stdin().expect("attached with stdin");
    let mut agent_stdout = process.stdout().expect("attached with stdout");
    let mut agent_stderr = process.stderr().expect("attached with stderr");

    // One writer owns the agent's stdin; everyone else sends frames.
    let (frames, mut to_agent) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(bytes) = to_agent.recv().await {
            if agent_stdin.write_all(&bytes).await.is_err() || agent_stdin.flush().await.is_err() {
                return;
            }
        }
        // Keep stdin open until the session ends (see the module doc).
        std::future::pending::<()>().await;
    });
    let _ = frames.send(Frame::new(Kind::Start, vec![]).encode());

    let (events, mut inbox) = mpsc::unbounded_channel::<Event>();

    // Our stdout is written by a thread with std's blocking writes: when a
    // write returns, the bytes are in the pipe or file, so nothing is lost
    // when we exit right after the last one (tokio's stdout hands writes
    // to a background thread and can drop the tail at exit).
    let (chunks, mut to_stdout) = mpsc::channel::<Option<Vec<u8>>>(8);
    let ev = events.clone();
    std::thread::spawn(move || {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let mut first = true;
        while let Some(chunk) = to_stdout.blocking_recv() {
            let Some(bytes) = chunk else {
                let _ = ev.send(Event::StdoutDone);
                return;
            };
            if first {
                crate::progress::trace("first output byte");
                first = false;
            }
            // Flush per chunk: `tcpdump -w - | wireshark -k -i -` is live.
            if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
                let _ = ev.send(Event::OutputClosed);
                return;
            }
            let _ = ev.send(Event::Output(bytes.len() as u64));
        }
    });
    let stdout_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match agent_stdout.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if chunks.send(Some(buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = chunks.send(None).await;
    });

    let ev = events.clone();
    let stderr_task = tokio::spawn(async move {
        let mut decoder = Decoder::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match agent_stderr.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = ev.send(Event::StderrClosed);
                    return;
                }
                Ok(n) => decoder.push(&buf[..n]),
            }
            loop {
                let event = match decoder.next_frame() {
                    Ok(None) => break,
                    Ok(Some(f)) => match f.kind {
                        Kind::Stderr => match StderrChunk::decode(&f.payload) {
                            Some(chunk) => Event::Stderr(chunk),
                            None => Event::ProtocolError(
                                "a stderr frame without its stdout count".to_owned(),
                            ),
                        },
                        Kind::Started => Event::Started,
                        Kind::Exit => {
                            Event::Exit(ExitReport::decode(&f.payload).unwrap_or(ExitReport {
                                code: exit::FAILURE,
                                stdout_bytes: None,
                            }))
                        }
                        Kind::Start | Kind::Stdin | Kind::StdinEof | Kind::Stop => continue,
                    },
                    Err(e) => {
                        let _ = ev.send(Event::ProtocolError(e.0));
                        return;
                    }
                };
                if ev.send(event).is_err() {
                    return;
                }
            }
        }
    });

    let ev = events.clone();
    let signals = tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
                if ev.send(Event::Interrupt).is_err() {
                    return;
                }
            }
        }
        #[cfg(not(unix))]
        loop {
            if tokio::signal::ctrl_c().await.is_err() || ev.send(Event::Interrupt).is_err() {
                return;
            }
        }
    });
    // kube-rs ends its message loop without closing the output pipes when
    // the connection breaks (no close frame): watch the loop itself.
    let ev = events.clone();
    let connection = tokio::spawn(async move {
        let _ = process.join().await;
        let _ = ev.send(Event::ConnectionEnded);
    });
    drop(events);

    let mut started = false;
    let mut forwarding = false;
    let mut exit_code: Option<u8> = None;
    let mut stdout_done = false;
    let mut stderr_closed = false;
    let mut stopping_since: Option<tokio::time::Instant> = None;
    let mut closed_at: Option<tokio::time::Instant> = None;
    let mut last_output = tokio::time::Instant::now();
    let mut written = 0u64;
    // The tool's stderr, each piece held until the stdout the tool wrote
    // before it has reached ours (see netdiag_wire::frame).
    let mut held_stderr = HeldStderr::default();
    let mut expected: Option<u64> = None;
    let mut quiet_success = false;
    let outcome: Result<u8, PluginError> = loop {
        // Done: the tool exited and all it wrote has reached our stdout.
        if let Some(code) = exit_code
            && (stdout_done || expected.is_some_and(|n| written >= n))
        {
            break Ok(code);
        }
        if stdout_done && stderr_closed {
            break Err(lost_connection());
        }
        if closed_at.is_some() && !started {
            break Err(lost_connection());
        }
        let deadline = match (exit_code, stopping_since, closed_at) {
            (None, None, None) if !started => Some(start_by),
            (_, _, Some(closed)) => {
                Some((last_output.max(closed) + CLOSED_QUIET).min(closed + CLOSED_DRAIN))
            }
            (Some(_), _, None) => Some(tokio::time::Instant::now() + STDOUT_DRAIN),
            (None, Some(since), None) => Some(since + STOP_WAIT),
            (None, None, None) => None,
        };
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let next_input = async {
            match input.as_deref_mut() {
                Some(rx) if forwarding => rx.recv().await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            event = inbox.recv() => match event {
                Some(Event::Started) => {
                    crate::progress::trace("tool started");
                    started = true;
                    forwarding = input.is_some();
                }
                Some(Event::Exit(report)) => {
                    crate::progress::trace("exit frame");
                    exit_code = Some(report.code);
                    expected = report.stdout_bytes;
                }
                Some(Event::Output(n)) => {
                    written += n;
                    last_output = tokio::time::Instant::now();
                    held_stderr.release(written);
                }
                Some(Event::Stderr(chunk)) => {
                    held_stderr.push(chunk);
                    held_stderr.release(written);
                }
                Some(Event::StdoutDone) => {
                    crate::progress::trace("stdout done");
                    stdout_done = true;
                    held_stderr.release(u64::MAX);
                }
                Some(Event::StderrClosed) => stderr_closed = true,
                Some(Event::ConnectionEnded) => {
                    crate::progress::trace("connection ended");
                    closed_at = Some(tokio::time::Instant::now())
                }
                Some(Event::OutputClosed) => {
                    // `| head` read enough: stop the tool, then leave quietly.
                    quiet_success = true;
                    held_stderr.release(u64::MAX);
                    stop(&frames, &mut stopping_since);
                }
                Some(Event::Interrupt) => {
                    if stopping_since.is_some() {
                        break Ok(exit::INTERRUPTED);
                    }
                    stop(&frames, &mut stopping_since);
                }
                Some(Event::ProtocolError(e)) => {
                    break Err(PluginError::new(format!(
                        "the agent in the pod does not speak this plugin's protocol ({e}); use the image of the same release (--image)"
                    )));
                }
                None => break exit_code.ok_or_else(lost_connection),
            },
            chunk = next_input => match chunk {
                Some(Some(bytes)) => {
                    let _ = frames.send(Frame::encode_data(Kind::Stdin, &bytes));
                }
                // End of our input, or the reader is gone: half-close.
                Some(None) | None => {
                    let _ = frames.send(Frame::new(Kind::StdinEof, vec![]).encode());
                    forwarding = false;
                }
            },
            _ = sleep => match (exit_code, stopping_since) {
                (Some(code), _) => break Ok(code),
                (None, _) if closed_at.is_some() => break Err(lost_connection()),
                (None, Some(_)) => break Ok(exit::INTERRUPTED),
                // Not started by the start-up deadline.
                (None, None) => break Err(lost_connection()),
            },
        }
    };
    for task in [&stdout_task, &stderr_task, &writer, &signals, &connection] {
        task.abort();
    }
    // Whatever stdout never came (a lost connection), the messages still go.
    held_stderr.release(u64::MAX);
    if quiet_success {
        return Ok(End::Exit(exit::SUCCESS));
    }
    match outcome {
        Err(_) if !started && stopping_since.is_none() => Ok(End::NotStarted),
        Ok(code) => Ok(End::Exit(code)),
        Err(e) => Err(e),
    }
}

/// The tool's stderr waiting for the stdout written before it.
#[derive(Default)]
struct HeldStderr(std::collections::VecDeque<StderrChunk>);

impl HeldStderr {
    fn push(&mut self, chunk: StderrChunk) {
        self.0.push_back(chunk);
    }

    /// Writes every piece whose preceding stdout (`after_stdout` bytes) is
    /// within the `written` bytes already on our stdout, in order.
    fn release(&mut self, written: u64) {
        use std::io::Write;
        // Called for every stdout chunk: most have nothing to release.
        if self.0.front().is_none_or(|c| c.after_stdout > written) {
            return;
        }
        let mut err = std::io::stderr().lock();
        while self.0.front().is_some_and(|c| c.after_stdout <= written) {
            let chunk = self.0.pop_front().expect("checked above");
            let _ = err.write_all(&chunk.data).and_then(|()| err.flush());
        }
    }
}

fn stop(frames: &mpsc::UnboundedSender<Vec<u8>>, since: &mut Option<tokio::time::Instant>) {
    if since.is_none() {
        let _ = frames.send(Frame::new(Kind::Stop, vec![]).encode());
        *since = Some(tokio::time::Instant::now());
    }
}

fn lost_connection() -> PluginError {
    PluginError::new(
        "the connection to the agent was lost before the tool finished; the agent stops itself when its input closes",
    )
}
