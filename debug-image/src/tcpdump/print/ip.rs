//! IPv4, IPv6 (with its extension headers) and UDP, and the hand-off to
//! the transport printers (print-ip.c, print-ip6.c, print-udp.c).

use std::fmt::Write as _;

use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::udp::UdpPacket;

use super::{Out, Printer, dns, icmp, tcp};

/// What the transport printers need from the network layer.
pub struct Net<'a> {
    pub src: String,
    pub dst: String,
    /// The pseudo-header addresses, for checksums.
    pub src_raw: &'a [u8],
    pub dst_raw: &'a [u8],
    pub v6: bool,
    /// Whether the transport header follows the fixed IP header directly:
    /// then the transport printer prints addresses with the ports;
    /// otherwise the IP printer already printed them.
    pub direct: bool,
}

/// IANA protocol names tcpdump uses in `-v` output.
pub fn proto_name(p: u8) -> &'static str {
    match p {
        0 => "Options",
        1 => "ICMP",
        2 => "IGMP",
        4 => "IPIP",
        6 => "TCP",
        17 => "UDP",
        41 => "IPv6",
        43 => "Routing",
        44 => "frag",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        58 => "ICMPv6",
        59 => "NONE",
        60 => "DSTOPT",
        89 => "OSPF",
        103 => "PIM",
        112 => "VRRP",
        132 => "SCTP",
        _ => "unknown",
    }
}

/// Internet checksum of `data` with an initial sum.
pub fn checksum(data: &[u8], mut sum: u32) -> u16 {
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The pseudo-header sum for a transport checksum.
pub fn pseudo_sum(net: &Net<'_>, proto: u8, len: usize) -> u32 {
    let mut p = Vec::with_capacity(40);
    p.extend_from_slice(net.src_raw);
    p.extend_from_slice(net.dst_raw);
    if net.v6 {
        p.extend_from_slice(&(len as u32).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, proto]);
    } else {
        p.extend_from_slice(&[0, proto]);
        p.extend_from_slice(&(len as u16).to_be_bytes());
    }
    let mut sum = 0u32;
    for chunk in p.chunks(2) {
        sum += u32::from(u16::from_be_bytes([chunk[0], chunk[1]]));
    }
    sum
}

pub fn ipv4(pr: &mut Printer, data: &[u8], out: &mut Out) {
    if !pr.link_header() {
        out.push_str("IP ");
    }
    let Some(ip) = Ipv4Packet::new(data) else {
        out.push_str("[|ip]");
        return;
    };
    let version = ip.get_version();
    if version != 4 {
        if version == 6 {
            out.push_str("IP6, wrong link-layer encapsulation (invalid)");
        } else {
            let _ = write!(out, "IP{version} (invalid)");
        }
        return;
    }
    let hlen = usize::from(ip.get_header_length()) * 4;
    if hlen < 20 {
        let _ = write!(out, "bad-hlen {hlen}");
        return;
    }
    let total = usize::from(ip.get_total_length());
    if data.len() < total {
        // Only the captured part is short here when the wire length says
        // otherwise; tcpdump reports it only for the length it was given.
    }
    if total < hlen {
        let _ = write!(out, "bad-len {total}");
        return;
    }
    let end = total.min(data.len());
    let packet = &data[..end];
    let proto = ip.get_next_level_protocol().0;
    let flags_off = u16::from_be_bytes([data[6], data[7]]);
    let offset = flags_off & 0x1fff;
    let src = ip.get_source().to_string();
    let dst = ip.get_destination().to_string();
    if pr.verbose() > 0 {
        let tos = ip.get_dscp() << 2 | ip.get_ecn();
        let _ = write!(out, "(tos 0x{tos:x}");
        match tos & 3 {
            1 => out.push_str(",ECT(1)"),
            2 => out.push_str(",ECT(0)"),
            3 => out.push_str(",CE"),
            _ => {}
        }
        let ttl = ip.get_ttl();
        if ttl >= 1 {
            let _ = write!(out, ", ttl {ttl}");
        }
        let mut flags = Vec::new();
        if flags_off & 0x2000 != 0 {
            flags.push("+");
        }
        if flags_off & 0x4000 != 0 {
            flags.push("DF");
        }
        if flags_off & 0x8000 != 0 {
            flags.push("rsvd");
        }
        let _ = write!(
            out,
            ", id {}, offset {}, flags [{}], proto {} ({proto}), length {total}",
            ip.get_identification(),
            u32::from(offset) * 8,
            if flags.is_empty() {
                "none".to_owned()
            } else {
                flags.join(", ")
            },
            proto_name(proto),
        );
        if hlen > 20 {
            out.push_str(", options (");
            ip_options(data.get(20..hlen).unwrap_or(&[]), out);
            out.push(')');
        }
        if data.len() >= hlen {
            let sum = checksum(&data[..hlen], 0);
            if sum != 0 {
                let got = ip.get_checksum();
                let mut hdr = data[..hlen].to_vec();
                hdr[10] = 0;
                hdr[11] = 0;
                let _ = write!(out, ", bad cksum {got:x} (->{:x})!", checksum(&hdr, 0));
            }
        }
        out.push_str(")\n    ");
    }
    if data.len() < hlen {
        let _ = write!(
            out,
            "{src} > {dst}:  [remaining caplen({}) < header length({hlen})] [|ip]",
            data.len()
        );
        return;
    }
    let payload = &packet[hlen..];
    let len = total - hlen;
    let net = Net {
        src,
        dst,
        src_raw: &data[12..16],
        dst_raw: &data[16..20],
        v6: false,
        direct: true,
    };
    if offset == 0 {
        if !matches!(proto, 6 | 17 | 132 | 33) {
            let _ = write!(out, "{} > {}: ", net.src, net.dst);
        }
        demux(pr, proto, payload, len, &net, out);
    } else {
        let _ = write!(out, "{} > {}: ip-proto-{proto}", net.src, net.dst);
    }
}

