//! Tests of the harness itself: if namespaces, veths, guards or `enter` were
//! subtly wrong, every suite built on them would test the wrong thing (or
//! leak namespaces onto a shared machine). Checked with iproute2 and ping as
//! the oracles.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use netdiag_tests::netns::{Netns, veth_pair};
use netdiag_tests::process::{ChildGuard, wait_until};
use netdiag_tests::{agent, require_root};

/// Two namespaces joined by a veth with IPv4 and IPv6 on both ends.
fn cable() -> (Netns, Netns, netdiag_tests::netns::Veth) {
    let a = Netns::new("ha");
    let b = Netns::new("hb");
    let veth = veth_pair(
        &a,
        &["198.51.100.1/24", "fd42::1/64"],
        &b,
        &["198.51.100.2/24", "fd42::2/64"],
    );
    (a, b, veth)
}

/// Pings once from `ns`: true on a reply, false when none came back or the
/// kernel refused (no route, message too long). Anything else, such as ping
/// missing, fails the test rather than reading as "unreachable".
fn ping(ns: &Netns, args: &[&str]) -> bool {
    let mut full = vec!["-n", "-c", "1", "-W", "2"];
    full.extend_from_slice(args);
    let out = ns.output("ping", &full);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        Some(2) if stderr.contains("unreachable") => false,
        _ => panic!("ping {args:?} in {} did not run: {stderr}", ns.name()),
    }
}

fn netns_listed(name: &str) -> bool {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

#[test]
fn veth_pair_pings_both_ways_over_ipv4_and_ipv6() {
    if !require_root("veth_pair_pings_both_ways_over_ipv4_and_ipv6") {
        return;
    }
    let (a, b, veth) = cable();
    assert!(
        a.ip(&["-o", "addr", "show", "dev", veth.a()])
            .contains("198.51.100.1/24")
    );
    assert!(ping(&a, &["198.51.100.2"]), "a cannot ping b over IPv4");
    assert!(ping(&b, &["198.51.100.1"]), "b cannot ping a over IPv4");
    assert!(ping(&a, &["fd42::2"]), "a cannot ping b over IPv6");
    assert!(ping(&b, &["fd42::1"]), "b cannot ping a over IPv6");
    // No default route: anything off the cable is unreachable, not leaked.
    assert!(
        !ping(&a, &["203.0.113.9"]),
        "a namespace reached an address nobody holds"
    );
}

#[test]
fn tcp_connects_across_the_cable_from_entered_threads() {
    if !require_root("tcp_connects_across_the_cable_from_entered_threads") {
        return;
    }
    let (a, b, _veth) = cable();
    for (listen, server) in [
        ("198.51.100.1:0", "198.51.100.1"),
        ("[fd42::1]:0", "fd42::1"),
    ] {
        let listener = a.enter(|| TcpListener::bind(listen).expect("bind inside a"));
        let port = listener.local_addr().unwrap().port();
        let client = b.enter(|| TcpStream::connect((server, port)).expect("connect from b"));
        let (accepted, peer) = listener.accept().expect("accept");
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(accepted.local_addr().unwrap(), client.peer_addr().unwrap());
    }
}

#[test]
fn entered_sockets_live_in_the_namespace() {
    if !require_root("entered_sockets_live_in_the_namespace") {
        return;
    }
    let ns = Netns::new("enter");
    // Returned from the thread that joined the namespace, the listener is
    // used (and checked) from this thread, which never left the host's.
    let listener = ns.enter(|| TcpListener::bind("127.0.0.1:0").expect("bind"));
    let port = listener.local_addr().unwrap().port();
    let inode = nix::sys::stat::fstat(&listener).expect("fstat").st_ino;
    let mark = format!("ino:{inode} ");

    let inside = String::from_utf8(ns.run("ss", &["-tlneH"]).stdout).unwrap();
    assert!(
        inside.contains(&format!("127.0.0.1:{port} ")) && inside.contains(&mark),
        "listener (port {port}, {mark}) missing from ss in {}:\n{inside}",
        ns.name()
    );
    let host = Command::new("ss")
        .args(["-tlneH"])
        .output()
        .expect("ss on the host");
    let host = String::from_utf8(host.stdout).unwrap();
    assert!(
        !host.contains(&mark),
        "listener {mark} leaked into the host namespace:\n{host}"
    );
}

#[test]
fn namespace_and_its_processes_are_gone_after_drop() {
    if !require_root("namespace_and_its_processes_are_gone_after_drop") {
        return;
    }
    let ns = Netns::new("drop");
    let name = ns.name().to_owned();
    assert!(ns.path().exists() && netns_listed(&name));
    // An unguarded process: the namespace's drop must still kill it.
    let stray = ns.command("sleep").arg("60").spawn().expect("spawn sleep");
    let mut stray = ChildGuard::adopt("stray sleep", stray);
    wait_until(
        "sleep to enter the namespace",
        Duration::from_secs(5),
        || ns.pids().contains(&(stray.id() as i32)),
    );
    drop(ns);
    assert!(!Path::new("/run/netns").join(&name).exists());
    assert!(!netns_listed(&name), "{name} still listed by ip netns");
    let status = stray.wait_timeout(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| !s.success()),
        "process in {name} survived: {status:?}"
    );
}

