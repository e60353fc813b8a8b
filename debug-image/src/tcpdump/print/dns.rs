//! DNS summaries as print-domain.c prints them: `1234+ A? web.test. (26)`
//! for a query, `1234* 1/0/0 A 203.0.113.10 (42)` for a response.
//!
//! Written against the wire format directly rather than with a strict
//! parser: tcpdump prints what it can of a malformed or cut message and
//! marks where it stopped (` [|domain]`), and so must this.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Out, Printer};

const OPS: [&str; 16] = [
    "",
    " inv_q",
    " stat",
    " op3",
    " notify",
    " update",
    " op6",
    " op7",
    " op8",
    " updateA",
    " updateD",
    " updateDA",
    " updateM",
    " updateMA",
    " zoneInit",
    " zoneRef",
];

const RCODES: [&str; 16] = [
    "",
    " FormErr",
    " ServFail",
    " NXDomain",
    " NotImp",
    " Refused",
    " YXDomain",
    " YXRRSet",
    " NXRRSet",
    " NotAuth",
    " NotZone",
    " Resp11",
    " Resp12",
    " Resp13",
    " Resp14",
    " NoChange",
];

pub fn type_name(t: u16) -> String {
    let name = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP_PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "UNSPECA",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return format!("Type{t}"),
    };
    name.to_owned()
}

fn class_name(c: u16) -> String {
    match c {
        1 => "IN".into(),
        3 => "CHAOS".into(),
        4 => "HS".into(),
        255 => "ANY".into(),
        c => format!("(Class {c})"),
    }
}

/// A character the way tcpdump's `fn_print_char` prints it.
fn print_char(c: u8, out: &mut Out) {
    let mut c = c;
    if !c.is_ascii() {
        c &= 0x7f;
        out.push_str("M-");
    }
    if !(0x20..=0x7e).contains(&c) {
        c ^= 0x40;
        out.push('^');
    }
    out.push(c as char);
}

/// Prints a (possibly compressed) name at `at`; returns the offset after
/// it in the message, or `None` if it runs past the captured bytes.
fn name(msg: &[u8], mut at: usize, out: &mut Out) -> Option<usize> {
    let mut resume: Option<usize> = None;
    let mut max_offset = at;
    let mut chars = 0usize;
    let first = *msg.get(at)?;
    if first == 0 {
        out.push('.');
        return Some(at + 1);
    }
    loop {
        let len = *msg.get(at)?;
        if len == 0 {
            if chars > 255 {
                out.push_str("<DOMAIN NAME TOO LONG>");
            }
            return Some(resume.unwrap_or(at + 1));
        }
        match len & 0xc0 {
            0xc0 => {
                let off = usize::from(u16::from_be_bytes([len, *msg.get(at + 1)?]) & 0x3fff);
                if resume.is_none() {
                    resume = Some(at + 2);
                }
                if off >= max_offset {
                    out.push_str("<BAD PTR>");
                    return None;
                }
                max_offset = off;
                at = off;
            }
            0x40 => {
                let _ = write!(out, "<ELT {}>", len & 0x3f);
                return None;
            }
            0x80 => return None,
            _ => {
                let l = usize::from(len);
                let label = msg.get(at + 1..at + 1 + l)?;
                for &c in label {
                    if chars < 255 {
                        print_char(c, out);
                    }
                    chars += 1;
                }
                if chars <= 255 {
                    out.push('.');
                }
                chars += 1;
                at += 1 + l;
            }
        }
    }
}

/// Skips a name without printing it.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        if len == 0 {
            return Some(at + 1);
        }
        if len & 0xc0 == 0xc0 {
            msg.get(at + 1)?;
            return Some(at + 2);
        }
        at += 1 + usize::from(len & 0x3f);
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// ` A? name.`
fn question(msg: &[u8], at: usize, out: &mut Out) -> Option<usize> {
    // tcpdump reads type and class first, then prints the name.
    let end = skip_name(msg, at)?;
    let qtype = be16(msg, end)?;
    let qclass = be16(msg, end + 2)?;
    let _ = write!(out, " {}", type_name(qtype));
    if qclass != 1 {
        let _ = write!(out, " {}", class_name(qclass));
    }
    out.push_str("? ");
    name(msg, at, out)?;
    Some(end + 4)
}

/// ` A 203.0.113.10` (the owner name only with -v).
fn record(pr: &Printer, msg: &[u8], at: usize, out: &mut Out) -> Option<usize> {
    let after_name = if pr.verbose() > 0 {
        out.push(' ');
        name(msg, at, out)?
    } else {
        skip_name(msg, at)?
    };
    let rtype = be16(msg, after_name)?;
    let class = be16(msg, after_name + 2)?;
    if class != 1 && rtype != 41 {
        let _ = write!(out, " {}", class_name(class));
    }
    let rdlen = usize::from(be16(msg, after_name + 8)?);
    let rd = after_name + 10;
    let end = rd + rdlen;
    let _ = write!(out, " {}", type_name(rtype));
    if end > msg.len() {
        return None;
    }
    let data = &msg[rd..end];
    match rtype {
        1 if rdlen == 4 => {
            let _ = write!(
                out,
                " {}",
                Ipv4Addr::new(data[0], data[1], data[2], data[3])
            );
        }
        28 if rdlen == 16 => {
            let b: [u8; 16] = data.try_into().ok()?;
            let _ = write!(out, " {}", Ipv6Addr::from(b));
        }
        2 | 5 | 12 | 39 => {
            out.push(' ');
            name(msg, rd, out)?;
        }
        15 => {
            out.push(' ');
            name(msg, rd + 2, out)?;
            let _ = write!(out, " {}", be16(msg, rd)?);
        }
        16 => {
            let mut p = 0;
            while p < data.len() {
                let l = usize::from(data[p]);
                out.push_str(" \"");
                for &c in data.get(p + 1..p + 1 + l)? {
                    print_char(c, out);
                }
                out.push('"');
                p += 1 + l;
            }
        }
        33 => {
            out.push(' ');
            name(msg, rd + 6, out)?;
            let _ = write!(
                out,
                ":{} {} {}",
                be16(msg, rd + 4)?,
                be16(msg, rd)?,
                be16(msg, rd + 2)?
            );
        }
        _ => {}
    }
    Some(end)
}

