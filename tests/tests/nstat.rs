//! `netdiag-agent nstat` against iproute2's nstat 6.1 as the oracle, and
//! against /proc itself.
//!
//! - Fixture runs (no root): both tools read the same made-up /proc
//!   (`PROC_ROOT`) through a sequence of states and history operations;
//!   stdout, stderr, exit code and the history file must agree byte for
//!   byte at every step.
//! - A fresh namespace: `nstat -az` and friends print exactly what the real
//!   nstat prints, every value equals /proc's, and increments agree after
//!   traffic.
//! - A listen-queue overflow provoked in a namespace shows in `--drops`.
//! - Conntrack's per-CPU hex statistics, summed, equal the kernel's file.
//! - Bad input, a closed stdout, and a history file uid 65532 cannot write.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use netdiag_tests::netns::Netns;
use netdiag_tests::process::{self, DEFAULT_TIMEOUT};
use netdiag_tests::{TempDir, agent, require_root, running_in_ci};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

/// Counters nstat leaves out (misc/nstat.c `useless_numbers`).
const USELESS_NUMBERS: &[&str] = &[
    "IpForwarding",
    "IpDefaultTTL",
    "TcpRtoAlgorithm",
    "TcpRtoMin",
    "TcpRtoMax",
    "TcpMaxConn",
    "TcpCurrEstab",
];

fn agent_path() -> String {
    agent::agent_bin()
        .to_str()
        .expect("agent path is UTF-8")
        .to_owned()
}

/// Whether iproute2's nstat can run here; under CI its absence fails.
fn have_real_nstat(test: &str) -> bool {
    let ok = Command::new("nstat")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !running_in_ci(),
            "{test}: iproute2's nstat is missing and CI=true forbids skipping"
        );
        eprintln!("SKIPPED {test}: iproute2's nstat (the oracle) is not installed");
    }
    ok
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `(name, value)` of every counter line of nstat's text output.
fn counters(output: &str) -> Vec<(String, u64)> {
    output
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next().expect("a name").to_owned();
            let value = f
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no value in {l:?}"));
            (name, value)
        })
        .collect()
}

