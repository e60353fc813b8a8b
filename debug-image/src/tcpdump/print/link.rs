//! The link layer: Ethernet (with VLAN tags and 802.3/LLC frames), the
//! Linux cooked header of `-i any`, and ARP/RARP (print-ether.c,
//! print-sll.c, print-llc.c, print-arp.c).

use std::fmt::Write as _;

use pnet_packet::arp::ArpPacket;
use pnet_packet::ethernet::EthernetPacket;

use super::{Out, Printer, default_print, ip, mac};

pub const ETHERTYPE_IP: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_REVARP: u16 = 0x8035;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// tcpdump's `ethertype_values` (the ones a pod meets, and the VLAN ones).
pub fn ethertype_name(t: u16) -> Option<&'static str> {
    Some(match t {
        0x0800 => "IPv4",
        0x0806 => "ARP",
        0x86dd => "IPv6",
        0x8035 => "Reverse ARP",
        0x8100 => "802.1Q",
        0x88a8 => "802.1Q-QinQ",
        0x9100 => "802.1Q-9100",
        0x9200 => "802.1Q-9200",
        0x88cc => "LLDP",
        0x8847 => "MPLS unicast",
        0x8848 => "MPLS multicast",
        0x8863 => "PPPoE D",
        0x8864 => "PPPoE S",
        0x9000 => "Loopback",
        0x809b => "Appletalk",
        0x80f3 => "Appletalk ARP",
        0x8137 => "IPX",
        0x6003 => "DN",
        0x6004 => "LAT",
        0x6007 => "SCA",
        0x6001 => "MOP DL",
        0x6002 => "MOP RC",
        0x88e5 => "MACsec",
        0x8809 => "Slow Protocols",
        0x888e => "EAPOL",
        0x88f7 => "PTP",
        _ => return None,
    })
}

fn ethertype_text(t: u16) -> String {
    format!(
        "ethertype {} (0x{t:04x})",
        ethertype_name(t).unwrap_or("Unknown")
    )
}

fn is_vlan(t: u16) -> bool {
    matches!(t, 0x8100 | 0x88a8 | 0x9100 | 0x9200)
}

/// An Ethernet frame; returns the link-header length (for `-x`).
pub fn ethernet(pr: &mut Printer, data: &[u8], orig_len: u32, out: &mut Out) -> usize {
    let Some(eth) = EthernetPacket::new(data) else {
        out.push_str("[|ether]");
        return data.len();
    };
    let src = mac(&data[6..12]);
    let dst = mac(&data[0..6]);
    if pr.link_header() {
        let _ = write!(out, "{src} > {dst}, ");
    }
    let mut ethertype = eth.get_ethertype().0;
    let mut at = 14;
    let mut printed_length = false;
    let e = pr.link_header();
    loop {
        if ethertype <= 1500 {
            // 802.3: a length, then LLC.
            if e {
                let _ = write!(out, "802.3, length {orig_len}: ");
            }
            let len = usize::from(ethertype).min(data.len().saturating_sub(at));
            llc(&data[at..at + len], out, &src, &dst, e, orig_len);
            return at;
        }
        if is_vlan(ethertype) {
            let Some(tag) = data.get(at..at + 4) else {
                if e && !printed_length {
                    let _ = write!(out, "{}, length {orig_len}: ", ethertype_text(ethertype));
                }
                out.push_str(" [|vlan]");
                return data.len();
            };
            let tci = u16::from_be_bytes([tag[0], tag[1]]);
            if e {
                out.push_str(&ethertype_text(ethertype));
                if printed_length {
                    out.push_str(", ");
                } else {
                    let _ = write!(out, ", length {orig_len}: ");
                    printed_length = true;
                }
                let _ = write!(
                    out,
                    "vlan {}, p {}{}, ",
                    tci & 0x0fff,
                    tci >> 13,
                    if tci & 0x1000 != 0 { ", DEI" } else { "" }
                );
            }
            ethertype = u16::from_be_bytes([tag[2], tag[3]]);
            at += 4;
            continue;
        }
        if e {
            out.push_str(&ethertype_text(ethertype));
            if printed_length {
                out.push_str(", ");
            } else {
                let _ = write!(out, ", length {orig_len}: ");
            }
        }
        let payload = &data[at..];
        let known = network(pr, ethertype, payload, out);
        if !known {
            if !e {
                let _ = write!(
                    out,
                    "{src} > {dst}, {}, length {orig_len}: ",
                    ethertype_text(ethertype)
                );
            }
            default_print(payload, out);
        }
        return at;
    }
}

