//! The filter language's tokens, cut the way libpcap 1.10's flex scanner
//! (`scanner.l`) cuts them.
//!
//! flex picks the longest match at each position and, between matches of
//! the same length, the rule written first. That decides real cases:
//! `tcp-syn` is a named number but `tcp` a keyword, `1.2.3.4` is an IPv4
//! address (HID) though the name rule matches it too, `21-23` is a name (the
//! number rule stops at `-`), `deadbeefcafe` and even `123456789012` are MAC
//! addresses, `tcp.flags.reset` is one name. [`lex`] computes every rule's
//! match length and applies the same tie-break, so the parser sees what
//! libpcap's parser sees. Keywords are case-sensitive, as in libpcap.

use std::fmt;

use super::FilterError;

/// Byte offsets of a token in the expression, for error carets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// libpcap's keywords. The ones netdiag does not compile (ATM, MTP, pf,
/// 802.11, MPLS, ...) are still keywords, so that they can never be taken
/// for host names and are rejected by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kw {
    Dst,
    Src,
    /// `link`, `ether`, `ppp`, `slip`, `fddi`, `tr`, `wlan`.
    Link,
    Arp,
    Rarp,
    Ip,
    Sctp,
    Tcp,
    Udp,
    Icmp,
    Igmp,
    Igrp,
    Pim,
    Vrrp,
    Carp,
    Ip6,
    Icmp6,
    Ah,
    Esp,
    Atalk,
    Aarp,
    Decnet,
    Lat,
    Sca,
    Moprc,
    Mopdl,
    Iso,
    Stp,
    Ipx,
    Netbeui,
    Host,
    Net,
    Mask,
    Port,
    Portrange,
    Proto,
    Gateway,
    Less,
    Greater,
    Byte,
    Broadcast,
    Multicast,
    And,
    Or,
    /// `not` (the scanner returns `!` for it).
    Not,
    Len,
    Inbound,
    Outbound,
    Vlan,
    /// A libpcap keyword netdiag does not compile.
    Unsupported(&'static str),
}

/// What the scanner returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    Kw(Kw),
    /// One of `+ - * / % : [ ] ! < > ( ) & | ^ =` (`==` is `=`).
    Punct(char),
    Geq,
    Leq,
    Neq,
    Lsh,
    Rsh,
    Num(u32),
    /// A dotted IPv4 address or prefix of 2 to 4 numbers.
    Hid(String),
    /// An IPv6 address.
    Hid6(String),
    /// A MAC address.
    Eid(String),
    /// `$` followed by one or two hex digits (ARCnet).
    Aid(String),
    /// A name: host, service, protocol, network; or `\escaped`.
    Id(String),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Kw(k) => write!(f, "{}", keyword_text(*k)),
            Tok::Punct(c) => write!(f, "{c}"),
            Tok::Geq => f.write_str(">="),
            Tok::Leq => f.write_str("<="),
            Tok::Neq => f.write_str("!="),
            Tok::Lsh => f.write_str("<<"),
            Tok::Rsh => f.write_str(">>"),
            Tok::Num(n) => write!(f, "{n}"),
            Tok::Hid(s) | Tok::Hid6(s) | Tok::Eid(s) | Tok::Id(s) => f.write_str(s),
            Tok::Aid(s) => write!(f, "${s}"),
        }
    }
}

