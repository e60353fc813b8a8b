//! dig's output: the full text layout of bind 9.18 (banner, header, flags,
//! OPT pseudosection, sections, statistics), `+short`, and `-o json`.
//!
//! The text follows bind's `printmessage`/`received` line for line so that
//! people (and scripts) used to dig read it unchanged; what varies between
//! runs is only the id, the query time and `;; WHEN:`.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, Record};
use serde_json::{Value, json};

use super::args::DigArgs;
use super::{Answer, Plan, hash_port};
use crate::calendar::civil_from_days;
use crate::dns::present;
use crate::dns::types::{class_name, type_name};
use crate::dns::wire::{RawOpt, raw_opt, rcode_name};

/// bind's `opcodetext`.
fn opcode_name(op: u8) -> String {
    match op {
        0 => "QUERY".to_owned(),
        1 => "IQUERY".to_owned(),
        2 => "STATUS".to_owned(),
        4 => "NOTIFY".to_owned(),
        5 => "UPDATE".to_owned(),
        other => format!("RESERVED{other}"),
    }
}

/// RFC 8914 extended error texts, as bind 9.18 names them.
const EDE_TEXT: &[&str] = &[
    "Other",
    "Unsupported DNSKEY Algorithm",
    "Unsupported DS Digest Type",
    "Stale Answer",
    "Forged Answer",
    "DNSSEC Indeterminate",
    "DNSSEC Bogus",
    "Signature Expired",
    "Signature Not Yet Valid",
    "DNSKEY Missing",
    "RRSIGs Missing",
    "No Zone Key Bit Set",
    "NSEC Missing",
    "Cached Error",
    "Not Ready",
    "Blocked",
    "Censored",
    "Filtered",
    "Prohibited",
    "Stale NXDOMAIN Answer",
    "Not Authoritative",
    "Not Supported",
    "No Reachable Authority",
    "Network Error",
    "Invalid Data",
];

/// The header flags in bind's order.
fn flag_names(reply: &crate::dns::wire::Reply) -> Vec<&'static str> {
    let h = reply.header;
    let mut flags = Vec::new();
    for (on, name) in [
        (h.qr, "qr"),
        (h.aa, "aa"),
        (h.tc, "tc"),
        (h.rd, "rd"),
        (h.ra, "ra"),
        (h.ad, "ad"),
        (h.cd, "cd"),
    ] {
        if on {
            flags.push(name);
        }
    }
    flags
}

/// The banner lines dig prints with `+cmd`.
fn banner(d: &DigArgs, plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "\n; <<>> DiG 9.18 (netdiag-agent {}) <<>> {}",
        env!("CARGO_PKG_VERSION"),
        d.command_line
    )?;
    if plan.from_command_line {
        let n = plan.servers.len();
        writeln!(out, "; ({n} server{} found)", if n == 1 { "" } else { "s" })?;
    }
    writeln!(out, ";; global options: +cmd")
}

/// `;; no servers could be reached` after the progress lines.
/// (dig prints no banner when its TCP connections failed).
pub fn no_servers(
    d: &DigArgs,
    plan: &Plan,
    banner_too: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    if banner_too && d.sections.cmd && !d.short {
        banner(d, plan, out)?;
    }
    writeln!(out, ";; no servers could be reached")
}

/// One option line of the OPT pseudosection, as bind's
/// `dns_message_pseudosectiontotext` writes it.
fn option_line(code: u16, data: &[u8]) -> String {
    let mut line = match code {
        3 => "; NSID:".to_owned(),
        10 => "; COOKIE:".to_owned(),
        15 if data.len() >= 2 => {
            let ede = u16::from_be_bytes([data[0], data[1]]);
            let mut l = format!("; EDE: {ede}");
            if let Some(t) = EDE_TEXT.get(usize::from(ede)) {
                l.push_str(&format!(" ({t})"));
            }
            if data.len() > 2 {
                l.push(':');
                let text = &data[2..];
                match std::str::from_utf8(text) {
                    Ok(s) => l.push_str(&format!(" ({s})")),
                    Err(_) => {
                        l.push(' ');
                        l.push_str(&hex_spaced(text));
                        l.push_str(&format!("({})", printable(text)));
                    }
                }
            }
            return l;
        }
        15 if data.len() == 1 => return format!("; EDE: malformed (0x{:02x})", data[0]),
        other => format!("; OPT={other}:"),
    };
    if data.is_empty() {
        return line;
    }
    line.push(' ');
    if code == 10 {
        for b in data {
            line.push_str(&format!("{b:02x}"));
        }
        return line;
    }
    line.push_str(&hex_spaced(data));
    line.push_str(&format!("(\"{}\")", printable(data)));
    line
}

