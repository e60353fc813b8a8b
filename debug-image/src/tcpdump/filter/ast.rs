//! The filter's syntax tree: what the parser understood, before any code.
//!
//! Qualifier inheritance (`host A and B`, `port 80 or 443`) is already
//! resolved here: every address carries the full qualifier it was given or
//! inherited, so the printer shows exactly how libpcap reads an expression
//! (`host A and B` prints as `(host A) and (host B)`).

use std::fmt;

use super::lexer::Span;

/// Protocol qualifiers (libpcap's `Q_*` protocol values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// None given.
    Default,
    /// `ether` (and its synonyms `link`, `ppp`, ...).
    Link,
    Ip,
    Arp,
    Rarp,
    Sctp,
    Tcp,
    Udp,
    Icmp,
    Igmp,
    Igrp,
    Pim,
    Vrrp,
    Carp,
    Atalk,
    Aarp,
    Decnet,
    Lat,
    Sca,
    Moprc,
    Mopdl,
    Ip6,
    Icmp6,
    Ah,
    Esp,
    Iso,
    Stp,
    Ipx,
    Netbeui,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Default => "",
            Proto::Link => "ether",
            Proto::Ip => "ip",
            Proto::Arp => "arp",
            Proto::Rarp => "rarp",
            Proto::Sctp => "sctp",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Igmp => "igmp",
            Proto::Igrp => "igrp",
            Proto::Pim => "pim",
            Proto::Vrrp => "vrrp",
            Proto::Carp => "carp",
            Proto::Atalk => "atalk",
            Proto::Aarp => "aarp",
            Proto::Decnet => "decnet",
            Proto::Lat => "lat",
            Proto::Sca => "sca",
            Proto::Moprc => "moprc",
            Proto::Mopdl => "mopdl",
            Proto::Ip6 => "ip6",
            Proto::Icmp6 => "icmp6",
            Proto::Ah => "ah",
            Proto::Esp => "esp",
            Proto::Iso => "iso",
            Proto::Stp => "stp",
            Proto::Ipx => "ipx",
            Proto::Netbeui => "netbeui",
        }
    }
}

/// Direction qualifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    Default,
    Src,
    Dst,
    /// `src or dst`
    Or,
    /// `src and dst`
    And,
}

impl Dir {
    pub fn name(self) -> &'static str {
        match self {
            Dir::Default => "",
            Dir::Src => "src",
            Dir::Dst => "dst",
            Dir::Or => "src or dst",
            Dir::And => "src and dst",
        }
    }
}

/// Address-type qualifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrKind {
    Default,
    Host,
    Net,
    Port,
    Portrange,
    Proto,
    Gateway,
}

impl AddrKind {
    pub fn name(self) -> &'static str {
        match self {
            AddrKind::Default => "",
            AddrKind::Host => "host",
            AddrKind::Net => "net",
            AddrKind::Port => "port",
            AddrKind::Portrange => "portrange",
            AddrKind::Proto => "proto",
            AddrKind::Gateway => "gateway",
        }
    }
}

/// A full qualifier: `ip src host`, `tcp dst port`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Qual {
    pub proto: Proto,
    pub dir: Dir,
    pub addr: AddrKind,
}

impl fmt::Display for Qual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = [self.proto.name(), self.dir.name(), self.addr.name()]
            .into_iter()
            .filter(|w| !w.is_empty())
            .collect();
        f.write_str(&words.join(" "))
    }
}

/// The value after a qualifier, as the scanner classified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Num(u32),
    /// Dotted IPv4 (2 to 4 parts).
    Ipv4(String),
    /// `HID / NUM`
    Ipv4Len(String, u32),
    /// `HID mask HID`
    Ipv4Mask(String, String),
    Ipv6(String),
    /// `HID6 / NUM`
    Ipv6Len(String, u32),
    Mac(String),
    /// `$xx`
    Arcnet(String),
    /// A name: host, service, protocol.
    Name(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num(n) => write!(f, "{n}"),
            Value::Ipv4(s) | Value::Ipv6(s) | Value::Mac(s) | Value::Name(s) => f.write_str(s),
            Value::Ipv4Len(s, n) | Value::Ipv6Len(s, n) => write!(f, "{s}/{n}"),
            Value::Ipv4Mask(s, m) => write!(f, "{s} mask {m}"),
            Value::Arcnet(s) => write!(f, "${s}"),
        }
    }
}

/// Comparison operators of `arth relop arth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rel {
    /// `>` (negated: `<=`)
    Gt,
    /// `>=` (negated: `<`)
    Ge,
    /// `=` / `==` (negated: `!=`)
    Eq,
}

/// Arithmetic operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    And,
    Or,
    Xor,
    Lsh,
    Rsh,
}