/// A token and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Keywords with the token each stands for, in scanner.l's order.
const KEYWORDS: &[(&str, Kw)] = &[
    ("dst", Kw::Dst),
    ("src", Kw::Src),
    ("link", Kw::Link),
    ("ether", Kw::Link),
    ("ppp", Kw::Link),
    ("slip", Kw::Link),
    ("fddi", Kw::Link),
    ("tr", Kw::Link),
    ("wlan", Kw::Link),
    ("arp", Kw::Arp),
    ("rarp", Kw::Rarp),
    ("ip", Kw::Ip),
    ("sctp", Kw::Sctp),
    ("tcp", Kw::Tcp),
    ("udp", Kw::Udp),
    ("icmp", Kw::Icmp),
    ("igmp", Kw::Igmp),
    ("igrp", Kw::Igrp),
    ("pim", Kw::Pim),
    ("vrrp", Kw::Vrrp),
    ("carp", Kw::Carp),
    ("radio", Kw::Unsupported("radio")),
    ("ip6", Kw::Ip6),
    ("icmp6", Kw::Icmp6),
    ("ah", Kw::Ah),
    ("esp", Kw::Esp),
    ("atalk", Kw::Atalk),
    ("aarp", Kw::Aarp),
    ("decnet", Kw::Decnet),
    ("lat", Kw::Lat),
    ("sca", Kw::Sca),
    ("moprc", Kw::Moprc),
    ("mopdl", Kw::Mopdl),
    ("iso", Kw::Iso),
    ("esis", Kw::Unsupported("esis")),
    ("es-is", Kw::Unsupported("es-is")),
    ("isis", Kw::Unsupported("isis")),
    ("is-is", Kw::Unsupported("is-is")),
    ("l1", Kw::Unsupported("l1")),
    ("l2", Kw::Unsupported("l2")),
    ("iih", Kw::Unsupported("iih")),
    ("lsp", Kw::Unsupported("lsp")),
    ("snp", Kw::Unsupported("snp")),
    ("csnp", Kw::Unsupported("csnp")),
    ("psnp", Kw::Unsupported("psnp")),
    ("clnp", Kw::Unsupported("clnp")),
    ("stp", Kw::Stp),
    ("ipx", Kw::Ipx),
    ("netbeui", Kw::Netbeui),
    ("host", Kw::Host),
    ("net", Kw::Net),
    ("mask", Kw::Mask),
    ("port", Kw::Port),
    ("portrange", Kw::Portrange),
    ("proto", Kw::Proto),
    ("protochain", Kw::Unsupported("protochain")),
    ("gateway", Kw::Gateway),
    ("type", Kw::Unsupported("type")),
    ("subtype", Kw::Unsupported("subtype")),
    ("direction", Kw::Unsupported("direction")),
    ("dir", Kw::Unsupported("dir")),
    ("address1", Kw::Unsupported("address1")),
    ("addr1", Kw::Unsupported("addr1")),
    ("address2", Kw::Unsupported("address2")),
    ("addr2", Kw::Unsupported("addr2")),
    ("address3", Kw::Unsupported("address3")),
    ("addr3", Kw::Unsupported("addr3")),
    ("address4", Kw::Unsupported("address4")),
    ("addr4", Kw::Unsupported("addr4")),
    ("ra", Kw::Unsupported("ra")),
    ("ta", Kw::Unsupported("ta")),
    ("less", Kw::Less),
    ("greater", Kw::Greater),
    ("byte", Kw::Byte),
    ("broadcast", Kw::Broadcast),
    ("multicast", Kw::Multicast),
    ("and", Kw::And),
    ("or", Kw::Or),
    ("not", Kw::Not),
    ("len", Kw::Len),
    ("length", Kw::Len),
    ("inbound", Kw::Inbound),
    ("outbound", Kw::Outbound),
    ("ifindex", Kw::Unsupported("ifindex")),
    ("vlan", Kw::Vlan),
    ("mpls", Kw::Unsupported("mpls")),
    ("pppoed", Kw::Unsupported("pppoed")),
    ("pppoes", Kw::Unsupported("pppoes")),
    ("geneve", Kw::Unsupported("geneve")),
    ("lane", Kw::Unsupported("lane")),
    ("llc", Kw::Unsupported("llc")),
    ("metac", Kw::Unsupported("metac")),
    ("bcc", Kw::Unsupported("bcc")),
    ("oam", Kw::Unsupported("oam")),
    ("oamf4", Kw::Unsupported("oamf4")),
    ("oamf4ec", Kw::Unsupported("oamf4ec")),
    ("oamf4sc", Kw::Unsupported("oamf4sc")),
    ("sc", Kw::Unsupported("sc")),
    ("ilmic", Kw::Unsupported("ilmic")),
    ("vpi", Kw::Unsupported("vpi")),
    ("vci", Kw::Unsupported("vci")),
    ("connectmsg", Kw::Unsupported("connectmsg")),
    ("metaconnect", Kw::Unsupported("metaconnect")),
    ("on", Kw::Unsupported("on")),
    ("ifname", Kw::Unsupported("ifname")),
    ("rset", Kw::Unsupported("rset")),
    ("ruleset", Kw::Unsupported("ruleset")),
    ("rnr", Kw::Unsupported("rnr")),
    ("rulenum", Kw::Unsupported("rulenum")),
    ("srnr", Kw::Unsupported("srnr")),
    ("subrulenum", Kw::Unsupported("subrulenum")),
    ("reason", Kw::Unsupported("reason")),
    ("action", Kw::Unsupported("action")),
    ("fisu", Kw::Unsupported("fisu")),
    ("lssu", Kw::Unsupported("lssu")),
    ("lsu", Kw::Unsupported("lsu")),
    ("msu", Kw::Unsupported("msu")),
    ("hfisu", Kw::Unsupported("hfisu")),
    ("hlssu", Kw::Unsupported("hlssu")),
    ("hmsu", Kw::Unsupported("hmsu")),
    ("sio", Kw::Unsupported("sio")),
    ("opc", Kw::Unsupported("opc")),
    ("dpc", Kw::Unsupported("dpc")),
    ("sls", Kw::Unsupported("sls")),
    ("hsio", Kw::Unsupported("hsio")),
    ("hopc", Kw::Unsupported("hopc")),
    ("hdpc", Kw::Unsupported("hdpc")),
    ("hsls", Kw::Unsupported("hsls")),
];

