//! Syntax tree → block graph: libpcap 1.10's `gencode.c`, primitive by
//! primitive, for the link types the agent captures on (Ethernet and Linux
//! cooked SLL).
//!
//! The semantics are libpcap's, including the surprising parts, because a
//! filter must select the same packets as the tcpdump the user knows:
//!
//! - `host A` is IPv4 source/destination, or ARP/RARP sender/target
//!   protocol address (bytes 14 and 24 of the ARP payload, whatever its
//!   hardware type); an IPv6 address or name is checked in IPv6 only.
//! - `port N` is TCP, UDP or SCTP over IPv4 (first fragments only) or IPv6
//!   (the next header right after the fixed header only: no extension
//!   header is walked). A service name known only for TCP (`port http`) is
//!   TCP only.
//! - `tcp`, `udp`, ... over IPv6 also match after one fragment header;
//!   `tcp[...]`, `udp[...]` and the like index the transport header of IPv4
//!   only, first fragments only.
//! - `vlan` moves every offset used *after it in the text* by 4 bytes, so
//!   `vlan and ip` is IP inside VLAN but `ip or vlan` ... also shifts what
//!   follows. In a live capture the kernel has already removed the outer
//!   tag: `vlan` then tests the tag in the packet's metadata and the
//!   offsets move only when the tag is in the data (variable offsets kept
//!   in scratch memory, as libpcap does with BPF_SPECIAL_VLAN_HANDLING).
//! - In `a + b` the protocol checks of `b` are dropped (libpcap's
//!   `gen_arth` keeps only those of `a`).
//!
//! Everything is generated in the order of the text, since `vlan` changes
//! the offsets of what comes after it.

use std::net::{IpAddr, Ipv6Addr};

use super::ast::{AddrKind, Arith, ArithOp, ByteOp, Dir, Expr, Proto, Qual, Rel, Value};
use super::bpf::{self, Insn};
use super::cfg::{Block, Cfg, Exit, Frag};
use super::lexer::Span;
use super::names::{self, PortProto};
use super::{FilterError, LinkType, Target};

const ETHERMTU: u32 = 1500;
const ETHERTYPE_IP: u32 = 0x0800;
const ETHERTYPE_ARP: u32 = 0x0806;
const ETHERTYPE_REVARP: u32 = 0x8035;
const ETHERTYPE_IPV6: u32 = 0x86dd;
const ETHERTYPE_8021Q: u32 = 0x8100;
const ETHERTYPE_8021AD: u32 = 0x88a8;
const ETHERTYPE_8021QINQ: u32 = 0x9100;
const ETHERTYPE_ATALK: u32 = 0x809b;
const ETHERTYPE_AARP: u32 = 0x80f3;
const ETHERTYPE_DN: u32 = 0x6003;
const ETHERTYPE_LAT: u32 = 0x6004;
const ETHERTYPE_SCA: u32 = 0x6007;
const ETHERTYPE_MOPDL: u32 = 0x6001;
const ETHERTYPE_MOPRC: u32 = 0x6002;
const ETHERTYPE_IPX: u32 = 0x8137;

const LLCSAP_IP: u32 = 0x06;
const LLCSAP_ISONS: u32 = 0xfe;
const LLCSAP_NETBEUI: u32 = 0xf0;
const LLCSAP_IPX: u32 = 0xe0;
const LLCSAP_8021D: u32 = 0x42;
const LLCSAP_SNAP: u8 = 0xaa;

const LINUX_SLL_P_802_3: u32 = 0x0001;
const LINUX_SLL_P_802_2: u32 = 0x0004;
const PACKET_OUTGOING: u32 = 4;

const IPPROTO_ICMP: u32 = 1;
const IPPROTO_IGMP: u32 = 2;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_IGRP: u32 = 9;
const IPPROTO_UDP: u32 = 17;
const IPPROTO_FRAGMENT: u32 = 44;
const IPPROTO_ESP: u32 = 50;
const IPPROTO_AH: u32 = 51;
const IPPROTO_ICMPV6: u32 = 58;
const IPPROTO_PIM: u32 = 103;
const IPPROTO_VRRP: u32 = 112;
const IPPROTO_CARP: u32 = 112;
const IPPROTO_SCTP: u32 = 132;

/// Where an offset is measured from (libpcap's `enum e_offrel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OffRel {
    LinkHdr,
    LinkType,
    LinkPl,
    Llc,
    TranIpv4,
    TranIpv6,
}

/// An offset into the packet, possibly with a part known only at run time
/// (kept in scratch memory `M[reg]`).
#[derive(Clone, Copy, Debug)]
struct AbsOff {
    constant: u32,
    variable: bool,
    reg: Option<u32>,
}

impl AbsOff {
    fn fixed(constant: u32) -> AbsOff {
        AbsOff {
            constant,
            variable: false,
            reg: None,
        }
    }
}

/// An arithmetic value being built: statements that leave it in `M[reg]`,
/// and the protocol checks under which its loads mean something.
struct ArthVal {
    checks: Option<Frag>,
    stmts: Vec<Insn>,
    reg: u32,
}

/// Compiles a parsed filter (`None`: the empty filter) into a block graph.
pub fn generate(expr: Option<&Expr>, target: &Target<'_>) -> Result<Cfg, FilterError> {
    let mut g = Gen::new(target);
    let Some(expr) = expr else {
        let id = g.cfg.add(Block {
            stmts: Vec::new(),
            exit: Exit::Ret(target.snaplen),
        });
        g.cfg.entry = id;
        return Ok(g.cfg);
    };
    let mut frag = g.expr(expr)?;
    if g.is_vlan_vloffset {
        // libpcap's insert_compute_vloffsets: the variable parts start at 0.
        let pl = g.vloffset_reg(OffRel::LinkPl)?;
        let ty = g.vloffset_reg(OffRel::LinkType)?;
        let init = vec![
            Insn::stmt(bpf::LD | bpf::W | bpf::IMM, 0),
            Insn::stmt(bpf::ST, pl),
            Insn::stmt(bpf::ST, ty),
        ];
        frag = g.cfg.prepend(init, frag);
    }
    g.cfg.finish(frag, target.snaplen);
    Ok(g.cfg)
}

struct Gen<'a> {
    cfg: Cfg,
    target: &'a Target<'a>,
    off_linkhdr: AbsOff,
    off_linktype: AbsOff,
    off_linkpl: AbsOff,
    off_nl: u32,
    vlan_depth: u32,
    is_vlan_vloffset: bool,
    regused: [bool; bpf::MEMWORDS],
    curreg: usize,
    /// The primitive being compiled, for error carets.
    span: Span,
}

impl<'a> Gen<'a> {
    fn new(target: &'a Target<'a>) -> Gen<'a> {
        let (linktype, linkpl) = match target.link {
            LinkType::Ethernet => (12, 14),
            LinkType::LinuxSll => (14, 16),
        };
        Gen {
            cfg: Cfg::default(),
            target,
            off_linkhdr: AbsOff::fixed(0),
            off_linktype: AbsOff::fixed(linktype),
            off_linkpl: AbsOff::fixed(linkpl),
            off_nl: 0,
            vlan_depth: 0,
            is_vlan_vloffset: false,
            regused: [false; bpf::MEMWORDS],
            curreg: 0,
            span: Span::default(),
        }
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, FilterError> {
        Err(FilterError::at(self.span, msg))
    }

