//! TCP as print-tcp.c prints it: flags, sequence numbers relative to the
//! start of the conversation (tcpdump's default without `-S`), options,
//! and DNS (port 53) or an HTTP request/response line (ports 80, 8080)
//! in the payload.

use std::fmt::Write as _;

use pnet_packet::tcp::TcpPacket;

use super::ip::{Net, addresses, checksum, pseudo_sum};
use super::{Out, Printer, SeqBase, dns};

/// One entry per conversation, the same for both directions (tcpdump's
/// `struct tha`): addresses and ports in a fixed order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvKey {
    src: Vec<u8>,
    dst: Vec<u8>,
    ports: u32,
}

const TH_FIN: u8 = 0x01;
const TH_SYN: u8 = 0x02;
const TH_RST: u8 = 0x04;
const TH_ACK: u8 = 0x10;
const TH_URG: u8 = 0x20;

/// `Flags [S.]`: tcpdump's letters in its order, "none" for no flag.
pub fn flag_string(flags: u8) -> String {
    const LETTERS: [(u8, char); 8] = [
        (0x01, 'F'),
        (0x02, 'S'),
        (0x04, 'R'),
        (0x08, 'P'),
        (0x10, '.'),
        (0x20, 'U'),
        (0x40, 'E'),
        (0x80, 'W'),
    ];
    let s: String = LETTERS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, c)| *c)
        .collect();
    if s.is_empty() { "none".into() } else { s }
}

pub fn tcp(pr: &mut Printer, data: &[u8], length: usize, net: &Net<'_>, out: &mut Out) {
    if data.len() < 4 {
        let _ = write!(out, "{} > {}: [|tcp]", net.src, net.dst);
        return;
    }
    addresses(net, data, out);
    let Some(t) = TcpPacket::new(data) else {
        out.push_str("[|tcp]");
        return;
    };
    let sport = t.get_source();
    let dport = t.get_destination();
    let hlen = usize::from(t.get_data_offset()) * 4;
    if hlen < 20 {
        let _ = write!(
            out,
            " tcp {} [bad hdr length {hlen} - too short, < 20]",
            length.wrapping_sub(hlen) as u32
        );
        return;
    }
    let mut seq = t.get_sequence();
    let mut ack = t.get_acknowledgement();
    let win = t.get_window();
    let urp = t.get_urgent_ptr();
    let flags = data[13];
    let _ = write!(out, "Flags [{}]", flag_string(flags));

    let (mut thseq, mut thack, mut rev) = (0u32, 0u32, false);
    if flags & TH_ACK != 0 {
        // One entry for both directions: the lower port (then address)
        // goes first.
        let (src, dst) = (net.src_raw.to_vec(), net.dst_raw.to_vec());
        rev = sport > dport || (sport == dport && src > dst);
        let key = if rev {
            ConvKey {
                src: dst,
                dst: src,
                ports: (u32::from(dport) << 16) | u32::from(sport),
            }
        } else {
            ConvKey {
                src,
                dst,
                ports: (u32::from(sport) << 16) | u32::from(dport),
            }
        };
        let base = match pr.tcp.get(&key) {
            Some(b) if flags & TH_SYN == 0 => {
                if rev {
                    seq = seq.wrapping_sub(b.ack);
                    ack = ack.wrapping_sub(b.seq);
                } else {
                    seq = seq.wrapping_sub(b.seq);
                    ack = ack.wrapping_sub(b.ack);
                }
                *b
            }
            _ => {
                let b = if rev {
                    SeqBase {
                        ack: seq,
                        seq: ack.wrapping_sub(1),
                    }
                } else {
                    SeqBase {
                        seq,
                        ack: ack.wrapping_sub(1),
                    }
                };
                pr.tcp.insert(key, b);
                b
            }
        };
        thseq = base.seq;
        thack = base.ack;
    }
    if hlen > length {
        let _ = write!(out, " [bad hdr length {hlen} - too long, > {length}]");
        return;
    }
    if pr.verbose() > 0 && data.len() >= length {
        let got = t.get_checksum();
        let sum = checksum(&data[..length], pseudo_sum(net, 6, length));
        let _ = write!(out, ", cksum 0x{got:04x}");
        if sum == 0 {
            out.push_str(" (correct)");
        } else {
            let mut copy = data[..length].to_vec();
            copy[16] = 0;
            copy[17] = 0;
            let want = checksum(&copy, pseudo_sum(net, 6, length));
            let _ = write!(out, " (incorrect -> 0x{want:04x})");
        }
    }
    let payload_len = length - hlen;
    if pr.verbose() > 1 || payload_len > 0 || flags & (TH_SYN | TH_FIN | TH_RST) != 0 {
        let _ = write!(out, ", seq {seq}");
        if payload_len > 0 {
            let _ = write!(out, ":{}", seq.wrapping_add(payload_len as u32));
        }
    }
    if flags & TH_ACK != 0 {
        let _ = write!(out, ", ack {ack}");
    }
    let _ = write!(out, ", win {win}");
    if flags & TH_URG != 0 {
        let _ = write!(out, ", urg {urp}");
    }
    if hlen > 20 {
        out.push_str(", options [");
        let Some(opts) = data.get(20..hlen) else {
            out.push_str("[|tcp]");
            return;
        };
        if !options(opts, rev, thseq, thack, out) {
            return;
        }
        out.push(']');
    }
    let _ = write!(out, ", length {payload_len}");
    if payload_len == 0 {
        return;
    }
    let payload = &data[hlen.min(data.len())..];
    let is = |p: u16| sport == p || dport == p;
    if is(53) {
        dns::dns(pr, payload, payload_len, true, out);
    } else if is(80) || is(8080) {
        out.push_str(": ");
        http(payload, payload_len, out);
    }
}

