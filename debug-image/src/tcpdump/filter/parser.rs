//! Tokens → syntax tree, with the grammar and the qualifier inheritance of
//! libpcap 1.10's `grammar.y`.
//!
//! libpcap's grammar is LALR(1) yacc; this is a recursive-descent parser
//! that takes the same decisions. The places where yacc decides by looking
//! ahead are decided here the same way:
//!
//! - after `and`/`or`, a bare address (`host A and B`, `port 80 or 443`)
//!   is an *id* that inherits the qualifiers of the term before it;
//!   anything else is a new term. A number is an id unless an arithmetic
//!   or comparison operator follows it; a parenthesis holds ids if its
//!   first token is an address (`host A and (B or C)`).
//! - a parenthesis at the start of a term is arithmetic if an arithmetic or
//!   comparison operator follows its closing parenthesis.
//! - `and` and `or` have the same precedence and associate to the left
//!   (`a or b and c` is `(a or b) and c`), `not` binds tighter.
//! - arithmetic: `|` < `&` < `<< >>` < `+ -` < `* /` < unary `-`, all
//!   left-associative; `^` and `%` have no precedence in libpcap 1.10's
//!   grammar, so yacc always shifts them: each takes the operand just
//!   before it and everything after it (`a + b ^ c + d` is
//!   `a + (b ^ (c + d))`, and `ip[0] % 3 * 2` is `ip[0] % 6`).
//!
//! The qualifiers a term passes on: those of `qualifiers id`; for a
//! parenthesised expression, those in force before the parenthesis; none
//! (so a following bare address is a syntax error) after a protocol name,
//! a comparison, or `less`/`greater`/`vlan`/`broadcast`/... .

use super::FilterError;
use super::ast::{AddrKind, Arith, ArithOp, ByteOp, Dir, Expr, Proto, Qual, Rel, Value};
use super::lexer::{self, Kw, Span, Tok, Token};

/// How deeply parentheses, `not` and alternating `and`/`or` may nest: far
/// beyond what anyone types, low enough that hostile input cannot exhaust
/// the stack of any stage.
pub const MAX_DEPTH: usize = 200;

type PResult<T> = Result<T, FilterError>;

/// Parses the tokens of a whole filter. An empty filter is `None`
/// (accept everything).
pub fn parse(tokens: &[Token], text_len: usize) -> PResult<Option<Expr>> {
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut p = Parser::new(tokens, text_len);
    let (expr, _) = p.parse_expr(None)?;
    if p.pos < tokens.len() {
        return Err(p.unexpected());
    }
    Ok(Some(expr))
}

struct Parser<'t> {
    toks: &'t [Token],
    pos: usize,
    /// For each `(`, the index of its `)`.
    close: Vec<Option<usize>>,
    text_len: usize,
    depth: usize,
}

fn proto_of(kw: Kw) -> Option<Proto> {
    Some(match kw {
        Kw::Link => Proto::Link,
        Kw::Ip => Proto::Ip,
        Kw::Arp => Proto::Arp,
        Kw::Rarp => Proto::Rarp,
        Kw::Sctp => Proto::Sctp,
        Kw::Tcp => Proto::Tcp,
        Kw::Udp => Proto::Udp,
        Kw::Icmp => Proto::Icmp,
        Kw::Igmp => Proto::Igmp,
        Kw::Igrp => Proto::Igrp,
        Kw::Pim => Proto::Pim,
        Kw::Vrrp => Proto::Vrrp,
        Kw::Carp => Proto::Carp,
        Kw::Atalk => Proto::Atalk,
        Kw::Aarp => Proto::Aarp,
        Kw::Decnet => Proto::Decnet,
        Kw::Lat => Proto::Lat,
        Kw::Sca => Proto::Sca,
        Kw::Moprc => Proto::Moprc,
        Kw::Mopdl => Proto::Mopdl,
        Kw::Ip6 => Proto::Ip6,
        Kw::Icmp6 => Proto::Icmp6,
        Kw::Ah => Proto::Ah,
        Kw::Esp => Proto::Esp,
        Kw::Iso => Proto::Iso,
        Kw::Stp => Proto::Stp,
        Kw::Ipx => Proto::Ipx,
        Kw::Netbeui => Proto::Netbeui,
        _ => return None,
    })
}

