//! ICMP and ICMPv6 in tcpdump's words (print-icmp.c, print-icmp6.c).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use pnet_packet::icmp::IcmpPacket;
use pnet_packet::icmpv6::Icmpv6Packet;

use super::ip::{Net, checksum, pseudo_sum};
use super::{Out, Printer};

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

fn v4(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    Some(Ipv4Addr::from(be32(b, at)?))
}

fn v6(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let bytes: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(bytes))
}

pub fn icmp(pr: &mut Printer, data: &[u8], len: usize, out: &mut Out) {
    let Some(pkt) = IcmpPacket::new(data) else {
        out.push_str("ICMP [|icmp]");
        return;
    };
    let kind = pkt.get_icmp_type().0;
    let code = pkt.get_icmp_code().0;
    // The IP header quoted in error messages, and what follows it.
    let inner = data.get(8..).unwrap_or(&[]);
    let inner_hlen = inner
        .first()
        .map(|b| usize::from(b & 0xf) * 4)
        .unwrap_or(20);
    let inner_dst = v4(inner, 16);
    let text: Option<String> = (|| {
        Some(match kind {
            0 | 8 => format!(
                "echo {}, id {}, seq {}",
                if kind == 0 { "reply" } else { "request" },
                be16(data, 4)?,
                be16(data, 6)?
            ),
            3 => {
                let dst = inner_dst?;
                match code {
                    2 => format!("{dst} protocol {} unreachable", inner.get(9)?),
                    3 => {
                        let proto = *inner.get(9)?;
                        let port = be16(inner, inner_hlen + 2)?;
                        match proto {
                            6 => format!("{dst} tcp port {port} unreachable"),
                            17 => format!("{dst} udp port {port} unreachable"),
                            p => format!("{dst} protocol {p} port {port} unreachable"),
                        }
                    }
                    4 => match be16(data, 6)? {
                        0 => format!("{dst} unreachable - need to frag"),
                        mtu => format!("{dst} unreachable - need to frag (mtu {mtu})"),
                    },
                    0 => format!("net {dst} unreachable"),
                    1 => format!("host {dst} unreachable"),
                    5 => format!("{dst} unreachable - source route failed"),
                    6 => format!("net {dst} unreachable - unknown"),
                    7 => format!("host {dst} unreachable - unknown"),
                    8 => format!("{dst} unreachable - source host isolated"),
                    9 => format!("net {dst} unreachable - admin prohibited"),
                    10 => format!("host {dst} unreachable - admin prohibited"),
                    11 => format!("net {dst} unreachable - tos prohibited"),
                    12 => format!("host {dst} unreachable - tos prohibited"),
                    13 => format!("host {dst} unreachable - admin prohibited filter"),
                    14 => format!("host {dst} unreachable - host precedence violation"),
                    15 => format!("host {dst} unreachable - precedence cutoff"),
                    c => format!("{dst} unreachable - #{c}"),
                }
            }
            4 => "source quench".into(),
            5 => {
                let dst = inner_dst?;
                let gw = v4(data, 4)?;
                match code {
                    0 => format!("redirect {dst} to net {gw}"),
                    1 => format!("redirect {dst} to host {gw}"),
                    2 => format!("redirect-tos {dst} to net {gw}"),
                    3 => format!("redirect-tos {dst} to host {gw}"),
                    c => format!("redirect-#{c} {dst} to {gw}"),
                }
            }
            9 => "router advertisement".into(),
            10 => "router solicitation".into(),
            11 => match code {
                0 => "time exceeded in-transit".into(),
                1 => "ip reassembly time exceeded".into(),
                c => format!("time exceeded-#{c}"),
            },
            12 => match code {
                0 => format!("parameter problem - octet {}", data.get(4)?),
                c => format!("parameter problem - code {c}"),
            },
            13 => format!(
                "time stamp query id {} seq {}",
                be16(data, 4)?,
                be16(data, 6)?
            ),
            14 => format!(
                "time stamp reply id {} seq {}",
                be16(data, 4)?,
                be16(data, 6)?
            ),
            15 => "information request".into(),
            16 => "information reply".into(),
            17 => "address mask request".into(),
            18 => format!("address mask is 0x{:08x}", be32(data, 8)?),
            k => format!("type-#{k}"),
        })
    })();
    match text {
        Some(t) => {
            let _ = write!(out, "ICMP {t}, length {len}");
        }
        None => {
            out.push_str("ICMP [|icmp]");
            return;
        }
    }
    if pr.verbose() > 0 && data.len() >= len && len > 0 {
        let sum = checksum(&data[..len], 0);
        if sum != 0 {
            let mut copy = data[..len].to_vec();
            copy[2] = 0;
            copy[3] = 0;
            let _ = write!(
                out,
                " (wrong icmp cksum {:x} (->{:x})!)",
                pkt.get_checksum(),
                checksum(&copy, 0)
            );
        }
    }
}

fn icmp6_type_name(kind: u8) -> Option<&'static str> {
    Some(match kind {
        1 => "destination unreachable",
        2 => "packet too big",
        3 => "time exceeded in-transit",
        4 => "parameter problem",
        128 => "echo request",
        129 => "echo reply",
        130 => "multicast listener query",
        131 => "multicast listener report",
        132 => "multicast listener done",
        133 => "router solicitation",
        134 => "router advertisement",
        135 => "neighbor solicitation",
        136 => "neighbor advertisement",
        137 => "redirect",
        138 => "router renumbering",
        139 => "node information query",
        140 => "node information reply",
        141 => "inverse neighbor solicitation",
        142 => "inverse neighbor advertisement",
        143 => "multicast listener report v2",
        144 => "ha discovery request",
        145 => "ha discovery reply",
        146 => "mobile router solicitation",
        147 => "mobile router advertisement",
        148 => "certification path solicitation",
        149 => "certification path advertisement",
        151 => "multicast router advertisement",
        152 => "multicast router solicitation",
        153 => "multicast router termination",
        _ => return None,
    })
}