/// The options list; false if it was malformed (tcpdump stops the line).
fn options(mut o: &[u8], rev: bool, thseq: u32, thack: u32, out: &mut Out) -> bool {
    let mut first = true;
    while !o.is_empty() {
        if !first {
            out.push(',');
        }
        first = false;
        let kind = o[0];
        let len = if kind <= 1 {
            1
        } else {
            match o.get(1) {
                Some(&l) if l >= 2 && usize::from(l) <= o.len() => usize::from(l),
                _ => {
                    out.push_str(option_name(kind).as_str());
                    out.push_str("[bad opt]");
                    return false;
                }
            }
        };
        let body = &o[if kind <= 1 { 1 } else { 2 }..len];
        out.push_str(&option_name(kind));
        let datalen = match kind {
            2 if body.len() >= 2 => {
                let _ = write!(out, " {}", u16::from_be_bytes([body[0], body[1]]));
                2
            }
            3 if !body.is_empty() => {
                let _ = write!(out, " {}", body[0]);
                1
            }
            5 => {
                if !body.len().is_multiple_of(8) {
                    out.push_str(" invalid sack");
                } else {
                    let _ = write!(out, " {} ", body.len() / 8);
                    for b in body.chunks(8) {
                        let mut s = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                        let mut e = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                        let base = if rev { thseq } else { thack };
                        s = s.wrapping_sub(base);
                        e = e.wrapping_sub(base);
                        let _ = write!(out, "{{{s}:{e}}}");
                    }
                }
                body.len()
            }
            8 if body.len() >= 8 => {
                let _ = write!(
                    out,
                    " val {} ecr {}",
                    u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                    u32::from_be_bytes([body[4], body[5], body[6], body[7]])
                );
                8
            }
            0 | 1 | 4 => 0,
            2 | 3 | 8 => {
                out.push_str("[bad opt]");
                return false;
            }
            _ => {
                if !body.is_empty() {
                    out.push_str(" 0x");
                    for b in body {
                        let _ = write!(out, "{b:02x}");
                    }
                }
                body.len()
            }
        };
        let expected = datalen + if kind <= 1 { 1 } else { 2 };
        if expected != len {
            let _ = write!(out, "[len {len}]");
        }
        o = &o[len..];
        if kind == 0 {
            break;
        }
    }
    true
}

