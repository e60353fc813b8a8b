//! `netdiag-agent nc` against OpenBSD netcat (Debian's `netcat-openbsd`,
//! the oracle) in a pair of namespaces: each tool on each side of the other,
//! the same commands run with both, the same bytes and messages expected.
//!
//! - A 16 MiB random payload crosses in both directions, each tool sending
//!   and receiving, listening and connecting; the bytes must be identical.
//! - `-N` half-close: a server that answers only after EOF gets its EOF
//!   (and the answer comes back) with `-N`, and not without it.
//! - UDP datagrams both ways; `-uz` finds the open UDP port.
//! - `-z` over a range with some ports open, one dropped and `-w 1`: the
//!   same lines in the same order and the same exit code as netcat.
//! - `-w`: a dropped SYN times out on time; a silent peer ends the pump.
//! - Listen mode's messages and `-k`, refused and no-route messages.
//! - Bad input is one line and exit 1; a closed stderr is no panic.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use netdiag_tests::netns::{Netns, veth_pair};
use netdiag_tests::process::{ChildGuard, DEFAULT_TIMEOUT, wait_until};
use netdiag_tests::{TempDir, agent, require_root, running_in_ci};

/// The server side of every test.
pub const SERVER: &str = "198.51.100.1";
/// The client side.
pub const CLIENT: &str = "198.51.100.2";

/// Two namespaces on one veth: `server` holds .1 / fd42::1, `client` .2 /
/// fd42::2.
pub struct Pair {
    pub server: Netns,
    pub client: Netns,
}

pub fn pair(tag: &str) -> Pair {
    let server = Netns::new(&format!("{tag}-s"));
    let client = Netns::new(&format!("{tag}-c"));
    veth_pair(
        &server,
        &[&format!("{SERVER}/24"), "fd42::1/64"],
        &client,
        &[&format!("{CLIENT}/24"), "fd42::2/64"],
    );
    Pair { server, client }
}

pub fn agent_path() -> String {
    agent::agent_bin()
        .to_str()
        .expect("agent path is UTF-8")
        .to_owned()
}

/// Whether a program the test compares against is installed; under CI
/// its absence fails the test instead of skipping it.
pub fn have(program: &str, test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    if !found {
        assert!(
            !running_in_ci(),
            "{test}: {program} (the oracle) is missing and CI=true forbids skipping"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: {program} (the oracle) is not installed"
        );
    }
    found
}

/// Which netcat runs a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nc {
    /// netdiag-agent nc
    Ours,
    /// OpenBSD netcat, /usr/bin/nc
    Theirs,
}

impl Nc {
    pub fn command(self, ns: &Netns) -> Command {
        match self {
            Nc::Ours => {
                let mut cmd = ns.command(&agent_path());
                cmd.arg("nc");
                cmd
            }
            Nc::Theirs => ns.command("nc"),
        }
    }
}

/// Where a process's stdin comes from.
pub enum Input<'a> {
    Null,
    File(&'a Path),
}

/// A process with stdin from `input` and stdout/stderr in files under
/// `dir`, killed on drop.
pub struct Running {
    pub guard: ChildGuard,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    started: Instant,
}

pub fn start(mut cmd: Command, input: Input<'_>, dir: &TempDir, name: &str) -> Running {
    let stdout = dir.path().join(format!("{name}.out"));
    let stderr = dir.path().join(format!("{name}.err"));
    let stdin = match input {
        Input::Null => Stdio::null(),
        Input::File(p) => Stdio::from(File::open(p).expect("opening the input file")),
    };
    cmd.stdin(stdin)
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    Running {
        guard: ChildGuard::adopt(name, child),
        stdout,
        stderr,
        started: Instant::now(),
    }
}

