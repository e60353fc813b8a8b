//! A bounded randomized test of the compiler: expressions built from the
//! language's own vocabulary (so most get deep into the parser, code
//! generator and optimizer) and plain garbage, for both link types. Every
//! input must give a program the kernel would accept or an error line;
//! never a panic, a hang, or an invalid program. (cargo-fuzz needs a
//! nightly toolchain, which this project does not use; this runs in every
//! `cargo test` instead, for a fixed number of cases and a time bound.)

use std::time::{Duration, Instant};

use super::bpf::Metadata;
use super::{LinkType, Target, compile, numeric_only};
use crate::test_rng::Rng;

const WORDS: &[&str] = &[
    "host",
    "net",
    "port",
    "portrange",
    "src",
    "dst",
    "or",
    "and",
    "not",
    "!",
    "&&",
    "||",
    "(",
    ")",
    "ip",
    "ip6",
    "arp",
    "rarp",
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "sctp",
    "vlan",
    "ether",
    "proto",
    "broadcast",
    "multicast",
    "less",
    "greater",
    "len",
    "mask",
    "inbound",
    "outbound",
    "byte",
    "[",
    "]",
    ":",
    "+",
    "-",
    "*",
    "/",
    "%",
    "&",
    "|",
    "^",
    "<<",
    ">>",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "0",
    "1",
    "2",
    "4",
    "13",
    "80",
    "443",
    "65535",
    "70000",
    "0x800",
    "0xffffffff",
    "010",
    "1.2.3.4",
    "10.0.0.0",
    "10",
    "198.51.100.1",
    "fd42::1",
    "::",
    "fd42::",
    "de:ad:be:ef:ca:fe",
    "1:2:3:4:5:6",
    "tcpflags",
    "tcp-syn",
    "tcp-ack",
    "icmptype",
    "icmp-echo",
    "icmp6type",
    "http",
    "domain",
    "21-23",
    "\\tcp",
    "stp",
    "iso",
    "atalk",
    "tcp.flags.syn",
    "eq",
    "gateway",
    "protochain",
    "mpls",
    "$1",
    "/24",
    "/64",
];

fn expression(rng: &mut Rng) -> String {
    let n = 1 + rng.below(24);
    let mut words = Vec::with_capacity(n);
    for _ in 0..n {
        words.push(WORDS[rng.below(WORDS.len())]);
    }
    words.join(if rng.below(4) == 0 { "" } else { " " })
}

fn garbage(rng: &mut Rng) -> String {
    let n = rng.below(40);
    (0..n)
        .map(|_| {
            let b = rng.below(96) as u8 + 32;
            b as char
        })
        .collect()
}

#[test]
fn compiler_never_panics_and_programs_are_valid() {
    let started = Instant::now();
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let packets: Vec<Vec<u8>> = (0..16)
        .map(|i| (0..(i * 7 % 90)).map(|_| rng.next() as u8).collect())
        .collect();
    let mut compiled = 0;
    for case in 0..4000 {
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
        let text = if case % 5 == 0 {
            garbage(&mut rng)
        } else {
            expression(&mut rng)
        };
        for link in [LinkType::Ethernet, LinkType::LinuxSll] {
            for vlan_metadata in [false, true] {
                let target = Target {
                    link,
                    vlan_metadata: vlan_metadata && link == LinkType::Ethernet,
                    savefile: !vlan_metadata,
                    snaplen: 262_144,
                    netmask: Some(0xffff_ff00),
                    resolve: &numeric_only,
                };
                match compile(&text, &target) {
                    Ok(p) => {
                        compiled += 1;
                        p.validate().unwrap_or_else(|e| panic!("{text:?}: {e}"));
                        for data in &packets {
                            let meta = Metadata {
                                vlan_tci: (data.len() % 2 == 0).then_some(5),
                                ..Metadata::default()
                            };
                            p.run(data, data.len() as u32, &meta);
                        }
                    }
                    Err(e) => {
                        assert!(!e.message.is_empty(), "{text:?}");
                        assert!(!e.message.contains('\n'), "{text:?}: {}", e.message);
                    }
                }
            }
        }
    }
    assert!(compiled > 100, "only {compiled} inputs compiled");
}
