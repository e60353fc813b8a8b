//! The filter expressions of iproute2 `ss` (misc/ssfilter.y):
//! `dst 198.51.100.0/24`, `sport = :8080`, `'( dport = :443 or sport = :443 )'`,
//! `not dst [fd42::1]:53`, combined with `and`/`or`/`not` (also `&`, `|`,
//! `!`, `&&`, `||`) and juxtaposition meaning `and`.
//!
//! Like iproute2's grammar, `and` and `or` have equal precedence and group
//! left to right: `a or b and c` is `(a or b) and c`. Address matching
//! follows the kernel's inet_diag bytecode: an IPv4 prefix also matches
//! IPv4-mapped IPv6 sockets, and never other IPv6 sockets.
//!
//! Parsing (text → [`Expr`]) is separate from matching ([`Expr::matches`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::model::{Endpoint, Socket};

/// Which end of the socket a condition looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Src,
    Dst,
}

/// An address family restriction written as `inet:` / `inet6:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamilyTag {
    V4,
    V6,
}

/// `ADDR[/PREFIX][:PORT]` from a filter: each part may be absent (`*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostCond {
    pub family: Option<FamilyTag>,
    pub prefix: Option<(IpAddr, u8)>,
    pub port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `src X`, `dst X`, `sport = X`, `dport = X`.
    Host(Side, HostCond),
    /// `sport >= N` (`ge`), and through `Not`, `<`.
    PortAtLeast(Side, u16),
    /// `sport <= N` (`le`), and through `Not`, `>`.
    PortAtMost(Side, u16),
    /// `autobound`: the local port was picked by the kernel.
    Autobound,
}

/// Resolves a service name in a port position (`sport = :http`).
pub type ServiceLookup<'a> = &'a dyn Fn(&str) -> Option<u16>;

/// Parses the filter words after `ss`'s options and state clauses.
/// Words are split further on blanks, so a single quoted argument
/// `'( dport = :443 or sport = :443 )'` works as in iproute2.
pub fn parse(words: &[String], services: ServiceLookup) -> Result<Option<Expr>, String> {
    let tokens: Vec<String> = words
        .iter()
        .flat_map(|w| w.split_whitespace().map(str::to_owned))
        .collect();
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        services,
    };
    let expr = parser.expr_list()?;
    if let Some(tok) = parser.peek() {
        return Err(format!(
            "unexpected \"{tok}\" in filter (unbalanced \")\"?)"
        ));
    }
    Ok(Some(expr))
}

struct Parser<'a> {
    tokens: &'a [String],
    pos: usize,
    services: ServiceLookup<'a>,
}

enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> Option<&str> {
        let tok = self.tokens.get(self.pos).map(String::as_str);
        self.pos += 1;
        tok
    }

    /// exprlist: expr { [and|or] expr }, left to right.
    fn expr_list(&mut self) -> Result<Expr, String> {
        let mut left = self.expr()?;
        loop {
            match self.peek() {
                None | Some(")") => return Ok(left),
                Some("|" | "||" | "or") => {
                    self.pos += 1;
                    let right = self.expr()?;
                    left = Expr::Or(Box::new(left), Box::new(right));
                }
                Some("&" | "&&" | "and") => {
                    self.pos += 1;
                    let right = self.expr()?;
                    left = Expr::And(Box::new(left), Box::new(right));
                }
                Some(_) => {
                    let right = self.expr()?;
                    left = Expr::And(Box::new(left), Box::new(right));
                }
            }
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let Some(tok) = self.next().map(str::to_owned) else {
            return Err(
                "filter ends too early; expected a condition such as \"dport = :443\"".into(),
            );
        };
        match tok.as_str() {
            "(" => {
                let inner = self.expr_list()?;
                match self.next() {
                    Some(")") => Ok(inner),
                    _ => Err("missing \")\" in filter".into()),
                }
            }
            "!" | "not" => Ok(Expr::Not(Box::new(self.expr()?))),
            "src" | "dst" => {
                let side = if tok == "src" { Side::Src } else { Side::Dst };
                if matches!(self.peek(), Some("=" | "==" | "eq")) {
                    self.pos += 1;
                }
                let value = self.value(&tok)?;
                Ok(Expr::Host(
                    side,
                    parse_hostcond(&value, false, self.services)?,
                ))
            }
            "sport" | "dport" => {
                let side = if tok == "sport" { Side::Src } else { Side::Dst };
                let op = match self.peek() {
                    Some("=" | "==" | "eq") => Some(Op::Eq),
                    Some("!=" | "ne" | "neq") => Some(Op::Ne),
                    Some(">=" | "ge" | "geq") => Some(Op::Ge),
                    Some("<=" | "le" | "leq") => Some(Op::Le),
                    Some(">" | "gt") => Some(Op::Gt),
                    Some("<" | "lt") => Some(Op::Lt),
                    _ => None,
                };
                if op.is_some() {
                    self.pos += 1;
                }
                let value = self.value(&tok)?;
                let cond = parse_hostcond(&value, true, self.services)?;
                let port = cond.port;
                let need_port = |p: Option<u16>| {
                    p.ok_or_else(|| format!("\"{tok} {value}\" needs a port number to compare"))
                };
                Ok(match op.unwrap_or(Op::Eq) {
                    Op::Eq => Expr::Host(side, cond),
                    Op::Ne => Expr::Not(Box::new(Expr::Host(side, cond))),
                    Op::Ge => Expr::PortAtLeast(side, need_port(port)?),
                    Op::Le => Expr::PortAtMost(side, need_port(port)?),
                    Op::Gt => Expr::Not(Box::new(Expr::PortAtMost(side, need_port(port)?))),
                    Op::Lt => Expr::Not(Box::new(Expr::PortAtLeast(side, need_port(port)?))),
                })
            }
            "autobound" => Ok(Expr::Autobound),
            "dev" | "fwmark" | "cgroup" => Err(format!(
                "the \"{tok}\" filter is not supported by netdiag's ss; use src/dst/sport/dport"
            )),
            other => Err(format!(
                "unexpected \"{other}\" in filter; expected src, dst, sport, dport, autobound, not or \"(\""
            )),
        }
    }

    fn value(&mut self, keyword: &str) -> Result<String, String> {
        match self.next() {
            Some(v) if !matches!(v, "(" | ")" | "and" | "or" | "not" | "!" | "&" | "|") => {
                Ok(v.to_owned())
            }
            _ => Err(format!("\"{keyword}\" needs an address or port after it")),
        }
    }
}

/// iproute2's parse_hostcond: `[inet:|inet6:]ADDR[/PLEN][:PORT]`, `[V6]:PORT`,
/// `*:PORT`, or for sport/dport just `[:]PORT`.
pub fn parse_hostcond(
    text: &str,
    is_port: bool,
    services: ServiceLookup,
) -> Result<HostCond, String> {
    let mut family = None;
    let mut rest = text;
    if let Some(r) = rest.strip_prefix("inet6:") {
        family = Some(FamilyTag::V6);
        rest = r;
    } else if let Some(r) = rest.strip_prefix("inet:") {
        family = Some(FamilyTag::V4);
        rest = r;
    } else if rest.starts_with("unix:") || rest.starts_with("link:") || rest.starts_with("netlink:")
    {
        return Err(format!(
            "\"{text}\": only inet and inet6 addresses can be filtered"
        ));
    }

    let (addr, port) = if is_port {
        ("", Some(rest))
    } else if let Some(r) = rest.strip_prefix('[') {
        let Some(end) = r.find(']') else {
            return Err(format!("\"{text}\": missing \"]\" after the IPv6 address"));
        };
        let after = &r[end + 1..];
        (&r[..end], if after.is_empty() { None } else { Some(after) })
    } else if let Some(r) = rest.strip_prefix('*') {
        ("", Some(r))
    } else {
        // The port is after the last ':' that follows any '/', so a
        // bracket-less IPv6 address must carry a prefix length.
        let search_from = rest.find('/').unwrap_or(0);
        match rest[search_from..].rfind(':') {
            Some(i) => (&rest[..search_from + i], Some(&rest[search_from + i..])),
            None => (rest, None),
        }
    };

    let port = match port.map(|p| p.strip_prefix(':').unwrap_or(p)) {
        None | Some("" | "*") => None,
        Some(p) => Some(match p.parse::<u32>() {
            Ok(n) if n <= 65535 => n as u16,
            Ok(_) => return Err(format!("port \"{p}\" is out of range; ports are 0-65535")),
            Err(_) => services(p).ok_or_else(|| {
                format!("\"{p}\" does not look like a port; write a number, as in \"dport = :443\"")
            })?,
        }),
    };

    let prefix = match addr {
        "" | "*" => None,
        a => Some(parse_prefix(a).ok_or_else(|| {
            format!(
                "an inet prefix is expected rather than \"{a}\" (e.g. 198.51.100.0/24 or [fd42::1])"
            )
        })?),
    };
    if let (Some(tag), Some((ip, _))) = (family, prefix)
        && (tag == FamilyTag::V4) != ip.is_ipv4()
    {
        return Err(format!(
            "\"{text}\": the address does not belong to the family named"
        ));
    }
    Ok(HostCond {
        family,
        prefix,
        port,
    })
}