fn value_of(output: &str, name: &str) -> Option<u64> {
    counters(output)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// Runs `cmd` with a bounded time and returns its output, any exit status.
fn output(cmd: &mut Command) -> Output {
    process::output(cmd, DEFAULT_TIMEOUT)
}

/// The real nstat and the agent, each with its own history file.
struct Pair {
    dir: TempDir,
    /// Extra environment for both (PROC_ROOT for fixtures).
    env: Vec<(String, String)>,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        Pair {
            dir: TempDir::new(tag),
            env: Vec::new(),
        }
    }

    fn real_history(&self) -> PathBuf {
        self.dir.path().join("real.hist")
    }

    fn agent_history(&self) -> PathBuf {
        self.dir.path().join("agent.hist")
    }

    fn real(&self, ns: Option<&Netns>, args: &[&str]) -> Output {
        let mut cmd = match ns {
            Some(ns) => ns.command("nstat"),
            None => Command::new("nstat"),
        };
        cmd.args(args).env("NSTAT_HISTORY", self.real_history());
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        output(&mut cmd)
    }

    fn agent(&self, ns: Option<&Netns>, args: &[&str]) -> Output {
        let agent = agent_path();
        let mut cmd = match ns {
            Some(ns) => ns.command(&agent),
            None => Command::new(&agent),
        };
        cmd.arg("nstat")
            .args(args)
            .env("NSTAT_HISTORY", self.agent_history());
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        output(&mut cmd)
    }

    /// Runs both with `args` and asserts identical stdout, stderr and exit
    /// code; returns the agent's stdout.
    fn same(&self, ns: Option<&Netns>, args: &[&str]) -> String {
        let real = self.real(ns, args);
        let ours = self.agent(ns, args);
        assert_eq!(
            text(&ours.stdout),
            text(&real.stdout),
            "stdout of nstat {args:?} differs (left: agent, right: iproute2)"
        );
        assert_eq!(
            text(&ours.stderr),
            text(&real.stderr),
            "stderr of nstat {args:?} differs (left: agent, right: iproute2)"
        );
        assert_eq!(
            ours.status.code(),
            real.status.code(),
            "exit code of nstat {args:?}"
        );
        text(&ours.stdout)
    }

    /// The two history files, with the agent's conntrack lines (which the
    /// real nstat does not read) left out.
    fn assert_same_history(&self, after: &str) {
        let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
        let ours: String = read(&self.agent_history())
            .lines()
            .filter(|l| !l.starts_with("Conntrack"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            ours,
            read(&self.real_history()),
            "history files differ after {after} (left: agent, right: iproute2)"
        );
    }
}

// ---------------------------------------------------------------------------
// Fixture runs: the history rules, step by step, without root.

/// A made-up /proc/net in nstat's formats, with values to change between
/// steps.
struct ProcFixture {
    tables: Vec<(&'static str, Vec<(&'static str, u64)>)>,
    snmp6: Vec<(&'static str, u64)>,
    sctp: Vec<(&'static str, u64)>,
}

impl ProcFixture {
    fn new() -> ProcFixture {
        ProcFixture {
            tables: vec![
                (
                    "Ip",
                    vec![
                        ("Forwarding", 2),
                        ("DefaultTTL", 64),
                        ("InReceives", 1000),
                        ("InHdrErrors", 0),
                        ("InDiscards", 0),
                        ("OutRequests", 900),
                    ],
                ),
                (
                    "Tcp",
                    vec![
                        ("RtoAlgorithm", 1),
                        ("RtoMin", 200),
                        ("RtoMax", 120000),
                        ("MaxConn", u64::MAX),
                        ("ActiveOpens", 10),
                        ("CurrEstab", 3),
                        ("RetransSegs", 5),
                    ],
                ),
                ("Udp", vec![("InDatagrams", 50), ("RcvbufErrors", 0)]),
                (
                    "TcpExt",
                    vec![("ListenOverflows", 7), ("ListenDrops", 7), ("TCPHPHits", 0)],
                ),
            ],
            snmp6: vec![("Ip6InReceives", 70), ("Udp6InErrors", 0)],
            sctp: vec![("SctpCurrEstab", 0), ("SctpActiveEstabs", 4)],
        }
    }

    fn set(&mut self, name: &str, value: u64) {
        for (table, fields) in &mut self.tables {
            for (field, v) in fields.iter_mut() {
                if format!("{table}{field}") == name {
                    *v = value;
                    return;
                }
            }
        }
        for (n, v) in self.snmp6.iter_mut().chain(self.sctp.iter_mut()) {
            if *n == name {
                *v = value;
                return;
            }
        }
        panic!("no fixture counter {name}");
    }

    /// Writes `root/net/{snmp,netstat,snmp6,sctp/snmp}`.
    fn write(&self, root: &Path) {
        let net = root.join("net");
        fs::create_dir_all(net.join("sctp")).unwrap();
        let paired = |tables: &[(&str, Vec<(&str, u64)>)]| {
            let mut s = String::new();
            for (table, fields) in tables {
                let names: Vec<&str> = fields.iter().map(|f| f.0).collect();
                let values: Vec<String> = fields
                    .iter()
                    .map(|&(name, v)| {
                        // The kernel prints MaxConn as a signed -1.
                        if name == "MaxConn" && v == u64::MAX {
                            "-1".to_owned()
                        } else {
                            v.to_string()
                        }
                    })
                    .collect();
                s += &format!(
                    "{table}: {}\n{table}: {}\n",
                    names.join(" "),
                    values.join(" ")
                );
            }
            s
        };
        // TcpExt and IpExt live in /proc/net/netstat, the rest in snmp.
        let (netstat, snmp): (Vec<_>, Vec<_>) = self
            .tables
            .iter()
            .cloned()
            .partition(|(t, _)| t.ends_with("Ext"));
        fs::write(net.join("snmp"), paired(&snmp)).unwrap();
        fs::write(net.join("netstat"), paired(&netstat)).unwrap();
        let lines = |pairs: &[(&str, u64)]| {
            pairs
                .iter()
                .map(|(n, v)| format!("{n:<32}{v}\n"))
                .collect::<String>()
        };
        fs::write(net.join("snmp6"), lines(&self.snmp6)).unwrap();
        fs::write(net.join("sctp").join("snmp"), lines(&self.sctp)).unwrap();
    }
}

#[test]
fn fixture_runs_match_real_nstat_step_by_step() {
    if !have_real_nstat("fixture_runs_match_real_nstat_step_by_step") {
        return;
    }
    let mut pair = Pair::new("nstat-fix");
    let root = pair.dir.path().join("proc");
    pair.env
        .push(("PROC_ROOT".into(), root.to_str().unwrap().to_owned()));
    let mut state = ProcFixture::new();
    state.write(&root);

    // No history yet: absolute values, and both write their history.
    let first = pair.same(None, &[]);
    assert!(first.starts_with("#kernel\nSctpActiveEstabs "), "{first}");
    assert!(!first.contains("TcpCurrEstab") && !first.contains("IpForwarding"));
    pair.assert_same_history("the first run");

    for (step, args) in [
        ("-az", &["-az"][..]),
        ("-a", &["-a"]),
        ("-azj", &["-azj"]),
        ("-azjp", &["-azjp"]),
        ("patterns", &["-az", "Ip*", "*Estabs", "Udp[6]*"]),
    ] {
        pair.same(None, args);
        pair.assert_same_history(step);
    }

    // Growth: increments.
    state.set("IpInReceives", 1010);
    state.set("TcpRetransSegs", 8);
    state.set("Ip6InReceives", 75);
    state.write(&root);
    let incr = pair.same(None, &[]);
    assert_eq!(value_of(&incr, "IpInReceives"), Some(10), "{incr}");
    assert_eq!(value_of(&incr, "TcpRetransSegs"), Some(3));
    pair.assert_same_history("increments");

    // A counter that went backwards: "(overflow)", visible with -z only.
    state.set("IpOutRequests", 100);
    state.write(&root);
    let z = pair.same(None, &["-z"]);
    assert!(z.contains("(overflow)"), "{z}");
    pair.assert_same_history("overflow");

    // A pattern run advances only what it shows.
    state.set("IpInReceives", 1020);
    state.set("UdpInDatagrams", 60);
    state.write(&root);
    pair.same(None, &["Udp*"]);
    pair.assert_same_history("a pattern run");
    let rest = pair.same(None, &[]);
    assert_eq!(value_of(&rest, "IpInReceives"), Some(10), "{rest}");
    pair.assert_same_history("the run after a pattern run");

    // -s shows but does not record; -n records but does not show.
    state.set("IpInReceives", 1030);
    state.write(&root);
    pair.same(None, &["-s"]);
    pair.assert_same_history("-s");
    assert_eq!(pair.same(None, &["-n"]), "");
    pair.assert_same_history("-n");
    pair.same(None, &["-j"]);
    pair.same(None, &["-a", "IpIn*"]);
    pair.assert_same_history("-a with a pattern");
    pair.same(None, &["-a", "-s"]);
    pair.assert_same_history("-a -s");
    pair.same(None, &["-r"]);
    pair.assert_same_history("-r");

    // A history nstat's daemon wrote: stale, ignored with nstat's notice.
    let daemon = "#1234.5678 sampling_interval=1 time_const=60\nIpInReceives 1 0.0\n";
    fs::write(pair.real_history(), daemon).unwrap();
    fs::write(pair.agent_history(), daemon).unwrap();
    pair.same(None, &["IpIn*"]);
    pair.assert_same_history("a stale history");

    // A history from before the last boot: aged out.
    for p in [pair.real_history(), pair.agent_history()] {
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1))
            .unwrap();
    }
    pair.same(None, &[]);
    pair.assert_same_history("an aged-out history");
}