/// What a finished process left.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Running {
    /// Waits up to `timeout` for the exit; panics (killing it) past that.
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let status = self.guard.wait_timeout(timeout).unwrap_or_else(|| {
            panic!(
                "{} still running after {timeout:?}; stderr: {}",
                self.guard.what(),
                fs::read_to_string(&self.stderr).unwrap_or_default()
            )
        });
        Finished {
            status,
            stdout: fs::read(&self.stdout).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr).unwrap_or_default(),
            elapsed: self.started.elapsed(),
        }
    }
}

/// Runs `cmd` to the end (stdin from `input`), at most `timeout`.
pub fn run(cmd: Command, input: Input<'_>, timeout: Duration) -> Finished {
    let dir = TempDir::new("nc-run");
    start(cmd, input, &dir, "cmd").finish(timeout)
}

/// Waits until something listens on `port` (`proto`: "t" or "u") in `ns`.
pub fn wait_listening(ns: &Netns, proto: &str, port: u16) {
    let flags = format!("-Hln{proto}");
    let filter = format!("sport = :{port}");
    wait_until(
        &format!("a listener on port {port}"),
        Duration::from_secs(10),
        || {
            let out = ns.output("ss", &[&flags, &filter]);
            !String::from_utf8_lossy(&out.stdout).trim().is_empty()
        },
    );
}

/// Deterministic pseudo-random bytes: incompressible, and the same for
/// every tool in one test.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    netdiag_tests::rng::Rng::new(seed).bytes(len)
}

/// FNV-1a: a short name for a payload in failure messages.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn sixteen_mib_cross_both_ways_between_ours_and_netcat() {
    let test = "sixteen_mib_cross_both_ways_between_ours_and_netcat";
    if !require_root(test) || !have("nc", test) {
        return;
    }
    let p = pair("ncbig");
    let dir = TempDir::new("ncbig");
    let payload = random_bytes(16 << 20, 0x6e63_2d62_6967);
    let input = dir.path().join("payload");
    fs::write(&input, &payload).unwrap();

    // (listener, connector, which side sends): every role for each tool.
    let cases = [
        (Nc::Theirs, Nc::Ours, "client"),
        (Nc::Ours, Nc::Theirs, "client"),
        (Nc::Theirs, Nc::Ours, "server"),
        (Nc::Ours, Nc::Theirs, "server"),
    ];
    for (i, (listener, connector, sender)) in cases.into_iter().enumerate() {
        let port = 7000 + i as u16;
        let port_s = port.to_string();
        let mut srv = listener.command(&p.server);
        let mut cli = connector.command(&p.client);
        // The sending side shuts down its write side at EOF (-N), so the
        // receiver sees the end of the data.
        if sender == "server" {
            srv.arg("-N");
        } else {
            cli.arg("-N");
        }
        srv.args(["-l", &port_s]);
        cli.args([SERVER, &port_s]);
        let (srv_in, cli_in) = if sender == "server" {
            (Input::File(&input), Input::Null)
        } else {
            (Input::Null, Input::File(&input))
        };
        let server = start(srv, srv_in, &dir, &format!("srv{i}"));
        wait_listening(&p.server, "t", port);
        let client = start(cli, cli_in, &dir, &format!("cli{i}")).finish(DEFAULT_TIMEOUT);
        let server = server.finish(DEFAULT_TIMEOUT);
        let (received, who) = if sender == "server" {
            (&client.stdout, connector)
        } else {
            (&server.stdout, listener)
        };
        let what = format!("{listener:?} listening, {connector:?} connecting, {sender} sending");
        assert!(client.status.success(), "{what}: client {client:?}");
        assert!(server.status.success(), "{what}: server {server:?}");
        assert_eq!(
            (received.len(), checksum(received)),
            (payload.len(), checksum(&payload)),
            "{what}: {who:?} received different bytes"
        );
        assert!(*received == payload, "{what}: bytes differ");
    }
}