fn parse_prefix(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max)?,
        None => max,
    };
    Some((ip, len))
}

impl Expr {
    /// Does the socket satisfy the filter? `ephemeral` is the local port
    /// range (`autobound`).
    pub fn matches(&self, s: &Socket, ephemeral: (u16, u16)) -> bool {
        match self {
            Expr::And(a, b) => a.matches(s, ephemeral) && b.matches(s, ephemeral),
            Expr::Or(a, b) => a.matches(s, ephemeral) || b.matches(s, ephemeral),
            Expr::Not(a) => !a.matches(s, ephemeral),
            Expr::Host(side, cond) => host_matches(endpoint(s, *side), cond),
            Expr::PortAtLeast(side, p) => port_of(endpoint(s, *side)) >= u32::from(*p),
            Expr::PortAtMost(side, p) => port_of(endpoint(s, *side)) <= u32::from(*p),
            Expr::Autobound => match &s.local {
                Endpoint::Inet { port, .. } => (ephemeral.0..=ephemeral.1).contains(port),
                Endpoint::Unix { path, .. } => path.is_none(),
            },
        }
    }
}

fn endpoint(s: &Socket, side: Side) -> &Endpoint {
    match side {
        Side::Src => &s.local,
        Side::Dst => &s.peer,
    }
}

/// Unix sockets compare their inode numbers as ports, like iproute2.
fn port_of(e: &Endpoint) -> u32 {
    match e {
        Endpoint::Inet { port, .. } => u32::from(*port),
        Endpoint::Unix { inode, .. } => *inode,
    }
}

fn host_matches(e: &Endpoint, cond: &HostCond) -> bool {
    if let Some(p) = cond.port
        && port_of(e) != u32::from(p)
    {
        return false;
    }
    let Endpoint::Inet { address, .. } = e else {
        return cond.prefix.is_none() && cond.family.is_none();
    };
    if let Some(tag) = cond.family
        && (tag == FamilyTag::V4) != address.is_ipv4()
    {
        return false;
    }
    match cond.prefix {
        None => true,
        Some((want, len)) => prefix_matches(*address, want, len),
    }
}