#[test]
fn namespace_is_gone_after_a_panicking_test() {
    if !require_root("namespace_is_gone_after_a_panicking_test") {
        return;
    }
    let mut names = Vec::new();
    for panic_inside_enter in [false, true] {
        let (tx, rx) = std::sync::mpsc::channel();
        let outcome = std::panic::catch_unwind(|| {
            let ns = Netns::new("panic");
            tx.send(ns.name().to_owned()).unwrap();
            if panic_inside_enter {
                ns.enter(|| panic!("deliberate panic inside the namespace"));
            }
            panic!("deliberate panic with a namespace alive");
        });
        let message = outcome.expect_err("the closure panics");
        let message = message.downcast_ref::<&str>().copied().unwrap_or("");
        let expected = if panic_inside_enter {
            "inside the namespace"
        } else {
            "alive"
        };
        assert!(
            message.ends_with(expected),
            "wrong panic propagated: {message:?}"
        );
        names.push(rx.recv().unwrap());
    }
    for name in names {
        assert!(
            !Path::new("/run/netns").join(&name).exists(),
            "{name} left behind"
        );
    }
}

#[test]
fn spawned_process_is_killed_on_drop_and_its_output_captured() {
    if !require_root("spawned_process_is_killed_on_drop_and_its_output_captured") {
        return;
    }
    let ns = Netns::new("spawn");
    let server = ns.spawn("sleep", &["60"]);
    let pid = server.id();
    assert!(
        ns.pids().contains(&(pid as i32)),
        "spawned process is not inside {}",
        ns.name()
    );
    drop(server);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} still exists after drop"
    );

    let talker = ns.spawn("sh", &["-c", "echo to-stdout; echo to-stderr >&2; exit 3"]);
    let out = talker.finish(Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, b"to-stdout\n");
    assert_eq!(out.stderr, b"to-stderr\n");
}

#[test]
fn checked_run_panics_with_stderr() {
    if !require_root("checked_run_panics_with_stderr") {
        return;
    }
    let ns = Netns::new("check");
    let failure =
        std::panic::catch_unwind(|| ns.run("sh", &["-c", "echo why-it-failed >&2; exit 1"]));
    let message = failure.expect_err("non-zero exit must panic");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("why-it-failed"),
        "stderr missing from {message:?}"
    );
}

#[test]
fn sysctl_applies_to_the_namespace_only() {
    if !require_root("sysctl_applies_to_the_namespace_only") {
        return;
    }
    let host_before = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    let ns = Netns::new("sysctl");
    ns.sysctl("net.core.somaxconn", "4");
    ns.sysctl("net.ipv4.ip_local_port_range", "40000 40009");
    let inside =
        String::from_utf8(ns.run("cat", &["/proc/sys/net/core/somaxconn"]).stdout).unwrap();
    assert_eq!(inside.trim(), "4");
    let range = ns
        .run("cat", &["/proc/sys/net/ipv4/ip_local_port_range"])
        .stdout;
    assert_eq!(
        String::from_utf8(range)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["40000", "40009"]
    );
    let host_after = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    assert_eq!(host_before, host_after, "the host's somaxconn changed");
}

#[test]
fn veth_mtu_limits_unfragmented_packets() {
    if !require_root("veth_mtu_limits_unfragmented_packets") {
        return;
    }
    let (a, _b, veth) = cable();
    veth.set_mtu(1400);
    // 1372 bytes of payload + 8 ICMP + 20 IPv4 = 1400.
    assert!(
        ping(&a, &["-M", "do", "-s", "1372", "198.51.100.2"]),
        "1400-byte packet did not pass"
    );
    assert!(
        !ping(&a, &["-M", "do", "-s", "1373", "198.51.100.2"]),
        "1401-byte packet passed MTU 1400"
    );
}

#[test]
fn names_are_unique_across_parallel_namespaces() {
    if !require_root("names_are_unique_across_parallel_namespaces") {
        return;
    }
    let all: Vec<Netns> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| Netns::new("par"))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut names: Vec<&str> = all.iter().map(Netns::name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 4);
    assert!(all.iter().all(|ns| ns.path().exists()));
}

#[test]
fn wait_until_returns_when_true_and_panics_on_timeout() {
    let mut polls = 0;
    wait_until("the third poll", Duration::from_secs(5), || {
        polls += 1;
        polls == 3
    });
    assert_eq!(polls, 3);
    let timeout =
        std::panic::catch_unwind(|| wait_until("never", Duration::from_millis(50), || false));
    let message = timeout.expect_err("must time out");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("waiting for never"), "{message:?}");
}

#[test]
fn agent_bin_is_this_workspace_agent() {
    let out = Command::new(agent::agent_bin())
        .arg("--version")
        .output()
        .expect("run the agent");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("netdiag-agent {}\n", env!("CARGO_PKG_VERSION"))
    );
}