/// A server that reads until EOF, then answers `reply`; returns what it
/// read, or None if no EOF came within `patience`.
fn answer_after_eof(
    listener: TcpListener,
    reply: &'static [u8],
    patience: Duration,
) -> std::thread::JoinHandle<Option<Vec<u8>>> {
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().ok()?;
        conn.set_read_timeout(Some(patience)).ok()?;
        let mut got = Vec::new();
        conn.read_to_end(&mut got).ok()?;
        let _ = conn.write_all(reply);
        Some(got)
    })
}

#[test]
fn half_close_with_n_as_netcat() {
    let test = "half_close_with_n_as_netcat";
    if !require_root(test) || !have("nc", test) {
        return;
    }
    let p = pair("nchalf");
    let dir = TempDir::new("nchalf");
    let request = dir.path().join("request");
    fs::write(&request, b"request\n").unwrap();
    for (i, nc) in [Nc::Ours, Nc::Theirs].into_iter().enumerate() {
        // With -N the server sees EOF, answers, and the answer arrives.
        let port = 7100 + 2 * i as u16;
        let l = p
            .server
            .enter(|| TcpListener::bind((SERVER, port)).unwrap());
        let server = answer_after_eof(l, b"reply\n", Duration::from_secs(10));
        let mut cmd = nc.command(&p.client);
        cmd.args(["-N", SERVER, &port.to_string()]);
        let out = run(cmd, Input::File(&request), DEFAULT_TIMEOUT);
        assert!(out.status.success(), "{nc:?} -N: {out:?}");
        assert_eq!(server.join().unwrap().as_deref(), Some(&b"request\n"[..]));
        assert_eq!(out.stdout, b"reply\n", "{nc:?} -N: the answer after EOF");

        // Without -N nothing is shut down: the server never sees EOF and
        // never answers; -w 1 ends the client after a second of silence.
        let port = port + 1;
        let l = p
            .server
            .enter(|| TcpListener::bind((SERVER, port)).unwrap());
        let server = answer_after_eof(l, b"reply\n", Duration::from_secs(10));
        let mut cmd = nc.command(&p.client);
        cmd.args(["-w", "1", SERVER, &port.to_string()]);
        let out = run(cmd, Input::File(&request), DEFAULT_TIMEOUT);
        assert!(out.status.success(), "{nc:?} without -N: {out:?}");
        assert_eq!(out.stdout, b"", "{nc:?} without -N: no answer expected");
        assert!(
            out.elapsed >= Duration::from_millis(900) && out.elapsed < Duration::from_secs(5),
            "{nc:?} without -N: -w 1 ended it after {:?}",
            out.elapsed
        );
        // The client's exit closed the connection: only then EOF.
        assert_eq!(server.join().unwrap().as_deref(), Some(&b"request\n"[..]));
    }
}