/// Tokens that continue an arithmetic expression or compare two.
fn continues_arith(tok: Option<&Tok>) -> bool {
    matches!(
        tok,
        Some(
            Tok::Punct('+' | '-' | '*' | '/' | '%' | '&' | '|' | '^' | '>' | '<' | '=')
                | Tok::Geq
                | Tok::Leq
                | Tok::Neq
                | Tok::Lsh
                | Tok::Rsh
        )
    )
}

fn is_address(tok: Option<&Tok>) -> bool {
    matches!(
        tok,
        Some(Tok::Hid(_) | Tok::Hid6(_) | Tok::Eid(_) | Tok::Aid(_) | Tok::Id(_))
    )
}

/// Joins `rhs` to `lhs` with `and`/`or`, keeping chains of one operator flat.
fn combine(is_and: bool, lhs: Expr, rhs: Expr) -> Expr {
    match (is_and, lhs) {
        (true, Expr::And(mut terms)) => {
            terms.push(rhs);
            Expr::And(terms)
        }
        (false, Expr::Or(mut terms)) => {
            terms.push(rhs);
            Expr::Or(terms)
        }
        (true, lhs) => Expr::And(vec![lhs, rhs]),
        (false, lhs) => Expr::Or(vec![lhs, rhs]),
    }
}

impl<'t> Parser<'t> {
    fn new(toks: &'t [Token], text_len: usize) -> Parser<'t> {
        let mut close = vec![None; toks.len()];
        let mut open = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            match t.tok {
                Tok::Punct('(') => open.push(i),
                Tok::Punct(')') => {
                    if let Some(o) = open.pop() {
                        close[o] = Some(i);
                    }
                }
                _ => {}
            }
        }
        Parser {
            toks,
            pos: 0,
            close,
            text_len,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.peek_at(self.pos)
    }

    fn peek_at(&self, i: usize) -> Option<&Tok> {
        self.toks.get(i).map(|t| &t.tok)
    }

    fn bump(&mut self) -> &'t Token {
        let t = &self.toks[self.pos];
        self.pos += 1;
        t
    }

    fn span(&self) -> Span {
        match self.toks.get(self.pos) {
            Some(t) => t.span,
            None => Span {
                start: self.text_len,
                end: self.text_len,
            },
        }
    }

    fn prev_span(&self) -> Span {
        self.toks[self.pos.saturating_sub(1)].span
    }

    /// The error for the token at the current position, with a hint when it
    /// or the word before it looks like a misspelt keyword (a bare word is a
    /// host name to the grammar, so `hots 1.2.3.4` fails at the address).
    fn unexpected(&self) -> FilterError {
        let mut error = match self.toks.get(self.pos) {
            None => FilterError::at(self.span(), "syntax error: the filter ends too early"),
            Some(t) => FilterError::at(t.span, format!("syntax error at \"{}\"", t.tok)),
        };
        let misspelt = [Some(self.pos), self.pos.checked_sub(1)]
            .into_iter()
            .flatten()
            .filter_map(|i| match self.toks.get(i).map(|t| &t.tok) {
                Some(Tok::Id(word)) => Some((word, lexer::likely_keyword(word)?)),
                _ => None,
            })
            .next();
        if let Some((word, keyword)) = misspelt {
            error.message = format!(
                "{}: \"{word}\" is not a keyword; did you mean \"{keyword}\"?",
                error.message
            );
        }
        error
    }

