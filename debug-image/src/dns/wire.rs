//! DNS messages on the wire: queries we build and replies we receive.
//!
//! Encoding and decoding are hickory-proto's. What this module adds is the
//! part a stub resolver needs before trusting a reply: the 12-byte header
//! read by hand (so a reply whose records do not decode still has an id,
//! flags and rcode, as it does for glibc), the question check that glibc's
//! `res_queriesmatch` makes, and the addresses an answer gives for a name,
//! following CNAMEs.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, Query as Question};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

/// The fixed header length (HFIXEDSZ).
pub const HEADER_LEN: usize = 12;

/// RCODE values the resolvers treat specially.
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
}

/// bind's name for an RCODE (`dns_rcode_totext`), or its number.
pub fn rcode_name(code: u16) -> String {
    const NAMES: [&str; 24] = [
        "NOERROR",
        "FORMERR",
        "SERVFAIL",
        "NXDOMAIN",
        "NOTIMP",
        "REFUSED",
        "YXDOMAIN",
        "YXRRSET",
        "NXRRSET",
        "NOTAUTH",
        "NOTZONE",
        "RESERVED11",
        "RESERVED12",
        "RESERVED13",
        "RESERVED14",
        "RESERVED15",
        "BADVERS",
        "BADKEY",
        "BADTIME",
        "BADMODE",
        "BADNAME",
        "BADALG",
        "BADTRUNC",
        "BADCOOKIE",
    ];
    NAMES
        .get(usize::from(code))
        .map_or_else(|| code.to_string(), |n| (*n).to_owned())
}

/// What to ask and how.
#[derive(Clone, Debug)]
pub struct QuerySpec {
    pub name: Name,
    pub qtype: RecordType,
    pub recursion_desired: bool,
    pub authentic_data: bool,
    pub checking_disabled: bool,
    /// EDNS(0) with this UDP payload size, or none.
    pub edns_payload: Option<u16>,
}

impl QuerySpec {
    /// A plain recursive query, as stub resolvers send it.
    pub fn stub(name: Name, qtype: RecordType) -> QuerySpec {
        QuerySpec {
            name,
            qtype,
            recursion_desired: true,
            authentic_data: false,
            checking_disabled: false,
            edns_payload: None,
        }
    }
}

/// A query ready to send: its id and encoded bytes.
#[derive(Clone, Debug)]
pub struct Query {
    pub id: u16,
    pub name: Name,
    pub qtype: RecordType,
    pub bytes: Vec<u8>,
}

impl Query {
    /// Encodes `spec` with a random id.
    pub fn build(spec: &QuerySpec) -> Result<Query, String> {
        let mut message = Message::query();
        let id = message.metadata.id;
        message.metadata.recursion_desired = spec.recursion_desired;
        message.metadata.authentic_data = spec.authentic_data;
        message.metadata.checking_disabled = spec.checking_disabled;
        message.add_query(Question::query(spec.name.clone(), spec.qtype));
        if let Some(payload) = spec.edns_payload {
            let mut edns = Edns::new();
            edns.set_max_payload(payload.max(512));
            message.set_edns(edns);
        }
        let bytes = message
            .to_vec()
            .map_err(|e| format!("cannot encode a query for {}: {e}", spec.name))?;
        Ok(Query {
            id,
            name: spec.name.clone(),
            qtype: spec.qtype,
            bytes,
        })
    }

    /// The same query with another id (musl keeps A and AAAA ids distinct).
    pub fn with_id(mut self, id: u16) -> Query {
        self.id = id;
        self.bytes[..2].copy_from_slice(&id.to_be_bytes());
        self
    }
}

/// The header fields, read straight from the first 12 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RawHeader {
    pub id: u16,
    pub qr: bool,
    pub opcode: u8,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    pub z: bool,
    pub ad: bool,
    pub cd: bool,
    /// The 4-bit RCODE of the header (EDNS may extend it: [`Reply::rcode`]).
    pub rcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl RawHeader {
    pub fn parse(bytes: &[u8]) -> Option<RawHeader> {
        let h = bytes.get(..HEADER_LEN)?;
        let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Some(RawHeader {
            id: word(0),
            qr: h[2] & 0x80 != 0,
            opcode: (h[2] >> 3) & 0x0f,
            aa: h[2] & 0x04 != 0,
            tc: h[2] & 0x02 != 0,
            rd: h[2] & 0x01 != 0,
            ra: h[3] & 0x80 != 0,
            z: h[3] & 0x40 != 0,
            ad: h[3] & 0x20 != 0,
            cd: h[3] & 0x10 != 0,
            rcode: h[3] & 0x0f,
            qdcount: word(4),
            ancount: word(6),
            nscount: word(8),
            arcount: word(10),
        })
    }
}

/// A received datagram or TCP message that is at least a header long.
#[derive(Clone, Debug)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub size: usize,
    pub header: RawHeader,
    /// The whole message, or why hickory could not decode it.
    pub message: Result<Message, String>,
    /// The first question, decoded on its own (it survives a reply whose
    /// later records are malformed).
    question: Option<(Name, u16, u16)>,
}