/// The protocol after the link layer; false if tcpdump would not decode it.
pub fn network(pr: &mut Printer, ethertype: u16, payload: &[u8], out: &mut Out) -> bool {
    match ethertype {
        ETHERTYPE_IP => ip::ipv4(pr, payload, out),
        ETHERTYPE_IPV6 => ip::ipv6(pr, payload, out),
        ETHERTYPE_ARP | ETHERTYPE_REVARP => arp(pr, payload, out),
        _ => return false,
    }
    true
}

/// 802.2 LLC after an 802.3 length: named the way tcpdump names the SAPs;
/// SNAP carrying an EtherType continues with that protocol.
fn llc(data: &[u8], out: &mut Out, src: &str, dst: &str, e: bool, orig_len: u32) {
    if data.len() >= 2 && data[0] == 0xff && data[1] == 0xff {
        out.push_str("IPX 802.3");
        return;
    }
    if data.len() < 3 {
        out.push_str(" [|llc]");
        return;
    }
    let sap = |s: u8| match s & 0xfe {
        0x00 => "Null",
        0x42 => "STP",
        0xaa => "SNAP",
        0xe0 => "IPX",
        0xf0 => "NetBeui",
        0xfe => "OSI",
        0x06 => "IP",
        _ => "Unknown",
    };
    let (dsap, ssap) = (data[0], data[1]);
    if e {
        let _ = write!(
            out,
            "LLC, dsap {} (0x{:02x}) {}, ssap {} (0x{:02x}) {}, ctrl 0x{:02x}: ",
            sap(dsap),
            dsap & 0xfe,
            if dsap & 1 == 0 { "Individual" } else { "Group" },
            sap(ssap),
            ssap & 0xfe,
            if ssap & 1 == 0 { "Command" } else { "Response" },
            data[2]
        );
    } else {
        let _ = write!(
            out,
            "{src} > {dst}, 802.3, length {orig_len}: LLC, dsap {} (0x{:02x}), ssap {} (0x{:02x}): ",
            sap(dsap),
            dsap & 0xfe,
            sap(ssap),
            ssap & 0xfe
        );
    }
    default_print(&data[3..], out);
}

/// The Linux cooked header (`-i any`); returns its length.
pub fn sll(pr: &mut Printer, data: &[u8], orig_len: u32, out: &mut Out) -> usize {
    if data.len() < 16 {
        out.push_str("[|sll]");
        return data.len();
    }
    let pkttype = u16::from_be_bytes([data[0], data[1]]);
    let halen = u16::from_be_bytes([data[4], data[5]]);
    let mut protocol = u16::from_be_bytes([data[14], data[15]]);
    // tcpdump prints the whole length, cooked header included.
    let length = orig_len;
    if pr.link_header() {
        let kind = match pkttype {
            0 => "In",
            1 => "B",
            2 => "M",
            3 => "P",
            4 => "Out",
            _ => "?",
        };
        let _ = write!(out, "{kind:>3} ");
        if halen == 6 {
            let _ = write!(out, "{} ", mac(&data[6..12]));
        }
        match protocol {
            1 => out.push_str("802.3"),
            4 => out.push_str("802.2"),
            p if p <= 1500 => {
                let _ = write!(out, "ethertype Unknown (0x{p:04x})");
            }
            p => out.push_str(&ethertype_text(p)),
        }
        let _ = write!(out, ", length {length}: ");
    }
    let mut at = 16;
    // A VLAN tag put back after the header, as libpcap does.
    while is_vlan(protocol) && data.len() >= at + 4 {
        let tci = u16::from_be_bytes([data[at], data[at + 1]]);
        protocol = u16::from_be_bytes([data[at + 2], data[at + 3]]);
        if pr.link_header() {
            let _ = write!(
                out,
                "vlan {}, p {}, {}, ",
                tci & 0x0fff,
                tci >> 13,
                ethertype_text(protocol)
            );
        }
        at += 4;
    }
    let payload = &data[at..];
    if protocol <= 1500 {
        match protocol {
            4 => llc(payload, out, "", "", true, length),
            _ => default_print(payload, out),
        }
        return at;
    }
    if !network(pr, protocol, payload, out) {
        if !pr.link_header() {
            let _ = write!(out, "{}, length {length}: ", ethertype_text(protocol));
        }
        default_print(payload, out);
    }
    at
}

