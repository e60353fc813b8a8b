//! The agent under the attach protocol (`NETDIAG_PROTOCOL`), driven the
//! way `kubectl-netdiag` drives it, without a cluster: frames on stdin,
//! raw stdout, framed stderr ending with the exit code.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netdiag_tests::agent::agent_bin;
use netdiag_tests::netns::Netns;
use netdiag_tests::require_root;
use netdiag_wire::frame::{self, Decoder, ExitReport, Frame, Kind, StderrChunk};

fn spawn_attached(ns: &Netns, args: &[&str], start_timeout: &str) -> Child {
    let bin = agent_bin();
    ns.command(bin.to_str().unwrap())
        .args(args)
        .env(frame::PROTOCOL_ENV, frame::PROTOCOL_VERSION)
        .env(frame::START_TIMEOUT_ENV, start_timeout)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the agent")
}

/// Splits the framed stderr into (text, exit code), checking that the
/// agent announced the tool's start before anything else.
fn decode_stderr(bytes: &[u8]) -> (String, Option<u8>) {
    let (chunks, code) = stderr_chunks(bytes);
    let text: Vec<u8> = chunks.into_iter().flat_map(|c| c.data).collect();
    (String::from_utf8_lossy(&text).into_owned(), code)
}

/// The framed stderr as its pieces (each with the stdout count before it)
/// and the exit code.
fn stderr_chunks(bytes: &[u8]) -> (Vec<StderrChunk>, Option<u8>) {
    let mut d = Decoder::new();
    d.push(bytes);
    let (mut text, mut code) = (Vec::<StderrChunk>::new(), None);
    let first = d
        .next_frame()
        .expect("well-formed frames")
        .expect("at least one frame");
    assert_eq!(
        first.kind,
        Kind::Started,
        "the first frame says the tool started"
    );
    while let Some(f) = d.next_frame().expect("well-formed frames") {
        match f.kind {
            Kind::Stderr => text.push(StderrChunk::decode(&f.payload).expect("a stderr chunk")),
            Kind::Exit => {
                let report = ExitReport::decode(&f.payload).expect("an exit report");
                assert!(report.stdout_bytes.is_some(), "the agent counts its stdout");
                code = Some(report.code);
            }
            other => panic!("unexpected frame {other:?} from the agent"),
        }
    }
    assert_eq!(d.pending(), 0, "trailing bytes after the frames");
    (text, code)
}

#[test]
fn nothing_runs_before_start_and_the_exit_code_comes_in_band() {
    if !require_root("nothing_runs_before_start_and_the_exit_code_comes_in_band") {
        return;
    }
    let ns = Netns::new("att");
    let _l = ns.enter(|| TcpListener::bind("127.0.0.1:6060").unwrap());
    let mut agent = spawn_attached(&ns, &["ss", "-tln"], "30");
    // Not started: no output, still waiting.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent must wait for the start frame"
    );
    let mut stdin = agent.stdin.take().unwrap();
    stdin
        .write_all(&Frame::new(Kind::Start, vec![]).encode())
        .unwrap();
    let out = agent.wait_with_output().unwrap();
    drop(stdin);
    assert!(String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:6060"));
    let (text, code) = decode_stderr(&out.stderr);
    assert_eq!((text.as_str(), code), ("", Some(0)));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn tool_errors_arrive_framed_with_their_exit_code() {
    if !require_root("tool_errors_arrive_framed_with_their_exit_code") {
        return;
    }
    let ns = Netns::new("att-err");
    let mut agent = spawn_attached(&ns, &["ss", "state", "sleepy"], "30");
    // Our end stays open, as the plugin's does while the tool runs.
    let mut stdin = agent.stdin.take().unwrap();
    stdin
        .write_all(&Frame::new(Kind::Start, vec![]).encode())
        .unwrap();
    let out = agent.wait_with_output().unwrap();
    drop(stdin);
    let (text, code) = decode_stderr(&out.stderr);
    assert!(
        text.starts_with("ss: wrong state name \"sleepy\""),
        "{text}"
    );
    assert_eq!(code, Some(1));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn no_start_signal_means_the_agent_exits_by_itself() {
    if !require_root("no_start_signal_means_the_agent_exits_by_itself") {
        return;
    }
    let ns = Netns::new("att-late");
    let began = Instant::now();
    let mut agent = spawn_attached(&ns, &["ss", "-tln"], "1");
    let _keep_stdin_open = agent.stdin.take();
    let mut err = String::new();
    agent
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = agent.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        err.contains("no start signal from kubectl-netdiag within 1s"),
        "{err}"
    );
    assert!(began.elapsed() < Duration::from_secs(5));
}

#[test]
fn closed_input_before_start_ends_the_agent() {
    if !require_root("closed_input_before_start_ends_the_agent") {
        return;
    }
    let ns = Netns::new("att-gone");
    let mut agent = spawn_attached(&ns, &["ss", "-tln"], "60");
    drop(agent.stdin.take());
    let began = Instant::now();
    let status = agent.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(began.elapsed() < Duration::from_secs(2));
}

#[test]
fn foreign_bytes_on_stdin_are_refused() {
    if !require_root("foreign_bytes_on_stdin_are_refused") {
        return;
    }
    let ns = Netns::new("att-junk");
    let mut agent = spawn_attached(&ns, &["ss", "-tln"], "60");
    agent
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .unwrap();
    let out = agent.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected input on stdin"));
    assert!(out.stdout.is_empty());
}

/// tcpdump writes its header to stderr, packets to stdout, then its counts
/// to stderr: each stderr piece carries how much stdout came before it, so
/// the plugin can put them back in that order.
#[test]
fn stderr_pieces_say_how_much_stdout_preceded_them() {
    if !require_root("stderr_pieces_say_how_much_stdout_preceded_them") {
        return;
    }
    let ns = Netns::new("att-order");
    let mut agent = spawn_attached(&ns, &["tcpdump", "-i", "lo", "-c", "4", "icmp"], "30");
    let mut stdin = agent.stdin.take().unwrap();
    stdin
        .write_all(&Frame::new(Kind::Start, vec![]).encode())
        .unwrap();
    // Listening once the header is out: then 2 pings are 4 packets on lo.
    std::thread::sleep(Duration::from_millis(500));
    let ping = ns.run("ping", &["-c", "2", "-i", "0.2", "-W", "1", "127.0.0.1"]);
    assert!(ping.status.success());
    let out = agent.wait_with_output().unwrap();
    drop(stdin);
    let (chunks, code) = stderr_chunks(&out.stderr);
    assert_eq!(code, Some(0));
    let packets = out.stdout.len() as u64;
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
    let header = chunks
        .iter()
        .find(|c| String::from_utf8_lossy(&c.data).contains("listening on"));
    assert_eq!(header.map(|c| c.after_stdout), Some(0), "{chunks:?}");
    let counts = chunks
        .iter()
        .find(|c| String::from_utf8_lossy(&c.data).contains("packets captured"));
    assert_eq!(counts.map(|c| c.after_stdout), Some(packets), "{chunks:?}");
}

#[test]
fn mismatched_protocol_version_is_named() {
    let out = Command::new(agent_bin())
        .args(["ss", "-tln"])
        .env(frame::PROTOCOL_ENV, "99")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("protocol \"99\"") && err.lines().count() == 1,
        "{err}"
    );
}