fn ip_options(mut opts: &[u8], out: &mut Out) {
    let mut first = true;
    while let Some(&kind) = opts.first() {
        if !first {
            out.push(',');
        }
        first = false;
        match kind {
            0 => {
                out.push_str("EOL");
                if opts.len() > 1 {
                    let _ = write!(out, " [{} bytes pad]", opts.len() - 1);
                }
                return;
            }
            1 => {
                out.push_str("NOP");
                opts = &opts[1..];
            }
            _ => {
                let len = usize::from(*opts.get(1).unwrap_or(&0));
                let name = match kind {
                    7 => "RR",
                    68 => "TS",
                    130 => "security",
                    131 => "LSRR",
                    137 => "SSRR",
                    148 => "RA",
                    _ => "unknown",
                };
                let _ = write!(out, "{name} len {len}");
                if len < 2 || len > opts.len() {
                    out.push_str(" [bad length]");
                    return;
                }
                opts = &opts[len..];
            }
        }
    }
}

pub fn ipv6(pr: &mut Printer, data: &[u8], out: &mut Out) {
    if !pr.link_header() {
        out.push_str("IP6 ");
    }
    let Some(ip) = Ipv6Packet::new(data) else {
        out.push_str("[|ip6]");
        return;
    };
    let version = ip.get_version();
    if version != 6 {
        let _ = write!(out, "version error: {version} != 6");
        return;
    }
    let plen = usize::from(ip.get_payload_length());
    let mut nh = ip.get_next_header().0;
    if plen + 40 > data.len().max(40) && plen != 0 {
        // The capture may be short; decoding goes as far as it can.
    }
    if pr.verbose() > 0 {
        let flow = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        out.push('(');
        if flow & 0x0ff0_0000 != 0 {
            let _ = write!(out, "class 0x{:02x}, ", (flow & 0x0ff0_0000) >> 20);
        }
        if flow & 0x000f_ffff != 0 {
            let _ = write!(out, "flowlabel 0x{:05x}, ", flow & 0x000f_ffff);
        }
        let _ = write!(
            out,
            "hlim {}, next-header {} ({nh}) payload length: {plen}) ",
            ip.get_hop_limit(),
            proto_name(nh)
        );
    }
    let src = ip.get_source().to_string();
    let dst = ip.get_destination().to_string();
    let end = (40 + plen).min(data.len());
    let mut at = 40;
    let mut len = plen;
    let net = |direct: bool| Net {
        src: src.clone(),
        dst: dst.clone(),
        src_raw: &data[8..24],
        dst_raw: &data[24..40],
        v6: true,
        direct,
    };
    if !matches!(nh, 6 | 17 | 132 | 33) {
        let _ = write!(out, "{src} > {dst}: ");
    }
    loop {
        let rest = &data[at.min(end)..end];
        match nh {
            0 | 60 => {
                out.push_str(if nh == 0 { "HBH " } else { "DSTOPT " });
                let Some(hdr) = rest.get(..2) else {
                    out.push_str("[|ip6]");
                    return;
                };
                let hlen = (usize::from(hdr[1]) + 1) * 8;
                if rest.len() < hlen || len < hlen {
                    out.push_str("[|ip6]");
                    return;
                }
                nh = hdr[0];
                at += hlen;
                len -= hlen;
            }
            44 => {
                let Some(hdr) = rest.get(..8) else {
                    out.push_str("[|frag]");
                    return;
                };
                let off = u16::from_be_bytes([hdr[2], hdr[3]]) & 0xfff8;
                let flen = (40 + plen).saturating_sub(at + 8);
                let _ = write!(out, "frag ({off}|{flen})");
                if off != 0 {
                    return;
                }
                out.push(' ');
                nh = hdr[0];
                at += 8;
                len = len.saturating_sub(8);
            }
            43 => {
                let Some(hdr) = rest.get(..4) else {
                    out.push_str("[|srcrt]");
                    return;
                };
                let hlen = (usize::from(hdr[1]) + 1) * 8;
                let _ = write!(
                    out,
                    "RT6 (len={}, type={}, segleft={}) ",
                    hdr[1], hdr[2], hdr[3]
                );
                if rest.len() < hlen || len < hlen {
                    out.push_str("[|srcrt]");
                    return;
                }
                nh = hdr[0];
                at += hlen;
                len -= hlen;
            }
            _ => {
                let direct = at == 40;
                demux(pr, nh, rest, len, &net(direct), out);
                return;
            }
        }
    }
}

