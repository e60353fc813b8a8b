//! `netdiag-agent tcpdump` against tcpdump 4.99 / libpcap 1.10, the oracle.
//!
//! The filter compiler: every expression of `tests/data/tcpdump/filters.txt`
//! is applied to a generated corpus of ~6,000 packets ([`corpus`]) by
//! `tcpdump -r corpus.pcap -w - EXPR` and by the agent; both must reject
//! the expression, or select exactly the same packets. The same is done for
//! the corpus behind Linux cooked (SLL) headers, the link type of `-i any`.
//! Every program the agent compiles must also be accepted by the kernel
//! (SO_ATTACH_FILTER on a socket).
//!
//! Live capture ([`live`]), the printer against tcpdump's text
//! ([`printer`]), and live-capture programs against libpcap's ([`vlan`])
//! are in their own modules.

mod bpf;
mod corpus;
mod live;
mod printer;
mod vlan;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use netdiag_tests::agent::agent_bin;
use netdiag_tests::{TempDir, running_in_ci, workspace_root};

/// The oracle is installed (tcpdump with libpcap).
fn have_tcpdump(test: &str) -> bool {
    let found = Command::new("tcpdump")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if running_in_ci() {
            panic!("{test}: tcpdump (the oracle) is not installed and CI=true forbids skipping");
        }
        eprintln!("SKIPPED {test}: tcpdump is not installed");
    }
    found
}

/// The expressions of a data file, in order.
fn data_lines(name: &str) -> Vec<String> {
    let path = workspace_root().join("tests/data/tcpdump").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// What a tool made of an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// It refused the expression; its first error line.
    Rejected(String),
    /// The packet indexes it kept.
    Matched(Vec<u32>),
}