/// Names the scanner turns into numbers (after the address rules and
/// before the name rule).
const NAMED_NUMBERS: &[(&str, u32)] = &[
    ("icmptype", 0),
    ("icmpcode", 1),
    ("icmp-echoreply", 0),
    ("icmp-unreach", 3),
    ("icmp-sourcequench", 4),
    ("icmp-redirect", 5),
    ("icmp-echo", 8),
    ("icmp-routeradvert", 9),
    ("icmp-routersolicit", 10),
    ("icmp-timxceed", 11),
    ("icmp-paramprob", 12),
    ("icmp-tstamp", 13),
    ("icmp-tstampreply", 14),
    ("icmp-ireq", 15),
    ("icmp-ireqreply", 16),
    ("icmp-maskreq", 17),
    ("icmp-maskreply", 18),
    ("icmp6type", 0),
    ("icmp6code", 1),
    ("icmp6-destinationunreach", 1),
    ("icmp6-packettoobig", 2),
    ("icmp6-timeexceeded", 3),
    ("icmp6-parameterproblem", 4),
    ("icmp6-echo", 128),
    ("icmp6-echoreply", 129),
    ("icmp6-multicastlistenerquery", 130),
    ("icmp6-multicastlistenerreportv1", 131),
    ("icmp6-multicastlistenerdone", 132),
    ("icmp6-routersolicit", 133),
    ("icmp6-routeradvert", 134),
    ("icmp6-neighborsolicit", 135),
    ("icmp6-neighboradvert", 136),
    ("icmp6-redirect", 137),
    ("icmp6-routerrenum", 138),
    ("icmp6-nodeinformationquery", 139),
    ("icmp6-nodeinformationresponse", 140),
    ("icmp6-ineighbordiscoverysolicit", 141),
    ("icmp6-ineighbordiscoveryadvert", 142),
    ("icmp6-multicastlistenerreportv2", 143),
    ("icmp6-homeagentdiscoveryrequest", 144),
    ("icmp6-homeagentdiscoveryreply", 145),
    ("icmp6-mobileprefixsolicit", 146),
    ("icmp6-mobileprefixadvert", 147),
    ("icmp6-certpathsolicit", 148),
    ("icmp6-certpathadvert", 149),
    ("icmp6-multicastrouteradvert", 151),
    ("icmp6-multicastroutersolicit", 152),
    ("icmp6-multicastrouterterm", 153),
    ("tcpflags", 13),
    ("tcp-fin", 0x01),
    ("tcp-syn", 0x02),
    ("tcp-rst", 0x04),
    ("tcp-push", 0x08),
    ("tcp-ack", 0x10),
    ("tcp-urg", 0x20),
    ("tcp-ece", 0x40),
    ("tcp-cwr", 0x80),
];

/// The text of a keyword as typed (its first spelling).
pub fn keyword_text(kw: Kw) -> &'static str {
    if let Kw::Unsupported(name) = kw {
        return name;
    }
    KEYWORDS
        .iter()
        .find(|(_, k)| *k == kw)
        .map(|(t, _)| *t)
        .unwrap_or("?")
}