#[test]
fn udp_datagrams_both_ways_with_netcat() {
    let test = "udp_datagrams_both_ways_with_netcat";
    if !require_root(test) || !have("nc", test) {
        return;
    }
    let p = pair("ncudp");
    let dir = TempDir::new("ncudp");
    let hello = dir.path().join("hello");
    fs::write(&hello, b"hello over udp\n").unwrap();
    let reply = dir.path().join("reply");
    fs::write(&reply, b"reply over udp\n").unwrap();

    for (listener, connector, port) in [
        (Nc::Theirs, Nc::Ours, 5300u16),
        (Nc::Ours, Nc::Theirs, 5301),
    ] {
        let what = format!("{listener:?} -u -l, {connector:?} -u");
        let port_s = port.to_string();
        let mut srv = listener.command(&p.server);
        srv.args(["-u", "-l", &port_s]);
        // The listener answers its first peer with its stdin.
        let server = start(srv, Input::File(&reply), &dir, &format!("usrv{port}"));
        wait_listening(&p.server, "u", port);
        let mut cli = connector.command(&p.client);
        cli.args(["-u", "-w", "1", SERVER, &port_s]);
        let client = run(cli, Input::File(&hello), DEFAULT_TIMEOUT);
        assert!(client.status.success(), "{what}: {client:?}");
        assert_eq!(
            String::from_utf8_lossy(&client.stdout),
            "reply over udp\n",
            "{what}: the listener's answer"
        );
        // A UDP listener never sees an end: read what it got, then stop it.
        wait_until(
            &format!("{what}: the datagram"),
            Duration::from_secs(5),
            || fs::read(&server.stdout).unwrap_or_default() == b"hello over udp\n",
        );
        drop(server);
    }

    // -uz: the open UDP port among closed ones, as netcat reports it. Its
    // exit status is the last probed port's verdict (netcat's quirk).
    let l = p
        .server
        .enter(|| std::net::UdpSocket::bind((SERVER, 5311)).unwrap());
    for nc in [Nc::Ours, Nc::Theirs] {
        for (range, code) in [("5310-5312", 1), ("5310-5311", 0)] {
            let mut cmd = nc.command(&p.client);
            cmd.args(["-uzvn", "-w", "1", SERVER, range]);
            let out = run(cmd, Input::Null, DEFAULT_TIMEOUT);
            assert_eq!(out.status.code(), Some(code), "{nc:?} -uz {range}: {out:?}");
            assert_eq!(
                lines(&out.stderr),
                [format!(
                    "Connection to {SERVER} 5311 port [udp/*] succeeded!"
                )],
                "{nc:?} -uz {range}"
            );
        }
    }
    drop(l);
}

/// Listeners on some ports of 20000-20011, a DROP on one: `-zvn -w 1`.
#[test]
fn scan_reports_the_same_ports_in_the_same_order_as_netcat() {
    let test = "scan_reports_the_same_ports_in_the_same_order_as_netcat";
    if !require_root(test) || !have("nc", test) {
        return;
    }
    let p = pair("ncscan");
    let open = [20002u16, 20005, 20009, 20011];
    let listeners: Vec<TcpListener> = open
        .iter()
        .map(|&port| p.server.enter(|| TcpListener::bind(("::", port)).unwrap()))
        .collect();
    p.server.run(
        "iptables",
        &["-A", "INPUT", "-p", "tcp", "--dport", "20007", "-j", "DROP"],
    );
    p.server.run(
        "ip6tables",
        &["-A", "INPUT", "-p", "tcp", "--dport", "20007", "-j", "DROP"],
    );
    for args in [
        &["-zvn", "-w", "1", SERVER, "20000-20011"][..],
        &["-zvn", "-w", "1", "fd42::1", "20000-20011"],
        &["-z", "-w", "1", SERVER, "20000-20011"],
        &["-zv", SERVER, "20003-20004"],
        &["-zv", SERVER, "20009"],
    ] {
        let theirs = run(
            {
                let mut c = Nc::Theirs.command(&p.client);
                c.args(args);
                c
            },
            Input::Null,
            DEFAULT_TIMEOUT,
        );
        let ours = run(
            {
                let mut c = Nc::Ours.command(&p.client);
                c.args(args);
                c
            },
            Input::Null,
            DEFAULT_TIMEOUT,
        );
        assert_eq!(ours.stderr, theirs.stderr, "nc {args:?}: messages differ");
        assert_eq!(
            ours.status.code(),
            theirs.status.code(),
            "nc {args:?}: exit codes"
        );
        assert!(
            ours.stdout.is_empty(),
            "nc {args:?}: -z prints on stderr only"
        );
    }
    // The full scan really saw what it should: exactly the open ports.
    let mut c = Nc::Ours.command(&p.client);
    c.args(["-zvn", "-w", "1", SERVER, "20000-20011"]);
    let out = run(c, Input::Null, DEFAULT_TIMEOUT);
    let succeeded: Vec<u16> = out
        .stderr
        .lines()
        .filter(|l| l.ends_with("succeeded!"))
        .map(|l| l.split_whitespace().nth(3).unwrap().parse().unwrap())
        .collect();
    assert_eq!(succeeded, open);
    assert!(out.stderr.contains(&format!(
        "nc: connect to {SERVER} port 20007 (tcp) timed out: Operation now in progress"
    )));
    assert!(out.stderr.contains(&format!(
        "nc: connect to {SERVER} port 20000 (tcp) failed: Connection refused"
    )));
    drop(listeners);
}