fn hex_spaced(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x} ")).collect()
}

fn printable(data: &[u8]) -> String {
    data.iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect()
}

fn opt_lines(opt: &RawOpt) -> Vec<String> {
    let mut first = format!("; EDNS: version: {}, flags:", opt.version);
    if opt.dnssec_ok {
        first.push_str(" do");
    }
    if opt.mbz != 0 {
        first.push_str(&format!(
            "; MBZ: 0x{:04x}, udp: {}",
            opt.mbz, opt.udp_payload
        ));
    } else {
        first.push_str(&format!("; udp: {}", opt.udp_payload));
    }
    let mut lines = vec![first];
    lines.extend(opt.options.iter().map(|(c, d)| option_line(*c, d)));
    lines
}

/// `Mon Nov 23 19:27:50 UTC 2026`: dig's `%a %b %d %H:%M:%S %Z %Y`, in UTC.
pub fn when(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86400;
    let rem = secs % 86400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {y}",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// bind's `hex_dump` of a packet it could not parse.
fn hex_dump(bytes: &[u8], out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{} bytes", bytes.len())?;
    for chunk in bytes.chunks(16) {
        let mut line = String::new();
        for b in chunk {
            line.push_str(&format!("{b:02x} "));
        }
        for _ in chunk.len()..16 {
            line.push_str("   ");
        }
        line.push_str("         ");
        for &b in chunk {
            line.push(if (b'!'..=b'}').contains(&b) {
                char::from(b)
            } else {
                '.'
            });
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn section(title: &str, records: &[Record], comments: bool, out: &mut dyn Write) -> io::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    if comments {
        writeln!(out, ";; {title} SECTION:")?;
    }
    for r in records {
        writeln!(out, "{}", present::record_line(r))?;
    }
    if comments {
        writeln!(out)?;
    }
    Ok(())
}

/// The full text (or `+short`) for one answer.
pub fn print(
    d: &DigArgs,
    plan: &Plan,
    asked: &Name,
    answer: &Answer,
    out: &mut dyn Write,
) -> io::Result<()> {
    let reply = &answer.reply;
    let s = d.sections;
    if d.short {
        if let Ok(m) = &reply.message {
            for r in &m.answers {
                writeln!(out, "{}", present::rdata(&r.data))?;
            }
        }
        return Ok(());
    }
    if s.cmd {
        banner(d, plan, out)?;
    }
    let message: &Message = match &reply.message {
        Ok(m) => m,
        Err(e) => {
            writeln!(out, ";; Got bad packet: {e}")?;
            hex_dump(&reply.bytes, out)?;
            return Ok(());
        }
    };
    let h = reply.header;
    if s.comments {
        writeln!(out, ";; Got answer:")?;
        let last_label = asked.iter().next_back();
        if last_label.is_some_and(|l| l.eq_ignore_ascii_case(b"local")) {
            writeln!(out, ";; WARNING: .local is reserved for Multicast DNS")?;
            writeln!(
                out,
                ";; You are currently testing what happens when an mDNS query is leaked to DNS"
            )?;
        }
        writeln!(
            out,
            ";; ->>HEADER<<- opcode: {}, status: {}, id: {}",
            opcode_name(h.opcode),
            rcode_name(reply.rcode()),
            h.id
        )?;
        let mut flags = String::from(";; flags:");
        for f in flag_names(reply) {
            flags.push(' ');
            flags.push_str(f);
        }
        if h.z {
            flags.push_str("; MBZ: 0x4");
        }
        writeln!(
            out,
            "{flags}; QUERY: {}, ANSWER: {}, AUTHORITY: {}, ADDITIONAL: {}",
            h.qdcount, h.ancount, h.nscount, h.arcount
        )?;
        if h.rd && !h.ra {
            writeln!(out, ";; WARNING: recursion requested but not available")?;
        }
        writeln!(out)?;
        if let Some(opt) = raw_opt(&reply.bytes) {
            writeln!(out, ";; OPT PSEUDOSECTION:")?;
            for line in opt_lines(&opt) {
                writeln!(out, "{line}")?;
            }
        }
    }
    if s.question && !message.queries.is_empty() {
        if s.comments {
            writeln!(out, ";; QUESTION SECTION:")?;
        }
        for q in &message.queries {
            writeln!(
                out,
                "{}",
                present::question_line(
                    q.name(),
                    u16::from(q.query_class()),
                    u16::from(q.query_type())
                )
            )?;
        }
        if s.comments {
            writeln!(out)?;
        }
    }
    if s.answer {
        section("ANSWER", &message.answers, s.comments, out)?;
    }
    if s.authority {
        section("AUTHORITY", &message.authorities, s.comments, out)?;
    }
    if s.additional {
        section("ADDITIONAL", &message.additionals, s.comments, out)?;
    }
    if s.stats {
        writeln!(out, ";; Query time: {} msec", answer.rtt.as_millis())?;
        writeln!(
            out,
            ";; SERVER: {}({}) ({})",
            hash_port(answer.server.addr),
            answer.server.label,
            answer.transport.name()
        )?;
        writeln!(out, ";; WHEN: {}", when(answer.when))?;
        writeln!(out, ";; MSG SIZE  rcvd: {}", reply.size)?;
        writeln!(out)?;
    }
    Ok(())
}

fn record_json(r: &Record) -> Value {
    json!({
        "name": present::name(&r.name),
        "ttl": r.ttl,
        "class": class_name(u16::from(r.dns_class)),
        "type": type_name(u16::from(r.record_type())),
        "data": present::rdata(&r.data),
    })
}

/// One JSON document: the answer, or why there is none.
pub fn json(
    d: &DigArgs,
    plan: &Plan,
    asked: &Name,
    answer: Option<&Answer>,
    progress: &[String],
    out: &mut dyn Write,
) -> io::Result<()> {
    let query = json!({
        "name": present::name(asked),
        "type": type_name(plan.qtype),
        "class": class_name(plan.qclass),
        "recursion_desired": d.recurse,
    });
    let servers: Vec<String> = plan.servers.iter().map(|s| hash_port(s.addr)).collect();
    let doc = match answer {
        None => json!({
            "query": query,
            "servers": servers,
            "error": "no servers could be reached",
            "progress": progress,
        }),
        Some(a) => {
            let reply = &a.reply;
            let h = reply.header;
            let mut doc = json!({
                "query": query,
                "server": hash_port(a.server.addr),
                "server_name": a.server.label,
                "transport": a.transport.name(),
                "query_time_ms": (a.rtt.as_secs_f64() * 1e6).round() / 1e3,
                "when": when(a.when),
                "size": reply.size,
                "header": {
                    "id": h.id,
                    "opcode": opcode_name(h.opcode),
                    "status": rcode_name(reply.rcode()),
                    "flags": flag_names(reply),
                    "counts": {
                        "query": h.qdcount,
                        "answer": h.ancount,
                        "authority": h.nscount,
                        "additional": h.arcount,
                    },
                },
                "edns": raw_opt(&reply.bytes).map(|o| json!({
                    "version": o.version,
                    "flags": if o.dnssec_ok { vec!["do"] } else { Vec::new() },
                    "udp": o.udp_payload,
                    "options": o.options.iter().map(|(c, data)| json!({
                        "code": c,
                        "text": option_line(*c, data).trim_start_matches("; ").to_owned(),
                    })).collect::<Vec<_>>(),
                })),
                "progress": progress,
            });
            match &reply.message {
                Ok(m) => {
                    doc["question"] = m
                        .queries
                        .iter()
                        .map(|q| {
                            json!({
                                "name": present::name(q.name()),
                                "class": class_name(u16::from(q.query_class())),
                                "type": type_name(u16::from(q.query_type())),
                            })
                        })
                        .collect();
                    doc["answer"] = m.answers.iter().map(record_json).collect();
                    doc["authority"] = m.authorities.iter().map(record_json).collect();
                    doc["additional"] = m.additionals.iter().map(record_json).collect();
                }
                Err(e) => doc["error"] = Value::from(format!("bad packet: {e}")),
            }
            doc
        }
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_is_dig_format() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_462_070);
        assert_eq!(when(t), "Mon Nov 23 19:27:50 UTC 2026");
        assert_eq!(when(UNIX_EPOCH), "Thu Jan 01 00:00:00 UTC 1970");
    }

    #[test]
    fn opt_option_lines() {
        assert_eq!(option_line(15, &[0, 20]), "; EDE: 20 (Not Authoritative)");
        assert_eq!(
            option_line(15, &[0, 18, b'n', b'o']),
            "; EDE: 18 (Prohibited): (no)"
        );
        assert_eq!(option_line(10, &[1, 2, 0xab]), "; COOKIE: 0102ab");
        assert_eq!(option_line(3, b"ns1"), "; NSID: 6e 73 31 (\"ns1\")");
        assert_eq!(option_line(65001, &[]), "; OPT=65001:");
    }
}
