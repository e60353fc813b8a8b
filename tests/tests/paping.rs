//! `netdiag-agent paping` in a pair of namespaces, with the network made
//! to misbehave on purpose and independent measurements as the oracles.
//!
//! - Every outcome by cause: connected, refused, timed out (within the set
//!   timeout), no route, reset after connect.
//! - Loss: iptables drops a fraction p of SYNs at random; over 250 probes
//!   the reported failures must equal the rule's drop counter, and the
//!   loss fall inside the exact 99% binomial interval (measured again once
//!   when iptables' own draw falls outside it).
//! - Delay: an NFQUEUE program ([`DelayQueue`], the `nfq` crate) holds every
//!   SYN for 20 ms and records how long it really held each; the reported
//!   median must be within 0.5 ms of that true delay plus the median measured
//!   without it, and what paping measures beyond the true delay must agree
//!   with hping3's SYN round trips on the same path.
//! - The module doc's promise: no TIME-WAIT left on either end, a new
//!   source port for every probe.
//! - Stopping by count, SIGINT, SIGTERM and stdin EOF prints the summary;
//!   exit 1 only when every probe failed; bad input is one line.

use std::collections::{BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netdiag_tests::netns::Netns;
use netdiag_tests::process::{ChildGuard, DEFAULT_TIMEOUT, wait_until};
use netdiag_tests::require_root;
use nix::sys::signal::Signal;
use nix::sys::socket::{setsockopt, sockopt};
use serde_json::Value;

use super::nc::{Input, NetnsEtc, SERVER, agent_path, have, pair, run};

fn paping(ns: &Netns) -> Command {
    let mut cmd = ns.command(&agent_path());
    cmd.arg("paping");
    cmd
}

/// Runs `paping args... -o json` and returns its events (probes, then the
/// summary last) and exit code.
fn paping_json(ns: &Netns, args: &[&str]) -> (Vec<Value>, Option<i32>) {
    let mut cmd = paping(ns);
    cmd.args(args).args(["-o", "json"]);
    let out = run(cmd, Input::Null, DEFAULT_TIMEOUT);
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        events.last().is_some_and(|e| e["type"] == "summary"),
        "paping {args:?}: no summary; stderr: {}",
        out.stderr
    );
    (events, out.status.code())
}

fn probes(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["type"] == "probe").collect()
}

fn summary(events: &[Value]) -> &Value {
    events.last().unwrap()
}

/// Median of sorted-on-the-fly values (the lower middle, as nearest rank).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

/// A server in `ns` on `port` that accepts every connection, records the
/// client's port, and either holds the connection (the client closes it)
/// or resets it at once (SO_LINGER 0), like a proxy whose upstream failed.
struct AcceptLoop {
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    thread: Option<JoinHandle<()>>,
}

