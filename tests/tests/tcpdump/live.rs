//! Live captures in a namespace pair: every packet in order, `-c` exact,
//! the filter in the kernel (counted by "received by filter"), `-i any`
//! cooked headers, stopping on SIGINT, SIGTERM and the end of stdin within
//! a second with the statistics printed and the pcap complete, and the
//! errors a user meets (bad filter, unknown interface, no NET_RAW, filter
//! too large for the kernel), and host names in filters resolved from the
//! pod's /etc/hosts as its own programs (tcpdump's getaddrinfo) resolve them.

use std::fs::File;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netdiag_tests::agent::agent_bin;
use netdiag_tests::netns::{Netns, Veth, veth_pair};
use netdiag_tests::process::{ChildGuard, wait_until};
use netdiag_tests::{TempDir, require_root};
use nix::sys::signal::Signal;

use super::corpus;

pub struct Lab {
    pub a: Netns,
    pub b: Netns,
    pub veth: Veth,
    pub dir: TempDir,
}

/// Two namespaces on a veth: a = 198.51.100.1 / fd42::1, b = .2 / ::2.
pub fn lab(tag: &str) -> Lab {
    let a = Netns::new(&format!("{tag}-a"));
    let b = Netns::new(&format!("{tag}-b"));
    let veth = veth_pair(
        &a,
        &["198.51.100.1/24", "fd42::1/64"],
        &b,
        &["198.51.100.2/24", "fd42::2/64"],
    );
    Lab {
        a,
        b,
        veth,
        dir: TempDir::new(tag),
    }
}

fn agent() -> String {
    agent_bin().to_string_lossy().into_owned()
}

/// The agent's tcpdump running in `ns`, once it says it is listening.
pub fn start(ns: &Netns, args: &[&str]) -> ChildGuard {
    let mut cmd = ns.command(&agent());
    cmd.arg("tcpdump").args(args);
    let g = ChildGuard::spawn(&format!("agent tcpdump {}", args.join(" ")), &mut cmd);
    wait_until("the capture to start", Duration::from_secs(20), || {
        g.stderr().contains("listening on") || g.stderr().contains("tcpdump: ")
    });
    assert!(
        g.stderr().contains("listening on"),
        "the capture did not start: {}",
        g.stderr()
    );
    g
}

/// The three statistics lines: (captured, received by filter, dropped).
pub fn stats(stderr: &str) -> (u64, u64, u64) {
    let find = |what: &str| {
        stderr
            .lines()
            .find(|l| l.contains(what))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no \"{what}\" line in:\n{stderr}"))
    };
    (
        find("captured"),
        find("received by filter"),
        find("dropped by kernel"),
    )
}