#[test]
fn fixture_corrupt_history_is_one_error_line() {
    let dir = TempDir::new("nstat-bad");
    let history = dir.path().join("h");
    fs::write(&history, "#kernel\ngarbage\n").unwrap();
    let out = output(
        Command::new(agent_path())
            .args(["nstat"])
            .env("NSTAT_HISTORY", &history),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "nstat: history file {} line 2 is not 'NAME VALUE [RATE]'",
            history.display()
        )),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // -r is the way out the message names.
    let out = output(
        Command::new(agent_path())
            .args(["nstat", "-r"])
            .env("NSTAT_HISTORY", &history),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

// ---------------------------------------------------------------------------
// A fresh namespace: the real kernel's counters.

/// The namespace's /proc/net files, parsed here independently of the agent:
/// paired tables for snmp/netstat, name/value lines for snmp6.
fn proc_counters(ns: &Netns) -> BTreeMap<String, u64> {
    let cat = |file: &str| text(&ns.run("cat", &[file]).stdout);
    let mut all = BTreeMap::new();
    for file in ["/proc/net/snmp", "/proc/net/netstat"] {
        let content = cat(file);
        let lines: Vec<&str> = content.lines().collect();
        for pair in lines.chunks(2) {
            let header: Vec<&str> = pair[0].split_whitespace().collect();
            let values: Vec<&str> = pair[1].split_whitespace().collect();
            let table = header[0].trim_end_matches(':');
            for (name, value) in header[1..].iter().zip(&values[1..]) {
                let value = value
                    .parse::<u64>()
                    .unwrap_or_else(|_| value.parse::<i64>().unwrap() as u64);
                all.insert(format!("{table}{name}"), value);
            }
        }
    }
    for line in cat("/proc/net/snmp6").lines() {
        let mut f = line.split_whitespace();
        if let (Some(n), Some(v)) = (f.next(), f.next()) {
            all.insert(n.to_owned(), v.parse().unwrap());
        }
    }
    for useless in USELESS_NUMBERS {
        all.remove(*useless);
    }
    all
}

#[test]
fn fresh_namespace_matches_real_nstat_and_proc() {
    if !require_root("fresh_namespace_matches_real_nstat_and_proc")
        || !have_real_nstat("fresh_namespace_matches_real_nstat_and_proc")
    {
        return;
    }
    let ns = Netns::new("nstat");
    let pair = Pair::new("nstat-ns");

    // Nothing runs in the namespace, so no counter moves between the reads:
    // the outputs must be identical, not merely close.
    let az = pair.same(Some(&ns), &["-az"]);
    pair.assert_same_history("-az");
    let proc = proc_counters(&ns);
    let printed = counters(&az);
    assert_eq!(
        printed.len(),
        proc.len(),
        "the agent printed {} counters, /proc has {}",
        printed.len(),
        proc.len()
    );
    for (name, value) in &printed {
        assert_eq!(proc.get(name), Some(value), "{name} differs from /proc");
    }
    for args in [
        &["-a"][..],
        &["-azj"],
        &["-azjp"],
        &["-az", "TcpExt*", "Udp*Errors"],
    ] {
        pair.same(Some(&ns), args);
    }

    // Increments over real traffic: both print what the pings added.
    pair.same(Some(&ns), &["-n"]);
    pair.assert_same_history("-n");
    ns.run("ping", &["-n", "-q", "-c", "3", "-i", "0.2", "127.0.0.1"]);
    let incr = pair.same(Some(&ns), &[]);
    assert_eq!(value_of(&incr, "IcmpInEchos"), Some(3), "{incr}");
    pair.assert_same_history("increments after ping");
}

// ---------------------------------------------------------------------------
// --drops: a listen queue overflow.

#[test]
fn drops_view_shows_listen_overflows_rising() {
    if !require_root("drops_view_shows_listen_overflows_rising")
        || !have_real_nstat("drops_view_shows_listen_overflows_rising")
    {
        return;
    }
    let ns = Netns::new("ovfl");
    ns.sysctl("net.core.somaxconn", "2");
    let pair = Pair::new("nstat-ovfl");

    // A listener that never accepts: its queue holds somaxconn + 1.
    let listener = ns.enter(|| TcpListener::bind("127.0.0.1:0").expect("bind in the namespace"));
    let addr: SocketAddr = listener.local_addr().unwrap();

    let before = pair.agent(Some(&ns), &["--drops", "-az"]);
    assert!(before.status.success(), "{}", text(&before.stderr));
    let before = text(&before.stdout);
    assert_eq!(
        value_of(&before, "TcpExtListenOverflows"),
        Some(0),
        "{before}"
    );
    // Every line of the drops view carries a meaning after the rate column.
    for line in before.lines().skip(1) {
        assert!(
            line.len() > 56 && line[48..].starts_with("   0.0  "),
            "{line:?}"
        );
    }
    // The first increments run records the history.
    let first = pair.agent(Some(&ns), &["--drops"]);
    assert!(first.status.success());

    // More clients than the queue holds; the extra SYNs are dropped and
    // their connects time out (well before the first SYN retransmit at 1 s).
    const CLIENTS: usize = 8;
    let clients: Vec<TcpStream> = ns.enter(|| {
        (0..CLIENTS)
            .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(250)).ok())
            .collect()
    });
    assert!(
        clients.len() < CLIENTS,
        "every client connected: the backlog was not the 2 asked for"
    );
    let dropped = (CLIENTS - clients.len()) as u64;

    let after = pair.agent(Some(&ns), &["--drops"]);
    assert!(after.status.success(), "{}", text(&after.stderr));
    let after = text(&after.stdout);
    let increment = value_of(&after, "TcpExtListenOverflows")
        .unwrap_or_else(|| panic!("no TcpExtListenOverflows in --drops:\n{after}"));
    assert!(
        increment >= dropped,
        "ListenOverflows grew by {increment}, {dropped} SYNs were refused:\n{after}"
    );
    let line = after
        .lines()
        .find(|l| l.starts_with("TcpExtListenOverflows "))
        .unwrap();
    assert!(line.contains("accept queue was full"), "{line}");
    assert!(
        value_of(&after, "TcpExtListenDrops").is_some_and(|d| d >= increment),
        "{after}"
    );
    // Counters that are not drops stay out of the view.
    assert!(value_of(&after, "TcpActiveOpens").is_none(), "{after}");

    // The real nstat agrees on the value.
    let absolute = text(&pair.agent(Some(&ns), &["--drops", "-az"]).stdout);
    let real = text(
        &pair
            .real(Some(&ns), &["-az", "TcpExtListenOverflows"])
            .stdout,
    );
    let total = value_of(&absolute, "TcpExtListenOverflows").unwrap();
    assert_eq!(value_of(&real, "TcpExtListenOverflows"), Some(total));
    assert_eq!(total, increment, "a fresh namespace started at 0");

    // -o json: the same value, with its meaning.
    let json = pair.agent(Some(&ns), &["--drops", "-a", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("-o json is JSON");
    assert_eq!(doc["values"], "absolute");
    let entry = doc["counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "TcpExtListenOverflows")
        .expect("TcpExtListenOverflows in -o json");
    assert_eq!(entry["value"], total);
    assert_eq!(entry["source"], "netstat");
    assert!(entry["meaning"].as_str().unwrap().contains("accept queue"));
    drop(clients);
    drop(listener);
}

/// Every nstat counter the drops view names exists in this kernel (catches
/// a misspelt name, which would silently never show).
#[test]
fn drops_view_names_exist_in_the_kernel() {
    let dir = TempDir::new("nstat-dn");
    let out = agent_plain(&dir, &["--drops", "-a", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shown: Vec<&str> = doc["counters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // The view's own list, from the agent's source.
    let source =
        fs::read_to_string(netdiag_tests::workspace_root().join("debug-image/src/nstat/drops.rs"))
            .unwrap();
    let listed: Vec<&str> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("(\""))
        .filter_map(|l| l.split('"').next())
        .filter(|n| !n.starts_with("Conntrack"))
        .collect();
    assert!(listed.len() > 50, "could not read the drops list");
    let missing: Vec<&&str> = listed.iter().filter(|n| !shown.contains(n)).collect();
    assert!(missing.is_empty(), "not in this kernel: {missing:?}");
}

// ---------------------------------------------------------------------------
// Conntrack statistics.

#[test]
fn conntrack_statistics_are_summed_over_cpus() {
    if !require_root("conntrack_statistics_are_summed_over_cpus") {
        return;
    }
    let ns = Netns::new("ct");
    // A rule that uses conntrack turns tracking on in the namespace; the
    // raw-table NOTRACK makes datagrams to port 9 untracked, so the ICMP
    // port-unreachable they cause refers to no connection: conntrack counts
    // it in icmp_error.
    ns.run(
        "iptables",
        &["-A", "INPUT", "-m", "conntrack", "--ctstate", "INVALID"],
    );
    ns.run(
        "iptables",
        &[
            "-t", "raw", "-A", "OUTPUT", "-p", "udp", "--dport", "9", "-j", "NOTRACK",
        ],
    );
    ns.run("ping", &["-n", "-q", "-c", "1", "127.0.0.1"]);
    let read_file = || text(&ns.run("cat", &["/proc/net/stat/nf_conntrack"]).stdout);
    let cpu_rows = read_file().lines().count() - 1;
    // Send from each CPU in turn (loopback handles a datagram, and so counts
    // its ICMP error, on the sending CPU): the counts land on several rows,
    // so only a real sum over CPUs gives the right total.
    let pinned = ns.enter(|| {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut pinned = 0;
        for cpu in 0..cpu_rows.min(4) {
            let mut set = CpuSet::new();
            if set.set(cpu).is_err() || sched_setaffinity(Pid::from_raw(0), &set).is_err() {
                continue; // an offline CPU
            }
            pinned += 1;
            for _ in 0..3 {
                socket.send_to(b"x", "127.0.0.1:9").unwrap();
            }
        }
        pinned
    });
    assert!(pinned >= 1, "could not run on any CPU");
    let dir = TempDir::new("nstat-ct");
    let file = read_file();
    let out = output(
        ns.command(&agent_path())
            .args(["nstat", "-axz", "Conntrack*"])
            .env("NSTAT_HISTORY", dir.path().join("h")),
    );
    assert_eq!(file, read_file(), "conntrack moved during the test");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: BTreeMap<String, u64> = counters(&text(&out.stdout)).into_iter().collect();

    // The oracle: the kernel's file, summed here.
    let mut lines = file.lines();
    let columns: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let rows: Vec<Vec<u64>> = lines
        .map(|l| {
            l.split_whitespace()
                .map(|h| u64::from_str_radix(h, 16).unwrap())
                .collect()
        })
        .collect();
    assert!(!rows.is_empty());
    assert_eq!(printed.len(), columns.len(), "{printed:?}");
    for (i, column) in columns.iter().enumerate() {
        let name = format!(
            "Conntrack{}",
            column
                .split('_')
                .map(|w| w[..1].to_uppercase() + &w[1..])
                .collect::<String>()
        );
        let expected = if *column == "entries" {
            rows[0][i]
        } else {
            rows.iter().map(|r| r[i]).sum()
        };
        assert_eq!(printed.get(&name), Some(&expected), "{name}");
    }
    assert!(
        printed["ConntrackIcmpError"] >= 3 * pinned as u64,
        "{printed:?}"
    );
    let icmp_error = columns.iter().position(|c| *c == "icmp_error").unwrap();
    let rows_with_errors = rows.iter().filter(|r| r[icmp_error] > 0).count();
    assert!(
        rows_with_errors >= pinned.min(2),
        "errors on {rows_with_errors} CPU rows after sending from {pinned} CPUs:\n{file}"
    );
    assert!(printed["ConntrackEntries"] >= 1, "{printed:?}");

    // Its drop counters are in --drops without -x; its others are not.
    let drops = text(
        &output(
            ns.command(&agent_path())
                .args(["nstat", "--drops", "-az", "Conntrack*"])
                .env("NSTAT_HISTORY", dir.path().join("h")),
        )
        .stdout,
    );
    let names: Vec<String> = counters(&drops).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "ConntrackInvalid",
            "ConntrackChainlength",
            "ConntrackInsertFailed",
            "ConntrackDrop",
            "ConntrackEarlyDrop"
        ],
        "{drops}"
    );
}

// ---------------------------------------------------------------------------
// Errors, closed pipes, unusable history.

/// Runs the agent in the host namespace (it only reads /proc) with a
/// throwaway history.
fn agent_plain(dir: &TempDir, args: &[&str]) -> Output {
    output(
        Command::new(agent_path())
            .arg("nstat")
            .args(args)
            .env("NSTAT_HISTORY", dir.path().join("h")),
    )
}

#[test]
fn bad_input_is_one_error_line_and_exit_1() {
    let dir = TempDir::new("nstat-err");
    for (args, expected) in [
        (
            &["--bogus"][..],
            "nstat: unexpected argument '--bogus' found; see 'nstat --help'",
        ),
        (
            &["-az", "Tcp[Ext"],
            "nstat: bad pattern \"Tcp[Ext\": '[' is never closed by ']' (write \\[ for a literal '['); \
             patterns are shell globs such as 'TcpExt*' or 'Udp*Errors'",
        ),
        (
            &["Ip\\"],
            "nstat: bad pattern \"Ip\\\": it ends with a lone '\\'",
        ),
        (&["-d", "10"], "nstat: -d/--scan 10 is nstat's daemon mode"),
        (
            &["-j", "-o", "json"],
            "nstat: the argument '--json' cannot be used with",
        ),
    ] {
        let out = agent_plain(&dir, args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "nstat {args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "nstat {args:?}: {err}");
        assert!(err.starts_with(expected), "nstat {args:?}: {err}");
        assert!(out.stdout.is_empty(), "nstat {args:?} printed to stdout");
    }
    // Nothing was read or written before the arguments were checked.
    assert!(!dir.path().join("h").exists());
}

#[test]
fn closed_stdout_is_a_quiet_success() {
    let dir = TempDir::new("nstat-pipe");
    // The literal shell form.
    let out = output(
        Command::new("bash")
            .args([
                "-c",
                "set -o pipefail; \"$0\" nstat -az | head -1",
                &agent_path(),
            ])
            .env("NSTAT_HISTORY", dir.path().join("h")),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "#kernel\n");
    assert_eq!(text(&out.stderr), "");

    // Deterministic: the reader is gone before the agent writes a byte, so
    // its first write fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = Command::new(agent_path())
        .args(["nstat", "-az"])
        .env("NSTAT_HISTORY", dir.path().join("h2"))
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = process::ChildGuard::adopt("agent nstat into a closed pipe", child);
    let mut stderr = String::new();
    guard
        .child_mut()
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = guard
        .wait_timeout(DEFAULT_TIMEOUT)
        .expect("the agent exits");
    assert!(status.success(), "exit {status}, stderr {stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn unwritable_tmp_for_uid_65532_falls_back_to_absolute_values() {
    if !require_root("unwritable_tmp_for_uid_65532_falls_back_to_absolute_values")
        || !have_real_nstat("unwritable_tmp_for_uid_65532_falls_back_to_absolute_values")
    {
        return;
    }
    let ns = Netns::new("ro");
    // uid 65532 may not be able to reach the build directory (a checkout
    // under /root): run a world-executable copy.
    let dir = TempDir::new("nstat-ro");
    let agent = dir.path().join("netdiag-agent");
    fs::copy(agent_path(), &agent).unwrap();
    let agent = agent.to_str().unwrap().to_owned();
    // A scratch container's situation: distroless's nonroot uid and a /tmp
    // it cannot write (here /tmp made read-only in a private mount
    // namespace; its contents, the agent's copy included, stay visible).
    let as_nonroot = |args: &str| {
        let script = format!(
            "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp && \
             exec setpriv --reuid=65532 --regid=65532 --clear-groups \"$0\" nstat {args}"
        );
        output(
            ns.command("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c", &script])
                .arg(&agent)
                .env_remove("NSTAT_HISTORY"),
        )
    };
    let out = as_nonroot("-z");
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err,
        "nstat: cannot use history file /tmp/.nstat.u65532 (Read-only file system); \
         showing absolute values, as with -a, and no history is kept\n"
    );
    let pair = Pair::new("nstat-ro");
    let real = pair.real(Some(&ns), &["-az"]);
    assert_eq!(text(&out.stdout), text(&real.stdout));

    // -n has nothing to do without a history: that is an error.
    let out = as_nonroot("-n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("nstat: cannot use history file /tmp/.nstat.u65532"),
        "{}",
        text(&out.stderr)
    );
}
