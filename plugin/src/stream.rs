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
use netdiag_wire::frame::{Decoder, Frame, Kind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::PluginError;

/// After the exit frame, stdout may still be in flight (the kubelet
/// forwards stdout and stderr independently): wait this long for its end.
const STDOUT_DRAIN: Duration = Duration::from_secs(3);
/// After a stop frame, how long the agent has to report its exit.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// After the connection ended, how long to let buffered output drain.
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
    Exit(u8),
    /// The agent's stderr stream ended.
    StderrClosed,
    ProtocolError(String),
    /// Our stdout reader went away (`| head`).
    OutputClosed,
    /// The attach connection ended (cleanly or not).
    ConnectionEnded,
    StdoutDone,
    Interrupt,
}

pub async fn run(
    mut process: AttachedProcess,
    mut input: Option<&mut Input>,
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

    let ev = events.clone();
    let stdout_task = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match agent_stdout.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    // Flush per chunk: `tcpdump -w - | wireshark -k -i -` is live.
                    if out.write_all(&buf[..n]).await.is_err() || out.flush().await.is_err() {
                        let _ = ev.send(Event::OutputClosed);
                        return;
                    }
                }
            }
        }
        let _ = ev.send(Event::StdoutDone);
    });

    let ev = events.clone();
    let stderr_task = tokio::spawn(async move {
        let mut err = tokio::io::stderr();
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
                        Kind::Stderr => {
                            let _ = err.write_all(&f.payload).await;
                            let _ = err.flush().await;
                            continue;
                        }
                        Kind::Started => Event::Started,
                        Kind::Exit => {
                            Event::Exit(f.payload.first().copied().unwrap_or(exit::FAILURE))
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
    let mut quiet_success = false;
    let outcome: Result<u8, PluginError> = loop {
        if exit_code.is_some() && stdout_done {
            break Ok(exit_code.unwrap_or(exit::FAILURE));
        }
        if stdout_done && stderr_closed {
            break Err(lost_connection());
        }
        let deadline = match (exit_code, stopping_since, closed_at) {
            (_, _, Some(closed)) => Some(closed + CLOSED_DRAIN),
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
                    started = true;
                    forwarding = input.is_some();
                }
                Some(Event::Exit(code)) => exit_code = Some(code),
                Some(Event::StdoutDone) => stdout_done = true,
                Some(Event::StderrClosed) => stderr_closed = true,
                Some(Event::ConnectionEnded) => closed_at = Some(tokio::time::Instant::now()),
                Some(Event::OutputClosed) => {
                    // `| head` read enough: stop the tool, then leave quietly.
                    quiet_success = true;
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
                (None, None) => unreachable!("no deadline without exit, stop or close"),
            },
        }
    };
    for task in [&stdout_task, &stderr_task, &writer, &signals, &connection] {
        task.abort();
    }
    if quiet_success {
        return Ok(End::Exit(exit::SUCCESS));
    }
    match outcome {
        Err(_) if !started && stopping_since.is_none() => Ok(End::NotStarted),
        Ok(code) => Ok(End::Exit(code)),
        Err(e) => Err(e),
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