/// `tcpdump -nn -r file`, which must read it cleanly.
pub fn tcpdump_lines(file: &Path) -> Vec<String> {
    let out = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(file)
        .env("TZ", "UTC")
        .output()
        .expect("running tcpdump");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tcpdump -r {}: {stderr}",
        file.display()
    );
    assert!(
        !stderr.contains("truncated") && !stderr.contains("cut short"),
        "tcpdump -r {}: {stderr}",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn records(file: &Path) -> usize {
    corpus::indexes(&std::fs::read(file).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .len()
}

fn send_udp(ns: &Netns, to: &str, count: usize) {
    let to = to.to_owned();
    ns.enter(move || {
        let any = if to.starts_with('[') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        };
        let s = UdpSocket::bind(any).unwrap();
        for i in 0..count {
            s.send_to(format!("datagram {i}").as_bytes(), &to).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    });
}

#[test]
fn every_packet_arrives_in_order_and_count_stops_the_capture() {
    if !require_root("every_packet_arrives_in_order_and_count_stops_the_capture") {
        return;
    }
    let lab = lab("tdlive");
    let file = lab.dir.path().join("icmp.pcap");
    let f = file.to_str().unwrap();
    let g = start(&lab.a, &["-i", lab.veth.a(), "-c", "10", "-w", f, "icmp"]);
    lab.b
        .run("ping", &["-n", "-c", "5", "-i", "0.1", "198.51.100.1"]);
    let out = g.finish(Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stats(&stderr).0, 10, "{stderr}");
    let lines = tcpdump_lines(&file);
    assert_eq!(lines.len(), 10, "{lines:#?}");
    for (i, line) in lines.iter().enumerate() {
        let seq = i / 2 + 1;
        let want = if i % 2 == 0 {
            "IP 198.51.100.2 > 198.51.100.1: ICMP echo request, id"
        } else {
            "IP 198.51.100.1 > 198.51.100.2: ICMP echo reply, id"
        };
        assert!(line.contains(want), "packet {i}: {line}");
        assert!(
            line.contains(&format!("seq {seq}, length 64")),
            "packet {i}: {line}"
        );
    }
}

#[test]
fn count_stops_exactly_under_load() {
    if !require_root("count_stops_exactly_under_load") {
        return;
    }
    let lab = lab("tdcount");
    let file = lab.dir.path().join("three.pcap");
    let g = start(
        &lab.a,
        &["-i", lab.veth.a(), "-c", "3", "-w", file.to_str().unwrap()],
    );
    let _flood = lab
        .b
        .spawn("ping", &["-n", "-c", "200", "-i", "0.002", "198.51.100.1"]);
    let out = g.finish(Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stats(&stderr).0, 3, "{stderr}");
    assert_eq!(records(&file), 3);
}

/// Packets outside the filter never reach user space: the kernel's own
/// count of what passed the filter is exactly the matching traffic.
#[test]
fn the_filter_runs_in_the_kernel() {
    if !require_root("the_filter_runs_in_the_kernel") {
        return;
    }
    let lab = lab("tdkern");
    for iface in [lab.veth.a(), "any"] {
        let file = lab.dir.path().join(format!("udp-{iface}.pcap"));
        let g = start(
            &lab.a,
            &["-i", iface, "-w", file.to_str().unwrap(), "udp port 9999"],
        );
        send_udp(&lab.b, "198.51.100.1:9998", 25);
        send_udp(&lab.b, "198.51.100.1:9999", 20);
        lab.b
            .run("ping", &["-n", "-c", "10", "-i", "0.01", "198.51.100.1"]);
        send_udp(&lab.b, "[fd42::1]:9998", 10);
        let out = g.stop(Signal::SIGINT, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(stats(&stderr), (20, 20, 0), "-i {iface}: {stderr}");
        assert_eq!(records(&file), 20);
        let lines = tcpdump_lines(&file);
        assert!(
            lines.iter().all(|l| l.contains(".9999: UDP, length 1")),
            "{lines:#?}"
        );
    }
}

#[test]
fn any_interface_writes_linux_cooked_headers() {
    if !require_root("any_interface_writes_linux_cooked_headers") {
        return;
    }
    let lab = lab("tdany");
    let file = lab.dir.path().join("any.pcap");
    let g = start(
        &lab.a,
        &["-i", "any", "-c", "4", "-w", file.to_str().unwrap(), "icmp"],
    );
    lab.b
        .run("ping", &["-n", "-c", "2", "-i", "0.1", "198.51.100.1"]);
    let out = g.finish(Duration::from_secs(10));
    assert!(out.status.success());
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 113);
    let lines = tcpdump_lines(&file);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    // -e shows the direction the cooked header records.
    let out = Command::new(agent())
        .args(["tcpdump", "-e", "-r", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" In ") && text.contains("Out "), "{text}");
}

/// How a capture was told to stop.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Signal(Signal),
    StdinEof,
}

#[test]
fn sigint_sigterm_and_stdin_eof_stop_within_a_second() {
    if !require_root("sigint_sigterm_and_stdin_eof_stop_within_a_second") {
        return;
    }
    let lab = lab("tdstop");
    for how in [
        Stop::Signal(Signal::SIGINT),
        Stop::Signal(Signal::SIGTERM),
        Stop::StdinEof,
    ] {
        let file = lab.dir.path().join(format!("{how:?}.pcap"));
        let stdout = lab.dir.path().join(format!("{how:?}.stdout"));
        let stderr_path = lab.dir.path().join(format!("{how:?}.stderr"));
        let mut cmd = lab.a.command(&agent());
        cmd.args(["tcpdump", "-i", lab.veth.a(), "-w", file.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr_path).unwrap());
        let mut g = ChildGuard::adopt("agent tcpdump", cmd.spawn().unwrap());
        let read_err = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
        wait_until("listening", Duration::from_secs(20), || {
            read_err().contains("listening on")
        });
        lab.b
            .run("ping", &["-n", "-c", "3", "-i", "0.05", "198.51.100.1"]);
        let started = Instant::now();
        match how {
            Stop::Signal(s) => g.signal(s),
            Stop::StdinEof => drop(g.child_mut().stdin.take()),
        }
        let status = g
            .wait_timeout(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{how:?}: still running after 5 s"));
        let took = started.elapsed();
        let stderr = read_err();
        assert!(status.success(), "{how:?}: {status}: {stderr}");
        assert!(
            took < Duration::from_secs(1),
            "{how:?}: stopped after {took:?}"
        );
        let (captured, received, dropped) = stats(&stderr);
        assert!(captured >= 6, "{how:?}: {stderr}");
        assert!(received >= captured && dropped == 0, "{how:?}: {stderr}");
        assert_eq!(
            records(&file) as u64,
            captured,
            "{how:?}: the pcap file is incomplete"
        );
        tcpdump_lines(&file);
    }
}

fn agent_output(ns: Option<&Netns>, args: &[&str]) -> (i32, String) {
    let mut cmd = match ns {
        Some(ns) => ns.command(&agent()),
        None => Command::new(agent()),
    };
    let out = cmd
        .arg("tcpdump")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_is_one_clear_line() {
    // Without privileges: syntax errors, display filters, bad flags.
    let (code, err) = agent_output(None, &["-d", "tcp port 80 and hots 1.2.3.4"]);
    assert_eq!(code, 1);
    let mut lines = err.lines();
    assert_eq!(
        lines.next().unwrap(),
        "tcpdump: syntax error at \"1.2.3.4\": \"hots\" is not a keyword; did you mean \"host\"? \
         (column 22 of the filter)"
    );
    assert_eq!(lines.next().unwrap(), "  tcp port 80 and hots 1.2.3.4");
    assert_eq!(
        lines.next().unwrap(),
        format!("  {}^^^^^^^", " ".repeat(21))
    );
    let (code, err) = agent_output(
        None,
        &["-d", "(tcp.flags.reset eq 1) and (tcp.flags.ack eq 0)"],
    );
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("Wireshark display filter"), "{err}");
    assert!(err.contains("tcp[tcpflags] & tcp-rst != 0"), "{err}");
    let (code, err) = agent_output(None, &["-c", "0", "-d"]);
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");
    let (code, err) = agent_output(None, &["-B", "9999999", "-d"]);
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");
    let (code, err) = agent_output(None, &["-r", "/nonexistent/x.pcap"]);
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");
    // Too big for the kernel's 4096 instructions (libpcap: 4215), made of
    // terms the optimizer gets through quickly (`port` terms are ~15 blocks
    // each: 1500 of them take libpcap 13 minutes).
    let huge = (1..=2200)
        .map(|i| format!("ip[{}:4] = {i}", i % 60))
        .collect::<Vec<_>>()
        .join(" or ");
    let (code, err) = agent_output(None, &["-d", &huge]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("kernel accepts at most 4096"), "{err}");

    if !require_root("bad_input_is_one_clear_line (live part)") {
        return;
    }
    let lab = lab("tdbad");
    let (code, err) = agent_output(Some(&lab.a), &["-i", "eth9", "-c", "1"]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no such interface \"eth9\""), "{err}");
    // No NET_RAW: run as nobody without capabilities.
    let out = lab
        .a
        .command("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(agent())
        .args(["tcpdump", "-i", lab.veth.a(), "-c", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let first: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("listening") && !l.contains("verbose output"))
        .collect();
    assert_eq!(first.len(), 1, "{err}");
    assert!(first[0].contains("NET_RAW"), "{err}");
}

/// `/etc/netns/<ns>/hosts` and `resolv.conf`, which `ip netns exec` mounts
/// over /etc for both tools. Removed on drop.
struct EtcNetns(std::path::PathBuf);

impl EtcNetns {
    fn new(ns: &Netns, files: &[(&str, &str)]) -> EtcNetns {
        let dir = Path::new("/etc/netns").join(ns.name());
        std::fs::create_dir_all(&dir).expect("creating /etc/netns/<ns>");
        let etc = EtcNetns(dir);
        for (name, text) in files {
            std::fs::write(etc.0.join(name), text).expect("writing /etc/netns file");
        }
        etc
    }
}

impl Drop for EtcNetns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn host_names_resolve_like_the_pods_programs() {
    if !require_root("host_names_resolve_like_the_pods_programs") {
        return;
    }
    let lab = lab("tdhost");
    // The pod's hosts file; its name server does not exist, so a name not
    // in the file fails (quickly) instead of reaching any real resolver.
    let _etc = EtcNetns::new(
        &lab.a,
        &[
            (
                "hosts",
                "127.0.0.1 localhost\n203.0.113.7 web.test\n203.0.113.8 both.test\nfd42::8 both.test\n",
            ),
            (
                "resolv.conf",
                "nameserver 198.51.100.53\noptions timeout:1 attempts:1\n",
            ),
        ],
    );
    let iface = lab.veth.a();
    let frames = host_frames();
    for expr in [
        "host web.test",
        "src host both.test",
        "ip6 dst host both.test",
        "ip host both.test and not host web.test",
        "tcp and host web.test",
        "arp host web.test or dst web.test",
        // Errors: an address the qualifier does not fit, none of its family.
        "arp host both.test",
        "ip6 host web.test",
        "tcp port 80 and ip6 src web.test",
    ] {
        let program = |cmd: &mut Command| {
            let out = cmd.args(["-ddd", "-i", iface, expr]).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            match out.status.success() {
                true => Ok(super::bpf::parse_ddd(&String::from_utf8_lossy(&out.stdout))),
                false => Err(err
                    .lines()
                    .rfind(|l| l.starts_with("tcpdump: "))
                    .unwrap_or_default()
                    .to_owned()),
            }
        };
        let theirs = program(&mut lab.a.command("tcpdump"));
        let ours = program(lab.a.command(&agent()).arg("tcpdump"));
        let (theirs, ours) = match (theirs, ours) {
            (Ok(t), Ok(o)) => (t, o),
            (Err(t), Err(o)) => {
                // "tcpdump: MESSAGE" and "tcpdump: MESSAGE (column N ...)".
                assert!(o.starts_with(&t), "{expr}: libpcap {t:?}, agent {o:?}");
                continue;
            }
            (t, o) => panic!("{expr}: libpcap {t:?}, agent {o:?}"),
        };
        if !expr.contains("both.test") {
            assert_eq!(ours, theirs, "{expr}: programs differ");
        }
        // A name with two addresses: glibc sorts them (RFC 6724), the
        // pod's hosts-file order is kept here; the programs test the same
        // addresses in another order, so compare what they select.
        let mut selected = 0;
        for (i, (data, meta)) in frames.iter().enumerate() {
            let wire = data.len() as u32;
            let t = super::bpf::accepts(&theirs, data, wire, meta);
            assert_eq!(
                super::bpf::accepts(&ours, data, wire, meta),
                t,
                "{expr}: frame {i} selected differently"
            );
            selected += usize::from(t);
        }
        assert!(selected > 0, "{expr}: selects none of the test frames");
    }
    assert!(
        lab.a
            .output(&agent(), &["tcpdump", "-d", "-i", iface, "host web.test"])
            .stdout
            .windows(10)
            .any(|w| w == b"0xcb007107"),
        "203.0.113.7 from the pod's hosts file"
    );
    let started = Instant::now();
    let (code, err) = agent_output(Some(&lab.a), &["-d", "-i", iface, "host nothere.test"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("tcpdump: unknown host 'nothere.test'"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

/// Frames to and from the names' addresses (and others) for the host-name
/// test: IPv4 TCP/UDP, IPv6 UDP, ARP.
fn host_frames() -> Vec<(Vec<u8>, super::bpf::Meta)> {
    use corpus::{Ip4, Tcp, arp, ether, ip6, udp, v6};
    let (m1, m2) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let v4 = [[203, 0, 113, 7], [203, 0, 113, 8], [198, 51, 100, 1]];
    let v6s = [v6("fd42::8"), v6("fd42::7"), v6("fd42::1")];
    let mut frames = Vec::new();
    for a in v4 {
        for b in v4 {
            let seg = Tcp::new(40000, 80, 0x02).build(&a, &b, b"");
            frames.push(ether(m1, m2, 0x0800, &Ip4::new(a, b, 6).build(&seg)));
            let dgram = udp(&a, &b, 5353, 53, b"x");
            frames.push(ether(m1, m2, 0x0800, &Ip4::new(a, b, 17).build(&dgram)));
            frames.push(ether(m1, m2, 0x0806, &arp(1, m2, a, [0; 6], b)));
        }
    }
    for a in v6s {
        for b in v6s {
            let dgram = udp(&a, &b, 5353, 53, b"x");
            frames.push(ether(m1, m2, 0x86dd, &ip6(a, b, 17, 64, &dgram)));
        }
    }
    frames
        .into_iter()
        .map(|f| {
            let meta = super::bpf::Meta {
                vlan_tci: None,
                pkttype: 0,
                protocol: u32::from(u16::from_be_bytes([f[12], f[13]])),
            };
            (f, meta)
        })
        .collect()
}
