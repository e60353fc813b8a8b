//! Live-capture programs against libpcap's live programs.
//!
//! On a live Linux capture the kernel has usually taken the outer VLAN tag
//! out of the frame and into the packet's metadata, and libpcap compiles
//! `vlan` (and every offset after it) to look there first. A pcap file
//! cannot show this, so the check is done on programs: `tcpdump -ddd -i
//! VETH EXPR` (libpcap's live program) and `netdiag-agent tcpdump -ddd -i
//! VETH EXPR` run side by side in an interpreter over the packet corpus,
//! with the outer 802.1Q/802.1ad tag of each frame moved into metadata as
//! the kernel moves it. Every verdict must agree. The same is done for
//! `-i any` programs (libpcap's forced to LINUX_SLL, the agent's link
//! type; libpcap 1.10 defaults to SLL2) against the cooked corpus.

use std::process::Command;

use netdiag_tests::require_root;

use super::bpf::{Meta, accepts, parse_ddd};
use super::corpus::{self, Frame};
use super::live::lab;

/// Expressions whose live programs differ from their offline ones, and a
/// sample of the others.
const EXPRESSIONS: &[&str] = &[
    "vlan",
    "vlan 5",
    "vlan 100",
    "vlan 0",
    "vlan and ip",
    "vlan and ip6",
    "vlan 5 and ip6",
    "vlan 100 and udp port 53",
    "vlan and vlan",
    "vlan 5 and vlan 100",
    "vlan and vlan and ip",
    "vlan and vlan 300",
    "ip or vlan and tcp",
    "(vlan and ip) or ip",
    "vlan and host 10.0.0.1",
    "vlan and port 53",
    "not vlan",
    "not vlan and tcp",
    "vlan and not ip",
    "vlan and ip[9] = 6",
    "vlan and tcp[13] & 2 != 0",
    "vlan and icmp6[0] = 135",
    "vlan and ether host de:ad:be:ef:ca:fe",
    "vlan and arp",
    "inbound",
    "outbound",
    "inbound and tcp",
    "tcp port 80",
    "host 10.0.0.1 and (10.0.0.9 or 10.0.0.3)",
    "icmp or arp",
    "ip6 and tcp port 443",
    "udp port 8472",
    "len <= 128",
    "ether broadcast",
    "multicast",
];

/// The frame as a live capture's filter sees it: an outer 802.1Q or
/// 802.1ad tag moved into metadata.
fn as_kernel_sees_it(f: &Frame) -> (Vec<u8>, u32, Meta) {
    let d = &f.data;
    if d.len() >= 18 && matches!(u16::from_be_bytes([d[12], d[13]]), 0x8100 | 0x88a8) {
        let tci = u16::from_be_bytes([d[14], d[15]]);
        let mut data = d[..12].to_vec();
        data.extend_from_slice(&d[16..]);
        let meta = Meta {
            vlan_tci: Some(tci),
            pkttype: 0,
            protocol: u32::from(u16::from_be_bytes([d[16], d[17]])),
        };
        return (data, f.wire_len - 4, meta);
    }
    let protocol = if d.len() >= 14 {
        u32::from(u16::from_be_bytes([d[12], d[13]]))
    } else {
        0
    };
    (
        d.clone(),
        f.wire_len,
        Meta {
            vlan_tci: None,
            pkttype: if d.first().is_some_and(|b| b & 1 == 1) {
                2
            } else {
                4 * u32::from(d.len().is_multiple_of(3))
            },
            protocol,
        },
    )
}

fn ddd(cmd: &mut Command) -> Result<Vec<(u16, u8, u8, u32)>, String> {
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(parse_ddd(&String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn live_programs_select_what_libpcaps_select() {
    if !require_root("live_programs_select_what_libpcaps_select") {
        return;
    }
    let lab = lab("tdvlan");
    let frames = corpus::build();
    let kernel_view: Vec<(Vec<u8>, u32, Meta)> = frames.iter().map(as_kernel_sees_it).collect();
    let agent = netdiag_tests::agent::agent_bin();
    let mut checked = 0;
    for iface in [lab.veth.a(), "any"] {
        for expr in EXPRESSIONS {
            // libpcap's own default for `any` is SLL2; the agent writes
            // SLL (v1) so that older Wireshark reads it: compare with that.
            let mut oracle = lab.a.command("tcpdump");
            if iface == "any" {
                oracle.args(["-y", "LINUX_SLL"]);
            }
            let theirs = ddd(oracle.args(["-ddd", "-i", iface, expr]));
            let ours = ddd(lab
                .a
                .command(agent.to_str().unwrap())
                .args(["tcpdump", "-ddd", "-i", iface, expr]));
            let (theirs, ours) = match (theirs, ours) {
                (Ok(t), Ok(o)) => (t, o),
                (Err(_), Err(_)) => continue,
                (t, o) => panic!("-i {iface} {expr:?}: libpcap {t:?}, agent {o:?}"),
            };
            if iface == "any" {
                // Programs for cooked frames: run on the SLL corpus.
                for f in corpus::to_sll(&frames) {
                    let meta = Meta {
                        vlan_tci: None,
                        pkttype: u32::from(f.data[1]),
                        protocol: u32::from(u16::from_be_bytes([f.data[14], f.data[15]])),
                    };
                    let t = accepts(&theirs, &f.data, f.wire_len, &meta);
                    let o = accepts(&ours, &f.data, f.wire_len, &meta);
                    assert_eq!(
                        o,
                        t,
                        "-i any {expr:?} on {:02x?}",
                        &f.data[..f.data.len().min(40)]
                    );
                }
            } else {
                for (i, (data, wire, meta)) in kernel_view.iter().enumerate() {
                    let t = accepts(&theirs, data, *wire, meta);
                    let o = accepts(&ours, data, *wire, meta);
                    assert_eq!(
                        o,
                        t,
                        "-i {iface} {expr:?} on frame {i} ({meta:?}): {:02x?}",
                        &data[..data.len().min(40)]
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} programs compared");
}
