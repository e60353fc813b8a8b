//! `netdiag-agent ss` against iproute2 `ss`, the oracle, inside namespaces
//! holding every socket state an SRE meets: listeners (wildcard, loopback,
//! specific; IPv4 and IPv6), ESTAB with unread data, TIME-WAIT, SYN-SENT to
//! a peer behind an iptables DROP, CLOSE-WAIT, UDP, and an accept queue
//! overflowing under a low somaxconn.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use netdiag_tests::agent::agent_bin;
use netdiag_tests::netns::{Netns, veth_pair};
use netdiag_tests::process::wait_until;
use netdiag_tests::require_root;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, connect, listen, socket,
};

/// Two namespaces on one veth, "server" .1 and "client" .2, and every
/// socket of the scenario, held open until drop.
struct Scene {
    server: Netns,
    client: Netns,
    _held: Vec<Box<dyn Send>>,
}

fn nonblocking_connect(ns: &Netns, to: &str) -> OwnedFd {
    let to: SocketAddr = to.parse().unwrap();
    ns.enter(|| {
        let family = if to.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let fd = socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        let addr = SockaddrStorage::from(to);
        // EINPROGRESS is the point: the SYN is out, the answer may never come.
        let _ = connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr);
        fd
    })
}

fn scene() -> Scene {
    let server = Netns::new("ss-srv");
    let client = Netns::new("ss-cli");
    veth_pair(
        &server,
        &["198.51.100.1/24", "fd42::1/64"],
        &client,
        &["198.51.100.2/24", "fd42::2/64"],
    );
    let mut held: Vec<Box<dyn Send>> = Vec::new();

    // Listeners: wildcard v4, loopback v4, specific v4, wildcard v6 (dual
    // stack), specific v6, and a v6-only wildcard.
    for addr in [
        "0.0.0.0:8080",
        "127.0.0.1:8081",
        "198.51.100.1:8082",
        "[::]:8083",
        "[fd42::1]:8084",
    ] {
        let l = server.enter(|| TcpListener::bind(addr).unwrap());
        held.push(Box::new(l));
    }
    // ESTAB with 5 unread bytes on the server side (Recv-Q 5).
    let l = server.enter(|| TcpListener::bind("198.51.100.1:9000").unwrap());
    let mut c = client.enter(|| TcpStream::connect("198.51.100.1:9000").unwrap());
    let (a, _) = l.accept().unwrap();
    c.write_all(b"hello").unwrap();
    held.extend([Box::new(l) as Box<dyn Send>, Box::new(c), Box::new(a)]);

    // TIME-WAIT on the client: it closes first.
    let l = server.enter(|| TcpListener::bind("198.51.100.1:9001").unwrap());
    let c = client.enter(|| TcpStream::connect("198.51.100.1:9001").unwrap());
    let (mut a, _) = l.accept().unwrap();
    drop(c);
    let mut buf = [0u8; 1];
    assert_eq!(a.read(&mut buf).unwrap(), 0);
    drop(a);
    held.push(Box::new(l));

    // CLOSE-WAIT on the server: the client closed, the app did not.
    let l = server.enter(|| TcpListener::bind("[fd42::1]:9002").unwrap());
    let c = client.enter(|| TcpStream::connect("[fd42::1]:9002").unwrap());
    let (a, _) = l.accept().unwrap();
    drop(c);
    held.extend([Box::new(l) as Box<dyn Send>, Box::new(a)]);

    // SYN-SENT: the server drops SYNs to 9003.
    server.run(
        "iptables",
        &["-A", "INPUT", "-p", "tcp", "--dport", "9003", "-j", "DROP"],
    );
    held.push(Box::new(nonblocking_connect(&client, "198.51.100.1:9003")));

    // Accept queue overflow: somaxconn 2, a listener that never accepts,
    // five clients. The queue holds backlog + 1.
    server.sysctl("net.core.somaxconn", "2");
    let fd = server.enter(|| {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        let addr = SockaddrStorage::from("198.51.100.1:9004".parse::<SocketAddr>().unwrap());
        nix::sys::socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr).unwrap();
        listen(&fd, Backlog::new(128).unwrap()).unwrap();
        fd
    });
    held.push(Box::new(fd));
    for _ in 0..5 {
        held.push(Box::new(nonblocking_connect(&client, "198.51.100.1:9004")));
    }

    // UDP: unconnected and connected.
    let u = server.enter(|| UdpSocket::bind("0.0.0.0:5353").unwrap());
    let uc = client.enter(|| {
        let s = UdpSocket::bind("[fd42::2]:0").unwrap();
        s.connect("[fd42::1]:5353").unwrap();
        s
    });
    held.extend([Box::new(u) as Box<dyn Send>, Box::new(uc)]);

    // Let the handshakes and FINs settle: queues are stable from here.
    wait_until("the accept queue to fill", Duration::from_secs(5), || {
        let out = stdout(&server.run("ss", &["-Htln", "sport", "=", ":9004"]));
        out.split_whitespace().nth(1) == Some("3")
    });
    Scene {
        server,
        client,
        _held: held,
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ours(ns: &Netns, args: &[&str]) -> Output {
    let bin = agent_bin();
    let mut cmd = ns.command(bin.to_str().unwrap());
    cmd.arg("ss").args(args);
    let out = cmd.output().expect("running the agent");
    assert!(
        out.status.success(),
        "netdiag-agent ss {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Both tools' text for the same arguments, in the same namespace.
fn both(ns: &Netns, args: &[&str]) -> (String, String) {
    let theirs = stdout(&ns.run("ss", args));
    (stdout(&ours(ns, args)), theirs)
}

/// Rows as (netid/state, recv-q, send-q, local, peer) tuples: the issue's
/// comparison key, independent of column widths.
fn rows(text: &str) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    rows.sort();
    rows
}

/// `timer:(on,068ms,0)` → `timer:(on,_,0)`, keeping the line's length so
/// column alignment is still compared.
fn without_timer_values(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("timer:(") {
        let (head, tail) = rest.split_at(i + "timer:(".len());
        out.push_str(head);
        let end = tail.find(')').unwrap_or(tail.len());
        let fields: Vec<&str> = tail[..end].split(',').collect();
        if fields.len() == 3 {
            out.push_str(&format!("{},_,{}", fields[0], fields[2]));
        } else {
            out.push_str(&tail[..end]);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn same_sockets_and_same_text_as_iproute2() {
    if !require_root("same_sockets_and_same_text_as_iproute2") {
        return;
    }
    let s = scene();
    for ns in [&s.server, &s.client] {
        for args in [
            &["-tuan"][..],
            &["-tln"],
            &["-uln"],
            &["-tn"],
            &["-4tan"],
            &["-6tan"],
            &["-tan", "state", "time-wait"],
            &["-tan", "state", "syn-sent"],
            &["-tan", "state", "close-wait"],
            &["-tan", "state", "established"],
            &["-tan", "exclude", "listening"],
            &["-tan", "( dport = :9000 or sport = :9000 )"],
            &["-tan", "dst", "198.51.100.0/24"],
            &["-tan", "sport", "=", ":8080"],
            &["-tan", "sport", ">", ":9000"],
            &["-tan", "dst", "[fd42::1]"],
            &["-tlnp"],
            &["-tano"],
            &["-xan"],
        ] {
            let (ours, theirs) = both(ns, args);
            // Timer expiries tick between the two runs; compare their kind
            // and retransmit count only.
            let (ours, theirs) = (without_timer_values(&ours), without_timer_values(&theirs));
            assert_eq!(rows(&ours), rows(&theirs), "sockets differ for ss {args:?}");
            // Byte-for-byte, column padding included, unless ticking timers
            // changed a cell's width between the runs.
            if !args.contains(&"-tano") {
                assert_eq!(ours, theirs, "text differs for ss {args:?}");
            }
        }
    }
    // The scenario really has every state it claims.
    let all = stdout(&ours(&s.server, &["-tuan"])) + &stdout(&ours(&s.client, &["-tuan"]));
    for state in [
        "LISTEN",
        "ESTAB",
        "TIME-WAIT",
        "SYN-SENT",
        "CLOSE-WAIT",
        "FIN-WAIT-2",
        "UNCONN",
    ] {
        assert!(
            all.contains(state),
            "no {state} socket in the scene:\n{all}"
        );
    }
}

#[test]
fn overflowing_accept_queue_shows_recv_q_above_send_q() {
    if !require_root("overflowing_accept_queue_shows_recv_q_above_send_q") {
        return;
    }
    let s = scene();
    let out = stdout(&ours(&s.server, &["-Htln", "sport", "=", ":9004"]));
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&f[..3], ["LISTEN", "3", "2"], "accept queue row: {out}");
}

#[test]
fn summary_matches_iproute2() {
    if !require_root("summary_matches_iproute2") {
        return;
    }
    let s = scene();
    for ns in [&s.server, &s.client] {
        // The summary is live counts: `Total:` is this namespace's socket
        // count, and `TCP:`'s first number is allocated TCP sockets across
        // the whole machine, which other tests change meanwhile. So ours is
        // checked against iproute2 run just before and just after it: the
        // same text, each count between theirs. A few tries find a moment
        // when nothing moves backwards and forwards in between.
        let mut tries = Vec::new();
        for _ in 0..5 {
            let before = stdout(&ns.run("ss", &["-s"]));
            let ours = stdout(&ours(ns, &["-s"]));
            let after = stdout(&ns.run("ss", &["-s"]));
            match between(&ours, &before, &after) {
                Ok(()) => break,
                Err(e) => tries.push(e),
            }
            assert!(
                tries.len() < 5,
                "summary differs from iproute2's: {tries:#?}"
            );
        }
    }
}

/// Splits text into its words and numbers: "TCP:   24 (estab 5" →
/// (["TCP:   ", " (estab ", ...], [24, 5, ...]).
fn words_and_numbers(text: &str) -> (Vec<String>, Vec<u64>) {
    let (mut words, mut numbers) = (vec![String::new()], Vec::new());
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if !digits.is_empty() {
            numbers.push(digits.parse().unwrap());
            digits.clear();
            words.push(String::new());
        }
        words.last_mut().unwrap().push(c);
    }
    if !digits.is_empty() {
        numbers.push(digits.parse().unwrap());
    }
    (words, numbers)
}

/// Ok when `ours` has the words of `before` and `after` and each of its
/// numbers lies between theirs (equal when theirs are).
fn between(ours: &str, before: &str, after: &str) -> Result<(), String> {
    let (ours_words, ours_numbers) = words_and_numbers(ours);
    let (before_words, before_numbers) = words_and_numbers(before);
    let (after_words, after_numbers) = words_and_numbers(after);
    if before_words != after_words || ours_words != before_words {
        return Err(format!("ours:\n{ours}\niproute2:\n{before}"));
    }
    for (i, &n) in ours_numbers.iter().enumerate() {
        let (b, a) = (before_numbers[i], after_numbers[i]);
        if !(b.min(a)..=b.max(a)).contains(&n) {
            return Err(format!(
                "number {i} is {n}, iproute2's {b} before and {a} after:\n{ours}"
            ));
        }
    }
    Ok(())
}

#[test]
fn memory_and_tcp_info_are_present_and_plausible() {
    if !require_root("memory_and_tcp_info_are_present_and_plausible") {
        return;
    }
    let s = scene();
    let out = stdout(&ours(&s.client, &["-tmi", "state", "established"]));
    let details: Vec<&str> = out.lines().filter(|l| l.starts_with('\t')).collect();
    assert!(!details.is_empty(), "no detail lines:\n{out}");
    for line in details {
        assert!(line.contains("skmem:(r"), "{line}");
        let rtt = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("rtt:"))
            .unwrap_or_else(|| panic!("no rtt in {line}"));
        let srtt: f64 = rtt.split('/').next().unwrap().parse().unwrap();
        assert!(srtt > 0.0, "rtt must be positive: {line}");
        assert!(line.contains("cwnd:"), "{line}");
    }
    // The same fields and field names as iproute2 (values that tick, like
    // lastsnd, are left out of the comparison).
    let keys = |text: &str| -> Vec<String> {
        text.split_whitespace()
            .filter_map(|w| w.split_once(':').map(|(k, _)| k.to_owned()))
            .collect()
    };
    let (ours, theirs) = both(&s.client, &["-tmin", "state", "established"]);
    assert_eq!(keys(&ours), keys(&theirs));
}

#[test]
fn json_has_every_socket_and_field() {
    if !require_root("json_has_every_socket_and_field") {
        return;
    }
    let s = scene();
    let text = stdout(&ours(&s.server, &["-tuan"]));
    let json: serde_json::Value =
        serde_json::from_slice(&ours(&s.server, &["-tuan", "-o", "json"]).stdout).unwrap();
    let sockets = json["sockets"].as_array().unwrap();
    assert_eq!(sockets.len(), text.lines().count() - 1);
    let listen = sockets
        .iter()
        .find(|s| s["state"] == "LISTEN" && s["local"]["port"] == 9004)
        .expect("the overflowing listener");
    assert_eq!(listen["recv_q"], 3);
    assert_eq!(listen["send_q"], 2);
    assert_eq!(listen["netid"], "tcp");
    assert_eq!(listen["local"]["address"], "198.51.100.1");
    let with_info: serde_json::Value = serde_json::from_slice(
        &ours(&s.client, &["-ti", "-o", "json", "state", "established"]).stdout,
    )
    .unwrap();
    let established = with_info["sockets"].as_array().unwrap();
    assert!(!established.is_empty());
    for s in established {
        assert!(s["tcp_info"]["rtt"].as_u64().unwrap() > 0, "{s}");
    }
}

#[test]
fn bad_input_gives_one_line_and_exit_1() {
    let bin = agent_bin();
    for (args, needle) in [
        (&["--bogus"][..], "--bogus"),
        (&["-tan", "dport", "=", ":abc"], "\"abc\""),
        (&["state", "sleepy"], "\"sleepy\""),
        (&["-tan", "( sport = :1"], "missing \")\""),
        (&["-A", "nope"], "\"nope\""),
    ] {
        let out = Command::new(&bin).arg("ss").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "ss {args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line for ss {args:?}: {err}");
        assert!(
            err.starts_with("ss: ") && err.contains(needle),
            "ss {args:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn closed_pipe_is_a_quiet_exit() {
    if !require_root("closed_pipe_is_a_quiet_exit") {
        return;
    }
    let ns = Netns::new("ss-pipe");
    // Enough rows that the output outlives `head -1`'s pipe buffer.
    let listeners: Vec<TcpListener> = ns.enter(|| {
        (0..3000)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect()
    });
    let bin = agent_bin();
    let mut agent = ns
        .command(bin.to_str().unwrap())
        .args(["ss", "-tln"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    agent
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(agent.stdout.take());
    let out = agent.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(listeners);
}

#[test]
fn runs_as_ss_through_a_link_named_ss() {
    if !require_root("runs_as_ss_through_a_link_named_ss") {
        return;
    }
    let dir = netdiag_tests::TempDir::new("ss-link");
    let link = dir.path().join("ss");
    std::os::unix::fs::symlink(agent_bin(), &link).unwrap();
    let ns = Netns::new("ss-link");
    let _listener = ns.enter(|| TcpListener::bind("127.0.0.1:7070").unwrap());
    let via_link = stdout(&ns.run(link.to_str().unwrap(), &["-tln"]));
    let theirs = stdout(&ns.run("ss", &["-tln"]));
    assert_eq!(via_link, theirs);
    assert!(via_link.contains("127.0.0.1:7070"));
    let version = Command::new(&link).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("ss "));
}