#[test]
fn w_bounds_connects_and_silence() {
    let test = "w_bounds_connects_and_silence";
    if !require_root(test) || !have("nc", test) {
        return;
    }
    let p = pair("ncw");
    p.server.run(
        "iptables",
        &["-A", "INPUT", "-p", "tcp", "--dport", "7200", "-j", "DROP"],
    );
    let silent = p
        .server
        .enter(|| TcpListener::bind((SERVER, 7201)).unwrap());
    for nc in [Nc::Ours, Nc::Theirs] {
        // A dropped SYN: "timed out" after -w, exit 1.
        let mut cmd = nc.command(&p.client);
        cmd.args(["-v", "-w", "1", SERVER, "7200"]);
        let out = run(cmd, Input::Null, DEFAULT_TIMEOUT);
        assert_eq!(out.status.code(), Some(1), "{nc:?}: {out:?}");
        assert_eq!(
            out.stderr,
            format!(
                "nc: connect to {SERVER} port 7200 (tcp) timed out: Operation now in progress\n"
            )
        );
        assert!(
            out.elapsed >= Duration::from_millis(950) && out.elapsed < Duration::from_secs(3),
            "{nc:?}: connect gave up after {:?}",
            out.elapsed
        );
        // Connected, stdin at EOF, a peer that never speaks: -w 1 ends it.
        let mut cmd = nc.command(&p.client);
        cmd.args(["-w", "1", SERVER, "7201"]);
        let out = run(cmd, Input::Null, DEFAULT_TIMEOUT);
        assert_eq!(out.status.code(), Some(0), "{nc:?}: {out:?}");
        assert!(
            out.elapsed >= Duration::from_millis(950) && out.elapsed < Duration::from_secs(3),
            "{nc:?}: idle connection ended after {:?}",
            out.elapsed
        );
    }
    drop(silent);
}