/// The scanner's rules in their order; the first of the longest wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    Keyword,
    Punct,
    Operator2,
    Aid,
    Mac,
    Number,
    Hid,
    Hid6,
    BogusMac,
    NamedNumber,
    Name,
    EscapedName,
}

/// Cuts `text` into tokens.
pub fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if matches!(bytes[at], b' ' | b'\r' | b'\n' | b'\t') {
            at += 1;
            continue;
        }
        let rest = &text[at..];
        let candidates = [
            (Rule::Keyword, keyword_len(rest)),
            (Rule::Punct, punct_len(rest)),
            (Rule::Operator2, operator2_len(rest)),
            (Rule::Aid, aid_len(rest)),
            (Rule::Mac, mac_len(rest.as_bytes())),
            (Rule::Number, number_len(rest.as_bytes())),
            (Rule::Hid, hid_len(rest.as_bytes())),
            (Rule::Hid6, hid6_len(rest)),
            (Rule::BogusMac, bogus_mac_len(rest.as_bytes())),
            (Rule::NamedNumber, named_number_len(rest)),
            (Rule::Name, name_len(rest.as_bytes())),
            (Rule::EscapedName, escaped_len(rest.as_bytes())),
        ];
        let mut best: Option<(Rule, usize)> = None;
        for (rule, len) in candidates {
            if len > 0 && best.is_none_or(|(_, l)| len > l) {
                best = Some((rule, len));
            }
        }
        let Some((rule, len)) = best else {
            // flex's `.` rule: LEX_ERROR, which the parser reports as a
            // syntax error at this character.
            let c = rest.chars().next().unwrap_or('?');
            return Err(FilterError::at(
                Span {
                    start: at,
                    end: at + c.len_utf8(),
                },
                format!("syntax error: unexpected character \"{c}\""),
            ));
        };
        let word = &rest[..len];
        let span = Span {
            start: at,
            end: at + len,
        };
        let tok = match rule {
            Rule::Keyword => {
                let kw = KEYWORDS
                    .iter()
                    .find(|(t, _)| *t == word)
                    .map(|(_, k)| *k)
                    .or(match word {
                        "&&" => Some(Kw::And),
                        "||" => Some(Kw::Or),
                        _ => None,
                    })
                    .expect("keyword_len matched a keyword");
                Tok::Kw(kw)
            }
            Rule::Punct => {
                let c = word.chars().next().unwrap_or('?');
                if c == '!' {
                    Tok::Kw(Kw::Not)
                } else {
                    Tok::Punct(c)
                }
            }
            Rule::Operator2 => match word {
                ">=" => Tok::Geq,
                "<=" => Tok::Leq,
                "!=" => Tok::Neq,
                "==" => Tok::Punct('='),
                "<<" => Tok::Lsh,
                _ => Tok::Rsh,
            },
            Rule::Aid => Tok::Aid(word[1..].to_owned()),
            Rule::Mac => Tok::Eid(word.to_owned()),
            Rule::Number => Tok::Num(parse_number(word).map_err(|m| FilterError::at(span, m))?),
            Rule::Hid => Tok::Hid(word.to_owned()),
            Rule::Hid6 => {
                if word.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(FilterError::at(span, format!("bogus IPv6 address {word}")));
                }
                Tok::Hid6(word.to_owned())
            }
            Rule::BogusMac => {
                return Err(FilterError::at(
                    span,
                    format!("bogus ethernet address {word}"),
                ));
            }
            Rule::NamedNumber => Tok::Num(
                NAMED_NUMBERS
                    .iter()
                    .find(|(t, _)| *t == word)
                    .map(|(_, v)| *v)
                    .expect("named_number_len matched a name"),
            ),
            Rule::Name => Tok::Id(word.to_owned()),
            Rule::EscapedName => Tok::Id(word[1..].to_owned()),
        };
        tokens.push(Token { tok, span });
        at += len;
    }
    Ok(tokens)
}