fn option_name(kind: u8) -> String {
    match kind {
        0 => "eol".into(),
        1 => "nop".into(),
        2 => "mss".into(),
        3 => "wscale".into(),
        4 => "sackOK".into(),
        5 => "sack".into(),
        6 => "echo".into(),
        7 => "echoreply".into(),
        8 => "TS".into(),
        11 => "cc".into(),
        12 => "ccnew".into(),
        13 => String::new(),
        19 => "md5".into(),
        20 => "scps".into(),
        28 => "uto".into(),
        29 => "tcp-ao".into(),
        30 => "mptcp".into(),
        34 => "tfo".into(),
        254 => "exp".into(),
        k => format!("unknown-{k}"),
    }
}

const HTTP_METHODS: &[&str] = &[
    "GET",
    "PUT",
    "COPY",
    "HEAD",
    "LOCK",
    "MOVE",
    "POLL",
    "POST",
    "BCOPY",
    "BMOVE",
    "MKCOL",
    "TRACE",
    "LABEL",
    "MERGE",
    "DELETE",
    "SEARCH",
    "UNLOCK",
    "REPORT",
    "UPDATE",
    "NOTIFY",
    "BDELETE",
    "CONNECT",
    "OPTIONS",
    "CHECKIN",
    "PROPFIND",
    "CHECKOUT",
    "CCM_POST",
    "SUBSCRIBE",
    "PROPPATCH",
    "BPROPFIND",
    "BPROPPATCH",
    "UNCHECKOUT",
    "MKACTIVITY",
    "MKWORKSPACE",
    "UNSUBSCRIBE",
    "RPC_CONNECT",
    "VERSION-CONTROL",
    "BASELINE-CONTROL",
];

/// `HTTP`, then `: <request or status line>` when the payload starts with
/// one (tcpdump's txtproto_print).
fn http(payload: &[u8], len: usize, out: &mut Out) {
    out.push_str("HTTP");
    let data = &payload[..payload.len().min(len)];
    let mut tokens = data
        .split(|b| *b == b' ' || *b == b'\r' || *b == b'\n' || *b == b'\t')
        .filter(|t| !t.is_empty());
    let first = tokens.next().unwrap_or(&[]);
    let second = tokens.next().unwrap_or(&[]);
    let method = std::str::from_utf8(first)
        .ok()
        .is_some_and(|t| HTTP_METHODS.iter().any(|m| m.eq_ignore_ascii_case(t)));
    let status = second.len() == 3 && second.iter().all(u8::is_ascii_digit);
    if !(method || status) {
        return;
    }
    let mut line = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        if c == b'\n' {
            break;
        }
        if c == b'\r' {
            if i + 1 >= data.len() || data[i + 1] != b'\n' {
                return;
            }
            break;
        }
        if !((0x20..=0x7e).contains(&c) || c == b'\t') {
            return;
        }
        line.push(c);
        i += 1;
    }
    out.push_str(": ");
    out.push_str(&String::from_utf8_lossy(&line));
    if i >= data.len() {
        out.push_str(" [|http]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_in_tcpdumps_order() {
        assert_eq!(flag_string(0x12), "S.");
        assert_eq!(flag_string(0x18), "P.");
        assert_eq!(flag_string(0x11), "F.");
        assert_eq!(flag_string(0), "none");
        assert_eq!(flag_string(0xff), "FSRP.UEW");
    }

    #[test]
    fn options_like_tcpdump() {
        let mut s = String::new();
        let opts = [
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0x8c, 0x2c, 0xd5, 0x6c, 0, 0, 0, 0, 1, 3, 3, 10,
        ];
        assert!(options(&opts, false, 0, 0, &mut s));
        assert_eq!(s, "mss 1460,sackOK,TS val 2351748460 ecr 0,nop,wscale 10");
    }
}