/// The protocol after IP (libpcap's `ip_demux_print`).
pub fn demux(pr: &mut Printer, proto: u8, data: &[u8], len: usize, net: &Net<'_>, out: &mut Out) {
    match proto {
        6 => tcp::tcp(pr, data, len, net, out),
        17 => udp(pr, data, len, net, out),
        1 if !net.v6 => icmp::icmp(pr, data, len, out),
        58 if net.v6 => icmp::icmp6(pr, data, len, net, out),
        4 => ipv4(pr, data, out),
        41 => ipv6(pr, data, out),
        59 => out.push_str("no next header"),
        132 => {
            addresses(net, data, out);
            out.push_str("sctp");
            if data.len() < 12 {
                out.push_str(" [|sctp]");
            }
        }
        _ => {
            let _ = write!(out, " ip-proto-{proto} {len}");
        }
    }
}

/// `src.port > dst.port: ` (or just the ports when the addresses were
/// printed already).
pub fn addresses(net: &Net<'_>, l4: &[u8], out: &mut Out) {
    let (sport, dport) = match l4.get(..4) {
        Some(p) => (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        ),
        None => return,
    };
    if net.direct {
        let _ = write!(out, "{}.{sport} > {}.{dport}: ", net.src, net.dst);
    } else {
        let _ = write!(out, "{sport} > {dport}: ");
    }
}

fn udp(pr: &mut Printer, data: &[u8], len: usize, net: &Net<'_>, out: &mut Out) {
    let Some(u) = UdpPacket::new(data) else {
        if net.direct {
            let _ = write!(out, "{} > {}: ", net.src, net.dst);
        }
        out.push_str(" [|udp]");
        return;
    };
    let ulen = usize::from(u.get_length());
    addresses(net, data, out);
    if ulen < 8 {
        let _ = write!(out, "bad-len {ulen}");
        return;
    }
    if ulen > len {
        let _ = write!(out, "truncated-udplength {ulen}");
        return;
    }
    let length = ulen - 8;
    let payload = &data[8..data.len().min(ulen)];
    // tcpdump checks UDP checksums with -v over IPv6 (where they are
    // mandatory), with -vv over IPv4.
    let check = if net.v6 {
        pr.verbose() > 0
    } else {
        pr.verbose() > 1
    };
    if check && data.len() >= ulen {
        let got = u.get_checksum();
        if got == 0 && !net.v6 {
            out.push_str("[no cksum] ");
        } else {
            let sum = checksum(&data[..ulen], pseudo_sum(net, 17, ulen));
            if sum == 0 {
                out.push_str("[udp sum ok] ");
            } else {
                let mut copy = data[..ulen].to_vec();
                copy[6] = 0;
                copy[7] = 0;
                let want = checksum(&copy, pseudo_sum(net, 17, ulen));
                let _ = write!(out, "[bad udp cksum 0x{got:04x} -> 0x{want:04x}!] ");
            }
        }
    }
    let (sport, dport) = (u.get_source(), u.get_destination());
    if sport == 53 || dport == 53 {
        dns::dns(pr, payload, length, false, out);
    } else {
        let _ = write!(out, "UDP, length {length}");
    }
}