fn prefix_matches(addr: IpAddr, want: IpAddr, len: u8) -> bool {
    match (addr, want) {
        (IpAddr::V4(a), IpAddr::V4(w)) => bits_match(&a.octets(), &w.octets(), len),
        (IpAddr::V6(a), IpAddr::V6(w)) => bits_match(&a.octets(), &w.octets(), len),
        (IpAddr::V6(a), IpAddr::V4(w)) => match v4_mapped(a) {
            Some(a4) => bits_match(&a4.octets(), &w.octets(), len),
            None => false,
        },
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

fn v4_mapped(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = a.octets();
    (o[..10].iter().all(|b| *b == 0) && o[10] == 0xff && o[11] == 0xff)
        .then(|| Ipv4Addr::new(o[12], o[13], o[14], o[15]))
}

fn bits_match(a: &[u8], b: &[u8], len: u8) -> bool {
    let full = usize::from(len / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rem = len % 8;
    if rem == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rem);
    a[full] & mask == b[full] & mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ss::model::{Netid, TcpState};

    fn no_services(_: &str) -> Option<u16> {
        None
    }

    fn p(text: &str) -> Result<Option<Expr>, String> {
        parse(&[text.to_owned()], &no_services)
    }

    fn sock(local: &str, lport: u16, peer: &str, pport: u16) -> Socket {
        Socket {
            netid: Netid::Tcp,
            state: TcpState(TcpState::ESTABLISHED),
            recv_q: 0,
            send_q: 0,
            local: Endpoint::Inet {
                address: local.parse().unwrap(),
                port: lport,
                ifindex: 0,
            },
            peer: Endpoint::Inet {
                address: peer.parse().unwrap(),
                port: pport,
                ifindex: 0,
            },
            inode: 1,
            uid: 0,
            cookie: 0,
            v6only: None,
            timer: None,
            shutdown: None,
            mark: None,
            cgroup_id: None,
            skmem: None,
            congestion: None,
            tcp_info: None,
            bbr: None,
            processes: vec![],
        }
    }

    fn m(filter: &str, s: &Socket) -> bool {
        p(filter).unwrap().unwrap().matches(s, (32768, 60999))
    }

    #[test]
    fn ports_and_or() {
        let s = sock("198.51.100.1", 40000, "198.51.100.2", 443);
        assert!(m("( dport = :443 or sport = :443 )", &s));
        assert!(m("dport = 443", &s));
        assert!(!m("sport = :8080", &s));
        assert!(m("dport != :80", &s));
        assert!(m("sport > :1024 and dport < :1024", &s));
        assert!(m("sport >= 40000", &s) && m("sport <= 40000", &s));
        assert!(m("autobound", &s));
    }

    #[test]
    fn prefixes_and_families() {
        let s = sock("198.51.100.1", 80, "198.51.100.77", 5000);
        assert!(m("dst 198.51.100.0/24", &s));
        assert!(!m("dst 203.0.113.0/24", &s));
        assert!(m("dst 198.51.100.77:5000", &s));
        assert!(!m("dst 198.51.100.77:5001", &s));
        let mapped = sock("::ffff:198.51.100.1", 80, "::ffff:198.51.100.9", 1);
        assert!(m("dst 198.51.100.0/24", &mapped));
        let v6 = sock("fd42::1", 80, "fd42::2", 1);
        assert!(!m("dst 198.51.100.0/24", &v6));
        assert!(m("dst [fd42::2]", &v6));
        assert!(m("dst fd42::/64", &v6));
        assert!(m("src [fd42::1]:80", &v6));
        assert!(m("src inet6:*:80", &v6) && !m("src inet:*:80", &v6));
    }

    #[test]
    fn left_to_right_grouping_like_iproute2() {
        let s = sock("198.51.100.1", 1, "198.51.100.2", 2);
        // (sport = 1 or sport = 9) and dport = 3  → false
        assert!(!m("sport = 1 or sport = 9 and dport = 3", &s));
        assert!(m("not dport = 3", &s));
        assert!(m("sport = 1 dport = 2", &s));
    }

    #[test]
    fn errors_are_one_line_and_name_the_input() {
        let e = p("dport = :abc").unwrap_err();
        assert!(e.contains("\"abc\" does not look like a port"), "{e}");
        assert!(p("dport = :70000").unwrap_err().contains("out of range"));
        assert!(p("( sport = 1").unwrap_err().contains("missing \")\""));
        assert!(p("sport = 1 )").unwrap_err().contains("unexpected \")\""));
        assert!(p("bogus").unwrap_err().contains("\"bogus\""));
        assert!(p("dst not-an-address").unwrap_err().contains("inet prefix"));
        assert!(p("dst").unwrap_err().contains("needs an address"));
        assert!(p("").unwrap().is_none());
    }
}