impl AcceptLoop {
    fn start(ns: &Netns, port: u16, reset: bool) -> AcceptLoop {
        let listener = ns.enter(|| TcpListener::bind((SERVER, port)).unwrap());
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let (s, p) = (stop.clone(), peers.clone());
        let thread = std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            let until = Instant::now() + DEFAULT_TIMEOUT;
            while !s.load(Ordering::Relaxed) && Instant::now() < until {
                match listener.accept() {
                    Ok((conn, peer)) => {
                        p.lock().unwrap().push(peer);
                        if reset {
                            setsockopt(
                                &conn.as_fd(),
                                sockopt::Linger,
                                &libc::linger {
                                    l_onoff: 1,
                                    l_linger: 0,
                                },
                            )
                            .unwrap();
                            drop(conn);
                        } else {
                            held.push(conn);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        AcceptLoop {
            stop,
            peers,
            thread: Some(thread),
        }
    }

    fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap().clone()
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn every_outcome_is_named_by_its_cause() {
    if !require_root("every_outcome_is_named_by_its_cause") {
        return;
    }
    let p = pair("ppout");
    let _open = AcceptLoop::start(&p.server, 8000, false);
    let _resetting = AcceptLoop::start(&p.server, 8002, true);
    p.server.run(
        "iptables",
        &["-A", "INPUT", "-p", "tcp", "--dport", "8003", "-j", "DROP"],
    );
    for (dest, port, timeout, result, code) in [
        (SERVER, "8000", "1000", "connected", 0),
        (SERVER, "8001", "1000", "refused", 1),
        (SERVER, "8002", "1000", "reset_after_connect", 1),
        (SERVER, "8003", "300", "timed_out", 1),
        ("203.0.113.9", "8000", "1000", "no_route", 1),
    ] {
        let args = [dest, "-p", port, "-c", "3", "-i", "300", "-t", timeout];
        let (events, exit) = paping_json(&p.client, &args);
        let probes = probes(&events);
        assert_eq!(probes.len(), 3, "{args:?}");
        for probe in &probes {
            assert_eq!(probe["result"], result, "{args:?}: {probe}");
            assert_eq!(probe["address"], dest);
        }
        assert_eq!(exit, Some(code), "{args:?}");
        let s = summary(&events);
        assert_eq!(s["attempted"], 3);
        let failed = if result == "connected" { 0 } else { 3 };
        assert_eq!(s["failed"], failed, "{s}");
        assert_eq!(s["connected"], 3 - failed, "{s}");
        if result != "connected" {
            assert_eq!(s["failures"][result], 3, "{s}");
            assert_eq!(s["time_us"], Value::Null);
        }
        match result {
            "timed_out" => {
                for probe in &probes {
                    let t = probe["time_us"].as_u64().unwrap();
                    assert!(
                        (300_000..450_000).contains(&t),
                        "timed out after {t} µs with -t 300"
                    );
                }
            }
            "no_route" => assert_eq!(probes[0]["error"], "Network is unreachable"),
            "connected" => {
                let t = &s["time_us"];
                for key in ["min", "max", "avg", "stddev", "p50", "p95", "p99", "jitter"] {
                    assert!(t[key].is_number(), "{key} in {s}");
                }
                assert!(t["min"].as_u64() <= t["p50"].as_u64());
                assert!(t["p50"].as_u64() <= t["max"].as_u64());
            }
            _ => {}
        }
    }

    // The text form: paping's lines and its summary, exit 0.
    let mut cmd = paping(&p.client);
    cmd.args([SERVER, "-p", "8000", "-c", "2", "-i", "10", "--nocolor"]);
    let out = run(cmd, Input::Null, DEFAULT_TIMEOUT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with(&format!("\nConnecting to {SERVER} on TCP 8000:\n\n")),
        "{text}"
    );
    let connected = format!("Connected to {SERVER}: time=");
    assert_eq!(
        text.lines().filter(|l| l.starts_with(&connected)).count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("\tAttempted = 2, Connected = 2, Failed = 0 (0.00%)\n"),
        "{text}"
    );
    assert!(text.contains("\tMinimum = "), "{text}");
    assert!(!text.contains('\x1b'), "--nocolor: {text}");

    // A name, from the namespace's /etc/hosts through the agent's resolver.
    let _etc = NetnsEtc::new(
        &p.client,
        &[
            ("hosts", &format!("{SERVER} web.netdiag.test\n")),
            (
                "resolv.conf",
                "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
            ),
        ],
    );
    let mut cmd = paping(&p.client);
    cmd.args(["web.netdiag.test", "-p", "8000", "-c", "1", "--nocolor"]);
    let out = run(cmd, Input::Null, DEFAULT_TIMEOUT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!(
            "\nConnecting to web.netdiag.test [{SERVER}] on TCP 8000:\n\n"
        )),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
}

/// The smallest `lo` and largest `hi` with P(X < lo) ≤ 0.005 and
/// P(X > hi) ≤ 0.005 for X ~ Binomial(n, p): the exact 99% interval.
fn binomial_99(n: u64, p: f64) -> (u64, u64) {
    let ln_pmf = |k: u64| {
        let ln_choose: f64 = (1..=k)
            .map(|i| ((n - k + i) as f64).ln() - (i as f64).ln())
            .sum();
        ln_choose + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln()
    };
    let pmf: Vec<f64> = (0..=n).map(|k| ln_pmf(k).exp()).collect();
    let mut below = 0.0;
    let mut lo = 0;
    while below + pmf[lo as usize] <= 0.005 {
        below += pmf[lo as usize];
        lo += 1;
    }
    let mut above = 0.0;
    let mut hi = n;
    while above + pmf[hi as usize] <= 0.005 {
        above += pmf[hi as usize];
        hi -= 1;
    }
    (lo, hi)
}

#[test]
fn binomial_interval_is_right() {
    // Known values: Binomial(250, 0.2) has mean 50, sd 6.3.
    let (lo, hi) = binomial_99(250, 0.2);
    assert!(
        (33..=36).contains(&lo) && (64..=67).contains(&hi),
        "{lo}..{hi}"
    );
    assert_eq!(binomial_99(10, 0.5), (1, 9));
}

#[test]
fn loss_of_random_syn_drops_lies_in_the_binomial_interval() {
    if !require_root("loss_of_random_syn_drops_lies_in_the_binomial_interval") {
        return;
    }
    let p = pair("pploss");
    let _server = AcceptLoop::start(&p.server, 8100, false);
    const N: u64 = 250;
    const P: f64 = 0.2;
    p.server.run(
        "iptables",
        &[
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            "8100",
            "--syn",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            "0.2",
            "-j",
            "DROP",
        ],
    );
    let (lo, hi) = binomial_99(N, P);
    // paping must count exactly the SYNs iptables dropped (its counter
    // says how many); those drops are random, and land outside the 99%
    // interval once in a hundred runs whatever paping does: then the
    // measurement is taken again, once.
    for attempt in 1..=2 {
        p.server.run("iptables", &["-Z", "INPUT"]);
        let started = Instant::now();
        let (events, exit) = paping_json(
            &p.client,
            &[
                SERVER,
                "-p",
                "8100",
                "-c",
                &N.to_string(),
                "-i",
                "2",
                "-t",
                "250",
            ],
        );
        let elapsed = started.elapsed();
        let dropped = dropped_by_rule(&p.server);
        let s = summary(&events);
        let failed = s["failed"].as_u64().unwrap();
        let _ = writeln!(
            std::io::stderr(),
            "paping loss: {failed}/{N} SYNs lost ({:.1}%), iptables dropped {dropped}, \
             99% interval for p={P}: {lo}..={hi}, run {elapsed:?}",
            s["loss_percent"].as_f64().unwrap()
        );
        assert_eq!(exit, Some(0));
        assert_eq!(s["attempted"], N);
        assert_eq!(probes(&events).len() as u64, N);
        // Only the dropped SYNs failed, and they failed as timeouts.
        assert_eq!(failed, dropped, "{s}");
        assert_eq!(s["failures"]["timed_out"], failed, "{s}");
        let reported = s["loss_percent"].as_f64().unwrap();
        assert!((reported - failed as f64 * 100.0 / N as f64).abs() < 1e-9);
        if (lo..=hi).contains(&failed) {
            return;
        }
        assert!(
            attempt < 2,
            "loss {failed}/{N} outside the 99% binomial interval {lo}..={hi} for p={P}, twice"
        );
    }
}

/// Packets the DROP rule of INPUT has dropped since its counters were
/// zeroed.
fn dropped_by_rule(ns: &Netns) -> u64 {
    let out = ns.run("iptables", &["-L", "INPUT", "-v", "-x", "-n"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"DROP")).then(|| f[0].parse().unwrap())
        })
        .expect("the DROP rule")
}

/// Holds every packet of NFQUEUE queue `num` in a namespace for a fixed
/// delay, then accepts it: a delay line for the packets an iptables
/// `-j NFQUEUE` rule selects. Packets leave in arrival order. Stops, letting
/// everything held go, on drop or after [`DELAY_QUEUE_LIFE`] at the latest;
/// with `--queue-bypass` on the rule, packets flow undelayed once it is
/// gone.
///
/// The delay a packet really got is recorded, from reading it to its
/// verdict: on a busy machine a thread wakes late, and a packet held
/// 20.9 ms instead of 20 ms is the truth the tool under test must report.
/// The thread runs under SCHED_FIFO so that lateness stays small, and
/// reading the packet (unmeasured) is as prompt as releasing it.
struct DelayQueue {
    stop: Arc<AtomicBool>,
    holds: Arc<Mutex<Vec<Duration>>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

/// The longest a delay queue lives, whatever the test does.
const DELAY_QUEUE_LIFE: Duration = Duration::from_secs(60);
/// How often the queue is polled for new packets: the most a packet's
/// arrival can go unnoticed, so the most its delay can exceed the target.
const DELAY_QUEUE_POLL: Duration = Duration::from_micros(50);

impl DelayQueue {
    fn start(ns: &Netns, num: u16, delay: Duration) -> DelayQueue {
        // The netlink socket belongs to the namespace it was opened in.
        let mut queue = ns
            .enter(|| -> Result<nfq::Queue, String> {
                let mut q = nfq::Queue::open().map_err(|e| format!("opening NFQUEUE: {e}"))?;
                q.bind(num)
                    .map_err(|e| format!("binding NFQUEUE {num}: {e}"))?;
                Ok(q)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        queue.set_nonblocking(true);
        let stop = Arc::new(AtomicBool::new(false));
        let holds = Arc::new(Mutex::new(Vec::new()));
        let flag = stop.clone();
        let record = holds.clone();
        let thread = std::thread::spawn(move || {
            // Naps end within a microsecond instead of the default 50 µs
            // slack: that slack would add to every packet's delay.
            let _ = nix::sys::prctl::set_timerslack(1_000);
            // Real-time priority: the other tests' processes must not make
            // this thread late. chrt is util-linux's, on every Debian.
            let tid = nix::unistd::gettid().to_string();
            let fifo = Command::new("chrt").args(["-f", "-p", "10", &tid]).status();
            if !fifo.as_ref().is_ok_and(|s| s.success()) {
                return Err(format!("chrt -f -p 10 {tid} failed: {fifo:?}"));
            }
            let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
            let until = Instant::now() + DELAY_QUEUE_LIFE;
            while !flag.load(Ordering::Relaxed) && Instant::now() < until {
                loop {
                    match queue.recv() {
                        Ok(mut msg) => {
                            msg.set_verdict(nfq::Verdict::Accept);
                            held.push_back((Instant::now(), msg));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(format!("reading NFQUEUE: {e}")),
                    }
                }
                let now = Instant::now();
                while held.front().is_some_and(|(read, _)| *read + delay <= now) {
                    let (read, msg) = held.pop_front().unwrap();
                    queue.verdict(msg).map_err(|e| format!("verdict: {e}"))?;
                    record.lock().unwrap().push(read.elapsed());
                }
                let nap = held
                    .front()
                    .map_or(DELAY_QUEUE_POLL, |(read, _)| {
                        (*read + delay).saturating_duration_since(now)
                    })
                    .min(DELAY_QUEUE_POLL);
                std::thread::sleep(nap);
            }
            for (_, msg) in held {
                let _ = queue.verdict(msg);
            }
            Ok(())
        });
        DelayQueue {
            stop,
            holds,
            thread: Some(thread),
        }
    }

    /// How long each packet released so far was really held, in order.
    fn holds(&self) -> Vec<Duration> {
        self.holds.lock().unwrap().clone()
    }

    /// Stops, letting everything still held go.
    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().unwrap();
        thread.join().unwrap().unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for DelayQueue {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// hping3's SYN → SYN-ACK round trips (`rtt=20.4 ms` per reply), in µs.
fn hping3_rtts(ns: &Netns, port: &str, count: u32, interval_us: u32) -> Vec<f64> {
    let out = ns.run(
        "hping3",
        &[
            "-n",
            "-S",
            "-p",
            port,
            "-c",
            &count.to_string(),
            "-i",
            &format!("u{interval_us}"),
            SERVER,
        ],
    );
    let rtts: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split("rtt=").nth(1))
        .filter_map(|r| r.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ms| ms * 1000.0)
        .collect();
    assert!(
        rtts.len() as u32 >= count * 9 / 10,
        "hping3 got {} of {count} replies",
        rtts.len()
    );
    rtts
}

fn paping_p50(ns: &Netns, port: &str, count: &str, interval: &str) -> f64 {
    let (events, exit) = paping_json(ns, &[SERVER, "-p", port, "-c", count, "-i", interval]);
    let s = summary(&events);
    assert_eq!(exit, Some(0), "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    s["time_us"]["p50"].as_f64().unwrap()
}

/// The median of the holds recorded since `from`, in µs, and how many.
fn held_since(delay: &DelayQueue, from: usize) -> (f64, usize) {
    let holds: Vec<f64> = delay.holds()[from..]
        .iter()
        .map(|d| d.as_secs_f64() * 1e6)
        .collect();
    assert!(!holds.is_empty(), "no packet went through the delay line");
    let n = holds.len();
    (median(holds), n)
}

#[test]
fn nfqueue_delay_shows_in_the_median_and_agrees_with_hping3() {
    let test = "nfqueue_delay_shows_in_the_median_and_agrees_with_hping3";
    if !require_root(test) || !have("hping3", test) {
        return;
    }
    let p = pair("ppdelay");
    let _server = AcceptLoop::start(&p.server, 8200, false);
    const DELAY: Duration = Duration::from_millis(20);
    let delay = DelayQueue::start(&p.server, 0, DELAY);
    let rule = |op: &str| {
        p.server.run(
            "iptables",
            &[
                op,
                "INPUT",
                "-p",
                "tcp",
                "--dport",
                "8200",
                "--syn",
                "-j",
                "NFQUEUE",
                "--queue-num",
                "0",
                "--queue-bypass",
            ],
        );
    };

    // The truth is the delay each SYN really got (the queue records it), plus the round trip without the delay at
    // the same pace, so that CPU wake-up latencies are part of both. Other
    // tests load this 2-core machine meanwhile: a measurement disturbed by
    // them is taken again, at most three times.
    let mut tries = Vec::new();
    let (base, delayed, held) = loop {
        let base = paping_p50(&p.client, "8200", "40", "30");
        rule("-A");
        let from = delay.holds().len();
        let delayed = paping_p50(&p.client, "8200", "40", "30");
        let (held, n) = held_since(&delay, from);
        rule("-D");
        assert!(n >= 40, "only {n} of paping's 40 SYNs were delayed");
        let error = delayed - (held + base);
        let _ = writeln!(
            std::io::stderr(),
            "paping delay: base p50 {base:.0} µs; SYNs held {held:.0} µs (target {} µs); \
             delayed p50 {delayed:.0} µs, error {error:+.0} µs",
            DELAY.as_micros()
        );
        tries.push(format!(
            "median {delayed:.0} µs vs {held:.0} µs held + {base:.0} µs baseline"
        ));
        if error.abs() <= 500.0 {
            break (base, delayed, held);
        }
        assert!(
            tries.len() < 3,
            "paping's median is not within 0.5 ms of the true delay plus the baseline: {tries:#?}"
        );
    };

    // hping3 measures the same SYN → SYN-ACK from user space with 0.1 ms
    // resolution and its own capture overhead: what each tool adds on top of
    // the true delay must agree within 0.5 ms.
    let hping_base = median(hping3_rtts(&p.client, "8200", 20, 20_000));
    rule("-A");
    let from = delay.holds().len();
    let hping_delayed = median(hping3_rtts(&p.client, "8200", 20, 40_000));
    let (hping_held, _) = held_since(&delay, from);
    rule("-D");
    delay.finish();
    let paping_extra = delayed - base - held;
    let hping_extra = hping_delayed - hping_base - hping_held;
    let _ = writeln!(
        std::io::stderr(),
        "hping3: base {hping_base:.0} µs, delayed {hping_delayed:.0} µs, held {hping_held:.0} µs; \
         beyond the true delay: paping {paping_extra:+.0} µs, hping3 {hping_extra:+.0} µs"
    );
    assert!(
        (paping_extra - hping_extra).abs() <= 500.0,
        "beyond the true delay, paping measured {paping_extra:+.0} µs and hping3 {hping_extra:+.0} µs"
    );
}

#[test]
fn probes_leave_no_time_wait_and_use_fresh_ports() {
    if !require_root("probes_leave_no_time_wait_and_use_fresh_ports") {
        return;
    }
    let p = pair("pptw");
    let server = AcceptLoop::start(&p.server, 8300, false);
    let (events, exit) = paping_json(&p.client, &[SERVER, "-p", "8300", "-c", "30", "-i", "5"]);
    assert_eq!(exit, Some(0));
    assert_eq!(summary(&events)["connected"], 30);
    wait_until("30 accepted connections", Duration::from_secs(5), || {
        server.peers().len() == 30
    });
    let ports: BTreeSet<u16> = server.peers().iter().map(SocketAddr::port).collect();
    assert_eq!(ports.len(), 30, "source ports reused: {:?}", server.peers());
    for ns in [&p.client, &p.server] {
        let out = ns.run("ss", &["-Htan", "state", "time-wait"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "",
            "TIME-WAIT sockets in {}",
            ns.name()
        );
    }
}

#[test]
fn sigint_sigterm_and_stdin_eof_print_the_summary() {
    if !require_root("sigint_sigterm_and_stdin_eof_print_the_summary") {
        return;
    }
    let p = pair("ppstop");
    let _server = AcceptLoop::start(&p.server, 8400, false);
    for how in ["SIGINT", "SIGTERM", "stdin EOF"] {
        let mut cmd = paping(&p.client);
        cmd.args([SERVER, "-p", "8400", "-i", "50", "-o", "json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut guard = ChildGuard::adopt("paping", child);
        let mut events = Vec::new();
        let mut line = String::new();
        for _ in 0..3 {
            line.clear();
            stdout.read_line(&mut line).unwrap();
            events.push(serde_json::from_str::<Value>(&line).unwrap());
        }
        match how {
            "SIGINT" => guard.signal(Signal::SIGINT),
            "SIGTERM" => guard.signal(Signal::SIGTERM),
            _ => stdin = None,
        }
        drop(stdin);
        let status = guard
            .wait_timeout(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("paping still running 5 s after {how}"));
        for l in stdout.lines() {
            events.push(serde_json::from_str(&l.unwrap()).unwrap());
        }
        let s = summary(&events);
        assert_eq!(s["type"], "summary", "{how}: {events:?}");
        let attempted = s["attempted"].as_u64().unwrap();
        assert!(attempted >= 3, "{how}: {s}");
        assert_eq!(probes(&events).len() as u64, attempted, "{how}");
        assert_eq!(status.code(), Some(0), "{how}: probes connected");
    }
}

#[test]
fn paping_bad_input_and_closed_stdout() {
    if !require_root("paping_bad_input_and_closed_stdout") {
        return;
    }
    let p = pair("ppbad");
    let _etc = NetnsEtc::unanswered_resolver(&p.client);
    for (args, start) in [
        (
            &[SERVER, "-p", "70000"][..],
            "paping: port number invalid: 70000",
        ),
        (&[SERVER, "-p", "abc"], "paping: port number invalid: abc"),
        (&[SERVER], "paping: missing port"),
        (
            &["nx.netdiag.test", "-p", "80"],
            "paping: cannot resolve \"nx.netdiag.test\"",
        ),
        (
            &[SERVER, "-p", "80", "-c", "many"],
            "paping: count invalid: many",
        ),
    ] {
        let mut cmd = paping(&p.client);
        cmd.args(args);
        let out = run(cmd, Input::Null, DEFAULT_TIMEOUT);
        assert_eq!(out.status.code(), Some(1), "paping {args:?}: {out:?}");
        assert!(
            out.stderr.starts_with(start) && out.stderr.lines().count() == 1,
            "paping {args:?}: {:?}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "paping {args:?}");
    }
    // `paping ... | head -3`: stop quietly when the reader goes.
    let mut cmd = paping(&p.client);
    cmd.args([SERVER, "-p", "1", "-i", "5", "-c", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    for _ in 0..4 {
        stdout.read_line(&mut first).unwrap();
    }
    assert!(
        first.contains(&format!("Connection refused by {SERVER}")),
        "{first}"
    );
    drop(stdout);
    let mut stderr = child.stderr.take().unwrap();
    let mut guard = ChildGuard::adopt("paping | head", child);
    let status = guard.wait_timeout(DEFAULT_TIMEOUT).expect("paping exits");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(err.is_empty(), "{err}");
}