impl Reply {
    /// `None` for fewer than 12 bytes (glibc: "undersized message").
    pub fn parse(bytes: &[u8]) -> Option<Reply> {
        let header = RawHeader::parse(bytes)?;
        let message = Message::from_vec(bytes).map_err(|e| e.to_string());
        let question = (header.qdcount > 0)
            .then(|| first_question(bytes))
            .flatten();
        Some(Reply {
            bytes: bytes.to_vec(),
            size: bytes.len(),
            header,
            message,
            question,
        })
    }

    /// Whether this answers `query`: same id and, as glibc checks, the same
    /// question (name case-insensitively, type, class IN).
    pub fn answers(&self, query: &Query) -> bool {
        if self.header.id != query.id {
            return false;
        }
        match &self.question {
            Some((name, qtype, qclass)) => {
                *qtype == u16::from(query.qtype) && *qclass == 1 && names_equal(name, &query.name)
            }
            // glibc accepts a reply without a question only for errors
            // (FORMERR, NOTIMP, REFUSED without qdcount): so do we.
            None => self.header.qdcount == 0 && self.header.rcode != 0,
        }
    }

    /// The RCODE including EDNS's extended bits when the message decoded.
    pub fn rcode(&self) -> u16 {
        match &self.message {
            Ok(m) => u16::from(m.metadata.response_code),
            Err(_) => u16::from(self.header.rcode),
        }
    }

    /// The addresses the answer section gives for `qname`, following the
    /// CNAME chain from it, in answer order; and the final name reached.
    pub fn addresses(&self, qname: &Name) -> (Vec<IpAddr>, Name) {
        let Ok(message) = &self.message else {
            return (Vec::new(), qname.clone());
        };
        let mut owners = vec![qname.clone()];
        let mut walk = qname.clone();
        // Bounded and loop-checked: a hostile answer's CNAME loop must not spin.
        for _ in 0..16 {
            let next = message.answers.iter().find_map(|r| match &r.data {
                RData::CNAME(target) if names_equal(&r.name, &walk) => Some(target.0.clone()),
                _ => None,
            });
            match next {
                Some(t) if !owners.iter().any(|o| names_equal(o, &t)) => {
                    owners.push(t.clone());
                    walk = t;
                }
                _ => break,
            }
        }
        let chain_end = owners.last().cloned().unwrap_or_else(|| qname.clone());
        let addrs = message
            .answers
            .iter()
            .filter(|r| owners.iter().any(|o| names_equal(o, &r.name)))
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect();
        (addrs, chain_end)
    }
}

/// Decodes only the first question of a message.
fn first_question(bytes: &[u8]) -> Option<(Name, u16, u16)> {
    let mut decoder = BinDecoder::new(bytes);
    decoder.read_slice(HEADER_LEN).ok()?;
    let name = Name::read(&mut decoder).ok()?;
    let qtype = decoder.read_u16().ok()?.unverified();
    let qclass = decoder.read_u16().ok()?.unverified();
    Some((name, qtype, qclass))
}