    fn link_name(&self) -> &'static str {
        match self.target.link {
            LinkType::Ethernet => "Ethernet",
            LinkType::LinuxSll => "Linux cooked v1",
        }
    }

    // ---- scratch memory, as libpcap allocates it ----

    fn alloc_reg(&mut self) -> Result<u32, FilterError> {
        for _ in 0..bpf::MEMWORDS {
            if self.regused[self.curreg] {
                self.curreg = (self.curreg + 1) % bpf::MEMWORDS;
            } else {
                self.regused[self.curreg] = true;
                return Ok(self.curreg as u32);
            }
        }
        self.err("too many registers needed to evaluate expression")
    }

    fn free_reg(&mut self, reg: u32) {
        self.regused[reg as usize] = false;
    }

    fn vloffset_reg(&mut self, which: OffRel) -> Result<u32, FilterError> {
        let current = match which {
            OffRel::LinkPl => self.off_linkpl.reg,
            _ => self.off_linktype.reg,
        };
        if let Some(r) = current {
            return Ok(r);
        }
        let r = self.alloc_reg()?;
        match which {
            OffRel::LinkPl => self.off_linkpl.reg = Some(r),
            _ => self.off_linktype.reg = Some(r),
        }
        Ok(r)
    }

    // ---- loads ----

    /// Statements putting an offset's variable part in X, if it has one.
    fn varpart(&mut self, which: OffRel) -> Result<Option<Vec<Insn>>, FilterError> {
        let off = match which {
            OffRel::LinkHdr => self.off_linkhdr,
            OffRel::LinkType => self.off_linktype,
            _ => self.off_linkpl,
        };
        if !off.variable {
            return Ok(None);
        }
        let reg = match which {
            OffRel::LinkHdr => match self.off_linkhdr.reg {
                Some(r) => r,
                None => {
                    let r = self.alloc_reg()?;
                    self.off_linkhdr.reg = Some(r);
                    r
                }
            },
            OffRel::LinkType => self.vloffset_reg(OffRel::LinkType)?,
            _ => self.vloffset_reg(OffRel::LinkPl)?,
        };
        Ok(Some(vec![Insn::stmt(bpf::LDX | bpf::MEM, reg)]))
    }

    fn load_absoffrel(
        &mut self,
        which: OffRel,
        offset: u32,
        size: u16,
    ) -> Result<Vec<Insn>, FilterError> {
        let constant = match which {
            OffRel::LinkHdr => self.off_linkhdr.constant,
            OffRel::LinkType => self.off_linktype.constant,
            _ => self.off_linkpl.constant,
        };
        let k = constant.wrapping_add(offset);
        Ok(match self.varpart(which)? {
            Some(mut s) => {
                s.push(Insn::stmt(bpf::LD | bpf::IND | size, k));
                s
            }
            None => vec![Insn::stmt(bpf::LD | bpf::ABS | size, k)],
        })
    }

    /// libpcap's `gen_load_a`.
    fn load_a(&mut self, rel: OffRel, offset: u32, size: u16) -> Result<Vec<Insn>, FilterError> {
        match rel {
            OffRel::LinkHdr => self.load_absoffrel(OffRel::LinkHdr, offset, size),
            OffRel::LinkType => self.load_absoffrel(OffRel::LinkType, offset, size),
            OffRel::Llc => self.load_absoffrel(OffRel::LinkPl, offset, size),
            OffRel::LinkPl => {
                self.load_absoffrel(OffRel::LinkPl, self.off_nl.wrapping_add(offset), size)
            }
            OffRel::TranIpv4 => {
                let mut s = self.loadx_iphdrlen()?;
                let k = self
                    .off_linkpl
                    .constant
                    .wrapping_add(self.off_nl)
                    .wrapping_add(offset);
                s.push(Insn::stmt(bpf::LD | bpf::IND | size, k));
                Ok(s)
            }
            OffRel::TranIpv6 => self.load_absoffrel(
                OffRel::LinkPl,
                self.off_nl.wrapping_add(40).wrapping_add(offset),
                size,
            ),
        }
    }

    /// X = the IPv4 header length (plus any variable link offset).
    fn loadx_iphdrlen(&mut self) -> Result<Vec<Insn>, FilterError> {
        let k = self.off_linkpl.constant.wrapping_add(self.off_nl);
        Ok(match self.varpart(OffRel::LinkPl)? {
            Some(mut s) => {
                s.extend([
                    Insn::stmt(bpf::LD | bpf::IND | bpf::B, k),
                    Insn::stmt(bpf::ALU | bpf::AND | bpf::K, 0xf),
                    Insn::stmt(bpf::ALU | bpf::LSH | bpf::K, 2),
                    Insn::stmt(bpf::ALU | bpf::ADD | bpf::X, 0),
                    Insn::stmt(bpf::MISC | bpf::TAX, 0),
                ]);
                s
            }
            None => vec![Insn::stmt(bpf::LDX | bpf::MSH | bpf::B, k)],
        })
    }

    // ---- comparisons ----

    #[allow(clippy::too_many_arguments)]
    fn ncmp(
        &mut self,
        rel: OffRel,
        offset: u32,
        size: u16,
        mask: u32,
        jtype: u16,
        reverse: bool,
        v: u32,
    ) -> Result<Frag, FilterError> {
        let mut s = self.load_a(rel, offset, size)?;
        if mask != 0xffff_ffff {
            s.push(Insn::stmt(bpf::ALU | bpf::AND | bpf::K, mask));
        }
        let f = self.cfg.test(s, bpf::JMP | jtype | bpf::K, v);
        Ok(if reverse && (jtype == bpf::JGT || jtype == bpf::JGE) {
            self.cfg.not(f)
        } else {
            f
        })
    }

    fn cmp(&mut self, rel: OffRel, offset: u32, size: u16, v: u32) -> Result<Frag, FilterError> {
        self.ncmp(rel, offset, size, 0xffff_ffff, bpf::JEQ, false, v)
    }

    fn cmp_gt(&mut self, rel: OffRel, offset: u32, size: u16, v: u32) -> Result<Frag, FilterError> {
        self.ncmp(rel, offset, size, 0xffff_ffff, bpf::JGT, false, v)
    }

    fn cmp_ge(&mut self, rel: OffRel, offset: u32, size: u16, v: u32) -> Result<Frag, FilterError> {
        self.ncmp(rel, offset, size, 0xffff_ffff, bpf::JGE, false, v)
    }

    fn cmp_lt(&mut self, rel: OffRel, offset: u32, size: u16, v: u32) -> Result<Frag, FilterError> {
        self.ncmp(rel, offset, size, 0xffff_ffff, bpf::JGE, true, v)
    }

    fn cmp_le(&mut self, rel: OffRel, offset: u32, size: u16, v: u32) -> Result<Frag, FilterError> {
        self.ncmp(rel, offset, size, 0xffff_ffff, bpf::JGT, true, v)
    }

    fn mcmp(
        &mut self,
        rel: OffRel,
        offset: u32,
        size: u16,
        v: u32,
        mask: u32,
    ) -> Result<Frag, FilterError> {
        self.ncmp(rel, offset, size, mask, bpf::JEQ, false, v)
    }

    /// Compares `bytes` at `offset`, four at a time from the end.
    fn bcmp(&mut self, rel: OffRel, offset: u32, bytes: &[u8]) -> Result<Frag, FilterError> {
        let mut size = bytes.len();
        let mut result: Option<Frag> = None;
        let mut and = |g: &mut Gen<'_>, tmp: Frag| match result.take() {
            Some(b) => result = Some(g.cfg.and(b, tmp)),
            None => result = Some(tmp),
        };
        while size >= 4 {
            let p = &bytes[size - 4..size];
            let v = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
            let tmp = self.cmp(rel, offset + size as u32 - 4, bpf::W, v)?;
            and(self, tmp);
            size -= 4;
        }
        while size >= 2 {
            let p = &bytes[size - 2..size];
            let v = u32::from(u16::from_be_bytes([p[0], p[1]]));
            let tmp = self.cmp(rel, offset + size as u32 - 2, bpf::H, v)?;
            and(self, tmp);
            size -= 2;
        }
        if size > 0 {
            let tmp = self.cmp(rel, offset, bpf::B, u32::from(bytes[0]))?;
            and(self, tmp);
        }
        Ok(result.expect("bcmp of at least one byte"))
    }

    // ---- link-layer types ----

    fn snap(&mut self, orgcode: u32, ptype: u32) -> Result<Frag, FilterError> {
        let block = [
            LLCSAP_SNAP,
            LLCSAP_SNAP,
            0x03,
            (orgcode >> 16) as u8,
            (orgcode >> 8) as u8,
            orgcode as u8,
            (ptype >> 8) as u8,
            ptype as u8,
        ];
        self.bcmp(OffRel::Llc, 0, &block)
    }

    /// libpcap's `gen_linktype`.
    fn linktype(&mut self, ll_proto: u32) -> Result<Frag, FilterError> {
        match self.target.link {
            LinkType::Ethernet => self.ether_linktype(ll_proto),
            LinkType::LinuxSll => self.sll_linktype(ll_proto),
        }
    }

    fn ether_linktype(&mut self, ll_proto: u32) -> Result<Frag, FilterError> {
        match ll_proto {
            LLCSAP_ISONS | LLCSAP_IP | LLCSAP_NETBEUI => {
                let b0 = self.cmp_gt(OffRel::LinkType, 0, bpf::H, ETHERMTU)?;
                let b0 = self.cfg.not(b0);
                let b1 = self.cmp(OffRel::Llc, 0, bpf::H, (ll_proto << 8) | ll_proto)?;
                Ok(self.cfg.and(b0, b1))
            }
            LLCSAP_IPX => {
                let b0 = self.cmp(OffRel::Llc, 0, bpf::B, LLCSAP_IPX)?;
                let b1 = self.cmp(OffRel::Llc, 0, bpf::H, 0xffff)?;
                let b1 = self.cfg.or(b0, b1);
                let b0 = self.snap(0x000000, ETHERTYPE_IPX)?;
                let b1 = self.cfg.or(b0, b1);
                let b0 = self.cmp_gt(OffRel::LinkType, 0, bpf::H, ETHERMTU)?;
                let b0 = self.cfg.not(b0);
                let b1 = self.cfg.and(b0, b1);
                let b0 = self.cmp(OffRel::LinkType, 0, bpf::H, ETHERTYPE_IPX)?;
                Ok(self.cfg.or(b0, b1))
            }
            ETHERTYPE_ATALK | ETHERTYPE_AARP => {
                let b0 = self.cmp_gt(OffRel::LinkType, 0, bpf::H, ETHERMTU)?;
                let b0 = self.cfg.not(b0);
                let b1 = if ll_proto == ETHERTYPE_ATALK {
                    self.snap(0x080007, ETHERTYPE_ATALK)?
                } else {
                    self.snap(0x000000, ETHERTYPE_AARP)?
                };
                let b1 = self.cfg.and(b0, b1);
                let b0 = self.cmp(OffRel::LinkType, 0, bpf::H, ll_proto)?;
                Ok(self.cfg.or(b0, b1))
            }
            _ if ll_proto <= ETHERMTU => {
                let b0 = self.cmp_gt(OffRel::LinkType, 0, bpf::H, ETHERMTU)?;
                let b0 = self.cfg.not(b0);
                let b1 = self.cmp(OffRel::LinkType, 2, bpf::B, ll_proto)?;
                Ok(self.cfg.and(b0, b1))
            }
            _ => self.cmp(OffRel::LinkType, 0, bpf::H, ll_proto),
        }
    }

    fn sll_linktype(&mut self, ll_proto: u32) -> Result<Frag, FilterError> {
        match ll_proto {
            LLCSAP_ISONS | LLCSAP_IP | LLCSAP_NETBEUI => {
                let b0 = self.cmp(OffRel::LinkType, 0, bpf::H, LINUX_SLL_P_802_2)?;
                let b1 = self.cmp(OffRel::LinkPl, 0, bpf::H, (ll_proto << 8) | ll_proto)?;
                Ok(self.cfg.and(b0, b1))
            }
            LLCSAP_IPX => {
                let b0 = self.cmp(OffRel::Llc, 0, bpf::B, LLCSAP_IPX)?;
                let b1 = self.snap(0x000000, ETHERTYPE_IPX)?;
                let b1 = self.cfg.or(b0, b1);
                let b0 = self.cmp(OffRel::LinkType, 0, bpf::H, LINUX_SLL_P_802_2)?;
                let b1 = self.cfg.and(b0, b1);
                let b0 = self.cmp(OffRel::LinkType, 0, bpf::H, LINUX_SLL_P_802_3)?;
                let b1 = self.cfg.or(b0, b1);
                let b0 = self.cmp(OffRel::LinkType, 0, bpf::H, ETHERTYPE_IPX)?;
                Ok(self.cfg.or(b0, b1))
            }
            ETHERTYPE_ATALK | ETHERTYPE_AARP => {
                let b0 = self.cmp(OffRel::LinkType, 0, bpf::H, LINUX_SLL_P_802_2)?;
                let b1 = if ll_proto == ETHERTYPE_ATALK {
                    self.snap(0x080007, ETHERTYPE_ATALK)?
                } else {
                    self.snap(0x000000, ETHERTYPE_AARP)?
                };
                let b1 = self.cfg.and(b0, b1);
                let b0 = self.cmp(OffRel::LinkType, 0, bpf::H, ll_proto)?;
                Ok(self.cfg.or(b0, b1))
            }
            _ if ll_proto <= ETHERMTU => {
                let b0 = self.cmp(OffRel::LinkType, 0, bpf::H, LINUX_SLL_P_802_2)?;
                let k = self.off_linkpl.constant;
                let b1 = self.cmp(OffRel::LinkHdr, k, bpf::B, ll_proto)?;
                Ok(self.cfg.and(b0, b1))
            }
            _ => self.cmp(OffRel::LinkType, 0, bpf::H, ll_proto),
        }
    }

    // ---- expressions ----

    fn expr(&mut self, e: &Expr) -> Result<Frag, FilterError> {
        match e {
            Expr::And(terms) | Expr::Or(terms) => {
                let is_and = matches!(e, Expr::And(_));
                let mut acc = self.expr(&terms[0])?;
                for t in &terms[1..] {
                    let next = self.expr(t)?;
                    acc = if is_and {
                        self.cfg.and(acc, next)
                    } else {
                        self.cfg.or(acc, next)
                    };
                }
                Ok(acc)
            }
            Expr::Not(inner) => {
                let f = self.expr(inner)?;
                Ok(self.cfg.not(f))
            }
            Expr::Primitive { qual, value, span } => {
                self.span = *span;
                self.primitive(*qual, value)
            }
            Expr::Proto { proto, span } => {
                self.span = *span;
                self.proto_abbrev(*proto)
            }
            Expr::Relation {
                rel,
                negated,
                lhs,
                rhs,
                span,
            } => {
                self.span = *span;
                let a0 = self.arith(lhs)?;
                let a1 = self.arith(rhs)?;
                self.span = *span;
                self.relation(*rel, *negated, a0, a1)
            }
            Expr::Broadcast { proto, span } => {
                self.span = *span;
                self.broadcast(*proto)
            }
            Expr::Multicast { proto, span } => {
                self.span = *span;
                self.multicast(*proto)
            }
            Expr::Less(n) => {
                let f = self.len_test(bpf::JGT, *n);
                Ok(self.cfg.not(f))
            }
            Expr::Greater(n) => Ok(self.len_test(bpf::JGE, *n)),
            Expr::Byte { index, op, value } => self.byteop(*op, *index, *value),
            Expr::Direction { outbound, span } => {
                self.span = *span;
                self.inbound(*outbound)
            }
            Expr::Vlan { id, span } => {
                self.span = *span;
                self.vlan(*id)
            }
        }
    }

    fn len_test(&mut self, jtype: u16, n: u32) -> Frag {
        self.cfg.test(
            vec![Insn::stmt(bpf::LD | bpf::W | bpf::LEN, 0)],
            bpf::JMP | jtype | bpf::K,
            n,
        )
    }

    fn byteop(&mut self, op: ByteOp, idx: u32, val: u32) -> Result<Frag, FilterError> {
        match op {
            ByteOp::Eq => self.cmp(OffRel::LinkHdr, idx, bpf::B, val),
            ByteOp::Lt => self.cmp_lt(OffRel::LinkHdr, idx, bpf::B, val),
            ByteOp::Gt => self.cmp_gt(OffRel::LinkHdr, idx, bpf::B, val),
            ByteOp::And | ByteOp::Or => {
                let mut s = self.load_a(OffRel::LinkHdr, idx, bpf::B)?;
                let alu = if op == ByteOp::Or { bpf::OR } else { bpf::AND };
                s.push(Insn::stmt(bpf::ALU | alu | bpf::K, val));
                let f = self.cfg.test(s, bpf::JMP | bpf::JEQ | bpf::K, 0);
                Ok(self.cfg.not(f))
            }
        }
    }

    /// libpcap's `gen_proto_abbrev`.
    fn proto_abbrev(&mut self, proto: Proto) -> Result<Frag, FilterError> {
        match proto {
            Proto::Sctp => self.gen_proto(IPPROTO_SCTP, Proto::Default),
            Proto::Tcp => self.gen_proto(IPPROTO_TCP, Proto::Default),
            Proto::Udp => self.gen_proto(IPPROTO_UDP, Proto::Default),
            Proto::Icmp => self.gen_proto(IPPROTO_ICMP, Proto::Ip),
            Proto::Igmp => self.gen_proto(IPPROTO_IGMP, Proto::Ip),
            Proto::Igrp => self.gen_proto(IPPROTO_IGRP, Proto::Ip),
            Proto::Pim => self.gen_proto(IPPROTO_PIM, Proto::Default),
            Proto::Vrrp => self.gen_proto(IPPROTO_VRRP, Proto::Ip),
            Proto::Carp => self.gen_proto(IPPROTO_CARP, Proto::Ip),
            Proto::Ip => self.linktype(ETHERTYPE_IP),
            Proto::Arp => self.linktype(ETHERTYPE_ARP),
            Proto::Rarp => self.linktype(ETHERTYPE_REVARP),
            Proto::Link => self.err("link layer applied in wrong context"),
            Proto::Atalk => self.linktype(ETHERTYPE_ATALK),
            Proto::Aarp => self.linktype(ETHERTYPE_AARP),
            Proto::Decnet => self.linktype(ETHERTYPE_DN),
            Proto::Sca => self.linktype(ETHERTYPE_SCA),
            Proto::Lat => self.linktype(ETHERTYPE_LAT),
            Proto::Mopdl => self.linktype(ETHERTYPE_MOPDL),
            Proto::Moprc => self.linktype(ETHERTYPE_MOPRC),
            Proto::Ip6 => self.linktype(ETHERTYPE_IPV6),
            Proto::Icmp6 => self.gen_proto(IPPROTO_ICMPV6, Proto::Ip6),
            Proto::Ah => self.gen_proto(IPPROTO_AH, Proto::Default),
            Proto::Esp => self.gen_proto(IPPROTO_ESP, Proto::Default),
            Proto::Iso => self.linktype(LLCSAP_ISONS),
            Proto::Stp => self.linktype(LLCSAP_8021D),
            Proto::Ipx => self.linktype(LLCSAP_IPX),
            Proto::Netbeui => self.linktype(LLCSAP_NETBEUI),
            Proto::Default => self.err("syntax error"),
        }
    }

    /// libpcap's `gen_proto`: `ip proto N`, `ip6 proto N`, `ether proto N`.
    fn gen_proto(&mut self, v: u32, proto: Proto) -> Result<Frag, FilterError> {
        match proto {
            Proto::Default => {
                let b0 = self.gen_proto(v, Proto::Ip)?;
                let b1 = self.gen_proto(v, Proto::Ip6)?;
                Ok(self.cfg.or(b0, b1))
            }
            Proto::Link => self.linktype(v),
            Proto::Ip => {
                let b0 = self.linktype(ETHERTYPE_IP)?;
                let b1 = self.cmp(OffRel::LinkPl, 9, bpf::B, v)?;
                Ok(self.cfg.and(b0, b1))
            }
            Proto::Ip6 => {
                let b0 = self.linktype(ETHERTYPE_IPV6)?;
                // The protocol right after the fixed header, or after one
                // fragment header.
                let b2 = self.cmp(OffRel::LinkPl, 6, bpf::B, IPPROTO_FRAGMENT)?;
                let b1 = self.cmp(OffRel::LinkPl, 40, bpf::B, v)?;
                let b1 = self.cfg.and(b2, b1);
                let b2 = self.cmp(OffRel::LinkPl, 6, bpf::B, v)?;
                let b1 = self.cfg.or(b2, b1);
                Ok(self.cfg.and(b0, b1))
            }
            Proto::Arp | Proto::Rarp => self.err(format!(
                "{} does not encapsulate another protocol",
                proto.name()
            )),
            Proto::Atalk
            | Proto::Aarp
            | Proto::Decnet
            | Proto::Lat
            | Proto::Sca
            | Proto::Moprc
            | Proto::Mopdl => {
                self.err(format!("{} encapsulation is not specifiable", proto.name()))
            }
            Proto::Iso | Proto::Stp | Proto::Ipx | Proto::Netbeui => self.err(format!(
                "'{} proto' is not supported by netdiag's filter compiler",
                proto.name()
            )),
            _ => self.err(format!("'{} proto' is bogus", proto.name())),
        }
    }

    // ---- hosts and networks ----

    fn primitive(&mut self, q: Qual, value: &Value) -> Result<Frag, FilterError> {
        if q.addr == AddrKind::Gateway {
            return self.err(
                "\"gateway\" is not supported by netdiag's filter compiler (it needs /etc/ethers); use \"ether host MAC and not host IP\"",
            );
        }
        match value {
            Value::Num(n) => self.ncode(None, *n, q),
            Value::Ipv4(s) => {
                match q.addr {
                    AddrKind::Port => return self.err("'port' modifier applied to ip host"),
                    AddrKind::Portrange => {
                        return self.err("'portrange' modifier applied to ip host");
                    }
                    AddrKind::Proto => return self.err("'proto' modifier applied to ip host"),
                    _ => {}
                }
                self.ncode(Some(s), 0, q)
            }
            Value::Ipv4Len(s, len) => self.mcode(s, None, *len, q),
            Value::Ipv4Mask(s, m) => self.mcode(s, Some(m), 0, q),
            Value::Ipv6(s) => self.mcode6(s, 128, q),
            Value::Ipv6Len(s, len) => self.mcode6(s, *len, q),
            Value::Mac(s) => self.ecode(s, q),
            Value::Arcnet(_) => self.err("aid supported only on ARCnet"),
            Value::Name(s) => self.scode(s, q),
        }
    }

    /// libpcap's `gen_ncode`: a number or dotted IPv4 prefix.
    fn ncode(&mut self, s: Option<&str>, v: u32, q: Qual) -> Result<Frag, FilterError> {
        let (mut v, vlen) = match s {
            None => (v, 32),
            Some(text) => match atoin(text) {
                Some(parsed) => parsed,
                None => return self.err(format!("invalid IPv4 address '{text}'")),
            },
        };
        match q.addr {
            AddrKind::Default | AddrKind::Host | AddrKind::Net => {
                if q.proto == Proto::Decnet {
                    return self
                        .err("DECnet addresses are not supported by netdiag's filter compiler");
                }
                if q.proto == Proto::Link {
                    return self.err("illegal link layer address");
                }
                let mut mask: u32 = 0xffff_ffff;
                if s.is_none() && q.addr == AddrKind::Net {
                    // Promote a short net number: `net 10` is 10.0.0.0/8.
                    while v != 0 && v & 0xff00_0000 == 0 {
                        v <<= 8;
                        mask <<= 8;
                    }
                } else {
                    // Promote a short address: `host 10.1` is 10.1.0.0/16.
                    v = v.checked_shl(32 - vlen).unwrap_or(0);
                    mask = mask.checked_shl(32 - vlen).unwrap_or(0);
                }
                self.host(v, mask, q.proto, q.dir, q.addr)
            }
            AddrKind::Port | AddrKind::Portrange => {
                let proto = self.port_proto(q.proto, q.addr)?;
                if v > 65535 {
                    return self.err(format!("illegal port number {v} > 65535"));
                }
                if q.addr == AddrKind::Port {
                    let b = self.port(v, proto, q.dir)?;
                    let b6 = self.port6(v, proto, q.dir)?;
                    Ok(self.cfg.or(b6, b))
                } else {
                    let b = self.portrange(v, v, proto, q.dir)?;
                    let b6 = self.portrange6(v, v, proto, q.dir)?;
                    Ok(self.cfg.or(b6, b))
                }
            }
            AddrKind::Gateway => self.err("'gateway' requires a name"),
            AddrKind::Proto => self.gen_proto(v, q.proto),
        }
    }

    /// The transport protocol a `port`/`portrange` qualifier allows.
    fn port_proto(&self, proto: Proto, addr: AddrKind) -> Result<Option<u32>, FilterError> {
        Ok(match proto {
            Proto::Udp => Some(IPPROTO_UDP),
            Proto::Tcp => Some(IPPROTO_TCP),
            Proto::Sctp => Some(IPPROTO_SCTP),
            Proto::Default => None,
            _ => return self.err(format!("illegal qualifier of '{}'", addr.name())),
        })
    }

    /// libpcap's `gen_mcode`: `net A/len`, `net A mask M`.
    fn mcode(
        &mut self,
        s1: &str,
        s2: Option<&str>,
        masklen: u32,
        q: Qual,
    ) -> Result<Frag, FilterError> {
        let Some((n, nlen)) = atoin(s1) else {
            return self.err(format!("invalid IPv4 address '{s1}'"));
        };
        let n = n.checked_shl(32 - nlen).unwrap_or(0);
        let m = match s2 {
            Some(s2) => {
                let Some((m, mlen)) = atoin(s2) else {
                    return self.err(format!("invalid IPv4 address '{s2}'"));
                };
                let m = m.checked_shl(32 - mlen).unwrap_or(0);
                if n & !m != 0 {
                    return self.err(format!("non-network bits set in \"{s1} mask {s2}\""));
                }
                m
            }
            None => {
                if masklen > 32 {
                    return self.err("mask length must be <= 32");
                }
                let m = if masklen == 0 {
                    0
                } else {
                    0xffff_ffffu32 << (32 - masklen)
                };
                if n & !m != 0 {
                    return self.err(format!("non-network bits set in \"{s1}/{masklen}\""));
                }
                m
            }
        };
        match q.addr {
            AddrKind::Net => self.host(n, m, q.proto, q.dir, q.addr),
            _ => self.err("Mask syntax for networks only"),
        }
    }

    /// libpcap's `gen_mcode6`.
    fn mcode6(&mut self, s: &str, masklen: u32, q: Qual) -> Result<Frag, FilterError> {
        let Ok(addr) = s.parse::<Ipv6Addr>() else {
            return self.err(format!("invalid ip6 address {s}"));
        };
        if masklen > 128 {
            return self.err("mask length must be <= 128");
        }
        let mask = if masklen == 0 {
            0u128
        } else {
            u128::MAX << (128 - masklen)
        };
        let a = u128::from(addr);
        if a & !mask != 0 {
            return self.err(format!("non-network bits set in \"{s}/{masklen}\""));
        }
        match q.addr {
            AddrKind::Default | AddrKind::Host | AddrKind::Net => {
                if q.addr != AddrKind::Net && masklen != 128 {
                    return self.err("Mask syntax for networks only");
                }
                self.host6(a, mask, q.proto, q.dir, q.addr)
            }
            _ => self.err("invalid qualifier against IPv6 address"),
        }
    }

    /// libpcap's `gen_host` for IPv4.
    fn host(
        &mut self,
        addr: u32,
        mask: u32,
        proto: Proto,
        dir: Dir,
        kind: AddrKind,
    ) -> Result<Frag, FilterError> {
        let typestr = if kind == AddrKind::Net { "net" } else { "host" };
        match proto {
            Proto::Default => {
                let b0 = self.host(addr, mask, Proto::Ip, dir, kind)?;
                let b1 = self.host(addr, mask, Proto::Arp, dir, kind)?;
                let b1 = self.cfg.or(b0, b1);
                let b0 = self.host(addr, mask, Proto::Rarp, dir, kind)?;
                Ok(self.cfg.or(b1, b0))
            }
            Proto::Link => self.err(format!("link-layer modifier applied to {typestr}")),
            Proto::Ip => self.hostop(addr, mask, dir, ETHERTYPE_IP, 12, 16),
            Proto::Rarp => self.hostop(addr, mask, dir, ETHERTYPE_REVARP, 14, 24),
            Proto::Arp => self.hostop(addr, mask, dir, ETHERTYPE_ARP, 14, 24),
            Proto::Ip6 => self.err(format!("'ip6' modifier applied to ip {typestr}")),
            other => self.err(format!("'{}' modifier applied to {typestr}", other.name())),
        }
    }

    fn hostop(
        &mut self,
        addr: u32,
        mask: u32,
        dir: Dir,
        ll_proto: u32,
        src_off: u32,
        dst_off: u32,
    ) -> Result<Frag, FilterError> {
        let offset = match dir {
            Dir::Src => src_off,
            Dir::Dst => dst_off,
            Dir::And | Dir::Or | Dir::Default => {
                let b0 = self.hostop(addr, mask, Dir::Src, ll_proto, src_off, dst_off)?;
                let b1 = self.hostop(addr, mask, Dir::Dst, ll_proto, src_off, dst_off)?;
                return Ok(if dir == Dir::And {
                    self.cfg.and(b0, b1)
                } else {
                    self.cfg.or(b0, b1)
                });
            }
        };
        let b0 = self.linktype(ll_proto)?;
        let b1 = self.mcmp(OffRel::LinkPl, offset, bpf::W, addr, mask)?;
        Ok(self.cfg.and(b0, b1))
    }

    /// libpcap's `gen_host6`.
    fn host6(
        &mut self,
        addr: u128,
        mask: u128,
        proto: Proto,
        dir: Dir,
        kind: AddrKind,
    ) -> Result<Frag, FilterError> {
        let typestr = if kind == AddrKind::Net { "net" } else { "host" };
        match proto {
            Proto::Default | Proto::Ip6 => self.hostop6(addr, mask, dir, 8, 24),
            Proto::Link => self.err(format!("link-layer modifier applied to ip6 {typestr}")),
            other => self.err(format!(
                "'{}' modifier applied to ip6 {typestr}",
                other.name()
            )),
        }
    }

    fn hostop6(
        &mut self,
        addr: u128,
        mask: u128,
        dir: Dir,
        src_off: u32,
        dst_off: u32,
    ) -> Result<Frag, FilterError> {
        let offset = match dir {
            Dir::Src => src_off,
            Dir::Dst => dst_off,
            Dir::And | Dir::Or | Dir::Default => {
                let b0 = self.hostop6(addr, mask, Dir::Src, src_off, dst_off)?;
                let b1 = self.hostop6(addr, mask, Dir::Dst, src_off, dst_off)?;
                return Ok(if dir == Dir::And {
                    self.cfg.and(b0, b1)
                } else {
                    self.cfg.or(b0, b1)
                });
            }
        };
        let word = |x: u128, i: u32| (x >> (96 - 32 * i)) as u32;
        // "This order is important": last word first in the tree, so the
        // first word is tested first.
        let mut b1 = self.mcmp(
            OffRel::LinkPl,
            offset + 12,
            bpf::W,
            word(addr, 3),
            word(mask, 3),
        )?;
        for i in (0..3).rev() {
            let b0 = self.mcmp(
                OffRel::LinkPl,
                offset + 4 * i,
                bpf::W,
                word(addr, i),
                word(mask, i),
            )?;
            b1 = self.cfg.and(b0, b1);
        }
        let b0 = self.linktype(ETHERTYPE_IPV6)?;
        Ok(self.cfg.and(b0, b1))
    }

    /// libpcap's `gen_ecode`: a MAC address.
    fn ecode(&mut self, s: &str, q: Qual) -> Result<Frag, FilterError> {
        if matches!(q.addr, AddrKind::Host | AddrKind::Default) && q.proto == Proto::Link {
            if self.target.link != LinkType::Ethernet {
                return self.err(
                    "ethernet addresses supported only on ethernet/FDDI/token ring/802.11/ATM LANE/Fibre Channel",
                );
            }
            let mac = ether_aton(s);
            return self.ehostop(&mac, q.dir);
        }
        self.err("ethernet address used in non-ether expression")
    }

    fn ehostop(&mut self, mac: &[u8; 6], dir: Dir) -> Result<Frag, FilterError> {
        match dir {
            Dir::Src => self.bcmp(OffRel::LinkHdr, 6, mac),
            Dir::Dst => self.bcmp(OffRel::LinkHdr, 0, mac),
            Dir::And | Dir::Or | Dir::Default => {
                let b0 = self.ehostop(mac, Dir::Src)?;
                let b1 = self.ehostop(mac, Dir::Dst)?;
                Ok(if dir == Dir::And {
                    self.cfg.and(b0, b1)
                } else {
                    self.cfg.or(b0, b1)
                })
            }
        }
    }

    /// libpcap's `gen_scode`: a name.
    fn scode(&mut self, name: &str, q: Qual) -> Result<Frag, FilterError> {
        match q.addr {
            AddrKind::Net => {
                // /etc/networks as Debian ships it.
                let addr: u32 = match name {
                    "default" => 0,
                    "loopback" => 0x7f00_0000,
                    "link-local" => 0xa9fe_0000,
                    _ => return self.err(format!("unknown network '{name}'")),
                };
                let mut addr = addr;
                let mut mask: u32 = 0xffff_ffff;
                while addr != 0 && addr & 0xff00_0000 == 0 {
                    addr <<= 8;
                    mask <<= 8;
                }
                self.host(addr, mask, q.proto, q.dir, q.addr)
            }
            AddrKind::Default | AddrKind::Host => match q.proto {
                Proto::Link => match self.target.link {
                    LinkType::Ethernet => self.err(format!(
                        "unknown ether host '{name}' (there is no /etc/ethers; give the MAC address)"
                    )),
                    LinkType::LinuxSll => self.err(
                        "only ethernet/FDDI/token ring/802.11/ATM LANE/Fibre Channel supports link-level host name",
                    ),
                },
                Proto::Decnet => {
                    self.err("DECnet host names are not supported by netdiag's filter compiler")
                }
                proto => {
                    // As libpcap: all addresses, those of the other family
                    // than `ip`/`ip6` skipped, the rest refused by gen_host
                    // or gen_host6 if the qualifier does not fit them
                    // (`arp host NAME` with an IPv6 address is an error).
                    let addrs = (self.target.resolve)(name)
                        .map_err(|e| FilterError::at(self.span, e))?;
                    let mut result: Option<Frag> = None;
                    for a in addrs {
                        let tmp = match a {
                            IpAddr::V4(v4) => {
                                if proto == Proto::Ip6 {
                                    continue;
                                }
                                self.host(u32::from(v4), 0xffff_ffff, proto, q.dir, q.addr)?
                            }
                            IpAddr::V6(v6) => {
                                if proto == Proto::Ip {
                                    continue;
                                }
                                self.host6(u128::from(v6), u128::MAX, proto, q.dir, q.addr)?
                            }
                        };
                        result = Some(match result {
                            Some(b) => self.cfg.or(b, tmp),
                            None => tmp,
                        });
                    }
                    match result {
                        Some(f) => Ok(f),
                        None => self.err(format!(
                            "unknown host '{name}'{}",
                            if proto == Proto::Default {
                                ""
                            } else {
                                " for specified address family"
                            }
                        )),
                    }
                }
            },
            AddrKind::Port => {
                if !matches!(
                    q.proto,
                    Proto::Default | Proto::Udp | Proto::Tcp | Proto::Sctp
                ) {
                    return self.err("illegal qualifier of 'port'");
                }
                let Some((port, real)) = names::service_port(name) else {
                    return self.err(format!("unknown port '{name}'"));
                };
                let proto = self.narrow_port_proto(q.proto, Some(real), &format!("port '{name}'"))?;
                let port = u32::from(port);
                let b = self.port(port, proto, q.dir)?;
                let b6 = self.port6(port, proto, q.dir)?;
                Ok(self.cfg.or(b6, b))
            }
            AddrKind::Portrange => {
                if !matches!(
                    q.proto,
                    Proto::Default | Proto::Udp | Proto::Tcp | Proto::Sctp
                ) {
                    return self.err("illegal qualifier of 'portrange'");
                }
                let Some((p1, p2, real)) = name_to_portrange(name) else {
                    return self.err(format!("unknown port in range '{name}'"));
                };
                let proto =
                    self.narrow_port_proto(q.proto, real, &format!("port in range '{name}'"))?;
                for p in [p1, p2] {
                    if p < 0 {
                        return self.err(format!("illegal port number {p} < 0"));
                    }
                    if p > 65535 {
                        return self.err(format!("illegal port number {p} > 65535"));
                    }
                }
                let b = self.portrange(p1 as u32, p2 as u32, proto, q.dir)?;
                let b6 = self.portrange6(p1 as u32, p2 as u32, proto, q.dir)?;
                Ok(self.cfg.or(b6, b))
            }
            AddrKind::Proto => {
                let v = match q.proto {
                    Proto::Default | Proto::Ip | Proto::Ip6 => match names::ip_protocol(name) {
                        Some(v) => v,
                        None => return self.err(format!("unknown ip proto '{name}'")),
                    },
                    Proto::Link => match names::link_protocol(name) {
                        Some(v) => v,
                        None => return self.err(format!("unknown ether proto '{name}'")),
                    },
                    _ => return self.err(format!("unknown protocol: {name}")),
                };
                self.gen_proto(v, q.proto)
            }
            AddrKind::Gateway => self.err("\"gateway\" is not supported by netdiag's filter compiler"),
        }
    }

    /// Combines a `tcp`/`udp`/`sctp` qualifier with what a service name
    /// is known as (`None` = TCP, UDP or SCTP).
    fn narrow_port_proto(
        &self,
        qual: Proto,
        real: Option<PortProto>,
        what: &str,
    ) -> Result<Option<u32>, FilterError> {
        let real = match real {
            Some(PortProto::Tcp) => Some(IPPROTO_TCP),
            Some(PortProto::Udp) => Some(IPPROTO_UDP),
            Some(PortProto::Any) | None => None,
        };
        let name = |p: u32| match p {
            IPPROTO_TCP => "tcp",
            IPPROTO_UDP => "udp",
            _ => "sctp",
        };
        let wanted = match qual {
            Proto::Udp => IPPROTO_UDP,
            Proto::Tcp => IPPROTO_TCP,
            Proto::Sctp => IPPROTO_SCTP,
            _ => return Ok(real),
        };
        match real {
            Some(r) if r != wanted => self.err(format!("{what} is {}", name(r))),
            _ => Ok(Some(wanted)),
        }
    }

    // ---- ports ----

    fn ipfrag(&mut self) -> Result<Frag, FilterError> {
        let s = self.load_a(OffRel::LinkPl, 6, bpf::H)?;
        let f = self.cfg.test(s, bpf::JMP | bpf::JSET | bpf::K, 0x1fff);
        Ok(self.cfg.not(f))
    }

    fn dir_pair(
        &mut self,
        dir: Dir,
        mut atom: impl FnMut(&mut Self, u32) -> Result<Frag, FilterError>,
    ) -> Result<Frag, FilterError> {
        match dir {
            Dir::Src => atom(self, 0),
            Dir::Dst => atom(self, 2),
            Dir::And => {
                let a = atom(self, 0)?;
                let b = atom(self, 2)?;
                Ok(self.cfg.and(a, b))
            }
            Dir::Or | Dir::Default => {
                let a = atom(self, 0)?;
                let b = atom(self, 2)?;
                Ok(self.cfg.or(a, b))
            }
        }
    }

    fn portop(&mut self, port: u32, proto: u32, dir: Dir) -> Result<Frag, FilterError> {
        let tmp = self.cmp(OffRel::LinkPl, 9, bpf::B, proto)?;
        let frag = self.ipfrag()?;
        let b0 = self.cfg.and(tmp, frag);
        let b1 = self.dir_pair(dir, |g, off| g.cmp(OffRel::TranIpv4, off, bpf::H, port))?;
        Ok(self.cfg.and(b0, b1))
    }

    fn portop6(&mut self, port: u32, proto: u32, dir: Dir) -> Result<Frag, FilterError> {
        let b0 = self.cmp(OffRel::LinkPl, 6, bpf::B, proto)?;
        let b1 = self.dir_pair(dir, |g, off| g.cmp(OffRel::TranIpv6, off, bpf::H, port))?;
        Ok(self.cfg.and(b0, b1))
    }

    fn rangeop(&mut self, p1: u32, p2: u32, proto: u32, dir: Dir) -> Result<Frag, FilterError> {
        let tmp = self.cmp(OffRel::LinkPl, 9, bpf::B, proto)?;
        let frag = self.ipfrag()?;
        let b0 = self.cfg.and(tmp, frag);
        let b1 = self.dir_pair(dir, |g, off| g.rangeatom(OffRel::TranIpv4, off, p1, p2))?;
        Ok(self.cfg.and(b0, b1))
    }

    fn rangeop6(&mut self, p1: u32, p2: u32, proto: u32, dir: Dir) -> Result<Frag, FilterError> {
        let b0 = self.cmp(OffRel::LinkPl, 6, bpf::B, proto)?;
        let b1 = self.dir_pair(dir, |g, off| g.rangeatom(OffRel::TranIpv6, off, p1, p2))?;
        Ok(self.cfg.and(b0, b1))
    }

    fn rangeatom(&mut self, rel: OffRel, off: u32, v1: u32, v2: u32) -> Result<Frag, FilterError> {
        let (lo, hi) = if v1 > v2 { (v2, v1) } else { (v1, v2) };
        let b1 = self.cmp_ge(rel, off, bpf::H, lo)?;
        let b2 = self.cmp_le(rel, off, bpf::H, hi)?;
        Ok(self.cfg.and(b1, b2))
    }

    /// TCP, UDP and SCTP in libpcap's order when no protocol was given.
    fn any_transport(
        &mut self,
        ip_proto: Option<u32>,
        mut op: impl FnMut(&mut Self, u32) -> Result<Frag, FilterError>,
    ) -> Result<Frag, FilterError> {
        match ip_proto {
            Some(p) => op(self, p),
            None => {
                let tmp = op(self, IPPROTO_TCP)?;
                let b1 = op(self, IPPROTO_UDP)?;
                let b1 = self.cfg.or(tmp, b1);
                let tmp = op(self, IPPROTO_SCTP)?;
                Ok(self.cfg.or(tmp, b1))
            }
        }
    }

    fn port(&mut self, port: u32, ip_proto: Option<u32>, dir: Dir) -> Result<Frag, FilterError> {
        let b0 = self.linktype(ETHERTYPE_IP)?;
        let b1 = self.any_transport(ip_proto, |g, p| g.portop(port, p, dir))?;
        Ok(self.cfg.and(b0, b1))
    }

    fn port6(&mut self, port: u32, ip_proto: Option<u32>, dir: Dir) -> Result<Frag, FilterError> {
        let b0 = self.linktype(ETHERTYPE_IPV6)?;
        let b1 = self.any_transport(ip_proto, |g, p| g.portop6(port, p, dir))?;
        Ok(self.cfg.and(b0, b1))
    }

    fn portrange(
        &mut self,
        p1: u32,
        p2: u32,
        ip_proto: Option<u32>,
        dir: Dir,
    ) -> Result<Frag, FilterError> {
        let b0 = self.linktype(ETHERTYPE_IP)?;
        let b1 = self.any_transport(ip_proto, |g, p| g.rangeop(p1, p2, p, dir))?;
        Ok(self.cfg.and(b0, b1))
    }

    fn portrange6(
        &mut self,
        p1: u32,
        p2: u32,
        ip_proto: Option<u32>,
        dir: Dir,
    ) -> Result<Frag, FilterError> {
        let b0 = self.linktype(ETHERTYPE_IPV6)?;
        let b1 = self.any_transport(ip_proto, |g, p| g.rangeop6(p1, p2, p, dir))?;
        Ok(self.cfg.and(b0, b1))
    }

    // ---- broadcast, multicast, direction ----

    fn broadcast(&mut self, proto: Proto) -> Result<Frag, FilterError> {
        match proto {
            Proto::Default | Proto::Link => match self.target.link {
                LinkType::Ethernet => self.ehostop(&[0xff; 6], Dir::Dst),
                LinkType::LinuxSll => self.err("not a broadcast link"),
            },
            Proto::Ip => {
                let Some(netmask) = self.target.netmask else {
                    return self.err("netmask not known, so 'ip broadcast' not supported");
                };
                let b0 = self.linktype(ETHERTYPE_IP)?;
                let hostmask = !netmask;
                let b1 = self.mcmp(OffRel::LinkPl, 16, bpf::W, 0, hostmask)?;
                let b2 = self.mcmp(OffRel::LinkPl, 16, bpf::W, hostmask, hostmask)?;
                let b2 = self.cfg.or(b1, b2);
                Ok(self.cfg.and(b0, b2))
            }
            _ => self.err("only link-layer/IP broadcast filters supported"),
        }
    }

    fn multicast(&mut self, proto: Proto) -> Result<Frag, FilterError> {
        match proto {
            Proto::Default | Proto::Link => match self.target.link {
                LinkType::Ethernet => {
                    let s = self.load_a(OffRel::LinkHdr, 0, bpf::B)?;
                    Ok(self.cfg.test(s, bpf::JMP | bpf::JSET | bpf::K, 1))
                }
                LinkType::LinuxSll => self.err(
                    "link-layer multicast filters supported only on ethernet/FDDI/token ring/ARCNET/802.11/ATM LANE/Fibre Channel",
                ),
            },
            Proto::Ip => {
                let b0 = self.linktype(ETHERTYPE_IP)?;
                let b1 = self.cmp_ge(OffRel::LinkPl, 16, bpf::B, 224)?;
                Ok(self.cfg.and(b0, b1))
            }
            Proto::Ip6 => {
                let b0 = self.linktype(ETHERTYPE_IPV6)?;
                let b1 = self.cmp(OffRel::LinkPl, 24, bpf::B, 255)?;
                Ok(self.cfg.and(b0, b1))
            }
            _ => self.err(
                "only IP multicast filters supported on ethernet/FDDI/token ring/ARCNET/802.11/ATM LANE/Fibre Channel",
            ),
        }
    }

    fn inbound(&mut self, outbound: bool) -> Result<Frag, FilterError> {
        let b0 = match self.target.link {
            LinkType::LinuxSll => self.cmp(OffRel::LinkHdr, 0, bpf::H, PACKET_OUTGOING)?,
            LinkType::Ethernet => {
                if self.target.savefile {
                    return self.err(format!(
                        "inbound/outbound not supported on {} when reading savefiles",
                        self.link_name()
                    ));
                }
                self.cmp(
                    OffRel::LinkHdr,
                    bpf::SKF_AD_OFF + bpf::SKF_AD_PKTTYPE,
                    bpf::H,
                    PACKET_OUTGOING,
                )?
            }
        };
        Ok(if outbound { b0 } else { self.cfg.not(b0) })
    }

    // ---- VLAN ----

    fn vlan(&mut self, id: Option<u32>) -> Result<Frag, FilterError> {
        if self.target.link != LinkType::Ethernet {
            return self.err(format!("no VLAN support for {}", self.link_name()));
        }
        if let Some(v) = id
            && v > 0x0fff
        {
            return self.err(format!("VLAN tag {v} greater than maximum {}", 0x0fff));
        }
        let outermost = self.vlan_depth == 0 && !self.off_linkhdr.variable;
        let f = if outermost && self.target.vlan_metadata {
            self.vlan_bpf_extensions(id)?
        } else {
            self.vlan_in_packet(id)?
        };
        self.vlan_depth += 1;
        Ok(f)
    }

    fn vlan_tpid_test(&mut self) -> Result<Frag, FilterError> {
        let b0 = self.linktype(ETHERTYPE_8021Q)?;
        let b1 = self.linktype(ETHERTYPE_8021AD)?;
        let b1 = self.cfg.or(b0, b1);
        let b2 = self.linktype(ETHERTYPE_8021QINQ)?;
        Ok(self.cfg.or(b1, b2))
    }

    fn vlan_vid_test(&mut self, vid: u32) -> Result<Frag, FilterError> {
        self.mcmp(OffRel::LinkPl, 0, bpf::H, vid, 0x0fff)
    }

    /// The tag is in the frame: test it and move the offsets past it.
    fn vlan_in_packet(&mut self, id: Option<u32>) -> Result<Frag, FilterError> {
        let mut b0 = self.vlan_tpid_test()?;
        if let Some(vid) = id {
            let b1 = self.vlan_vid_test(vid)?;
            b0 = self.cfg.and(b0, b1);
        }
        self.off_linkpl.constant += 4;
        self.off_linktype.constant += 4;
        Ok(b0)
    }

    /// Live capture: the kernel usually moved the outer tag into the
    /// packet's metadata; if not, the tag is in the frame and the offsets
    /// move by 4 at run time.
    fn vlan_bpf_extensions(&mut self, id: Option<u32>) -> Result<Frag, FilterError> {
        let present = self.cfg.test(
            vec![Insn::stmt(
                bpf::LD | bpf::B | bpf::ABS,
                bpf::SKF_AD_OFF + bpf::SKF_AD_VLAN_TAG_PRESENT,
            )],
            bpf::JMP | bpf::JEQ | bpf::K,
            1,
        );
        let tpid = self.vlan_tpid_test()?;
        let vid = match id {
            Some(v) => Some(self.vlan_vid_test(v)?),
            None => None,
        };
        // The tag was not in the metadata: it is in the frame, so whatever
        // follows is 4 bytes further. Updated before the TPID test (which
        // still reads the old offsets) as libpcap does.
        self.is_vlan_vloffset = true;
        let mut adds = Vec::new();
        for which in [OffRel::LinkPl, OffRel::LinkType] {
            let reg = self.vloffset_reg(which)?;
            match which {
                OffRel::LinkPl => self.off_linkpl.variable = true,
                _ => self.off_linktype.variable = true,
            }
            adds.extend([
                Insn::stmt(bpf::LD | bpf::MEM, reg),
                Insn::stmt(bpf::ALU | bpf::ADD | bpf::K, 4),
                Insn::stmt(bpf::ST, reg),
            ]);
        }
        let head = &mut self.cfg.blocks[tpid.entry].stmts;
        head.splice(0..0, adds);
        let mut b0 = self.cfg.or(present, tpid);
        if let Some(vid) = vid {
            // Take the TCI from the metadata when it is there, from the
            // frame otherwise; then mask and compare.
            let test_block = vid.entry;
            let mut stmts = std::mem::take(&mut self.cfg.blocks[test_block].stmts);
            let and_mask = stmts.pop().expect("the VID test ends with its mask");
            self.cfg.blocks[test_block].stmts = vec![and_mask];
            let from_meta = self.cfg.add(Block {
                stmts: vec![Insn::stmt(
                    bpf::LD | bpf::B | bpf::ABS,
                    bpf::SKF_AD_OFF + bpf::SKF_AD_VLAN_TAG,
                )],
                exit: Exit::Goto(test_block),
            });
            let from_frame = self.cfg.add(Block {
                stmts,
                exit: Exit::Goto(test_block),
            });
            let choose = self.cfg.add(Block {
                stmts: vec![Insn::stmt(
                    bpf::LD | bpf::B | bpf::ABS,
                    bpf::SKF_AD_OFF + bpf::SKF_AD_VLAN_TAG_PRESENT,
                )],
                exit: Exit::Branch {
                    code: bpf::JMP | bpf::JEQ | bpf::K,
                    k: 1,
                    jt: from_meta,
                    jf: from_frame,
                },
            });
            let vid = Frag {
                entry: choose,
                ..vid
            };
            b0 = self.cfg.and(b0, vid);
        }
        Ok(b0)
    }

    // ---- arithmetic ----

    fn arith(&mut self, a: &Arith) -> Result<ArthVal, FilterError> {
        match a {
            Arith::Num(v) => {
                let reg = self.alloc_reg()?;
                Ok(ArthVal {
                    checks: None,
                    stmts: vec![Insn::stmt(bpf::LD | bpf::IMM, *v), Insn::stmt(bpf::ST, reg)],
                    reg,
                })
            }
            Arith::Len => {
                let reg = self.alloc_reg()?;
                Ok(ArthVal {
                    checks: None,
                    stmts: vec![
                        Insn::stmt(bpf::LD | bpf::W | bpf::LEN, 0),
                        Insn::stmt(bpf::ST, reg),
                    ],
                    reg,
                })
            }
            Arith::Neg(inner) => {
                let mut v = self.arith(inner)?;
                v.stmts.extend([
                    Insn::stmt(bpf::LD | bpf::MEM, v.reg),
                    Insn::stmt(bpf::ALU | bpf::NEG, 0),
                    Insn::stmt(bpf::ST, v.reg),
                ]);
                Ok(v)
            }
            Arith::Binary { op, lhs, rhs, span } => {
                let a0 = self.arith(lhs)?;
                let a1 = self.arith(rhs)?;
                self.span = *span;
                self.arth_op(*op, a0, a1)
            }
            Arith::Load {
                proto,
                index,
                size,
                span,
            } => {
                let inst = self.arith(index)?;
                self.span = *span;
                self.load(*proto, inst, *size)
            }
        }
    }

    fn arth_op(&mut self, op: ArithOp, a0: ArthVal, a1: ArthVal) -> Result<ArthVal, FilterError> {
        // libpcap looks at the first statement of the right operand: a
        // constant 0 divisor (or one that starts its computation with 0).
        let first_imm = a1
            .stmts
            .first()
            .filter(|s| s.code == bpf::LD | bpf::IMM)
            .map(|s| s.k);
        match op {
            ArithOp::Div if first_imm == Some(0) => return self.err("division by zero"),
            ArithOp::Mod if first_imm == Some(0) => return self.err("modulus by zero"),
            ArithOp::Lsh | ArithOp::Rsh if first_imm.is_some_and(|k| k > 31) => {
                return self.err("shift by more than 31 bits");
            }
            _ => {}
        }
        let code = match op {
            ArithOp::Add => bpf::ADD,
            ArithOp::Sub => bpf::SUB,
            ArithOp::Mul => bpf::MUL,
            ArithOp::Div => bpf::DIV,
            ArithOp::Mod => bpf::MOD,
            ArithOp::And => bpf::AND,
            ArithOp::Or => bpf::OR,
            ArithOp::Xor => bpf::XOR,
            ArithOp::Lsh => bpf::LSH,
            ArithOp::Rsh => bpf::RSH,
        };
        let mut stmts = a0.stmts;
        stmts.extend(a1.stmts);
        stmts.extend([
            Insn::stmt(bpf::LDX | bpf::MEM, a1.reg),
            Insn::stmt(bpf::LD | bpf::MEM, a0.reg),
            Insn::stmt(bpf::ALU | code | bpf::X, 0),
        ]);
        self.free_reg(a0.reg);
        self.free_reg(a1.reg);
        let reg = self.alloc_reg()?;
        stmts.push(Insn::stmt(bpf::ST, reg));
        // As libpcap: the right operand's protocol checks are not kept.
        Ok(ArthVal {
            checks: a0.checks,
            stmts,
            reg,
        })
    }

    fn load(&mut self, proto: Proto, inst: ArthVal, size: u32) -> Result<ArthVal, FilterError> {
        let size = match size {
            1 => bpf::B,
            2 => bpf::H,
            4 => bpf::W,
            _ => return self.err("data size must be 1, 2, or 4"),
        };
        let regno = self.alloc_reg()?;
        self.free_reg(inst.reg);
        let xfer_to_a = Insn::stmt(bpf::LD | bpf::MEM, inst.reg);
        let xfer_to_x = Insn::stmt(bpf::LDX | bpf::MEM, inst.reg);
        let add_x_tax = [
            Insn::stmt(bpf::ALU | bpf::ADD | bpf::X, 0),
            Insn::stmt(bpf::MISC | bpf::TAX, 0),
        ];
        let ArthVal {
            checks,
            mut stmts,
            reg: _,
        } = inst;
        let checks = match proto {
            Proto::Link => {
                let s = match self.varpart(OffRel::LinkHdr)? {
                    Some(mut s) => {
                        s.push(xfer_to_a);
                        s.extend(add_x_tax);
                        s
                    }
                    None => vec![xfer_to_x],
                };
                stmts.extend(s);
                stmts.push(Insn::stmt(
                    bpf::LD | bpf::IND | size,
                    self.off_linkhdr.constant,
                ));
                checks
            }
            Proto::Ip
            | Proto::Arp
            | Proto::Rarp
            | Proto::Atalk
            | Proto::Decnet
            | Proto::Sca
            | Proto::Lat
            | Proto::Moprc
            | Proto::Mopdl
            | Proto::Ip6 => {
                let s = match self.varpart(OffRel::LinkPl)? {
                    Some(mut s) => {
                        s.push(xfer_to_a);
                        s.extend(add_x_tax);
                        s
                    }
                    None => vec![xfer_to_x],
                };
                stmts.extend(s);
                stmts.push(Insn::stmt(
                    bpf::LD | bpf::IND | size,
                    self.off_linkpl.constant.wrapping_add(self.off_nl),
                ));
                let b = self.proto_abbrev(proto)?;
                Some(match checks {
                    Some(c) => self.cfg.and(c, b),
                    None => b,
                })
            }
            Proto::Sctp
            | Proto::Tcp
            | Proto::Udp
            | Proto::Icmp
            | Proto::Igmp
            | Proto::Igrp
            | Proto::Pim
            | Proto::Vrrp
            | Proto::Carp => {
                let mut s = self.loadx_iphdrlen()?;
                s.push(xfer_to_a);
                s.extend(add_x_tax);
                s.push(Insn::stmt(
                    bpf::LD | bpf::IND | size,
                    self.off_linkpl.constant.wrapping_add(self.off_nl),
                ));
                stmts.extend(s);
                let p = self.proto_abbrev(proto)?;
                let frag = self.ipfrag()?;
                let mut b = self.cfg.and(p, frag);
                if let Some(c) = checks {
                    b = self.cfg.and(c, b);
                }
                let ip = self.proto_abbrev(Proto::Ip)?;
                Some(self.cfg.and(ip, b))
            }
            Proto::Icmp6 => {
                let ip6 = self.proto_abbrev(Proto::Ip6)?;
                let b = match checks {
                    Some(c) => self.cfg.and(c, ip6),
                    None => ip6,
                };
                let nh = self.cmp(OffRel::LinkPl, 6, bpf::B, IPPROTO_ICMPV6)?;
                let b = self.cfg.and(b, nh);
                let s = match self.varpart(OffRel::LinkPl)? {
                    Some(mut s) => {
                        s.push(xfer_to_a);
                        s.extend(add_x_tax);
                        s
                    }
                    None => vec![xfer_to_x],
                };
                stmts.extend(s);
                stmts.push(Insn::stmt(
                    bpf::LD | bpf::IND | size,
                    self.off_linkpl
                        .constant
                        .wrapping_add(self.off_nl)
                        .wrapping_add(40),
                ));
                Some(b)
            }
            _ => return self.err("unsupported index operation"),
        };
        stmts.push(Insn::stmt(bpf::ST, regno));
        Ok(ArthVal {
            checks,
            stmts,
            reg: regno,
        })
    }

    fn relation(
        &mut self,
        rel: Rel,
        negated: bool,
        a0: ArthVal,
        a1: ArthVal,
    ) -> Result<Frag, FilterError> {
        let mut stmts = a0.stmts;
        stmts.extend(a1.stmts);
        stmts.push(Insn::stmt(bpf::LDX | bpf::MEM, a1.reg));
        stmts.push(Insn::stmt(bpf::LD | bpf::MEM, a0.reg));
        let b = match rel {
            Rel::Eq => {
                stmts.push(Insn::stmt(bpf::ALU | bpf::SUB | bpf::X, 0));
                self.cfg.test(stmts, bpf::JMP | bpf::JEQ | bpf::K, 0)
            }
            Rel::Gt => self.cfg.test(stmts, bpf::JMP | bpf::JGT | bpf::X, 0),
            Rel::Ge => self.cfg.test(stmts, bpf::JMP | bpf::JGE | bpf::X, 0),
        };
        let b = if negated { self.cfg.not(b) } else { b };
        self.free_reg(a0.reg);
        self.free_reg(a1.reg);
        let checks = match (a0.checks, a1.checks) {
            (Some(c0), Some(c1)) => Some(self.cfg.and(c0, c1)),
            (c0, c1) => c0.or(c1),
        };
        Ok(match checks {
            Some(c) => self.cfg.and(c, b),
            None => b,
        })
    }
}

