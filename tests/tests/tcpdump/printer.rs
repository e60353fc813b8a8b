//! The printer against tcpdump, line by line, on traffic captured live:
//! ARP, ICMP and ICMPv6 (echo, port unreachable), TCP (handshake, data,
//! close, refused) over IPv4 and IPv6, UDP, DNS over UDP and TCP (a small
//! responder in the namespace answers). The oracle's capture is read by
//! both `tcpdump -nn -r` and `netdiag-agent tcpdump -r` with each output
//! option; then the agent's own capture of the same kind of traffic must be
//! read by tshark without a warning.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use netdiag_tests::agent::agent_bin;
use netdiag_tests::netns::Netns;
use netdiag_tests::process::wait_until;
use netdiag_tests::{require_root, running_in_ci};
use nix::sys::signal::Signal;

use super::live::{lab, start, stats};

fn have(test: &str, tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if running_in_ci() {
            panic!("{test}: {tool} is not installed and CI=true forbids skipping");
        }
        eprintln!("SKIPPED {test}: {tool} is not installed");
    }
    found
}

/// A DNS answer to `query`: A → 203.0.113.10, AAAA → fd42::10, anything
/// else → NXDOMAIN; authoritative, no recursion.
fn answer(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let mut at = 12;
    while *query.get(at)? != 0 {
        at += 1 + usize::from(query[at]);
    }
    let qend = at + 5;
    let qtype = u16::from_be_bytes([*query.get(at + 1)?, *query.get(at + 2)?]);
    let mut r = query[..qend].to_vec();
    r[2] = 0x84 | (query[2] & 0x01);
    r[3] = 0;
    r[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
    let rdata: Vec<u8> = match qtype {
        1 => vec![203, 0, 113, 10],
        28 => "fd42::10"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
            .to_vec(),
        _ => {
            r[3] = 3;
            return Some(r);
        }
    };
    r[7] = 1;
    r.extend_from_slice(&[0xc0, 12]);
    r.extend_from_slice(&qtype.to_be_bytes());
    r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
    r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    r.extend_from_slice(&rdata);
    Some(r)
}

/// Serves DNS on 198.51.100.1:53 (UDP and TCP) inside `ns`, in threads
/// that end with the test process.
fn dns_server(ns: &Netns) {
    let (udp, tcp) = ns.enter(|| {
        (
            UdpSocket::bind("198.51.100.1:53").unwrap(),
            TcpListener::bind("198.51.100.1:53").unwrap(),
        )
    });
    thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            if let Some(r) = answer(&buf[..n]) {
                let _ = udp.send_to(&r, from);
            }
        }
    });
    thread::spawn(move || {
        for mut conn in tcp.incoming().flatten() {
            let mut len = [0u8; 2];
            if conn.read_exact(&mut len).is_err() {
                continue;
            }
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if conn.read_exact(&mut q).is_ok()
                && let Some(r) = answer(&q)
            {
                let mut msg = (r.len() as u16).to_be_bytes().to_vec();
                msg.extend_from_slice(&r);
                let _ = conn.write_all(&msg);
            }
        }
    });
}

/// Every kind of packet the printer must match tcpdump on, from b to a.
fn traffic(a: &Netns, b: &Netns) {
    // ARP first: b forgets a's address.
    let _ = b.output("ip", &["neigh", "flush", "all"]);
    b.run("ping", &["-n", "-c", "2", "-i", "0.1", "198.51.100.1"]);
    b.run("ping", &["-n", "-6", "-c", "2", "-i", "0.1", "fd42::1"]);
    // TCP with data both ways, v4 and v6, and a refused connection.
    for (listen, connect) in [
        ("198.51.100.1:8000", "198.51.100.1:8000"),
        ("[fd42::1]:8000", "[fd42::1]:8000"),
    ] {
        let server = a.enter(|| TcpListener::bind(listen).unwrap());
        let echo = thread::spawn(move || {
            let (mut c, _) = server.accept().unwrap();
            let mut buf = [0u8; 64];
            let n = c.read(&mut buf).unwrap();
            c.write_all(&buf[..n]).unwrap();
        });
        let mut c = b.enter(|| TcpStream::connect(connect).unwrap());
        c.write_all(b"hello over tcp\n").unwrap();
        let mut buf = [0u8; 64];
        let _ = c.read(&mut buf).unwrap();
        drop(c);
        echo.join().unwrap();
    }
    let _ = b.enter(|| TcpStream::connect("198.51.100.1:8001"));
    // UDP to a closed port (ICMP port unreachable) and to a quiet one.
    b.enter(|| {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.send_to(b"data", "198.51.100.1:9999").unwrap();
        let s6 = UdpSocket::bind("[::]:0").unwrap();
        s6.send_to(b"data6", "[fd42::1]:9999").unwrap();
    });
    // DNS over UDP and TCP.
    for args in [
        vec!["+tries=1", "+time=1", "@198.51.100.1", "web.test", "A"],
        vec!["+tries=1", "+time=1", "@198.51.100.1", "web.test", "AAAA"],
        vec!["+tries=1", "+time=1", "@198.51.100.1", "nx.test", "MX"],
        vec![
            "+tries=1",
            "+time=1",
            "+tcp",
            "@198.51.100.1",
            "web.test",
            "A",
        ],
        vec!["+tries=1", "+time=1", "@198.51.100.1", "-x", "203.0.113.10"],
    ] {
        b.output("dig", &args);
    }
    thread::sleep(Duration::from_millis(200));
}