impl ArithOp {
    pub fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
            ArithOp::And => "&",
            ArithOp::Or => "|",
            ArithOp::Xor => "^",
            ArithOp::Lsh => "<<",
            ArithOp::Rsh => ">>",
        }
    }
}

/// An arithmetic expression over packet bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arith {
    Num(u32),
    /// `len`: the packet's length on the wire.
    Len,
    /// `proto[index : size]`
    Load {
        proto: Proto,
        index: Box<Arith>,
        size: u32,
        span: Span,
    },
    Binary {
        op: ArithOp,
        lhs: Box<Arith>,
        rhs: Box<Arith>,
        span: Span,
    },
    Neg(Box<Arith>),
}

impl fmt::Display for Arith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arith::Num(n) => write!(f, "{n}"),
            Arith::Len => f.write_str("len"),
            Arith::Load {
                proto, index, size, ..
            } => write!(f, "{}[{index}:{size}]", proto.name()),
            Arith::Binary { op, lhs, rhs, .. } => write!(f, "({lhs} {} {rhs})", op.symbol()),
            Arith::Neg(a) => write!(f, "-({a})"),
        }
    }
}

/// `byte N op V` operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOp {
    Eq,
    Lt,
    Gt,
    And,
    Or,
}

/// A filter expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// Terms joined by `and`, evaluated left to right (a chain of the same
    /// operator is kept flat, so long filters do not nest deeply).
    And(Vec<Expr>),
    /// Terms joined by `or`, evaluated left to right.
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `qualifiers value`, typed or inherited.
    Primitive {
        qual: Qual,
        value: Value,
        span: Span,
    },
    /// A protocol name on its own: `tcp`, `ip6`, `arp`.
    Proto {
        proto: Proto,
        span: Span,
    },
    /// `lhs op rhs`, or its negation (`!=`, `<`, `<=`).
    Relation {
        rel: Rel,
        negated: bool,
        lhs: Arith,
        rhs: Arith,
        span: Span,
    },
    Broadcast {
        proto: Proto,
        span: Span,
    },
    Multicast {
        proto: Proto,
        span: Span,
    },
    /// `less N`: length <= N.
    Less(u32),
    /// `greater N`: length >= N.
    Greater(u32),
    Byte {
        index: u32,
        op: ByteOp,
        value: u32,
    },
    /// `inbound` (false) / `outbound` (true).
    Direction {
        outbound: bool,
        span: Span,
    },
    /// `vlan [id]`
    Vlan {
        id: Option<u32>,
        span: Span,
    },
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(terms) => write_joined(f, terms, " and "),
            Expr::Or(terms) => write_joined(f, terms, " or "),
            Expr::Not(a) => write!(f, "not ({a})"),
            Expr::Primitive { qual, value, .. } => {
                let q = qual.to_string();
                if q.is_empty() {
                    write!(f, "{value}")
                } else {
                    write!(f, "{q} {value}")
                }
            }
            Expr::Proto { proto, .. } => f.write_str(proto.name()),
            Expr::Relation {
                rel,
                negated,
                lhs,
                rhs,
                ..
            } => {
                let op = match (rel, negated) {
                    (Rel::Gt, false) => ">",
                    (Rel::Gt, true) => "<=",
                    (Rel::Ge, false) => ">=",
                    (Rel::Ge, true) => "<",
                    (Rel::Eq, false) => "=",
                    (Rel::Eq, true) => "!=",
                };
                write!(f, "{lhs} {op} {rhs}")
            }
            Expr::Broadcast { proto, .. } => write!(f, "{} broadcast", proto.name()),
            Expr::Multicast { proto, .. } => write!(f, "{} multicast", proto.name()),
            Expr::Less(n) => write!(f, "less {n}"),
            Expr::Greater(n) => write!(f, "greater {n}"),
            Expr::Byte { index, op, value } => {
                let op = match op {
                    ByteOp::Eq => "=",
                    ByteOp::Lt => "<",
                    ByteOp::Gt => ">",
                    ByteOp::And => "&",
                    ByteOp::Or => "|",
                };
                write!(f, "byte {index} {op} {value}")
            }
            Expr::Direction { outbound, .. } => {
                f.write_str(if *outbound { "outbound" } else { "inbound" })
            }
            Expr::Vlan { id: Some(id), .. } => write!(f, "vlan {id}"),
            Expr::Vlan { id: None, .. } => f.write_str("vlan"),
        }
    }
}

fn write_joined(f: &mut fmt::Formatter<'_>, terms: &[Expr], sep: &str) -> fmt::Result {
    for (i, t) in terms.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "({t})")?;
    }
    Ok(())
}
