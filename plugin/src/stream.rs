//! Streaming a started agent: its stdout to ours byte for byte, its framed
//! stderr decoded to ours, our stdin framed to it (for tools that read
//! stdin), Ctrl-C and a closed output pipe turned into a stop frame, and
//! its in-band exit code as ours.
//!
//! The attach stdin is never closed while the tool runs: on
//! `v4.channel.k8s.io` that would close the whole stream and lose the tail
//! of stdout. End of our input is a frame instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

enum Event {
    Exit(u8),
    /// The agent's stderr stream ended (the session is over).
    StderrClosed,
    ProtocolError(String),
    /// Our stdout reader went away (`| head`).
    OutputClosed,
    StdoutDone,
    Interrupt,
}

/// How a stream ended.
pub enum End {
    /// The tool finished (or was stopped) with this exit code.
    Exit(u8),
    /// The stream closed before anything at all came through: the
    /// kubelet let us in before the container could take an attach. The
    /// caller may attach again.
    Empty,
}

pub async fn run(mut process: AttachedProcess, forward_stdin: bool) -> Result<End, PluginError> {
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
    let stdout_bytes = Arc::new(AtomicU64::new(0));
    let stderr_bytes = Arc::new(AtomicU64::new(0));

    let ev = events.clone();
    let counter = stdout_bytes.clone();
    let stdout_task = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match agent_stdout.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    counter.fetch_add(n as u64, Ordering::Relaxed);
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
    let counter = stderr_bytes.clone();
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
                Ok(n) => {
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    decoder.push(&buf[..n]);
                }
            }
            loop {
                match decoder.next_frame() {
                    Ok(Some(f)) if f.kind == Kind::Stderr => {
                        let _ = err.write_all(&f.payload).await;
                        let _ = err.flush().await;
                    }
                    Ok(Some(f)) if f.kind == Kind::Exit => {
                        let _ = ev.send(Event::Exit(
                            f.payload.first().copied().unwrap_or(exit::FAILURE),
                        ));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        let _ = ev.send(Event::ProtocolError(e.0));
                        return;
                    }
                }
            }
        }
    });

    let stdin_task = forward_stdin.then(|| {
        let frames = frames.clone();
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = frames.send(Frame::new(Kind::StdinEof, vec![]).encode());
                        return;
                    }
                    Ok(n) => {
                        if frames
                            .send(Frame::encode_data(Kind::Stdin, &buf[..n]))
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        })
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
    drop(events);

    let mut exit_code: Option<u8> = None;
    let mut stdout_done = false;
    let mut stderr_closed = false;
    let mut stopping_since: Option<tokio::time::Instant> = None;
    let mut quiet_success = false;
    let outcome = loop {
        let deadline = match (exit_code, stopping_since) {
            (Some(_), _) => Some(tokio::time::Instant::now() + STDOUT_DRAIN),
            (None, Some(since)) => Some(since + STOP_WAIT),
            (None, None) => None,
        };
        if exit_code.is_some() && stdout_done {
            break Ok(exit_code.unwrap_or(exit::FAILURE));
        }
        let event = match deadline {
            Some(d) => tokio::time::timeout_at(d, inbox.recv())
                .await
                .unwrap_or_default(),
            None => inbox.recv().await,
        };
        match event {
            Some(Event::Exit(code)) => exit_code = Some(code),
            Some(Event::StdoutDone) => {
                stdout_done = true;
                if exit_code.is_none() && stderr_closed {
                    break Err(lost_connection());
                }
            }
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
            Some(Event::StderrClosed) => {
                stderr_closed = true;
                if exit_code.is_none() && stdout_done {
                    break Err(lost_connection());
                }
            }
            Some(Event::ProtocolError(e)) => {
                break Err(PluginError::new(format!(
                    "the agent in the pod does not speak this plugin's protocol ({e}); use the image of the same release (--image)"
                )));
            }
            // Deadline passed, or every sender is gone.
            None => match (exit_code, stopping_since) {
                (Some(code), _) => break Ok(code),
                (None, Some(_)) => break Ok(exit::INTERRUPTED),
                (None, None) => break Err(lost_connection()),
            },
        }
    };
    for task in [&stdout_task, &stderr_task, &writer, &signals] {
        task.abort();
    }
    if let Some(t) = stdin_task {
        t.abort();
    }
    drop(process);
    if quiet_success {
        return Ok(End::Exit(exit::SUCCESS));
    }
    let received_anything =
        stdout_bytes.load(Ordering::Relaxed) > 0 || stderr_bytes.load(Ordering::Relaxed) > 0;
    match outcome {
        Err(_) if !received_anything && stopping_since.is_none() => Ok(End::Empty),
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
