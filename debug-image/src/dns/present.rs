//! Records in bind's presentation format, as `dig` prints them.
//!
//! Names are absolute with bind's escapes (`\.` inside a label, `\DDD` for
//! bytes outside printable ASCII); record lines use dig's tab stops (TTL at
//! column 24, class 32, type 40, data 48, tab width 8, at least one blank
//! between fields); TXT strings are quoted with `"` and `\` escaped. Types
//! with no text form here print as RFC 3597 `\# length hex`, as bind does
//! for types it does not know.

use std::fmt::Write as _;

use hickory_proto::rr::{Name, RData, Record};

use super::types::{class_name, type_name};

/// bind's text for a domain name.
pub fn name(n: &Name) -> String {
    if n.is_root() {
        return ".".to_owned();
    }
    let mut out = String::with_capacity(n.len() + 1);
    for label in n.iter() {
        for &b in label {
            match b {
                b'"' | b'(' | b')' | b'.' | b';' | b'\\' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x21..=0x7e => out.push(char::from(b)),
                _ => {
                    let _ = write!(out, "\\{b:03}");
                }
            }
        }
        out.push('.');
    }
    out
}

/// A character-string in double quotes, escaped like bind's `txt_totext`.
pub fn quoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
    out
}

/// RFC 3597's generic form.
pub fn generic(bytes: &[u8]) -> String {
    let mut out = format!("\\# {}", bytes.len());
    if !bytes.is_empty() {
        out.push(' ');
        for b in bytes {
            let _ = write!(out, "{b:02X}");
        }
    }
    out
}

/// The data part of a record.
pub fn rdata(data: &RData) -> String {
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::NS(n) => name(&n.0),
        RData::CNAME(n) => name(&n.0),
        RData::PTR(n) => name(&n.0),
        RData::ANAME(n) => name(&n.0),
        RData::MX(mx) => format!("{} {}", mx.preference, name(&mx.exchange)),
        RData::SOA(soa) => format!(
            "{} {} {} {} {} {} {}",
            name(&soa.mname),
            name(&soa.rname),
            soa.serial,
            soa.refresh as u32,
            soa.retry as u32,
            soa.expire as u32,
            soa.minimum
        ),
        RData::SRV(srv) => format!(
            "{} {} {} {}",
            srv.priority,
            srv.weight,
            srv.port,
            name(&srv.target)
        ),
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| quoted(s))
            .collect::<Vec<_>>()
            .join(" "),
        RData::HINFO(h) => format!("{} {}", quoted(&h.cpu), quoted(&h.os)),
        RData::NULL(n) => generic(&n.anything),
        RData::Unknown { rdata, .. } => generic(&rdata.anything),
        RData::Update0(_) => generic(&[]),
        other => other.to_string(),
    }
}

/// Pads `line` (currently `column` wide) to `to` the way bind's
/// `indent()` does: tabs to the stop, spaces after; at least one blank.
fn indent(line: &mut String, column: &mut usize, to: usize) {
    const TAB: usize = 8;
    let from = *column;
    let to = to.max(from + 1);
    let tabs = to / TAB - from / TAB;
    let mut at = from;
    if tabs > 0 {
        line.extend(std::iter::repeat_n('\t', tabs));
        at = (to / TAB) * TAB;
    }
    line.extend(std::iter::repeat_n(' ', to - at));
    *column = to;
}

/// dig's columns (+nomultiline with TTL and class).
const TTL_COLUMN: usize = 24;
const CLASS_COLUMN: usize = 32;
const TYPE_COLUMN: usize = 40;
const RDATA_COLUMN: usize = 48;

/// One answer/authority/additional line.
pub fn record_line(rec: &Record) -> String {
    let owner = name(&rec.name);
    let mut line = owner.clone();
    let mut column = owner.len();
    indent(&mut line, &mut column, TTL_COLUMN);
    let ttl = rec.ttl.to_string();
    column += ttl.len();
    line.push_str(&ttl);
    indent(&mut line, &mut column, CLASS_COLUMN);
    let class = class_name(u16::from(rec.dns_class));
    column += class.len();
    line.push_str(&class);
    indent(&mut line, &mut column, TYPE_COLUMN);
    let rtype = type_name(u16::from(rec.record_type()));
    column += rtype.len();
    line.push_str(&rtype);
    indent(&mut line, &mut column, RDATA_COLUMN);
    line.push_str(&rdata(&rec.data));
    line
}

/// The question line: `;name` then class and type at their columns.
pub fn question_line(qname: &Name, qclass: u16, qtype: u16) -> String {
    let owner = format!(";{}", name(qname));
    let mut line = owner.clone();
    let mut column = owner.len();
    indent(&mut line, &mut column, CLASS_COLUMN);
    let class = class_name(qclass);
    column += class.len();
    line.push_str(&class);
    indent(&mut line, &mut column, TYPE_COLUMN);
    line.push_str(&type_name(qtype));
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, TXT};

    #[test]
    fn dig_columns() {
        let rec = Record::from_rdata(
            Name::from_ascii("www.netdiag.test.").unwrap(),
            300,
            RData::A(A::new(198, 51, 100, 10)),
        );
        assert_eq!(
            record_line(&rec),
            "www.netdiag.test.\t300\tIN\tA\t198.51.100.10"
        );
        let long = Record::from_rdata(
            Name::from_ascii("a-rather-long-owner-name.netdiag.test.").unwrap(),
            86400,
            RData::A(A::new(198, 51, 100, 10)),
        );
        assert_eq!(
            record_line(&long),
            "a-rather-long-owner-name.netdiag.test. 86400 IN\tA 198.51.100.10"
        );
        assert_eq!(
            question_line(&Name::from_ascii("www.netdiag.test.").unwrap(), 1, 1),
            ";www.netdiag.test.\t\tIN\tA"
        );
    }

    #[test]
    fn escapes() {
        let n = Name::from_labels(vec![b"a.b".to_vec(), b"c d".to_vec(), b"x\"".to_vec()]).unwrap();
        assert_eq!(name(&n), "a\\.b.c\\032d.x\\\".");
        let t = TXT::from_bytes(vec![b"say \"hi\"\\", b"\x00\xff"]);
        assert_eq!(
            rdata(&RData::TXT(t)),
            "\"say \\\"hi\\\"\\\\\" \"\\000\\255\""
        );
        assert_eq!(generic(&[0x0a, 0, 0, 1]), "\\# 4 0A000001");
    }
}