#[test]
fn listen_messages_keep_and_failures_as_netcat() {
    let test = "listen_messages_keep_and_failures_as_netcat";
    if !require_root(test) || !have("nc", test) {
        return;
    }
    let p = pair("nclisten");
    let dir = TempDir::new("nclisten");
    let line = dir.path().join("line");
    fs::write(&line, b"one line\n").unwrap();

    for (i, nc) in [Nc::Ours, Nc::Theirs].into_iter().enumerate() {
        // -l -v -n: the same two messages, the client's fixed source
        // address and port included; the data arrives; the listener exits
        // when the peer ends.
        let port = 7300 + i as u16;
        let mut srv = nc.command(&p.server);
        srv.args(["-l", "-v", "-n", &port.to_string()]);
        let server = start(srv, Input::Null, &dir, &format!("l{i}"));
        wait_listening(&p.server, "t", port);
        // The client is the other tool, bound with -s and -p (a source
        // port per run: the last one may still be in TIME-WAIT).
        let other = if nc == Nc::Ours { Nc::Theirs } else { Nc::Ours };
        let mut cli = other.command(&p.client);
        let source_port = (41000 + i).to_string();
        cli.args([
            "-N",
            "-s",
            CLIENT,
            "-p",
            &source_port,
            SERVER,
            &port.to_string(),
        ]);
        let client = run(cli, Input::File(&line), DEFAULT_TIMEOUT);
        assert!(client.status.success(), "{client:?}");
        let server = server.finish(DEFAULT_TIMEOUT);
        assert!(server.status.success(), "{nc:?} -l: {server:?}");
        assert_eq!(server.stdout, b"one line\n");
        assert_eq!(
            lines(&server.stderr),
            [
                format!("Listening on 0.0.0.0 {port}"),
                format!("Connection received on {CLIENT} {source_port}"),
            ],
            "{nc:?} -l -v"
        );

        // -k: three clients one after the other.
        let port = 7310 + i as u16;
        let mut srv = nc.command(&p.server);
        srv.args(["-l", "-k", &port.to_string()]);
        let server = start(srv, Input::Null, &dir, &format!("k{i}"));
        wait_listening(&p.server, "t", port);
        for n in 1..=3 {
            let mut cli = Nc::Theirs.command(&p.client);
            cli.args(["-N", SERVER, &port.to_string()]);
            let out = run(cli, Input::File(&line), DEFAULT_TIMEOUT);
            assert!(out.status.success(), "{nc:?} -k, client {n}: {out:?}");
            wait_until("the line", Duration::from_secs(5), || {
                fs::read(&server.stdout).unwrap_or_default().len() == 9 * n
            });
        }
        wait_listening(&p.server, "t", port);
        drop(server);
    }

    // Refused and no route (203.0.113.0/24 has no route), with -v.
    for nc in [Nc::Ours, Nc::Theirs] {
        for (dest, expect) in [
            (
                SERVER,
                format!("nc: connect to {SERVER} port 7399 (tcp) failed: Connection refused"),
            ),
            (
                "203.0.113.9",
                "nc: connect to 203.0.113.9 port 7399 (tcp) failed: Network is unreachable".into(),
            ),
        ] {
            let mut cmd = nc.command(&p.client);
            cmd.args(["-v", dest, "7399"]);
            let out = run(cmd, Input::Null, DEFAULT_TIMEOUT);
            assert_eq!(out.status.code(), Some(1), "{nc:?} {dest}");
            assert_eq!(lines(&out.stderr), [expect.as_str()], "{nc:?} {dest}");
        }
    }
}

/// `/etc/netns/NAME/`: files `ip netns exec` mounts over /etc; removed on
/// drop.
pub struct NetnsEtc(PathBuf);

impl NetnsEtc {
    /// Writes `files` (name, content) for `ns`.
    pub fn new(ns: &Netns, files: &[(&str, &str)]) -> NetnsEtc {
        let dir = PathBuf::from("/etc/netns").join(ns.name());
        fs::create_dir_all(&dir).unwrap();
        let etc = NetnsEtc(dir);
        for (name, content) in files {
            fs::write(etc.0.join(name), content).unwrap();
        }
        etc
    }

    /// A resolv.conf pointing at the namespace's own loopback, where no
    /// server listens: every DNS lookup fails fast, and nothing leaves.
    pub fn unanswered_resolver(ns: &Netns) -> NetnsEtc {
        NetnsEtc::new(ns, &[("resolv.conf", UNANSWERED_RESOLV_CONF)])
    }
}

const UNANSWERED_RESOLV_CONF: &str = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n";