/// A DNS message; `tcp`: it starts with the two-byte length prefix.
pub fn dns(pr: &mut Printer, data: &[u8], length: usize, tcp: bool, out: &mut Out) {
    let (msg, length) = if tcp {
        if length < 2 {
            let _ = write!(out, " [DNS over TCP: length {length} < 2] (invalid)");
            return;
        }
        let Some(prefix) = be16(data, 0) else {
            out.push_str(" [|domain]");
            return;
        };
        let length = length - 2;
        if usize::from(prefix) != length {
            let _ = write!(
                out,
                " [prefix length({prefix}) != length({length})] (invalid)"
            );
            return;
        }
        out.push(' ');
        (&data[2..], length)
    } else {
        (data, length)
    };
    let msg = &msg[..msg.len().min(length)];
    if print_message(pr, msg, out).is_none() {
        out.push_str(" [|domain]");
        return;
    }
    let _ = write!(out, " ({length})");
}

fn print_message(pr: &Printer, msg: &[u8], out: &mut Out) -> Option<()> {
    let id = be16(msg, 0)?;
    let flags = be16(msg, 2)?;
    let qd = be16(msg, 4)?;
    let an = be16(msg, 6)?;
    let ns = be16(msg, 8)?;
    let ar = be16(msg, 10)?;
    let opcode = usize::from((flags >> 11) & 0xf);
    let mut at = 12;
    if flags & 0x8000 != 0 {
        let _ = write!(
            out,
            "{id}{}{}{}{}{}",
            OPS[opcode],
            RCODES[usize::from(flags & 0xf)],
            if flags & 0x0400 != 0 { "*" } else { "" },
            if flags & 0x0080 != 0 { "" } else { "-" },
            if flags & 0x0200 != 0 { "|" } else { "" }
        );
        if qd != 1 {
            let _ = write!(out, " [{qd}q]");
        }
        for i in 0..qd {
            if i != 0 {
                out.push(',');
            }
            if pr.verbose() > 1 {
                out.push_str(" q:");
                at = question(msg, at, out)?;
            } else {
                at = skip_name(msg, at)? + 4;
            }
        }
        let _ = write!(out, " {an}/{ns}/{ar}");
        for i in 0..an {
            if i != 0 {
                if at >= msg.len() {
                    return None;
                }
                out.push(',');
            }
            at = record(pr, msg, at, out)?;
        }
    } else {
        let _ = write!(
            out,
            "{id}{}{}{}",
            OPS[opcode],
            if flags & 0x0100 != 0 { "+" } else { "" },
            if flags & 0x0010 != 0 { "%" } else { "" }
        );
        if flags & 0x6cf != 0 {
            let _ = write!(out, " [b2&3=0x{flags:x}]");
        }
        if opcode == 1 {
            if qd != 0 {
                let _ = write!(out, " [{qd}q]");
            }
            if an != 1 {
                let _ = write!(out, " [{an}a]");
            }
        } else {
            if an != 0 {
                let _ = write!(out, " [{an}a]");
            }
            if qd != 1 {
                let _ = write!(out, " [{qd}q]");
            }
        }
        if ns != 0 {
            let _ = write!(out, " [{ns}n]");
        }
        if ar != 0 {
            let _ = write!(out, " [{ar}au]");
        }
        for i in 0..qd {
            if i != 0 && at >= msg.len() {
                return None;
            }
            at = question(msg, at, out)?;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcpdump::args::{PrintOptions, TimeFormat};
    use crate::tcpdump::filter::LinkType;

    fn printer() -> Printer {
        Printer::new(
            PrintOptions {
                link_header: false,
                verbose: 0,
                hex: 0,
                ascii_with_hex: false,
                ascii: false,
                time: TimeFormat::None,
            },
            LinkType::Ethernet,
        )
    }

    #[test]
    fn query_and_answer_like_tcpdump() {
        // dig +noadflag-less query for web.test A with an OPT record.
        let q = [
            0x8e, 0x1a, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1, 3, b'w', b'e', b'b', 4, b't', b'e',
            b's', b't', 0, 0, 1, 0, 1, 0, 0, 0x29, 4, 0xd0, 0, 0, 0, 0, 0, 0,
        ];
        let mut s = String::new();
        dns(&mut printer(), &q, q.len(), false, &mut s);
        assert_eq!(s, "36378+ [1au] A? web.test. (37)");
        let a = [
            0x8e, 0x1a, 0x85, 0x80, 0, 1, 0, 2, 0, 0, 0, 0, 5, b'a', b'l', b'i', b'a', b's', 4,
            b't', b'e', b's', b't', 0, 0, 28, 0, 1, 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 0, 0, 6, 3,
            b'w', b'e', b'b', 0xc0, 18, 0xc0, 40, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 203, 0, 113, 10,
        ];
        s.clear();
        dns(&mut printer(), &a, a.len(), false, &mut s);
        assert_eq!(s, "36378* 2/0/0 CNAME web.test., A 203.0.113.10 (62)");
        s.clear();
        dns(&mut printer(), &a[..30], a.len(), false, &mut s);
        assert!(s.ends_with(" [|domain]"), "{s}");
    }
}