/// The transport header after the IPv6 header quoted in an error, and its
/// protocol (skipping extension headers as tcpdump's get_upperlayer does).
fn upper_layer(inner: &[u8]) -> Option<(u8, &[u8])> {
    let mut nh = *inner.get(6)?;
    let mut at = 40;
    loop {
        match nh {
            0 | 43 | 60 => {
                let hlen = (usize::from(*inner.get(at + 1)?) + 1) * 8;
                nh = *inner.get(at)?;
                at += hlen;
            }
            44 => {
                nh = *inner.get(at)?;
                at += 8;
            }
            _ => return Some((nh, inner.get(at..)?)),
        }
    }
}

pub fn icmp6(pr: &mut Printer, data: &[u8], len: usize, net: &Net<'_>, out: &mut Out) {
    let Some(pkt) = Icmpv6Packet::new(data) else {
        out.push_str("ICMP6, [|icmp6]");
        return;
    };
    let kind = pkt.get_icmpv6_type().0;
    let code = pkt.get_icmpv6_code().0;
    if pr.verbose() > 0 && data.len() >= len {
        let sum = checksum(&data[..len], pseudo_sum(net, 58, len));
        if sum == 0 {
            out.push_str("[icmp6 sum ok] ");
        } else {
            let mut copy = data[..len].to_vec();
            copy[2] = 0;
            copy[3] = 0;
            let _ = write!(
                out,
                "[bad icmp6 cksum 0x{:04x} -> 0x{:04x}!] ",
                pkt.get_checksum(),
                checksum(&copy, pseudo_sum(net, 58, len))
            );
        }
    }
    out.push_str("ICMP6, ");
    match icmp6_type_name(kind) {
        Some(n) => out.push_str(n),
        None => {
            let _ = write!(out, "unknown icmp6 type ({kind}), length {len}");
            return;
        }
    }
    // With -v tcpdump prints the length of neighbor discovery messages
    // right after their name (their options follow).
    let length_first = pr.verbose() > 0 && matches!(kind, 133..=137);
    if length_first {
        let _ = write!(out, ", length {len}");
    }
    let inner = data.get(8..).unwrap_or(&[]);
    let rest: Option<String> = (|| {
        Some(match kind {
            1 => {
                let name = match code {
                    0 => "unreachable route",
                    1 => "unreachable prohibited",
                    2 => "beyond scope",
                    3 => "unreachable address",
                    4 => "unreachable port",
                    _ => "",
                };
                let mut s = if name.is_empty() {
                    format!(", unknown unreach code ({code})")
                } else {
                    format!(", {name}")
                };
                match code {
                    0 | 1 | 3 => {
                        let _ = write!(s, " {}", v6(inner, 24)?);
                    }
                    2 => {
                        let _ = write!(s, " {}, source address {}", v6(inner, 24)?, v6(inner, 8)?);
                    }
                    4 => {
                        let dst = v6(inner, 24)?;
                        let (proto, l4) = upper_layer(inner)?;
                        let port = be16(l4, 2)?;
                        match proto {
                            6 => {
                                let _ = write!(s, ", {dst} tcp port {port}");
                            }
                            17 => {
                                let _ = write!(s, ", {dst} udp port {port}");
                            }
                            p => {
                                let _ = write!(s, ", {dst} protocol {p} port {port} unreachable");
                            }
                        }
                    }
                    _ => {}
                }
                s
            }
            2 => format!(", mtu {}", be32(data, 4)?),
            3 => match code {
                0 => format!(" for {}", v6(inner, 24)?),
                1 => " (reassembly)".into(),
                c => format!(", unknown code ({c})"),
            },
            4 => {
                let ptr = be32(data, 4)?;
                match code {
                    0 => format!(", erroneous - octet {ptr}"),
                    1 => format!(", next header - octet {ptr}"),
                    2 => format!(", option - octet {ptr}"),
                    3 => format!(", incomplete header chain - octet {ptr}"),
                    c => format!(", code-#{c}"),
                }
            }
            128 | 129 => format!(", id {}, seq {}", be16(data, 4)?, be16(data, 6)?),
            135 => format!(", who has {}", v6(data, 8)?),
            136 => format!(", tgt is {}", v6(data, 8)?),
            137 => format!(", {} to {}", v6(data, 24)?, v6(data, 8)?),
            143 => {
                if len < 8 {
                    format!(" [invalid len {len}]")
                } else {
                    format!(", {} group record(s)", be16(data, 6)?)
                }
            }
            130 => {
                if len == 24 {
                    format!("max resp delay: {} addr: {}", be16(data, 4)?, v6(data, 8)?)
                } else if len >= 28 {
                    " v2".into()
                } else {
                    format!(" unknown-version (len {len}) ")
                }
            }
            131 | 132 => format!("max resp delay: {} addr: {}", be16(data, 4)?, v6(data, 8)?),
            _ => String::new(),
        })
    })();
    match rest {
        Some(r) => {
            out.push_str(&r);
            if pr.verbose() == 0 {
                let _ = write!(out, ", length {len}");
            }
        }
        None => out.push_str(" [|icmp6]"),
    }
}