/// The keyword `word` is most likely a typo of (`hots` → `host`,
/// `prot` → `port`): one edit away (a letter changed, added, removed, or
/// two neighbours swapped), for words of three letters or more.
pub fn likely_keyword(word: &str) -> Option<&'static str> {
    if word.len() < 3 || !word.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return None;
    }
    // A swapped or changed letter first: `prot` is `port` more often than
    // `proto`.
    let candidates = || {
        KEYWORDS
            .iter()
            .map(|(kw, _)| *kw)
            .filter(|kw| kw.len() >= 3 && one_edit_apart(word.as_bytes(), kw.as_bytes()))
    };
    candidates()
        .find(|kw| kw.len() == word.len())
        .or_else(|| candidates().next())
}

fn one_edit_apart(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return false;
    }
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a_rest, b_rest) = (&a[prefix..], &b[prefix..]);
    match a.len() as isize - b.len() as isize {
        // Substituted, or two neighbours swapped.
        0 => {
            a_rest[1..] == b_rest[1..]
                || (a_rest.len() >= 2
                    && a_rest[0] == b_rest[1]
                    && a_rest[1] == b_rest[0]
                    && a_rest[2..] == b_rest[2..])
        }
        1 => a_rest[1..] == *b_rest,
        -1 => *a_rest == b_rest[1..],
        _ => false,
    }
}

fn keyword_len(rest: &str) -> usize {
    let mut best = 0;
    for (word, _) in KEYWORDS {
        if rest.starts_with(word) {
            best = best.max(word.len());
        }
    }
    if rest.starts_with("&&") || rest.starts_with("||") {
        best = best.max(2);
    }
    best
}

fn punct_len(rest: &str) -> usize {
    match rest.as_bytes().first() {
        Some(
            b'+' | b'-' | b'*' | b'/' | b'%' | b':' | b'[' | b']' | b'!' | b'<' | b'>' | b'('
            | b')' | b'&' | b'|' | b'^' | b'=',
        ) => 1,
        _ => 0,
    }
}