fn lines(cmd: &mut Command) -> Vec<String> {
    let out = cmd.env("TZ", "UTC").output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn compare(pcap: &Path, flags: &[&str], filter: &str) -> usize {
    let theirs = lines(
        Command::new("tcpdump")
            .arg("-nn")
            .args(flags)
            .arg("-r")
            .arg(pcap)
            .arg(filter),
    );
    let ours = lines(
        Command::new(agent_bin())
            .arg("tcpdump")
            .args(flags)
            .arg("-r")
            .arg(pcap)
            .arg(filter),
    );
    for (i, (t, o)) in theirs.iter().zip(&ours).enumerate() {
        assert_eq!(o, t, "line {} with {flags:?} differs", i + 1);
    }
    assert_eq!(ours.len(), theirs.len(), "line count with {flags:?}");
    theirs.len()
}

#[test]
fn text_equals_tcpdump_line_by_line() {
    let test = "text_equals_tcpdump_line_by_line";
    if !require_root(test) || !have(test, "dig") {
        return;
    }
    let lab = lab("tdprint");
    dns_server(&lab.a);
    let oracle = lab.dir.path().join("oracle.pcap");
    let mut tcpdump = lab.a.spawn(
        "tcpdump",
        &[
            "-i",
            lab.veth.a(),
            "-Z",
            "root",
            "--immediate-mode",
            "-w",
            oracle.to_str().unwrap(),
        ],
    );
    wait_until("tcpdump to listen", Duration::from_secs(10), || {
        tcpdump.stderr().contains("listening on")
    });
    traffic(&lab.a, &lab.b);
    tcpdump.signal(Signal::SIGINT);
    tcpdump
        .wait_timeout(Duration::from_secs(10))
        .expect("tcpdump stops");
    let mut total = 0;
    for flags in [
        &[][..],
        &["-e"],
        &["-x"],
        &["-xx"],
        &["-X"],
        &["-XX"],
        &["-A"],
        &["-tttt"],
        &["-tt"],
        &["-t"],
    ] {
        total += compare(&oracle, flags, "");
    }
    // -v: IP headers, TCP/UDP checksums, DNS; the decoding of ICMP errors
    // and of ICMPv6 options and MLD records with -v is not tcpdump's.
    total += compare(
        &oracle,
        &["-v"],
        "not icmp6 and not ip6 proto 0 and not (icmp and icmp[icmptype] = icmp-unreach)",
    );
    let summary = lines(Command::new("tcpdump").args(["-nn", "-r"]).arg(&oracle));
    for kind in [
        "ARP, Request",
        "ARP, Reply",
        "ICMP echo request",
        "ICMP6, echo request",
        "Flags [S]",
        "Flags [P.]",
        "Flags [R.]",
        "udp port 9999 unreachable",
        "A? web.test.",
        "AAAA fd42::10",
        "NXDomain",
        "PTR?",
    ] {
        assert!(
            summary.iter().any(|l| l.contains(kind)),
            "the traffic has no \"{kind}\": {summary:#?}"
        );
    }
    assert!(total > 500, "only {total} lines compared");
}

#[test]
fn pcaps_we_write_are_read_by_tshark() {
    let test = "pcaps_we_write_are_read_by_tshark";
    if !require_root(test) || !have(test, "tshark") || !have(test, "dig") {
        return;
    }
    let lab = lab("tdshark");
    dns_server(&lab.a);
    for iface in [lab.veth.a(), "any"] {
        let file = lab.dir.path().join(format!("{iface}.pcap"));
        let g = start(&lab.a, &["-i", iface, "-U", "-w", file.to_str().unwrap()]);
        traffic(&lab.a, &lab.b);
        let out = g.stop(Signal::SIGINT, Duration::from_secs(10));
        let captured = stats(&String::from_utf8_lossy(&out.stderr)).0;
        let shark = Command::new("tshark")
            .args(["-n", "-r"])
            .arg(&file)
            .env("HOME", lab.dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&shark.stderr);
        assert!(shark.status.success(), "tshark -r ({iface}): {err}");
        // Its note about running as root is about tshark, not the file.
        let warnings: Vec<&str> = err
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("Running as user \"root\""))
            .collect();
        assert!(warnings.is_empty(), "tshark warned ({iface}): {err}");
        let packets = String::from_utf8_lossy(&shark.stdout).lines().count() as u64;
        assert_eq!(packets, captured, "tshark sees a different packet count");
        assert!(captured > 40, "-i {iface}: only {captured} packets");
    }
}