    fn expect(&mut self, want: &Tok) -> PResult<&'t Token> {
        if self.peek() == Some(want) {
            Ok(self.bump())
        } else {
            Err(self.unexpected())
        }
    }

    fn expect_num(&mut self) -> PResult<u32> {
        match self.peek() {
            Some(Tok::Num(n)) => {
                let n = *n;
                self.bump();
                Ok(n)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::at(
                self.span(),
                format!("the filter nests more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `expr: term | expr and term | expr and id | expr or term | expr or id`
    fn parse_expr(&mut self, ctx: Option<Qual>) -> PResult<(Expr, Option<Qual>)> {
        let saved_depth = self.depth;
        self.enter()?;
        let (mut expr, mut q) = self.parse_term(ctx)?;
        while let Some(Tok::Kw(op @ (Kw::And | Kw::Or))) = self.peek() {
            let is_and = *op == Kw::And;
            self.bump();
            let (rhs, rq) = if self.starts_id(self.pos) {
                (self.parse_id(q)?, q)
            } else {
                self.parse_term(q)?
            };
            // A change of operator starts a new level of the tree.
            let deeper = !matches!((&expr, is_and), (Expr::And(_), true) | (Expr::Or(_), false));
            if deeper {
                self.enter()?;
            }
            expr = combine(is_and, expr, rhs);
            q = rq;
        }
        self.depth = saved_depth;
        Ok((expr, q))
    }

    /// Whether the tokens at `at` are an id (inheriting qualifiers) rather
    /// than a term; see the module doc.
    fn starts_id(&self, at: usize) -> bool {
        match self.peek_at(at) {
            Some(Tok::Kw(Kw::Not)) => self.starts_id(at + 1),
            Some(Tok::Num(_)) => !continues_arith(self.peek_at(at + 1)),
            Some(Tok::Punct('(')) => {
                if let Some(close) = self.close[at]
                    && continues_arith(self.peek_at(close + 1))
                {
                    return false;
                }
                let mut i = at + 1;
                while matches!(self.peek_at(i), Some(Tok::Punct('(') | Tok::Kw(Kw::Not))) {
                    i += 1;
                }
                match self.peek_at(i) {
                    Some(Tok::Num(_)) => {
                        let mut j = i + 1;
                        while self.peek_at(j) == Some(&Tok::Punct(')')) {
                            j += 1;
                        }
                        !continues_arith(self.peek_at(j))
                    }
                    t => is_address(t),
                }
            }
            t => is_address(t),
        }
    }

    /// `term: rterm | not term`
    fn parse_term(&mut self, ctx: Option<Qual>) -> PResult<(Expr, Option<Qual>)> {
        if self.peek() == Some(&Tok::Kw(Kw::Not)) {
            self.bump();
            self.enter()?;
            let (t, q) = self.parse_term(ctx)?;
            self.leave();
            return Ok((Expr::Not(Box::new(t)), q));
        }
        self.parse_rterm(ctx)
    }

    fn parse_rterm(&mut self, ctx: Option<Qual>) -> PResult<(Expr, Option<Qual>)> {
        let start = self.span();
        let Some(tok) = self.peek() else {
            return Err(self.unexpected());
        };
        match tok {
            Tok::Punct('(') => {
                let arith =
                    self.close[self.pos].is_some_and(|c| continues_arith(self.peek_at(c + 1)));
                if arith {
                    return Ok((self.parse_relation()?, None));
                }
                self.bump();
                let (e, _) = self.parse_expr(ctx)?;
                self.expect(&Tok::Punct(')'))?;
                Ok((e, ctx))
            }
            Tok::Num(_) | Tok::Kw(Kw::Len) | Tok::Punct('-') => Ok((self.parse_relation()?, None)),
            Tok::Kw(kw) => {
                let kw = *kw;
                if let Some(proto) = proto_of(kw) {
                    return match self.peek_at(self.pos + 1) {
                        Some(Tok::Kw(
                            Kw::Src
                            | Kw::Dst
                            | Kw::Host
                            | Kw::Net
                            | Kw::Port
                            | Kw::Portrange
                            | Kw::Proto
                            | Kw::Gateway
                            | Kw::Unsupported("protochain"),
                        )) => self.parse_head_id(),
                        Some(Tok::Punct('[')) => Ok((self.parse_relation()?, None)),
                        Some(Tok::Kw(Kw::Broadcast)) => {
                            self.pos += 2;
                            let span = start.to(self.prev_span());
                            Ok((Expr::Broadcast { proto, span }, None))
                        }
                        Some(Tok::Kw(Kw::Multicast)) => {
                            self.pos += 2;
                            let span = start.to(self.prev_span());
                            Ok((Expr::Multicast { proto, span }, None))
                        }
                        _ => {
                            self.bump();
                            Ok((Expr::Proto { proto, span: start }, None))
                        }
                    };
                }
                match kw {
                    Kw::Src
                    | Kw::Dst
                    | Kw::Host
                    | Kw::Net
                    | Kw::Port
                    | Kw::Portrange
                    | Kw::Proto
                    | Kw::Gateway => self.parse_head_id(),
                    Kw::Broadcast => {
                        self.bump();
                        Ok((
                            Expr::Broadcast {
                                proto: Proto::Default,
                                span: start,
                            },
                            None,
                        ))
                    }
                    Kw::Multicast => {
                        self.bump();
                        Ok((
                            Expr::Multicast {
                                proto: Proto::Default,
                                span: start,
                            },
                            None,
                        ))
                    }
                    Kw::Less | Kw::Greater => {
                        self.bump();
                        let n = self.expect_num()?;
                        let e = if kw == Kw::Less {
                            Expr::Less(n)
                        } else {
                            Expr::Greater(n)
                        };
                        Ok((e, None))
                    }
                    Kw::Byte => {
                        self.bump();
                        let index = self.expect_num()?;
                        let op = match self.peek() {
                            Some(Tok::Punct('&')) => ByteOp::And,
                            Some(Tok::Punct('|')) => ByteOp::Or,
                            Some(Tok::Punct('<')) => ByteOp::Lt,
                            Some(Tok::Punct('>')) => ByteOp::Gt,
                            Some(Tok::Punct('=')) => ByteOp::Eq,
                            _ => return Err(self.unexpected()),
                        };
                        self.bump();
                        let value = self.expect_num()?;
                        Ok((Expr::Byte { index, op, value }, None))
                    }
                    Kw::Inbound | Kw::Outbound => {
                        self.bump();
                        Ok((
                            Expr::Direction {
                                outbound: kw == Kw::Outbound,
                                span: start,
                            },
                            None,
                        ))
                    }
                    Kw::Vlan => {
                        self.bump();
                        let id = match self.peek() {
                            Some(Tok::Num(_) | Tok::Punct('(')) => Some(self.parse_pnum()?),
                            _ => None,
                        };
                        let span = start.to(self.prev_span());
                        Ok((Expr::Vlan { id, span }, None))
                    }
                    Kw::Unsupported(name) => Err(FilterError::at(
                        start,
                        format!(
                            "\"{name}\" is a pcap-filter keyword netdiag's filter compiler does not support"
                        ),
                    )),
                    _ => Err(self.unexpected()),
                }
            }
            Tok::Hid(_) | Tok::Hid6(_) | Tok::Eid(_) => Err(FilterError::at(
                start,
                format!(
                    "syntax error at \"{tok}\": an address needs a qualifier here, e.g. \"host {tok}\""
                ),
            )),
            _ => Err(self.unexpected()),
        }
    }

    /// `head id`
    fn parse_head_id(&mut self) -> PResult<(Expr, Option<Qual>)> {
        let q = self.parse_head()?;
        let id = self.parse_id(Some(q))?;
        Ok((id, Some(q)))
    }

    /// `head: pqual dqual aqual | pqual dqual | pqual aqual | pqual PROTO
    /// | pqual ndaqual`
    fn parse_head(&mut self) -> PResult<Qual> {
        let mut q = Qual {
            proto: Proto::Default,
            dir: Dir::Default,
            addr: AddrKind::Default,
        };
        if let Some(Tok::Kw(kw)) = self.peek()
            && let Some(p) = proto_of(*kw)
        {
            q.proto = p;
            self.bump();
        }
        if let Some(Tok::Kw(first @ (Kw::Src | Kw::Dst))) = self.peek() {
            let first = *first;
            self.bump();
            q.dir = if first == Kw::Src { Dir::Src } else { Dir::Dst };
            let other = if first == Kw::Src { Kw::Dst } else { Kw::Src };
            if let Some(Tok::Kw(join @ (Kw::And | Kw::Or))) = self.peek()
                && self.peek_at(self.pos + 1) == Some(&Tok::Kw(other))
            {
                q.dir = if *join == Kw::And { Dir::And } else { Dir::Or };
                self.pos += 2;
            }
        }
        match self.peek() {
            Some(Tok::Kw(Kw::Host)) => q.addr = AddrKind::Host,
            Some(Tok::Kw(Kw::Net)) => q.addr = AddrKind::Net,
            Some(Tok::Kw(Kw::Port)) => q.addr = AddrKind::Port,
            Some(Tok::Kw(Kw::Portrange)) => q.addr = AddrKind::Portrange,
            Some(Tok::Kw(Kw::Proto)) if q.dir == Dir::Default => q.addr = AddrKind::Proto,
            Some(Tok::Kw(Kw::Gateway)) if q.dir == Dir::Default => q.addr = AddrKind::Gateway,
            Some(Tok::Kw(Kw::Unsupported("protochain"))) if q.dir == Dir::Default => {
                return Err(FilterError::at(
                    self.span(),
                    "\"protochain\" is a pcap-filter keyword netdiag's filter compiler does not support",
                ));
            }
            _ => {
                if q.dir == Dir::Default {
                    return Err(self.unexpected());
                }
                return Ok(q);
            }
        }
        self.bump();
        Ok(q)
    }

    /// `id: nid | pnum | paren pid ')'` (and `nid: ... | not id`).
    fn parse_id(&mut self, q: Option<Qual>) -> PResult<Expr> {
        self.enter()?;
        let e = match self.peek() {
            Some(Tok::Punct('(')) => {
                self.bump();
                let e = self.parse_pid(q)?;
                self.expect(&Tok::Punct(')'))?;
                e
            }
            Some(Tok::Num(_)) => {
                let span = self.span();
                let n = self.expect_num()?;
                self.primitive(q, Value::Num(n), span)?
            }
            _ => self.parse_nid(q)?,
        };
        self.leave();
        Ok(e)
    }

    /// `pid: nid | qid and id | qid or id`, `qid: pnum | pid`: the inside
    /// of a parenthesis of addresses.
    fn parse_pid(&mut self, q: Option<Qual>) -> PResult<Expr> {
        let span = self.span();
        let mut e = match self.peek() {
            Some(Tok::Num(_) | Tok::Punct('(')) => {
                let n = self.parse_pnum()?;
                self.primitive(q, Value::Num(n), span.to(self.prev_span()))?
            }
            _ => self.parse_nid(q)?,
        };
        while let Some(Tok::Kw(op @ (Kw::And | Kw::Or))) = self.peek() {
            let is_and = *op == Kw::And;
            self.bump();
            let rhs = self.parse_id(q)?;
            e = combine(is_and, e, rhs);
        }
        Ok(e)
    }

    /// `nid`: an address of any form, or `not id`.
    fn parse_nid(&mut self, q: Option<Qual>) -> PResult<Expr> {
        let span = self.span();
        let Some(tok) = self.peek().cloned() else {
            return Err(self.unexpected());
        };
        let value = match tok {
            Tok::Kw(Kw::Not) => {
                self.bump();
                let inner = self.parse_id(q)?;
                return Ok(Expr::Not(Box::new(inner)));
            }
            Tok::Hid(s) => {
                self.bump();
                match self.peek() {
                    Some(Tok::Punct('/')) => {
                        self.bump();
                        Value::Ipv4Len(s, self.expect_num()?)
                    }
                    Some(Tok::Kw(Kw::Mask)) => {
                        self.bump();
                        match self.peek().cloned() {
                            Some(Tok::Hid(m)) => {
                                self.bump();
                                Value::Ipv4Mask(s, m)
                            }
                            _ => return Err(self.unexpected()),
                        }
                    }
                    _ => Value::Ipv4(s),
                }
            }
            Tok::Hid6(s) => {
                self.bump();
                if self.peek() == Some(&Tok::Punct('/')) {
                    self.bump();
                    Value::Ipv6Len(s, self.expect_num()?)
                } else {
                    Value::Ipv6(s)
                }
            }
            Tok::Eid(s) => {
                self.bump();
                Value::Mac(s)
            }
            Tok::Aid(s) => {
                self.bump();
                Value::Arcnet(s)
            }
            Tok::Id(s) => {
                self.bump();
                Value::Name(s)
            }
            _ => return Err(self.unexpected()),
        };
        self.primitive(q, value, span.to(self.prev_span()))
    }

    fn primitive(&self, q: Option<Qual>, value: Value, span: Span) -> PResult<Expr> {
        match q {
            Some(qual) => Ok(Expr::Primitive { qual, value, span }),
            // libpcap's qerr: a bare value after a term that passes no
            // qualifiers on (`tcp and 80`).
            None => Err(FilterError::at(
                span,
                format!(
                    "syntax error at \"{value}\": nothing before it says what it is (write e.g. \"port {value}\" or \"host {value}\")"
                ),
            )),
        }
    }

    /// `pnum: NUM | paren pnum ')'`
    fn parse_pnum(&mut self) -> PResult<u32> {
        if self.peek() == Some(&Tok::Punct('(')) {
            self.bump();
            self.enter()?;
            let n = self.parse_pnum()?;
            self.leave();
            self.expect(&Tok::Punct(')'))?;
            return Ok(n);
        }
        self.expect_num()
    }

    /// `arth relop arth | arth irelop arth`
    fn parse_relation(&mut self) -> PResult<Expr> {
        let start = self.span();
        let lhs = self.parse_arith(0)?;
        let (rel, negated) = match self.peek() {
            Some(Tok::Punct('>')) => (Rel::Gt, false),
            Some(Tok::Geq) => (Rel::Ge, false),
            Some(Tok::Punct('=')) => (Rel::Eq, false),
            Some(Tok::Leq) => (Rel::Gt, true),
            Some(Tok::Punct('<')) => (Rel::Ge, true),
            Some(Tok::Neq) => (Rel::Eq, true),
            _ => return Err(self.unexpected()),
        };
        self.bump();
        let rhs = self.parse_arith(0)?;
        Ok(Expr::Relation {
            rel,
            negated,
            lhs,
            rhs,
            span: start.to(self.prev_span()),
        })
    }

    fn binary_op(&self) -> Option<(ArithOp, u8)> {
        Some(match self.peek()? {
            Tok::Punct('|') => (ArithOp::Or, 1),
            Tok::Punct('&') => (ArithOp::And, 2),
            Tok::Lsh => (ArithOp::Lsh, 3),
            Tok::Rsh => (ArithOp::Rsh, 3),
            Tok::Punct('+') => (ArithOp::Add, 4),
            Tok::Punct('-') => (ArithOp::Sub, 4),
            Tok::Punct('*') => (ArithOp::Mul, 5),
            Tok::Punct('/') => (ArithOp::Div, 5),
            _ => return None,
        })
    }

    /// Precedence climbing over the binary operators other than `^`, `%`.
    fn parse_arith(&mut self, min_prec: u8) -> PResult<Arith> {
        self.enter()?;
        let mut lhs = self.parse_operand()?;
        while let Some((op, prec)) = self.binary_op() {
            if prec < min_prec {
                break;
            }
            let op_span = self.span();
            self.bump();
            let rhs = self.parse_arith(prec + 1)?;
            lhs = Arith::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                span: op_span,
            };
        }
        self.leave();
        Ok(lhs)
    }

    /// A primary (number, `len`, `proto[...]`, parenthesis, unary minus),
    /// then any `^ rest` or `% rest`: yacc shifts those whatever precedes
    /// them.
    fn parse_operand(&mut self) -> PResult<Arith> {
        self.enter()?;
        let start = self.span();
        let mut a = match self.peek() {
            Some(Tok::Num(n)) => {
                let n = *n;
                self.bump();
                Arith::Num(n)
            }
            Some(Tok::Kw(Kw::Len)) => {
                self.bump();
                Arith::Len
            }
            Some(Tok::Punct('-')) => {
                self.bump();
                Arith::Neg(Box::new(self.parse_operand()?))
            }
            Some(Tok::Punct('(')) => {
                self.bump();
                let a = self.parse_arith(0)?;
                self.expect(&Tok::Punct(')'))?;
                a
            }
            Some(Tok::Kw(kw)) if proto_of(*kw).is_some() => {
                let proto = proto_of(*kw).unwrap_or(Proto::Default);
                self.bump();
                self.expect(&Tok::Punct('['))?;
                let index = self.parse_arith(0)?;
                let size = if self.peek() == Some(&Tok::Punct(':')) {
                    self.bump();
                    self.expect_num()?
                } else {
                    1
                };
                self.expect(&Tok::Punct(']'))?;
                Arith::Load {
                    proto,
                    index: Box::new(index),
                    size,
                    span: start.to(self.prev_span()),
                }
            }
            _ => return Err(self.unexpected()),
        };
        while let Some(Tok::Punct(c @ ('^' | '%'))) = self.peek() {
            let op = if *c == '^' {
                ArithOp::Xor
            } else {
                ArithOp::Mod
            };
            let op_span = self.span();
            self.bump();
            let rhs = self.parse_arith(0)?;
            a = Arith::Binary {
                op,
                lhs: Box::new(a),
                rhs: Box::new(rhs),
                span: op_span,
            };
        }
        self.leave();
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex;
    use super::*;

    fn show(text: &str) -> String {
        let toks = lex(text).unwrap();
        match parse(&toks, text.len()) {
            Ok(Some(e)) => e.to_string(),
            Ok(None) => "<all>".into(),
            Err(e) => format!("error: {}", e.message),
        }
    }

    #[test]
    fn qualifiers_are_inherited_like_libpcap() {
        assert_eq!(
            show("host 1.1.1.1 and 2.2.2.2"),
            "(host 1.1.1.1) and (host 2.2.2.2)"
        );
        assert_eq!(show("port 80 or 443"), "(port 80) or (port 443)");
        assert_eq!(
            show("port 80 and not 443"),
            "(port 80) and (not (port 443))"
        );
        assert_eq!(
            show("host 10.0.0.1 and (10.0.0.9 or 10.0.0.3)"),
            "(host 10.0.0.1) and ((host 10.0.0.9) or (host 10.0.0.3))"
        );
        assert_eq!(
            show("src 10.0.2.4 and (dst port 3389 or 22)"),
            "(src 10.0.2.4) and ((dst port 3389) or (dst port 22))"
        );
        assert_eq!(
            show("host 1.1.1.1 and (tcp) and 2.2.2.2"),
            "(host 1.1.1.1) and (tcp) and (host 2.2.2.2)"
        );
        assert_eq!(
            show("tcp src port 80 or dst 1.2.3.4"),
            "(tcp src port 80) or (dst 1.2.3.4)"
        );
        assert_eq!(show("src or dst host 1.1.1.1"), "src or dst host 1.1.1.1");
        assert!(show("tcp and 80").starts_with("error: syntax error at \"80\""));
        assert!(show("1.2.3.4").starts_with("error: syntax error"));
        assert!(show("host 1.1.1.1 and (2.2.2.2 or host 3.3.3.3)").starts_with("error"));
    }

    #[test]
    fn and_or_same_precedence_left_to_right() {
        assert_eq!(show("ip or arp and tcp"), "((ip) or (arp)) and (tcp)");
        assert_eq!(show("not ip and tcp"), "(not (ip)) and (tcp)");
        assert_eq!(show("a.b && !c.d"), "error: syntax error at \"a.b\"");
    }

    #[test]
    fn arithmetic_precedence_matches_yacc() {
        assert_eq!(show("ip[0] ^ 1 + 2 = 3"), "(ip[0:1] ^ (1 + 2)) = 3");
        assert_eq!(show("ip[0] & 1 ^ 2 = 3"), "(ip[0:1] & (1 ^ 2)) = 3");
        assert_eq!(show("ip[0] ^ 1 & 2 = 3"), "(ip[0:1] ^ (1 & 2)) = 3");
        assert_eq!(show("ip[0] | 1 ^ 2 = 3"), "(ip[0:1] | (1 ^ 2)) = 3");
        assert_eq!(show("ip[0] << 1 + 2 = 3"), "(ip[0:1] << (1 + 2)) = 3");
        assert_eq!(show("ip[0] - 1 - 2 = 0"), "((ip[0:1] - 1) - 2) = 0");
        assert_eq!(show("2 * 3 + 4 = 10"), "((2 * 3) + 4) = 10");
        assert_eq!(show("ip[0] % 3 * 2 = 1"), "(ip[0:1] % (3 * 2)) = 1");
        assert_eq!(show("ip[0] * 2 % 3 = 1"), "(ip[0:1] * (2 % 3)) = 1");
        assert_eq!(show("len <= 128"), "len <= 128");
        assert_eq!(show("tcp[tcpflags] & tcp-syn != 0"), "(tcp[13:1] & 2) != 0");
        assert_eq!(show("(ip[0]) & 0xf = 5"), "(ip[0:1] & 15) = 5");
        assert_eq!(show("(ip[0] & 0xf = 5)"), "(ip[0:1] & 15) = 5");
    }

    #[test]
    fn hostile_nesting_is_refused() {
        let deep = format!("{}ip{}", "(".repeat(5000), ")".repeat(5000));
        assert!(show(&deep).contains("nests more than"));
        let nots = format!("{}ip", "not ".repeat(5000));
        assert!(show(&nots).contains("nests more than"));
        let arith = format!("{}1{} = 1", "(".repeat(5000), ")".repeat(5000));
        assert!(show(&arith).contains("nests more than"));
        // A long flat chain is not nesting.
        let chain = vec!["tcp"; 3000].join(" and ");
        assert!(!show(&chain).starts_with("error"));
    }
}