fn operator2_len(rest: &str) -> usize {
    [">=", "<=", "!=", "==", "<<", ">>"]
        .iter()
        .any(|op| rest.starts_with(op)) as usize
        * 2
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn hex_run(s: &[u8]) -> usize {
    s.iter().take_while(|b| is_hex(**b)).count()
}

/// `$` {B}: one or two hex digits.
fn aid_len(rest: &str) -> usize {
    let b = rest.as_bytes();
    if b.first() != Some(&b'$') {
        return 0;
    }
    match hex_run(&b[1..]).min(2) {
        0 => 0,
        n => n + 1,
    }
}

/// Lengths at which `s` matches {B} (one or two hex digits).
fn b_lengths(s: &[u8]) -> Vec<usize> {
    let run = hex_run(s).min(2);
    (1..=run).collect()
}

/// The longest match of `{B} sep {B} sep ... ` with `groups` groups.
fn sep_groups(s: &[u8], sep: u8, groups: usize) -> usize {
    fn go(s: &[u8], at: usize, sep: u8, left: usize) -> Option<usize> {
        let mut best = None;
        for l in b_lengths(&s[at..]) {
            let end = at + l;
            if left == 1 {
                best = best.max(Some(end));
            } else if s.get(end) == Some(&sep)
                && let Some(e) = go(s, end + 1, sep, left - 1)
            {
                best = best.max(Some(e));
            }
        }
        best
    }
    go(s, 0, sep, groups).unwrap_or(0)
}

/// scanner.l's MAC: `B:B:B:B:B:B`, `B-B-...`, `B.B.B.B.B.B`, `B2.B2.B2`,
/// and twelve hex digits in a row.
fn mac_len(s: &[u8]) -> usize {
    let mut best = 0;
    for sep in [b':', b'-', b'.'] {
        best = best.max(sep_groups(s, sep, 6));
    }
    // {B2}\.{B2}\.{B2}: three groups of four hex digits.
    if s.len() >= 14
        && hex_run(s) >= 4
        && s[4] == b'.'
        && hex_run(&s[5..]) >= 4
        && s[9] == b'.'
        && hex_run(&s[10..]) >= 4
    {
        best = best.max(14);
    }
    if hex_run(s) >= 12 {
        best = best.max(12);
    }
    best
}

/// {N}: decimal digits, or 0x/0X and hex digits.
fn number_len(s: &[u8]) -> usize {
    if s.len() >= 3 && s[0] == b'0' && (s[1] == b'x' || s[1] == b'X') && is_hex(s[2]) {
        return 2 + hex_run(&s[2..]);
    }
    s.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// {N}.{N}, {N}.{N}.{N} or {N}.{N}.{N}.{N}.
fn hid_len(s: &[u8]) -> usize {
    let mut at = 0;
    let mut best = 0;
    for part in 0..4 {
        let n = number_len(&s[at..]);
        if n == 0 {
            break;
        }
        at += n;
        if part >= 1 {
            best = at;
        }
        if s.get(at) != Some(&b'.') {
            break;
        }
        at += 1;
    }
    best
}

/// The scanner's IPv6 forms; approximated as the longest prefix of the
/// run of address characters that is an IPv6 address with at most four
/// hex digits per group.
fn hid6_len(rest: &str) -> usize {
    let run = rest
        .bytes()
        .take_while(|b| is_hex(*b) || *b == b':' || *b == b'.')
        .count();
    let candidate = &rest[..run];
    if !candidate.contains(':') {
        return 0;
    }
    for end in (2..=run).rev() {
        let text = &candidate[..end];
        let groups_ok = text.split(':').all(|g| g.contains('.') || g.len() <= 4);
        if groups_ok && text.parse::<std::net::Ipv6Addr>().is_ok() {
            return end;
        }
    }
    0
}

/// `{B}:+({B}:+)+`: things that look like a broken MAC address.
fn bogus_mac_len(s: &[u8]) -> usize {
    fn b_then_colons(s: &[u8], at: usize) -> Vec<usize> {
        let mut ends = Vec::new();
        for l in b_lengths(&s[at..]) {
            let mut end = at + l;
            let colons = s[end..].iter().take_while(|b| **b == b':').count();
            if colons == 0 {
                continue;
            }
            end += colons;
            ends.push(end);
        }
        ends
    }
    let mut best = 0;
    for first in b_then_colons(s, 0) {
        let mut frontier = vec![first];
        let mut repeats = 0;
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for at in frontier {
                for end in b_then_colons(s, at) {
                    next.push(end);
                }
            }
            if !next.is_empty() {
                repeats += 1;
                if repeats >= 1 {
                    best = best.max(*next.iter().max().unwrap_or(&0));
                }
            }
            next.sort_unstable();
            next.dedup();
            frontier = next;
        }
    }
    best
}

fn named_number_len(rest: &str) -> usize {
    NAMED_NUMBERS
        .iter()
        .filter(|(t, _)| rest.starts_with(t))
        .map(|(t, _)| t.len())
        .max()
        .unwrap_or(0)
}

/// `[A-Za-z0-9]([-_.A-Za-z0-9]*[.A-Za-z0-9])?`
fn name_len(s: &[u8]) -> usize {
    if !s.first().is_some_and(|b| b.is_ascii_alphanumeric()) {
        return 0;
    }
    let mut last_good = 1;
    for (i, b) in s.iter().enumerate().skip(1) {
        match b {
            b'-' | b'_' => {}
            b'.' => last_good = i + 1,
            b if b.is_ascii_alphanumeric() => last_good = i + 1,
            _ => break,
        }
    }
    last_good
}

/// `"\\"[^ !()\n\t]+`: a backslash-escaped name (`\tcp` is the name "tcp").
fn escaped_len(s: &[u8]) -> usize {
    if s.first() != Some(&b'\\') {
        return 0;
    }
    let n = s[1..]
        .iter()
        .take_while(|b| !matches!(b, b' ' | b'!' | b'(' | b')' | b'\n' | b'\t'))
        .count();
    if n == 0 { 0 } else { n + 1 }
}

/// libpcap's `stou`: decimal, `0x` hex, or leading-`0` octal, each
/// checked for overflow of 32 bits.
fn parse_number(word: &str) -> Result<u32, String> {
    let overflow = || format!("number {word} overflows 32 bits");
    if let Some(hex) = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).map_err(|_| overflow());
    }
    if word.len() > 1 && word.starts_with('0') {
        if word.bytes().any(|b| !(b'0'..=b'7').contains(&b)) {
            return Err(format!("number {word} contains non-octal digit"));
        }
        return u32::from_str_radix(&word[1..], 8).map_err(|_| overflow());
    }
    word.parse::<u32>().map_err(|_| overflow())
}