impl Drop for NetnsEtc {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn names_resolve_without_libc_like_netcat_does() {
    let test = "names_resolve_without_libc_like_netcat_does";
    if !require_root(test) || !have("nc", test) {
        return;
    }
    let p = pair("ncname");
    // The name lives in the namespace's /etc/hosts (read by glibc for
    // netcat, by the agent's own resolver for us); DNS goes nowhere.
    let _etc = NetnsEtc::new(
        &p.client,
        &[
            (
                "hosts",
                &format!("127.0.0.1 localhost\n{SERVER} web.netdiag.test\n"),
            ),
            ("resolv.conf", UNANSWERED_RESOLV_CONF),
        ],
    );
    let l = p
        .server
        .enter(|| TcpListener::bind((SERVER, 7601)).unwrap());
    let mut results = Vec::new();
    for nc in [Nc::Ours, Nc::Theirs] {
        let mut cmd = nc.command(&p.client);
        cmd.args(["-zv", "web.netdiag.test", "7600-7601"]);
        let out = run(cmd, Input::Null, DEFAULT_TIMEOUT);
        results.push((out.status.code(), out.stderr));
    }
    assert_eq!(results[0], results[1], "ours, then netcat's");
    assert_eq!(
        results[0].1,
        format!(
            "nc: connect to web.netdiag.test ({SERVER}) port 7600 (tcp) failed: Connection refused\n\
             Connection to web.netdiag.test ({SERVER}) 7601 port [tcp/*] succeeded!\n"
        )
    );
    drop(l);
}

#[test]
fn bad_input_is_one_line_and_exit_1() {
    if !require_root("bad_input_is_one_line_and_exit_1") {
        return;
    }
    let ns = Netns::new("ncbad");
    let _etc = NetnsEtc::unanswered_resolver(&ns);
    for (args, start) in [
        (
            &["198.51.100.1", "70000"][..],
            "nc: port number too large: 70000",
        ),
        (&["198.51.100.1", "abc"], "nc: port number invalid: abc"),
        (
            &["198.51.100.1", "90-80"],
            "nc: port range not valid: 90-80",
        ),
        (
            &["-l", "198.51.100.1", "80"],
            "nc: -l listens on a local port",
        ),
        (
            &["nx.netdiag.test", "80"],
            "nc: getaddrinfo for host \"nx.netdiag.test\" port 80:",
        ),
        (&["-z", "198.51.100.1"], "nc: missing port number"),
        (&["-w", "x", "198.51.100.1", "80"], "nc: timeout invalid: x"),
        (
            &["-q", "1", "198.51.100.1", "80"],
            "nc: unexpected argument '-q'",
        ),
    ] {
        let mut cmd = Nc::Ours.command(&ns);
        cmd.args(args);
        let out = run(cmd, Input::Null, DEFAULT_TIMEOUT);
        assert_eq!(out.status.code(), Some(1), "nc {args:?}: {out:?}");
        assert!(
            out.stderr.starts_with(start) && out.stderr.lines().count() == 1,
            "nc {args:?}: {:?}",
            out.stderr
        );
        assert!(
            out.elapsed < Duration::from_secs(10),
            "nc {args:?} took {:?}",
            out.elapsed
        );
    }
}

#[test]
fn closed_stderr_or_stdout_is_not_a_panic() {
    if !require_root("closed_stderr_or_stdout_is_not_a_panic") {
        return;
    }
    let p = pair("ncpipe");
    // `nc -zv ... 2>&1 | head -1`: read one line, then close the pipe.
    let mut cmd = Nc::Ours.command(&p.client);
    cmd.args(["-zvn", SERVER, "1-3000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(
        first,
        format!("nc: connect to {SERVER} port 1 (tcp) failed: Connection refused\n")
    );
    let mut guard = ChildGuard::adopt("nc -zv | head -1", child);
    let status = guard.wait_timeout(DEFAULT_TIMEOUT).expect("nc exits");
    assert_eq!(status.code(), Some(0), "a closed stderr ends nc quietly");

    // `nc host port | head -c 10` while the peer sends a megabyte.
    let dir = TempDir::new("ncpipe");
    let big = dir.path().join("big");
    fs::write(&big, random_bytes(1 << 20, 7)).unwrap();
    let mut srv = Nc::Theirs.command(&p.server);
    srv.args(["-N", "-l", "7400"]);
    let _server = start(srv, Input::File(&big), &dir, "srv");
    wait_listening(&p.server, "t", 7400);
    let mut cmd = Nc::Ours.command(&p.client);
    cmd.args([SERVER, "7400"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut ten = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut ten).unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut guard = ChildGuard::adopt("nc | head -c 10", child);
    let status = guard.wait_timeout(DEFAULT_TIMEOUT).expect("nc exits");
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
}