fn verdict(out: &Output) -> Verdict {
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let line = stderr
            .lines()
            .find(|l| !l.starts_with("reading from file") && !l.trim().is_empty())
            .unwrap_or("")
            .to_owned();
        return Verdict::Rejected(line);
    }
    match corpus::indexes(&out.stdout) {
        Ok(ix) => Verdict::Matched(ix),
        Err(e) => Verdict::Rejected(format!("unreadable output pcap: {e}; stderr: {stderr}")),
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn libpcap_verdict(pcap: &Path, expr: &str) -> Verdict {
    verdict(&run(Command::new("tcpdump")
        .arg("-r")
        .arg(pcap)
        .args(["-w", "-", "--", expr])))
}

fn agent_verdict(pcap: &Path, expr: &str) -> Verdict {
    verdict(&run(Command::new(agent_bin())
        .args(["tcpdump", "-r"])
        .arg(pcap)
        .args(["-w", "-", "--", expr])))
}

/// The agent's compiled program for `expr` on `pcap`'s link type (`-ddd`).
fn agent_program(pcap: &Path, expr: &str) -> Vec<libc::sock_filter> {
    let out = run(Command::new(agent_bin())
        .args(["tcpdump", "-ddd", "-r"])
        .arg(pcap)
        .args(["--", expr]));
    assert!(out.status.success(), "-ddd {expr:?} failed: {:?}", out);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let count: usize = lines.next().unwrap().trim().parse().unwrap();
    let insns: Vec<libc::sock_filter> = lines
        .map(|l| {
            let f: Vec<u32> = l.split_whitespace().map(|w| w.parse().unwrap()).collect();
            libc::sock_filter {
                code: f[0] as u16,
                jt: f[1] as u8,
                jf: f[2] as u8,
                k: f[3],
            }
        })
        .collect();
    assert_eq!(insns.len(), count, "-ddd {expr:?}: count line disagrees");
    insns
}

/// Attaches `program` to a UDP socket: the kernel's verdict on it.
fn kernel_accepts(program: &[libc::sock_filter]) -> Result<(), std::io::Error> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    use std::os::fd::AsRawFd;
    // SAFETY: `fprog` points at `program`, which outlives the call; the
    // kernel copies the instructions and keeps no pointer to them.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A verdict in one short line.
fn short(v: &Verdict) -> String {
    match v {
        Verdict::Rejected(e) => format!("rejected: {e}"),
        Verdict::Matched(ix) => format!(
            "matched {} packets ({:?}{})",
            ix.len(),
            &ix[..ix.len().min(8)],
            if ix.len() > 8 { ", ..." } else { "" }
        ),
    }
}

/// One disagreement, described for a human.
fn describe(
    expr: &str,
    link: &str,
    ours: &Verdict,
    theirs: &Verdict,
    frames: &[corpus::Frame],
) -> String {
    let mut s = format!("[{link}] {expr:?}\n");
    match (ours, theirs) {
        (Verdict::Matched(a), Verdict::Matched(b)) => {
            let a: BTreeSet<u32> = a.iter().copied().collect();
            let b: BTreeSet<u32> = b.iter().copied().collect();
            let only_ours: Vec<u32> = a.difference(&b).copied().collect();
            let only_theirs: Vec<u32> = b.difference(&a).copied().collect();
            s += &format!(
                "    agent matched {}, libpcap {}; only agent: {} packets, only libpcap: {}\n",
                a.len(),
                b.len(),
                only_ours.len(),
                only_theirs.len()
            );
            for (who, list) in [("only agent", &only_ours), ("only libpcap", &only_theirs)] {
                for i in list.iter().take(3) {
                    let f = &frames[*i as usize];
                    let hex: String = f.data.iter().take(70).map(|b| format!("{b:02x}")).collect();
                    s += &format!(
                        "    {who} #{i} (caplen {}, len {}): {hex}\n",
                        f.data.len(),
                        f.wire_len
                    );
                }
            }
        }
        _ => {
            s += &format!(
                "    agent: {}\n    libpcap: {}\n",
                short(ours),
                short(theirs)
            )
        }
    }
    s
}

#[test]
fn filters_select_the_same_packets_as_libpcap() {
    if !have_tcpdump("filters_select_the_same_packets_as_libpcap") {
        return;
    }
    let dir = TempDir::new("tcpdump-corpus");
    let frames = corpus::build();
    let sll = corpus::to_sll(&frames);
    assert!(frames.len() >= 5000, "corpus has {} packets", frames.len());
    let eth_path = dir.path().join("corpus.pcap");
    let sll_path = dir.path().join("corpus-sll.pcap");
    std::fs::write(&eth_path, corpus::pcap(&frames, 1)).unwrap();
    std::fs::write(&sll_path, corpus::pcap(&sll, 113)).unwrap();
    let exprs = data_lines("filters.txt");
    assert!(exprs.len() >= 300, "only {} filters", exprs.len());
    let _ = agent_bin();

    let started = Instant::now();
    let jobs: Vec<(&str, &Path, &[corpus::Frame], &str)> = exprs
        .iter()
        .flat_map(|e| {
            [
                (
                    "Ethernet",
                    eth_path.as_path(),
                    frames.as_slice(),
                    e.as_str(),
                ),
                ("SLL", sll_path.as_path(), sll.as_slice(), e.as_str()),
            ]
        })
        .collect();
    let next = AtomicUsize::new(0);
    let mismatches = Mutex::new(Vec::new());
    let kernel_refused = Mutex::new(Vec::new());
    let agreed = AtomicUsize::new(0);
    let rejected_by_both = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(link, path, frames, expr)) = jobs.get(i) else {
                        break;
                    };
                    let theirs = libpcap_verdict(path, expr);
                    let ours = agent_verdict(path, expr);
                    let same = match (&ours, &theirs) {
                        (Verdict::Rejected(_), Verdict::Rejected(_)) => {
                            rejected_by_both.fetch_add(1, Ordering::Relaxed);
                            true
                        }
                        (a, b) => a == b,
                    };
                    if same {
                        agreed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        mismatches
                            .lock()
                            .unwrap()
                            .push((i, describe(expr, link, &ours, &theirs, frames)));
                    }
                    if matches!(ours, Verdict::Matched(_)) {
                        let program = agent_program(path, expr);
                        if let Err(e) = kernel_accepts(&program) {
                            kernel_refused
                                .lock()
                                .unwrap()
                                .push(format!("[{link}] {expr:?}: {e}"));
                        }
                    }
                }
            });
        }
    });
    let agreed = agreed.into_inner();
    let mut mismatches = mismatches.into_inner().unwrap();
    mismatches.sort();
    let kernel_refused = kernel_refused.into_inner().unwrap();
    eprintln!(
        "tcpdump filter differential: {agreed}/{} (expression, link type) pairs agree with libpcap \
         ({:.1}%; {} rejected by both) over {} Ethernet and {} SLL packets, in {:.1}s",
        jobs.len(),
        100.0 * agreed as f64 / jobs.len() as f64,
        rejected_by_both.into_inner(),
        frames.len(),
        sll.len(),
        started.elapsed().as_secs_f64()
    );
    for (_, m) in mismatches.iter().take(15) {
        eprint!("{m}");
    }
    for k in kernel_refused.iter().take(15) {
        eprintln!("kernel refused: {k}");
    }
    assert!(
        mismatches.is_empty(),
        "{} disagreements with libpcap (first ones above)",
        mismatches.len()
    );
    assert!(
        kernel_refused.is_empty(),
        "{} programs refused by the kernel",
        kernel_refused.len()
    );
}

/// The keywords netdiag leaves out are refused by name, in one line,
/// without a panic; the oracle would accept them.
#[test]
fn unsupported_keywords_are_refused_by_name() {
    for expr in data_lines("unsupported.txt") {
        let out = run(Command::new(agent_bin()).args(["tcpdump", "-d", "--", &expr]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{expr:?}: {stderr}");
        let first = stderr.lines().next().unwrap_or("");
        assert!(
            first.starts_with("tcpdump: ") && first.contains("not support"),
            "{expr:?}: {stderr}"
        );
    }
}