/// Prints tokens one per line with their spans: the scanner's stage of
/// `--debug-filter`.
pub fn dump(tokens: &[Token]) -> String {
    let mut out = String::new();
    for t in tokens {
        out.push_str(&format!(
            "{:>4}..{:<4} {:?}\n",
            t.span.start, t.span.end, t.tok
        ));
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn typos_of_keywords() {
        assert_eq!(likely_keyword("hots"), Some("host"));
        assert_eq!(likely_keyword("prot"), Some("port"));
        assert_eq!(likely_keyword("prto"), Some("proto"));
        assert_eq!(likely_keyword("udpp"), Some("udp"));
        assert_eq!(likely_keyword("host"), None);
        assert_eq!(likely_keyword("web"), None);
        assert_eq!(likely_keyword("db-1"), None);
        assert_eq!(likely_keyword("ex"), None);
    }

    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn longest_match_then_rule_order() {
        assert_eq!(toks("tcp"), [Tok::Kw(Kw::Tcp)]);
        assert_eq!(toks("tcp-syn"), [Tok::Num(2)]);
        assert_eq!(toks("tcpflags"), [Tok::Num(13)]);
        assert_eq!(toks("1.2.3.4"), [Tok::Hid("1.2.3.4".into())]);
        assert_eq!(toks("1.2.3.4.5"), [Tok::Id("1.2.3.4.5".into())]);
        assert_eq!(toks("21-23"), [Tok::Id("21-23".into())]);
        assert_eq!(toks("80"), [Tok::Num(80)]);
        assert_eq!(toks("0x800"), [Tok::Num(0x800)]);
        assert_eq!(toks("010"), [Tok::Num(8)]);
        assert_eq!(toks("deadbeefcafe"), [Tok::Eid("deadbeefcafe".into())]);
        assert_eq!(toks("123456789012"), [Tok::Eid("123456789012".into())]);
        assert_eq!(toks("0:1:2:3:4:5"), [Tok::Eid("0:1:2:3:4:5".into())]);
        assert_eq!(toks("fd42::1"), [Tok::Hid6("fd42::1".into())]);
        assert_eq!(toks("::"), [Tok::Hid6("::".into())]);
        assert_eq!(toks("tcp.flags.reset"), [Tok::Id("tcp.flags.reset".into())]);
        assert_eq!(toks("\\tcp"), [Tok::Id("tcp".into())]);
        assert_eq!(toks("TCP"), [Tok::Id("TCP".into())]);
        assert_eq!(toks("ip6"), [Tok::Kw(Kw::Ip6)]);
        assert_eq!(toks("iphone"), [Tok::Id("iphone".into())]);
        assert_eq!(
            toks("a&&b||!c"),
            [
                Tok::Id("a".into()),
                Tok::Kw(Kw::And),
                Tok::Id("b".into()),
                Tok::Kw(Kw::Or),
                Tok::Kw(Kw::Not),
                Tok::Id("c".into())
            ]
        );
        assert_eq!(
            toks("tcp[13]&2!=0"),
            [
                Tok::Kw(Kw::Tcp),
                Tok::Punct('['),
                Tok::Num(13),
                Tok::Punct(']'),
                Tok::Punct('&'),
                Tok::Num(2),
                Tok::Neq,
                Tok::Num(0)
            ]
        );
        assert_eq!(
            toks("len<=128"),
            [Tok::Kw(Kw::Len), Tok::Leq, Tok::Num(128)]
        );
        assert_eq!(
            toks("a==b"),
            [Tok::Id("a".into()), Tok::Punct('='), Tok::Id("b".into())]
        );
    }

    #[test]
    fn errors_name_the_token() {
        let e = lex("port 99999999999").unwrap_err();
        assert!(e.message.contains("overflows"), "{e:?}");
        assert_eq!(e.span, Some(Span { start: 5, end: 16 }));
        assert!(lex("port 09").unwrap_err().message.contains("non-octal"));
        assert!(lex("host 1::2::3").unwrap_err().message.contains("bogus"));
        assert!(lex("host ~").is_err());
        assert!(
            lex("ether host aa::bb:")
                .unwrap_err()
                .message
                .contains("bogus ethernet")
        );
    }
}