/// ARP and RARP, keyed by the operation as tcpdump does.
pub fn arp(pr: &mut Printer, data: &[u8], out: &mut Out) {
    if !pr.link_header() {
        out.push_str("ARP, ");
    }
    let Some(a) = ArpPacket::new(data) else {
        out.push_str("[|ARP]");
        return;
    };
    let hlen = usize::from(a.get_hw_addr_len());
    let plen = usize::from(a.get_proto_addr_len());
    let proto = a.get_protocol_type().0;
    let op = a.get_operation().0;
    if (proto != 0x0800 && proto != 0x1000) || plen != 4 || hlen == 0 || pr.verbose() > 0 {
        let hrd = a.get_hardware_type().0;
        let hw = match hrd {
            1 => "Ethernet".to_owned(),
            6 => "IEEE 802".to_owned(),
            h => format!("Unknown Hardware ({h})"),
        };
        let pr_name = ethertype_name(proto)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("Unknown Protocol (0x{proto:04x})"));
        let _ = write!(out, "{hw} (len {hlen}), {pr_name} (len {plen})");
        if pr.verbose() == 0 {
            let _ = write!(out, ", length {}", data.len());
            return;
        }
    }
    // Addresses at their real offsets, whatever the lengths say.
    let sha_at = 8;
    let spa_at = sha_at + hlen;
    let tha_at = spa_at + plen;
    let tpa_at = tha_at + hlen;
    let field = |at: usize, len: usize| data.get(at..at + len);
    let ip4 = |b: Option<&[u8]>| match b {
        Some(b) if b.len() == 4 => format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]),
        Some(b) => mac(b),
        None => "[|arp]".into(),
    };
    let hw = |b: Option<&[u8]>| b.map(mac).unwrap_or_else(|| "[|arp]".into());
    let name = match op {
        1 => "Request",
        2 => "Reply",
        3 => "Reverse Request",
        4 => "Reverse Reply",
        8 => "Inverse Request",
        9 => "Inverse Reply",
        10 => "NACK Reply",
        _ => "",
    };
    let sep = if pr.verbose() > 0 { ", " } else { "" };
    if name.is_empty() {
        let _ = write!(out, "{sep}Unknown ({op}) ");
        default_print(data, out);
        return;
    }
    let _ = write!(out, "{sep}{name} ");
    match op {
        1 => {
            let _ = write!(out, "who-has {}", ip4(field(tpa_at, plen)));
            if let Some(tha) = field(tha_at, hlen)
                && tha.iter().any(|b| *b != 0)
            {
                let _ = write!(out, " ({})", mac(tha));
            }
            let _ = write!(out, " tell {}", ip4(field(spa_at, plen)));
        }
        2 => {
            let _ = write!(
                out,
                "{} is-at {}",
                ip4(field(spa_at, plen)),
                hw(field(sha_at, hlen))
            );
        }
        3 | 8 => {
            let _ = write!(
                out,
                "who-is {} tell {}",
                hw(field(tha_at, hlen)),
                hw(field(sha_at, hlen))
            );
        }
        4 => {
            let _ = write!(
                out,
                "{} at {}",
                hw(field(tha_at, hlen)),
                ip4(field(tpa_at, plen))
            );
        }
        9 => {
            let _ = write!(
                out,
                "{} at {}",
                hw(field(sha_at, hlen)),
                ip4(field(spa_at, plen))
            );
        }
        _ => {
            default_print(data, out);
            return;
        }
    }
    let _ = write!(out, ", length {}", data.len());
}