/// libpcap's `__pcap_atoin`: a dotted decimal prefix → (value, bits).
/// Each part is read digit by digit with no check of the characters, as
/// libpcap does (so hex parts become garbage and are usually rejected).
fn atoin(s: &str) -> Option<(u32, u32)> {
    let mut addr: u32 = 0;
    let mut len = 0;
    for part in s.split('.') {
        let mut n: u32 = 0;
        for c in part.bytes() {
            if n > 25 {
                return None;
            }
            n = (n * 10).wrapping_add(u32::from(c).wrapping_sub(u32::from(b'0')));
        }
        if n > 255 {
            return None;
        }
        addr = (addr << 8) | (n & 0xff);
        len += 8;
    }
    Some((addr, len))
}

/// libpcap's `pcap_ether_aton`: hex digit pairs, separators skipped.
fn ether_aton(s: &str) -> [u8; 6] {
    let b = s.as_bytes();
    let mut out = [0u8; 6];
    let mut i = 0;
    let mut n = 0;
    let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
    while i < b.len() && n < 6 {
        if matches!(b[i], b':' | b'.' | b'-') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut d = hex(b[i]);
        i += 1;
        if i < b.len() && b[i].is_ascii_hexdigit() {
            d = (d << 4) | hex(b[i]);
            i += 1;
        }
        out[n] = d;
        n += 1;
    }
    out
}

