//! `netdiag-agent dig` and `resolve` against the real things: bind9's dig
//! (the oracle for dig's answers and layout) and the C libraries' own stub
//! resolvers (the oracle for `resolve`'s query sequence), all talking to
//! knot serving `shared/dns/netdiag.test.zone` inside a test namespace.
//!
//! The lab: a server namespace holding knot on 198.51.100.53 and fd42::53,
//! plus 198.51.100.54 (every packet DROPped: the timeout path) and
//! 198.51.100.55 (nothing listening: ICMP port unreachable); a client
//! namespace on the other end of a veth with a pod's resolv.conf in
//! `/etc/netns/<client>/` (which `ip netns exec` mounts over
//! /etc/resolv.conf). Besides the shared zone knot serves `cluster.local`
//! (services found through the search list, a 40-address name whose answer
//! needs TCP), `wild.test` (a wildcard) and `broken.test` (no zone file:
//! SERVFAIL).
//!
//! glibc's queries are taken from the wire (tcpdump on the client's veth,
//! decoded here from the pcap), so the comparison covers what really left
//! the namespace, including the transport and whether a query reused the
//! previous one's socket. musl's come from a tiny `getaddrinfo` program
//! built with musl-gcc at test time. The response path is also fuzzed end
//! to end: a hostile UDP server answers dig and resolve with mutated
//! replies (the in-process fuzz test lives in the agent's unit tests).

use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use netdiag_tests::agent::agent_bin;
use netdiag_tests::netns::{Netns, veth_pair};
use netdiag_tests::process::{ChildGuard, wait_until};
use netdiag_tests::rng::Rng;
use netdiag_tests::{TempDir, require_root, running_in_ci, shared_dir, workspace_root};
use nix::sys::signal::Signal;

const SERVER: &str = "198.51.100.53";
const SERVER6: &str = "fd42::53";
/// Every packet to it is dropped.
const DROPPING: &str = "198.51.100.54";
/// Up, but nothing listens on port 53.
const CLOSED: &str = "198.51.100.55";
/// Where the hostile server listens.
const HOSTILE: &str = "198.51.100.56";

const POD_SEARCH: &str = "search default.svc.cluster.local svc.cluster.local cluster.local";

const CLUSTER_ZONE: &str = "$ORIGIN cluster.local.
$TTL 30
@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30
@ IN NS ns.dns.cluster.local.
ns.dns IN A 198.51.100.53
web.default.svc IN A 198.51.100.80
web.default.svc IN AAAA fd42::80
v4only.default.svc IN A 198.51.100.81
";

const WILD_ZONE: &str = "$ORIGIN wild.test.
$TTL 30
@ IN SOA ns.wild.test. hostmaster.wild.test. 1 7200 1800 86400 30
@ IN NS ns.wild.test.
ns IN A 198.51.100.53
* IN A 203.0.113.99
";

/// Skips (loudly) or, under CI, fails when a program the test needs is
/// missing.
fn have(test: &str, program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !running_in_ci(),
            "{test} needs {program}, which .ci/run installs; CI=true forbids skipping"
        );
        eprintln!("SKIPPED {test}: {program} is not installed");
    }
    found
}

/// `/etc/netns/<ns>/`: files `ip netns exec` mounts over /etc. Removed on drop.
struct EtcNetns {
    dir: PathBuf,
}

impl EtcNetns {
    fn new(ns: &Netns) -> EtcNetns {
        let dir = Path::new("/etc/netns").join(ns.name());
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        EtcNetns { dir }
    }

    fn write(&self, file: &str, text: &str) {
        fs::write(self.dir.join(file), text).expect("writing /etc/netns file");
    }
}

impl Drop for EtcNetns {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Knot in a server namespace, a client namespace with a pod's
/// resolv.conf, one veth between them.
struct DnsLab {
    etc: EtcNetns,
    client_if: String,
    dir: TempDir,
    _knot: ChildGuard,
    server: Netns,
    client: Netns,
}

impl DnsLab {
    /// `None` when the test cannot run here (and may be skipped).
    fn new(test: &str) -> Option<DnsLab> {
        if !require_root(test) || !have(test, "knotd") || !have(test, "dig") {
            return None;
        }
        // Built (or found up to date) before any timing starts.
        agent_bin();
        let server = Netns::new("dns-srv");
        let client = Netns::new("dns-cli");
        let veth = veth_pair(
            &server,
            &[
                &format!("{SERVER}/24"),
                &format!("{DROPPING}/24"),
                &format!("{CLOSED}/24"),
                &format!("{HOSTILE}/24"),
                &format!("{SERVER6}/64"),
            ],
            &client,
            &["198.51.100.2/24", "fd42::2/64"],
        );
        server.run("iptables", &["-A", "INPUT", "-d", DROPPING, "-j", "DROP"]);
        let dir = TempDir::new("knot");
        let d = dir.path();
        fs::create_dir(d.join("run")).unwrap();
        fs::create_dir(d.join("db")).unwrap();
        fs::write(d.join("cluster.local.zone"), cluster_zone()).unwrap();
        fs::write(d.join("wild.test.zone"), WILD_ZONE).unwrap();
        let shared_zone = shared_dir().join("dns").join("netdiag.test.zone");
        let zone = |domain: &str, file: &Path| {
            format!(
                "  - domain: {domain}\n    file: {}\n    zonefile-sync: -1\n    journal-content: none\n",
                file.display()
            )
        };
        let conf = format!(
            "server:\n    listen: {SERVER}@53\n    listen: {SERVER6}@53\n    rundir: {run}\n    user: root:root\n\
             database:\n    storage: {db}\n\
             zone:\n{}{}{}{}",
            zone("netdiag.test", &shared_zone),
            zone("cluster.local", &d.join("cluster.local.zone")),
            zone("wild.test", &d.join("wild.test.zone")),
            // No such file: knot answers SERVFAIL for the whole zone.
            zone("broken.test", &d.join("missing.zone")),
            run = d.join("run").display(),
            db = d.join("db").display(),
        );
        let conf_path = d.join("knot.conf");
        fs::write(&conf_path, conf).unwrap();
        let knot = server.spawn("knotd", &["-c", conf_path.to_str().unwrap()]);
        let etc = EtcNetns::new(&client);
        etc.write(
            "resolv.conf",
            &format!("{POD_SEARCH}\nnameserver {SERVER}\noptions ndots:5\n"),
        );
        let lab = DnsLab {
            etc,
            client_if: veth.b().to_owned(),
            dir,
            _knot: knot,
            server,
            client,
        };
        wait_until("knot to answer", Duration::from_secs(15), || {
            let out = lab.dig(&["+tries=1", "+timeout=1", "+short", "netdiag.test", "SOA"]);
            !out.stdout.is_empty()
        });
        Some(lab)
    }