/// DNS name equality: ASCII case-insensitive, ignoring the FQDN flag.
pub fn names_equal(a: &Name, b: &Name) -> bool {
    a.num_labels() == b.num_labels()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// Parses a name as a user typed it, with the one-line error dig gives.
pub fn parse_name(text: &str) -> Result<Name, String> {
    if text.is_empty() {
        return Err("empty name".to_owned());
    }
    if text != "." && text.contains("..") {
        return Err(format!("'{text}' is not a legal name (empty label)"));
    }
    if text.len() > 1 && text.starts_with('.') {
        return Err(format!("'{text}' is not a legal name (empty label)"));
    }
    let name = Name::from_ascii(text).map_err(|e| {
        let why = e.to_string();
        if why.contains("label") && why.contains("exceed") || text.split('.').any(|l| l.len() > 63)
        {
            format!("'{text}' is not a legal name (label too long)")
        } else if text.len() > 254 {
            format!("'{text}' is not a legal name (ran out of space)")
        } else {
            format!("'{text}' is not a legal name ({why})")
        }
    })?;
    if name.iter().any(|l| l.len() > 63) {
        return Err(format!("'{text}' is not a legal name (label too long)"));
    }
    if name.len() > 255 {
        return Err(format!("'{text}' is not a legal name (ran out of space)"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, CNAME};

    #[test]
    fn query_round_trip_and_reply_matching() {
        let name = Name::from_ascii("www.netdiag.test.").unwrap();
        let q = Query::build(&QuerySpec::stub(name.clone(), RecordType::A)).unwrap();
        let mut reply = Message::from_vec(&q.bytes).unwrap();
        reply.metadata.message_type = hickory_proto::op::MessageType::Response;
        reply.metadata.response_code = ResponseCode::NoError;
        let alias = Name::from_ascii("Alias.netdiag.test.").unwrap();
        // Question in another case: still the same question.
        reply.queries[0].set_name(Name::from_ascii("WWW.netdiag.TEST.").unwrap());
        reply.add_answer(Record::from_rdata(
            name.clone(),
            60,
            RData::CNAME(CNAME(alias.clone())),
        ));
        reply.add_answer(Record::from_rdata(
            Name::from_ascii("alias.netdiag.test.").unwrap(),
            60,
            RData::A(A::new(198, 51, 100, 10)),
        ));
        reply.add_answer(Record::from_rdata(
            Name::from_ascii("other.netdiag.test.").unwrap(),
            60,
            RData::A(A::new(198, 51, 100, 99)),
        ));
        let bytes = reply.to_vec().unwrap();
        let parsed = Reply::parse(&bytes).unwrap();
        assert!(parsed.answers(&q));
        assert!(parsed.header.qr && parsed.header.rd);
        let (addrs, end) = parsed.addresses(&name);
        assert_eq!(addrs, vec!["198.51.100.10".parse::<IpAddr>().unwrap()]);
        assert!(names_equal(&end, &alias));
        let other = Query::build(&QuerySpec::stub(name, RecordType::AAAA)).unwrap();
        assert!(!parsed.answers(&other.with_id(q.id)));
        assert!(Reply::parse(&bytes[..11]).is_none());
    }

    #[test]
    fn bad_names() {
        assert!(parse_name("a..b").unwrap_err().contains("empty label"));
        assert!(
            parse_name(&"x".repeat(300))
                .unwrap_err()
                .contains("label too long")
        );
        let long = vec!["abcdefghi"; 30].join(".");
        assert!(parse_name(&long).is_err());
        assert!(parse_name("www.netdiag.test").is_ok());
        assert!(parse_name(".").unwrap().is_root());
    }

    #[test]
    fn rcode_names() {
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(23), "BADCOOKIE");
        assert_eq!(rcode_name(30), "30");
    }
}

/// The OPT pseudo-record of a reply, read from the raw bytes (hickory
/// keeps only the options it knows; dig prints all of them).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RawOpt {
    pub udp_payload: u16,
    pub extended_rcode: u8,
    pub version: u8,
    pub dnssec_ok: bool,
    /// Flag bits other than DO ("must be zero").
    pub mbz: u16,
    pub options: Vec<(u16, Vec<u8>)>,
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(b: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *b.get(at)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(at + 1),
            0x00 => at += 1 + usize::from(len),
            0xc0 => {
                b.get(at + 1)?;
                return Some(at + 2);
            }
            _ => return None,
        }
    }
}

/// Finds the OPT record among a message's records.
pub fn raw_opt(b: &[u8]) -> Option<RawOpt> {
    let h = RawHeader::parse(b)?;
    let mut at = HEADER_LEN;
    for _ in 0..h.qdcount {
        at = skip_name(b, at)? + 4;
    }
    let records = usize::from(h.ancount) + usize::from(h.nscount) + usize::from(h.arcount);
    for _ in 0..records {
        at = skip_name(b, at)?;
        let field = |o: usize| -> Option<u16> {
            Some(u16::from_be_bytes([*b.get(at + o)?, *b.get(at + o + 1)?]))
        };
        let rtype = field(0)?;
        let class = field(2)?;
        let ttl = (u32::from(field(4)?) << 16) | u32::from(field(6)?);
        let rdlen = usize::from(field(8)?);
        let rdata = b.get(at + 10..at + 10 + rdlen)?;
        if rtype == 41 {
            let mut options = Vec::new();
            let mut o = 0;
            while o + 4 <= rdata.len() {
                let code = u16::from_be_bytes([rdata[o], rdata[o + 1]]);
                let len = usize::from(u16::from_be_bytes([rdata[o + 2], rdata[o + 3]]));
                let Some(data) = rdata.get(o + 4..o + 4 + len) else {
                    break;
                };
                options.push((code, data.to_vec()));
                o += 4 + len;
            }
            let flags = (ttl & 0xffff) as u16;
            return Some(RawOpt {
                udp_payload: class,
                extended_rcode: (ttl >> 24) as u8,
                version: (ttl >> 16) as u8,
                dnssec_ok: flags & 0x8000 != 0,
                mbz: flags & 0x7fff,
                options,
            });
        }
        at += 10 + rdlen;
    }
    None
}

#[cfg(test)]
mod opt_tests {
    use super::*;

    #[test]
    fn finds_opt_with_options() {
        // Header: id 1, QR, 1 question, 0 answers, 0 authority, 1 additional.
        let mut m = vec![0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        m.extend_from_slice(&[3, b'w', b'w', b'w', 0, 0, 1, 0, 1]); // www. A IN
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0]); // root, OPT, payload 1232
        m.extend_from_slice(&[0, 0, 0x80, 0]); // ext rcode 0, version 0, DO
        m.extend_from_slice(&[0, 8, 0, 15, 0, 4, 0, 20, b'h', b'i']); // EDE 20 "hi"
        let opt = raw_opt(&m).unwrap();
        assert_eq!(opt.udp_payload, 1232);
        assert!(opt.dnssec_ok);
        assert_eq!(opt.options, vec![(15, vec![0, 20, b'h', b'i'])]);
        assert_eq!(raw_opt(&m[..m.len() - 3]), None);
    }
}