/// libpcap's `pcap_nametoportrange`: `N-M` (read like `sscanf("%d-%d")`)
/// or `name-name`; the protocol is `None` (any) unless both names agree.
fn name_to_portrange(name: &str) -> Option<(i64, i64, Option<PortProto>)> {
    if let Some((p1, p2)) = scan_int_dash_int(name) {
        return Some((p1, p2, None));
    }
    let (a, b) = name.split_once('-')?;
    let (p1, r1) = names::service_port(a)?;
    let (p2, r2) = names::service_port(b)?;
    let proto = if r1 == r2 { Some(r1) } else { None };
    Some((i64::from(p1), i64::from(p2), proto))
}

/// `sscanf(s, "%d-%d", ...) == 2`: an optionally signed integer, a dash,
/// another; anything after is ignored.
fn scan_int_dash_int(s: &str) -> Option<(i64, i64)> {
    fn int(s: &str) -> Option<(i64, &str)> {
        let (neg, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let v: i64 = rest[..digits].parse().ok()?;
        Some((if neg { -v } else { v }, &rest[digits..]))
    }
    let (p1, rest) = int(s)?;
    let rest = rest.strip_prefix('-')?;
    let (p2, _) = int(rest)?;
    Some((p1, p2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpcap_number_helpers() {
        assert_eq!(atoin("1.2.3.4"), Some((0x01020304, 32)));
        assert_eq!(atoin("10.1"), Some((0x0a01, 16)));
        assert_eq!(atoin("256.1"), None);
        assert_eq!(
            ether_aton("deadbeefcafe"),
            [0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe]
        );
        assert_eq!(ether_aton("1:2:3:4:5:6"), [1, 2, 3, 4, 5, 6]);
        assert_eq!(ether_aton("0001.0203.0405"), [0, 1, 2, 3, 4, 5]);
        assert_eq!(scan_int_dash_int("21-23"), Some((21, 23)));
        assert_eq!(scan_int_dash_int("1--5"), Some((1, -5)));
        assert_eq!(scan_int_dash_int("ftp-telnet"), None);
        assert_eq!(
            name_to_portrange("ftp-telnet"),
            Some((21, 23, Some(PortProto::Tcp)))
        );
    }
}