    fn resolv_conf(&self, text: &str) {
        self.etc.write("resolv.conf", text);
    }

    /// bind's dig in the client namespace, always with an explicit server.
    fn dig(&self, args: &[&str]) -> Output {
        let mut full = vec!["@198.51.100.53"];
        full.extend_from_slice(args);
        self.client.output("dig", &full)
    }

    /// Any program in the client namespace.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        self.client.output(program, args)
    }

    /// The agent in the client namespace.
    fn agent(&self, args: &[&str]) -> Output {
        self.client.output(agent_bin().to_str().unwrap(), args)
    }
}

/// cluster.local plus `big.default.svc`: 40 addresses, an answer too big
/// for 512 bytes of UDP.
fn cluster_zone() -> String {
    let mut z = CLUSTER_ZONE.to_owned();
    for i in 0..40 {
        z.push_str(&format!("big.default.svc IN A 198.51.100.{}\n", 100 + i));
    }
    z
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ------------------------------------------------------------ dig output

/// dig's text with what differs between runs masked: the banner (names
/// the program), the id, the query time and the date.
fn masked(out: &str) -> String {
    out.lines()
        .map(|l| {
            if l.starts_with("; <<>> ") {
                "; <<>> BANNER".to_owned()
            } else if l.starts_with(";; WHEN:") {
                ";; WHEN: DATE".to_owned()
            } else if l.starts_with(";; Query time:") {
                ";; Query time: T".to_owned()
            } else if let Some((head, _)) = l.split_once(", id: ") {
                format!("{head}, id: ID")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The fields of a dig answer, parsed from its text.
#[derive(Debug, PartialEq, Eq)]
struct DigFields {
    status: String,
    flags: Vec<String>,
    counts: String,
    question: Vec<String>,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
    transport: String,
}

fn parse_dig(out: &str) -> DigFields {
    let mut f = DigFields {
        status: String::new(),
        flags: Vec::new(),
        counts: String::new(),
        question: Vec::new(),
        answer: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
        transport: String::new(),
    };
    let mut section = "";
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix(";; ->>HEADER<<- ") {
            f.status = rest
                .split(", ")
                .find_map(|p| p.strip_prefix("status: "))
                .unwrap_or_default()
                .to_owned();
        } else if let Some(rest) = line.strip_prefix(";; flags:") {
            let (flags, counts) = rest.split_once(';').unwrap_or((rest, ""));
            f.flags = flags.split_whitespace().map(str::to_owned).collect();
            f.counts = counts.trim().to_owned();
        } else if let Some(rest) = line.strip_prefix(";; SERVER: ") {
            f.transport = rest.rsplit(' ').next().unwrap_or_default().to_owned();
        } else if let Some(name) = line
            .strip_prefix(";; ")
            .and_then(|l| l.strip_suffix(" SECTION:"))
        {
            section = match name {
                "QUESTION" => "q",
                "ANSWER" => "an",
                "AUTHORITY" => "ns",
                "ADDITIONAL" => "ar",
                _ => "",
            };
        } else if line.is_empty() {
            section = "";
        } else {
            // Fields, whatever the tabs: the parsed record.
            let fields = line.split_whitespace().collect::<Vec<_>>().join(" ");
            match section {
                "q" => f.question.push(fields),
                "an" => f.answer.push(fields),
                "ns" => f.authority.push(fields),
                "ar" => f.additional.push(fields),
                _ => {}
            }
        }
    }
    f
}

/// Runs bind's dig and ours with the same arguments and insists on the
/// same parsed answer and the same text (volatile lines masked).
fn same_as_bind(lab: &DnsLab, args: &[&str]) -> String {
    let bind = lab.dig(args);
    let mut ours_args = vec!["dig", "@198.51.100.53"];
    ours_args.extend_from_slice(args);
    let ours = lab.agent(&ours_args);
    let (b, o) = (text(&bind.stdout), text(&ours.stdout));
    assert_eq!(
        ours.status.code(),
        bind.status.code(),
        "exit status for dig {args:?}\nbind:\n{b}\nours:\n{o}\nour stderr: {}",
        text(&ours.stderr)
    );
    let (bf, of) = (parse_dig(&b), parse_dig(&o));
    assert_eq!(
        of, bf,
        "parsed answer for dig {args:?}\nbind:\n{b}\nours:\n{o}"
    );
    assert_eq!(masked(&o), masked(&b), "text of dig {args:?}");
    assert!(
        !text(&ours.stderr).contains("panicked"),
        "{}",
        text(&ours.stderr)
    );
    o
}

#[test]
fn dig_agrees_with_bind_for_every_record_type_over_udp_and_tcp() {
    let Some(lab) = DnsLab::new("dig_agrees_with_bind_for_every_record_type_over_udp_and_tcp")
    else {
        return;
    };
    // Every record type in the zone (SOA NS MX TXT A AAAA CNAME SRV), the
    // multi-string and > 512-byte TXT, NODATA, ANY and a PTR.
    let questions: &[&[&str]] = &[
        &["netdiag.test", "SOA"],
        &["netdiag.test", "NS"],
        &["netdiag.test", "MX"],
        &["netdiag.test", "TXT"],
        &["www.netdiag.test"],
        &["www.netdiag.test", "AAAA"],
        &["alias.netdiag.test", "CNAME"],
        &["alias.netdiag.test", "A"],
        &["_http._tcp.netdiag.test", "SRV"],
        &["txt.netdiag.test", "TXT"],
        &["big.netdiag.test", "TXT"],
        &["ns1.netdiag.test", "a"],
        &["mail2.netdiag.test", "A"],
        &["www.netdiag.test", "TYPE65534"],
        &["netdiag.test", "ANY"],
        &["-x", "198.51.100.10"],
    ];
    for q in questions {
        for transport in [&[][..], &["+tcp"][..]] {
            let mut args: Vec<&str> = q.to_vec();
            args.extend_from_slice(transport);
            let out = same_as_bind(&lab, &args);
            let expect = if transport.is_empty() && q[1..] != ["ANY"] {
                "(UDP)"
            } else {
                "(TCP)"
            };
            assert!(out.contains(expect), "{args:?}: {out}");
        }
    }
    // The same over IPv6, and the output options people use.
    let v6 = lab.agent(&["dig", "@fd42::53", "www.netdiag.test", "AAAA", "+short"]);
    assert_eq!(text(&v6.stdout), "2001:db8::10\n");
    for args in [
        &["www.netdiag.test", "+short"][..],
        &["netdiag.test", "MX", "+short"],
        &["alias.netdiag.test", "+short"],
        &["txt.netdiag.test", "TXT", "+short"],
        &["www.netdiag.test", "+noall", "+answer"],
        &["netdiag.test", "SOA", "+nocomments"],
        &["netdiag.test", "NS", "+nostats", "+nocmd"],
        &["alias.netdiag.test", "+norecurse"],
        &[
            "web.default.svc.cluster.local",
            "+noall",
            "+answer",
            "+comments",
        ],
        &["web", "+search", "+noall", "+answer"],
    ] {
        same_as_bind(&lab, args);
    }
    // -o json holds the same fields as the text.
    let json = lab.agent(&["dig", "@198.51.100.53", "alias.netdiag.test", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("dig -o json");
    let bind = parse_dig(&text(&lab.dig(&["alias.netdiag.test"]).stdout));
    assert_eq!(doc["header"]["status"], bind.status.as_str());
    let flags: Vec<String> = doc["header"]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(flags, bind.flags);
    let answer: Vec<String> = doc["answer"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r["name"].as_str().unwrap(),
                r["ttl"],
                r["class"].as_str().unwrap(),
                r["type"].as_str().unwrap(),
                r["data"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(answer, bind.answer);
    assert_eq!(doc["transport"], "UDP");
}

#[test]
fn dig_agrees_with_bind_on_nxdomain_refused_and_servfail() {
    let Some(lab) = DnsLab::new("dig_agrees_with_bind_on_nxdomain_refused_and_servfail") else {
        return;
    };
    let nx = same_as_bind(&lab, &["nope.netdiag.test"]);
    assert!(nx.contains("status: NXDOMAIN") && nx.contains(";; AUTHORITY SECTION:"));
    // knot adds an extended error (EDE 20) to REFUSED: printed like bind.
    let refused = same_as_bind(&lab, &["foo.example."]);
    assert!(refused.contains("status: REFUSED") && refused.contains("; EDE: 20"));
    let servfail = same_as_bind(&lab, &["x.broken.test"]);
    assert!(servfail.contains("status: SERVFAIL"));
    same_as_bind(&lab, &["nope.netdiag.test", "+short"]);
}

#[test]
fn unreachable_servers_print_dig_errors_and_exit_9() {
    let Some(lab) = DnsLab::new("unreachable_servers_print_dig_errors_and_exit_9") else {
        return;
    };
    for (server, why) in [(DROPPING, "timed out"), (CLOSED, "connection refused")] {
        let args = [
            format!("@{server}"),
            "www.netdiag.test".to_owned(),
            "+timeout=1".to_owned(),
            "+tries=2".to_owned(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // bind's dig and ours wait in parallel: the test costs one timeout.
        let bind = lab.client.spawn("dig", &args);
        let mut ours_args = vec!["dig"];
        ours_args.extend_from_slice(&args);
        let started = Instant::now();
        let ours = lab.agent(&ours_args);
        let took = started.elapsed();
        let bind = bind.finish(Duration::from_secs(30));
        assert_eq!(bind.status.code(), Some(9));
        assert_eq!(ours.status.code(), Some(9), "{}", text(&ours.stderr));
        let o = text(&ours.stdout);
        assert_eq!(masked(&o), masked(&text(&bind.stdout)));
        assert_eq!(
            o.matches(&format!(";; communications error to {server}#53: {why}"))
                .count(),
            2,
            "{o}"
        );
        assert!(o.ends_with(";; no servers could be reached\n"), "{o}");
        if why == "timed out" {
            assert!(
                took >= Duration::from_millis(1900),
                "two 1 s tries took {took:?}"
            );
        }
    }
    // TCP to the dropping server, and -o json.
    let tcp = lab.agent(&[
        "dig",
        "@198.51.100.54",
        "www.netdiag.test",
        "+tcp",
        "+timeout=1",
        "+tries=1",
    ]);
    assert_eq!(tcp.status.code(), Some(9));
    assert!(text(&tcp.stdout).contains(
        ";; Connection to 198.51.100.54#53(198.51.100.54) for www.netdiag.test failed: timed out."
    ));
    let json = lab.agent(&[
        "dig",
        "@198.51.100.55",
        "www.netdiag.test",
        "+tries=1",
        "-o",
        "json",
    ]);
    assert_eq!(json.status.code(), Some(9));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    assert_eq!(doc["error"], "no servers could be reached");
}

#[test]
fn truncated_udp_answer_is_retried_over_tcp() {
    let Some(lab) = DnsLab::new("truncated_udp_answer_is_retried_over_tcp") else {
        return;
    };
    // The 802-byte TXT does not fit the 512-byte buffer: TC, then TCP.
    let out = same_as_bind(
        &lab,
        &["big.netdiag.test", "TXT", "+bufsize=512", "+noedns"],
    );
    assert!(
        out.starts_with(";; Truncated, retrying in TCP mode.\n"),
        "{out}"
    );
    assert!(
        out.contains("(TCP)") && out.contains("MSG SIZE  rcvd: 802"),
        "{out}"
    );
    // +ignore keeps the truncated UDP answer, as in bind.
    let kept = same_as_bind(
        &lab,
        &["big.netdiag.test", "TXT", "+bufsize=512", "+ignore"],
    );
    assert!(kept.contains("flags: qr aa tc rd"), "{kept}");
}

/// Asserts one-line errors with exit status 1 and no panic.
fn assert_bad_input(out: &Output, tool: &str, what: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: status; stderr: {err}");
    assert!(
        err.lines().count() == 1 && err.starts_with(&format!("{tool}: ")),
        "{what}: expected one '{tool}: ...' line, got: {err:?}"
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
}

#[test]
fn bad_input_gives_one_line_and_exit_1() {
    let Some(lab) = DnsLab::new("bad_input_gives_one_line_and_exit_1") else {
        return;
    };
    let long_label = "x".repeat(300);
    let long_name = vec!["abcdefghij"; 30].join(".");
    let cases: Vec<Vec<&str>> = vec![
        vec!["dig", "@198.51.100.53", "a..b"],
        vec!["dig", "@198.51.100.53", &long_label],
        vec!["dig", "@198.51.100.53", &long_name],
        vec!["dig", "@198.51.100.53", "-t", "BOGUS", "www.netdiag.test"],
        vec!["dig", "@198.51.100.53", "www.netdiag.test", "NOTATYPE"],
        vec!["dig", "@bogus.invalid", "www.netdiag.test"],
        vec!["dig", "@", "www.netdiag.test"],
        vec!["dig", "@198.51.100.53", "+frobnicate", "x"],
        vec!["dig", "@198.51.100.53", "-p", "99999", "x"],
        vec!["dig", "@198.51.100.53", "-x", "not-an-address"],
        vec!["dig", "-6", "@198.51.100.53", "x"],
        vec!["resolve", "a..b"],
        vec!["resolve", &long_label],
        vec!["resolve", "--libc", "bsd", "x"],
        vec!["resolve"],
        vec!["resolve", "--resolv-conf", "/proc", "x"],
    ];
    for args in &cases {
        let out = lab.agent(args);
        assert_bad_input(&out, args[0], &format!("{args:?}"));
    }
    // An unreadable /etc/resolv.conf: a directory in a private mount
    // namespace (the machine's own file is untouched).
    let script = format!(
        "mount -t tmpfs none /etc && mkdir /etc/resolv.conf && exec {} dig www.netdiag.test",
        agent_bin().display()
    );
    let out = lab.run("unshare", &["-m", "--", "sh", "-c", &script]);
    assert_bad_input(&out, "dig", "unreadable resolv.conf");
    assert!(text(&out.stderr).contains("/etc/resolv.conf"));
}

// ------------------------------------------------------- query sequences

/// One query seen on the wire (or reported by `resolve`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    server: String,
    transport: &'static str,
    qtype: String,
    name: String,
    /// UDP source port, to tell "same socket" from "new socket".
    port: u16,
}

impl Seen {
    fn key(&self) -> String {
        format!(
            "{} {} {} {}",
            self.server, self.transport, self.qtype, self.name
        )
    }
}

/// DNS questions in a pcap (Ethernet; IPv4/IPv6; UDP and TCP to port 53).
fn pcap_queries(pcap: &[u8]) -> Vec<Seen> {
    let mut seen = Vec::new();
    if pcap.len() < 24 {
        return seen;
    }
    let le = pcap[..4] == [0xd4, 0xc3, 0xb2, 0xa1] || pcap[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let u32_at = |b: &[u8], i: usize| {
        let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let caplen = u32_at(pcap, at + 8) as usize;
        let Some(frame) = pcap.get(at + 16..at + 16 + caplen) else {
            break;
        };
        at += 16 + caplen;
        if frame.len() < 14 {
            continue;
        }
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let ip = &frame[14..];
        let (proto, dst, l4) = match ethertype {
            0x0800 if ip.len() >= 20 => {
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                let dst = std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]).to_string();
                (ip[9], dst, ip.get(ihl..).unwrap_or(&[]))
            }
            0x86dd if ip.len() >= 40 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&ip[24..40]);
                (ip[6], std::net::Ipv6Addr::from(a).to_string(), &ip[40..])
            }
            _ => continue,
        };
        if l4.len() < 8 || u16::from_be_bytes([l4[2], l4[3]]) != 53 {
            continue;
        }
        let sport = u16::from_be_bytes([l4[0], l4[1]]);
        match proto {
            17 => {
                if let Some((qtype, name)) = question(&l4[8..]) {
                    seen.push(Seen {
                        server: dst,
                        transport: "udp",
                        qtype,
                        name,
                        port: sport,
                    });
                }
            }
            6 if l4.len() >= 20 => {
                let mut data = l4.get(usize::from(l4[12] >> 4) * 4..).unwrap_or(&[]);
                // One segment may carry several length-prefixed queries
                // (glibc writes A and AAAA with one writev).
                while data.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
                    let Some(msg) = data.get(2..2 + len) else {
                        break;
                    };
                    if let Some((qtype, name)) = question(msg) {
                        seen.push(Seen {
                            server: dst.clone(),
                            transport: "tcp",
                            qtype,
                            name,
                            port: sport,
                        });
                    }
                    data = &data[2 + len..];
                }
            }
            _ => {}
        }
    }
    seen
}

/// The first question of a DNS query: (type mnemonic, name with final dot).
fn question(msg: &[u8]) -> Option<(String, String)> {
    if msg.len() < 12 || msg[2] & 0x80 != 0 {
        return None;
    }
    let mut at = 12;
    let mut name = String::new();
    loop {
        let len = usize::from(*msg.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        name.push_str(std::str::from_utf8(msg.get(at..at + len)?).ok()?);
        name.push('.');
        at += len;
    }
    if name.is_empty() {
        name.push('.');
    }
    let qtype = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
    let qtype = match qtype {
        1 => "A".to_owned(),
        28 => "AAAA".to_owned(),
        16 => "TXT".to_owned(),
        other => format!("TYPE{other}"),
    };
    Some((qtype, name))
}

/// A capture of the client's DNS traffic, split into runs by marker
/// queries the test sends itself.
struct Capture {
    tcpdump: ChildGuard,
    file: PathBuf,
    markers: usize,
}

impl Capture {
    fn start(lab: &DnsLab) -> Capture {
        let file = lab.dir.path().join("dns.pcap");
        let tcpdump = lab.client.spawn(
            "tcpdump",
            &[
                "-n",
                "-U",
                "--immediate-mode",
                "-i",
                &lab.client_if,
                "-w",
                file.to_str().unwrap(),
                "dst port 53",
            ],
        );
        let mut cap = Capture {
            tcpdump,
            file,
            markers: 0,
        };
        // Ready when a marker sent now shows up in the file.
        wait_until("tcpdump to capture", Duration::from_secs(15), || {
            let m = cap.mark(lab);
            std::thread::sleep(Duration::from_millis(50));
            cap.contains(&m)
        });
        cap
    }

    fn contains(&self, marker: &str) -> bool {
        let bytes = fs::read(&self.file).unwrap_or_default();
        pcap_queries(&bytes).iter().any(|q| q.name == marker)
    }

    /// Sends `marker-N.netdiag.test.` TXT from the client namespace and
    /// returns the name.
    fn mark(&mut self, lab: &DnsLab) -> String {
        self.markers += 1;
        let name = format!("marker-{}.netdiag.test.", self.markers);
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.trim_end_matches('.').split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 16, 0, 1]);
        lab.client.enter(|| {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.send_to(&q, (SERVER, 53)).unwrap();
        });
        name
    }

    /// The queries between marker `from` (exclusive) and the next marker.
    fn between(&self, from: &str) -> Vec<Seen> {
        let all = pcap_queries(&fs::read(&self.file).unwrap_or_default());
        all.into_iter()
            .skip_while(|q| q.name != from)
            .skip(1)
            .take_while(|q| !q.name.starts_with("marker-"))
            .collect()
    }

    /// Waits until `marker` is in the file.
    fn wait_for(&self, marker: &str) {
        wait_until(
            &format!("{marker} in the capture"),
            Duration::from_secs(10),
            || self.contains(marker),
        );
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.tcpdump.signal(Signal::SIGINT);
    }
}

/// What `resolve -o json` reports it sent.
fn reported(out: &Output) -> Vec<Seen> {
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "resolve -o json: {e}\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    doc["lookup"]["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let server: std::net::SocketAddr = q["server"].as_str().unwrap().parse().unwrap();
            Seen {
                server: server.ip().to_string(),
                transport: if q["transport"] == "TCP" {
                    "tcp"
                } else {
                    "udp"
                },
                qtype: q["type"].as_str().unwrap().to_owned(),
                name: q["name"].as_str().unwrap().to_owned(),
                port: 0,
            }
        })
        .collect()
}

/// For each UDP query after the first: did it reuse the previous query's
/// socket? (single-request-reopen opens a new one for AAAA.)
fn socket_reuse(seen: &[Seen]) -> Vec<bool> {
    seen.windows(2)
        .filter(|w| w[0].transport == "udp" && w[1].transport == "udp")
        .map(|w| w[0].port == w[1].port && w[0].server == w[1].server)
        .collect()
}

fn keys(seen: &[Seen]) -> Vec<String> {
    seen.iter().map(Seen::key).collect()
}

/// Runs the library's resolver (`oracle`) and `resolve --libc libc` for
/// each name under `resolv_conf`, and compares what went on the wire.
fn compare_sequences(
    lab: &DnsLab,
    cap: &mut Capture,
    resolv_conf: &str,
    names: &[&str],
    libc: &str,
    oracle: &[&str],
) -> Vec<Output> {
    lab.resolv_conf(resolv_conf);
    let mut outputs = Vec::new();
    for name in names {
        let m1 = cap.mark(lab);
        let mut oracle_args: Vec<&str> = oracle[1..].to_vec();
        oracle_args.push(name);
        lab.run(oracle[0], &oracle_args);
        let m2 = cap.mark(lab);
        let ours = lab.agent(&["resolve", "--libc", libc, "-o", "json", name]);
        assert_eq!(ours.status.code(), Some(0), "{}", text(&ours.stderr));
        let m3 = cap.mark(lab);
        cap.wait_for(&m3);
        let theirs = cap.between(&m1);
        let mut ours_wire = cap.between(&m2);
        let ours_said = reported(&ours);
        // After the replay, resolve may ask extra questions of its own
        // (wildcard checks); they are reported apart and come last.
        let checks: Vec<String> = serde_json::from_slice::<serde_json::Value>(&ours.stdout)
            .unwrap()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["question"].as_str().unwrap().to_owned())
            .collect();
        let extra = ours_wire.split_off(ours_wire.len().min(ours_said.len()));
        let extra: Vec<String> = extra.into_iter().map(|q| q.name).collect();
        assert_eq!(
            extra,
            checks,
            "resolve's own checks, after the replay, for {name:?} with\n{resolv_conf}\nwire: {:?}\nsaid: {:?}",
            keys(&ours_wire),
            keys(&ours_said)
        );
        let context = format!(
            "{libc} resolving {name:?} with\n{resolv_conf}\nresolve said:\n{}",
            serde_json::to_string_pretty(
                &serde_json::from_slice::<serde_json::Value>(&ours.stdout).unwrap()["lookup"]["queries"]
            )
            .unwrap()
        );
        assert!(!theirs.is_empty(), "no queries from {libc}: {context}");
        assert_eq!(keys(&ours_wire), keys(&theirs), "wire sequence: {context}");
        assert_eq!(
            keys(&ours_said),
            keys(&ours_wire),
            "report vs wire: {context}"
        );
        assert_eq!(
            socket_reuse(&ours_wire),
            socket_reuse(&theirs),
            "socket reuse: {context}"
        );
        outputs.push(ours);
    }
    outputs
}

/// Names with 0 to 5 dots, each with and without a trailing dot, found in
/// each search domain, as-is, or nowhere.
const NAMES: &[&str] = &[
    "web",
    "web.",
    "web.default",
    "web.default.",
    "web.default.svc",
    "web.default.svc.",
    "web.default.svc.cluster",
    "web.default.svc.cluster.",
    "web.default.svc.cluster.local",
    "web.default.svc.cluster.local.",
    "a.b.c.d.e.f",
    "a.b.c.d.e.f.",
    "www.netdiag.test",
    "www.netdiag.test.",
    "nope",
    "v4only.default",
];

#[test]
fn resolve_sends_exactly_what_glibc_sends() {
    let Some(lab) = DnsLab::new("resolve_sends_exactly_what_glibc_sends") else {
        return;
    };
    if !have("resolve_sends_exactly_what_glibc_sends", "tcpdump") {
        return;
    }
    let mut cap = Capture::start(&lab);
    let getent = ["getent", "ahosts"];
    let pod = format!("{POD_SEARCH}\nnameserver {SERVER}\noptions ndots:5 timeout:1\n");
    compare_sequences(&lab, &mut cap, &pod, NAMES, "glibc", &getent);
    // ndots:1 (the default outside Kubernetes) and ndots:2.
    for ndots in [1, 2] {
        let conf = format!("{POD_SEARCH}\nnameserver {SERVER}\noptions ndots:{ndots} timeout:1\n");
        compare_sequences(&lab, &mut cap, &conf, &NAMES[..12], "glibc", &getent);
    }
}

#[test]
fn resolve_follows_glibc_options_and_failures() {
    let Some(lab) = DnsLab::new("resolve_follows_glibc_options_and_failures") else {
        return;
    };
    if !have("resolve_follows_glibc_options_and_failures", "tcpdump") {
        return;
    }
    let mut cap = Capture::start(&lab);
    let getent = ["getent", "ahosts"];
    let some = ["web", "web.default", "nope."];
    for options in [
        "single-request",
        "single-request-reopen",
        "use-vc",
        "edns0 trust-ad",
        "rotate",
        "attempts:1",
        "no-aaaa",
    ] {
        let conf =
            format!("{POD_SEARCH}\nnameserver {SERVER}\noptions ndots:5 timeout:1 {options}\n");
        compare_sequences(&lab, &mut cap, &conf, &some, "glibc", &getent);
    }
    // A first server that drops everything (1 s per name), one that
    // answers ICMP port unreachable, a search domain that SERVFAILs, and
    // an answer too big for UDP (TC, then both queries again over TCP).
    let dropping = format!(
        "search svc.cluster.local\nnameserver {DROPPING}\nnameserver {SERVER}\noptions ndots:2 timeout:1 attempts:1\n"
    );
    compare_sequences(
        &lab,
        &mut cap,
        &dropping,
        &["web.default"],
        "glibc",
        &getent,
    );
    let closed = format!(
        "{POD_SEARCH}\nnameserver {CLOSED}\nnameserver {SERVER}\noptions ndots:5 timeout:1\n"
    );
    compare_sequences(
        &lab,
        &mut cap,
        &closed,
        &["web.default", "nope."],
        "glibc",
        &getent,
    );
    let only_closed = format!("{POD_SEARCH}\nnameserver {CLOSED}\noptions ndots:5 timeout:1\n");
    compare_sequences(&lab, &mut cap, &only_closed, &["web"], "glibc", &getent);
    let servfail = format!(
        "search broken.test svc.cluster.local\nnameserver {SERVER}\noptions ndots:5 timeout:1\n"
    );
    compare_sequences(
        &lab,
        &mut cap,
        &servfail,
        &["web.default", "nope"],
        "glibc",
        &getent,
    );
    // A search domain the server refuses: glibc stops the search list
    // there and tries the name as-is.
    let refused = format!(
        "search example.org svc.cluster.local\nnameserver {SERVER}\noptions ndots:5 timeout:1\n"
    );
    compare_sequences(&lab, &mut cap, &refused, &["web.default"], "glibc", &getent);
    let pod = format!("{POD_SEARCH}\nnameserver {SERVER}\noptions ndots:5 timeout:1\n");
    let big = compare_sequences(
        &lab,
        &mut cap,
        &pod,
        &["big.default", "big.default.svc.cluster.local."],
        "glibc",
        &getent,
    );
    let tcp = reported(&big[1]);
    assert!(tcp.iter().any(|q| q.transport == "tcp"), "{tcp:?}");
}

#[test]
fn resolve_replays_glibc_when_aaaa_is_lost() {
    // The conntrack race: the A answer comes back, the AAAA never does.
    // glibc waits, re-asks one at a time on the same socket, then on a
    // new socket for AAAA (single-request, then single-request-reopen).
    let Some(lab) = DnsLab::new("resolve_replays_glibc_when_aaaa_is_lost") else {
        return;
    };
    if !have("resolve_replays_glibc_when_aaaa_is_lost", "tcpdump") {
        return;
    }
    // AAAA IN at the end of the question: type 28, class 1.
    lab.server.run(
        "iptables",
        &[
            "-I",
            "INPUT",
            "-p",
            "udp",
            "--dport",
            "53",
            "-m",
            "string",
            "--algo",
            "bm",
            "--hex-string",
            "|001c0001|",
            "-j",
            "DROP",
        ],
    );
    let mut cap = Capture::start(&lab);
    let conf = format!("{POD_SEARCH}\nnameserver {SERVER}\noptions ndots:5 timeout:1 attempts:1\n");
    let out = compare_sequences(
        &lab,
        &mut cap,
        &conf,
        &["web.default.svc.cluster.local."],
        "glibc",
        &["getent", "ahosts"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out[0].stdout).unwrap();
    assert_eq!(
        doc["lookup"]["resolution"]["addresses"][0], "198.51.100.80",
        "{doc}"
    );
    let events = doc["lookup"]["events"].to_string();
    assert!(events.contains("single-request-reopen"), "{events}");
}

/// A static program linked against musl: getaddrinfo(argv[1]) with
/// AF_UNSPEC and SOCK_STREAM, each address printed on a line; exit 2 when
/// the lookup fails. Built with musl-gcc in `dir`.
fn musl_getaddrinfo(dir: &Path) -> PathBuf {
    let src = dir.join("gai.c");
    fs::write(
        &src,
        r#"#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
int main(int c, char **v) {
    struct addrinfo h, *r, *p;
    memset(&h, 0, sizeof h);
    h.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(v[1], 0, &h, &r)) return 2;
    for (p = r; p; p = p->ai_next) {
        char b[64];
        void *a = p->ai_family == AF_INET
            ? (void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
            : (void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;
        puts(inet_ntop(p->ai_family, a, b, sizeof b));
    }
    return 0;
}
"#,
    )
    .unwrap();
    let bin = dir.join("gai-musl");
    let cc = Command::new("musl-gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("running musl-gcc");
    assert!(cc.status.success(), "musl-gcc: {}", text(&cc.stderr));
    bin
}

#[test]
fn resolve_sends_exactly_what_musl_sends() {
    let test = "resolve_sends_exactly_what_musl_sends";
    let Some(lab) = DnsLab::new(test) else {
        return;
    };
    if !have(test, "tcpdump") || !have(test, "musl-gcc") {
        return;
    }
    let bin = musl_getaddrinfo(lab.dir.path());
    let mut cap = Capture::start(&lab);
    let oracle = [bin.to_str().unwrap()];
    let pod = format!("{POD_SEARCH}\nnameserver {SERVER}\noptions ndots:5 timeout:1\n");
    // No name here is REFUSED: musl ignores REFUSED and waits out its
    // timeout, which the last case shows once.
    compare_sequences(
        &lab,
        &mut cap,
        &pod,
        &[
            "web",
            "web.default",
            "web.default.svc.",
            "web.default.svc.cluster.local",
            "web.default.svc.cluster.local.",
            "v4only.default",
            "www.netdiag.test",
            "www.netdiag.test.",
            "nope.netdiag.test.",
        ],
        "musl",
        &oracle,
    );
    let ndots1 =
        format!("{POD_SEARCH}\nnameserver {SERVER}\noptions ndots:1 timeout:1 attempts:1\n");
    compare_sequences(
        &lab,
        &mut cap,
        &ndots1,
        &["www.netdiag.test", "web", "foo.example."],
        "musl",
        &oracle,
    );
}

#[test]
fn resolve_verdict_names_the_problem_and_the_fix() {
    let Some(lab) = DnsLab::new("resolve_verdict_names_the_problem_and_the_fix") else {
        return;
    };
    // Search-list expansion: two NXDOMAIN queries before the answer.
    let out = lab.agent(&["resolve", "web.default"]);
    let o = text(&out.stdout);
    assert!(
        o.contains("Result: web.default → ")
            && o.contains("198.51.100.80")
            && o.contains("fd42::80"),
        "{o}"
    );
    assert!(o.contains("2 of 4 queries"), "{o}");
    assert!(
        o.contains("fix: use the fully qualified name \"web.default.svc.cluster.local.\""),
        "{o}"
    );
    // A FQDN typed without the dot under ndots:5 answers only after the
    // whole search list: the fix is the trailing dot or a lower ndots.
    let o = text(&lab.agent(&["resolve", "www.netdiag.test"]).stdout);
    assert!(o.contains("6 of 8 queries"), "{o}");
    assert!(
        o.contains("\"www.netdiag.test.\"") && o.contains("ndots: \"2\""),
        "{o}"
    );
    // A wildcard search domain shadows the real name.
    lab.resolv_conf(&format!(
        "search wild.test\nnameserver {SERVER}\noptions ndots:5 timeout:1\n"
    ));
    let o = text(&lab.agent(&["resolve", "www.netdiag.test"]).stdout);
    assert!(o.contains("203.0.113.99"), "{o}");
    assert!(o.contains("answers for any name"), "{o}");
    assert!(o.contains("shadows the name you meant"), "{o}");
    // A dead first server.
    lab.resolv_conf(&format!(
        "{POD_SEARCH}\nnameserver {DROPPING}\nnameserver {SERVER}\noptions ndots:5 timeout:1 attempts:1\n"
    ));
    let o = text(
        &lab.agent(&["resolve", "web.default.svc.cluster.local."])
            .stdout,
    );
    assert!(o.contains(&format!("to {DROPPING} got no answer")), "{o}");
    // SERVFAIL from a search domain, and JSON output.
    lab.resolv_conf(&format!(
        "search broken.test svc.cluster.local\nnameserver {SERVER}\noptions ndots:5 timeout:1\n"
    ));
    let out = lab.agent(&["resolve", "-o", "json", "web.default"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("resolve -o json");
    let kinds: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"servfail"), "{kinds:?}");
    assert_eq!(doc["lookup"]["resolution"]["outcome"], "found");
    // /etc/hosts answers before DNS (nsswitch: files dns), like getent.
    lab.etc.write(
        "hosts",
        "127.0.0.1 localhost\n198.51.100.77 pinned.example pinned\n",
    );
    let o = text(&lab.agent(&["resolve", "pinned"]).stdout);
    assert!(
        o.contains("198.51.100.77") && o.contains("No DNS query was sent."),
        "{o}"
    );
    let getent = text(&lab.run("getent", &["ahosts", "pinned"]).stdout);
    assert!(getent.contains("198.51.100.77"), "{getent}");
    // Tools resolve host names themselves (dns::resolve_host, no libc):
    // through /etc/hosts, and through DNS with the search list.
    lab.etc.write(
        "hosts",
        "127.0.0.1 localhost\n198.51.100.53 pinned-dns\n198.51.100.77 pinned.example pinned\n",
    );
    lab.resolv_conf(&format!(
        "{POD_SEARCH}\nnameserver {SERVER}\noptions ndots:5 timeout:1\n"
    ));
    let via_hosts = lab.agent(&["dig", "@pinned-dns", "www.netdiag.test", "+short"]);
    assert_eq!(
        text(&via_hosts.stdout),
        "198.51.100.10\n198.51.100.11\n",
        "{}",
        text(&via_hosts.stderr)
    );
    let via_dns = lab.agent(&[
        "dig",
        "@ns1.netdiag.test",
        "www.netdiag.test",
        "AAAA",
        "+short",
    ]);
    assert_eq!(
        text(&via_dns.stdout),
        "2001:db8::10\n",
        "{}",
        text(&via_dns.stderr)
    );
    // Without @, the servers of resolv.conf (no "(1 server found)").
    let default = text(&lab.agent(&["dig", "www.netdiag.test"]).stdout);
    assert!(
        default.contains(";; SERVER: 198.51.100.53#53(198.51.100.53) (UDP)"),
        "{default}"
    );
    assert!(!default.contains("server found"), "{default}");
    // A truncated answer is a finding.
    let o = text(
        &lab.agent(&["resolve", "big.default.svc.cluster.local."])
            .stdout,
    );
    assert!(o.contains("truncated over UDP"), "{o}");
    // dig --explain is the same tool.
    let o = text(&lab.agent(&["dig", "--explain", "pinned"]).stdout);
    assert!(o.contains("198.51.100.77"), "{o}");
}

// ------------------------------------------------------- hostile server

/// Replies captured from knot (the agent's fuzz corpus): the bytes after
/// each reply's question.
fn corpus_records() -> Vec<(u8, u8, [u8; 8], Vec<u8>)> {
    let path = workspace_root().join("debug-image/src/dns/testdata/knot-replies.txt");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let hex = l.split_whitespace().nth(2)?;
            let b: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            let mut at = 12;
            while b[at] != 0 {
                at += 1 + usize::from(b[at]);
            }
            at += 5;
            let mut counts = [0u8; 8];
            counts.copy_from_slice(&b[4..12]);
            Some((b[2], b[3], counts, b[at..].to_vec()))
        })
        .collect()
}

/// A reply to `query` built from a corpus reply, then mutated.
fn hostile_reply(rng: &mut Rng, query: &[u8], corpus: &[(u8, u8, [u8; 8], Vec<u8>)]) -> Vec<u8> {
    let (flags, rcode, counts, records) = &corpus[rng.index(corpus.len())];
    let qend = {
        let mut at = 12;
        while at < query.len() && query[at] != 0 {
            at += 1 + usize::from(query[at]);
        }
        (at + 5).min(query.len())
    };
    let mut r = query[..2].to_vec();
    r.extend_from_slice(&[*flags | 0x80, *rcode]);
    r.extend_from_slice(&[0, 1]);
    r.extend_from_slice(&counts[2..]);
    r.extend_from_slice(&query[12..qend]);
    r.extend_from_slice(records);
    for _ in 0..1 + rng.index(4) {
        let len = r.len();
        match rng.index(6) {
            0 if len > 2 => {
                let i = 2 + rng.index(len - 2);
                r[i] ^= 1 << rng.index(8);
            }
            1 if len > 2 => {
                let i = 2 + rng.index(len - 2);
                r[i] = rng.next_u64() as u8;
            }
            2 => r.truncate(2 + rng.index(len - 1)),
            3 if len > 14 => {
                let i = 12 + rng.index(len - 13);
                let target = rng.index(len + 8);
                if i + 1 < r.len() {
                    r[i] = 0xc0 | ((target >> 8) as u8 & 0x3f);
                    r[i + 1] = target as u8;
                }
            }
            4 => {
                let at = 4 + 2 * rng.index(4);
                if at + 1 < r.len() {
                    r[at] = rng.next_u64() as u8;
                    r[at + 1] = rng.next_u64() as u8;
                }
            }
            _ => {
                for _ in 0..rng.index(40) {
                    r.push(rng.next_u64() as u8);
                }
            }
        }
    }
    r
}

#[test]
fn hostile_replies_cannot_crash_dig_or_resolve() {
    let Some(lab) = DnsLab::new("hostile_replies_cannot_crash_dig_or_resolve") else {
        return;
    };
    let corpus = corpus_records();
    let socket = lab
        .server
        .enter(|| UdpSocket::bind((HOSTILE, 53)).expect("binding the hostile server"));
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let server = {
        let (stop, answered) = (stop.clone(), answered.clone());
        std::thread::spawn(move || {
            let mut rng = Rng::new(0x686f_7374_696c_6521);
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if n < 12 {
                    continue;
                }
                let query = &buf[..n];
                // A hostile reply, then (so no run waits for a timeout)
                // the same reply unmutated.
                let _ = socket.send_to(&hostile_reply(&mut rng, query, &corpus), from);
                let (flags, rcode, counts, records) = &corpus[rng.index(corpus.len())];
                let mut plain = query[..2].to_vec();
                plain.extend_from_slice(&[*flags | 0x80, *rcode, 0, 1]);
                plain.extend_from_slice(&counts[2..]);
                let mut at = 12;
                while at < n && query[at] != 0 {
                    at += 1 + usize::from(query[at]);
                }
                plain.extend_from_slice(&query[12..(at + 5).min(n)]);
                plain.extend_from_slice(records);
                let _ = socket.send_to(&plain, from);
                answered.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    lab.resolv_conf(&format!(
        "search default.svc.cluster.local\nnameserver {HOSTILE}\noptions ndots:2 timeout:1 attempts:1\n"
    ));
    let started = Instant::now();
    let types = [
        "A",
        "AAAA",
        "TXT",
        "MX",
        "SOA",
        "SRV",
        "NS",
        "CNAME",
        "TYPE65534",
        "ANY",
    ];
    for i in 0..150 {
        let qtype = types[i % types.len()];
        let out = lab.agent(&[
            "dig",
            "@198.51.100.56",
            "+timeout=1",
            "+tries=1",
            "+notcp",
            "www.netdiag.test",
            qtype,
        ]);
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "dig run {i}: {err}");
        assert!(
            matches!(out.status.code(), Some(0 | 9)),
            "dig run {i}: {:?} {err}",
            out.status
        );
        if i % 5 == 0 {
            let json = lab.agent(&[
                "dig",
                "@198.51.100.56",
                "+timeout=1",
                "+tries=1",
                "+notcp",
                "www.netdiag.test",
                qtype,
                "-o",
                "json",
            ]);
            assert!(
                matches!(json.status.code(), Some(0 | 9)),
                "{}",
                text(&json.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&json.stdout)
                .unwrap_or_else(|e| panic!("dig -o json run {i}: {e}: {}", text(&json.stdout)));
        }
    }
    for (i, libc) in ["glibc", "musl"].iter().cycle().take(24).enumerate() {
        let out = lab.agent(&["resolve", "--libc", libc, "web.default"]);
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "resolve run {i}: {err}");
        assert_eq!(out.status.code(), Some(0), "resolve run {i}: {err}");
    }
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    assert!(
        answered.load(Ordering::Relaxed) >= 150,
        "the hostile server answered too little"
    );
    assert!(started.elapsed() < Duration::from_secs(120));
}

/// Names in a hosts file whose addresses the destination address selection
/// rules reorder: loopback (::1 first), the pod's subnet before other IPv4
/// (glibc's rule 9), longer matches first, ULA against IPv4 (the libcs'
/// tables disagree), unroutable and link-local addresses last.
const ORDER_HOSTS: &str = "127.0.0.1 localhost
::1 localhost
203.0.113.9 outside-first
198.51.100.9 outside-first
198.51.100.130 far-first
198.51.100.9 far-first
198.51.100.200 far-first2
198.51.100.3 far-first2
fd42::9 ula-and-v4
198.51.100.9 ula-and-v4
203.0.113.9 v4-and-ula
fd42::9 v4-and-ula
fe80::9 link-local
fd42::9 link-local
";

/// `resolve` gives the addresses in the order getaddrinfo returns them
/// (RFC 3484/6724 destination address selection, each libc its own way):
/// the same as glibc's `getent ahosts` and a musl-linked getaddrinfo
/// program, with and without a route to 203.0.113.0/24. No packet is
/// sent: the libcs and the agent only connect() UDP sockets.
#[test]
fn addresses_come_in_getaddrinfos_order() {
    let test = "addresses_come_in_getaddrinfos_order";
    if !require_root(test) || !have(test, "musl-gcc") {
        return;
    }
    let dir = TempDir::new("gai-order");
    let musl = musl_getaddrinfo(dir.path());
    let hosts = dir.path().join("hosts");
    fs::write(&hosts, ORDER_HOSTS).unwrap();

    let pod = Netns::new("order");
    let peer = Netns::new("order-peer");
    let veth = veth_pair(
        &pod,
        &["198.51.100.2/24", "fd42::2/64"],
        &peer,
        &["198.51.100.1/24", "fd42::1/64"],
    );
    // A program in the pod, seeing our hosts file as /etc/hosts.
    let in_pod = |program: &[&str]| -> Vec<String> {
        let mut cmd = pod.command("unshare");
        cmd.args([
            "-m",
            "sh",
            "-c",
            r#"mount --bind "$1" /etc/hosts && shift && exec "$@""#,
            "sh",
        ])
        .arg(&hosts)
        .args(program);
        let out = netdiag_tests::process::checked(&mut cmd, Duration::from_secs(20));
        text(&out.stdout).lines().map(str::to_owned).collect()
    };
    let agent = agent_bin();
    let ours = |libc: &str, name: &str| -> Vec<String> {
        let json = in_pod(&[
            agent.to_str().unwrap(),
            "resolve",
            "--libc",
            libc,
            "-o",
            "json",
            name,
        ])
        .join("\n");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["lookup"]["resolution"]["addresses"]
            .as_array()
            .unwrap_or_else(|| panic!("no addresses for {name}: {json}"))
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    };
    let names = [
        "localhost",
        "outside-first",
        "far-first",
        "far-first2",
        "ula-and-v4",
        "v4-and-ula",
        "link-local",
    ];
    for routed in [false, true] {
        if routed {
            pod.ip(&["route", "add", "203.0.113.0/24", "dev", veth.a()]);
        }
        for name in names {
            let mut glibc: Vec<String> = Vec::new();
            for line in in_pod(&["getent", "ahosts", name]) {
                let addr = line.split_whitespace().next().unwrap_or("").to_owned();
                if !glibc.contains(&addr) {
                    glibc.push(addr);
                }
            }
            let musl_order = in_pod(&[musl.to_str().unwrap(), name]);
            let route = if routed { "with" } else { "without" };
            assert_eq!(
                ours("glibc", name),
                glibc,
                "glibc, {name}, {route} a route to 203.0.113.0/24"
            );
            assert_eq!(
                ours("musl", name),
                musl_order,
                "musl, {name}, {route} a route to 203.0.113.0/24"
            );
        }
    }
}
