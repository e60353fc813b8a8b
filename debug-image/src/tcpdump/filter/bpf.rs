//! Classic BPF as the kernel and libpcap know it: opcodes, the instruction
//! type (laid out like `struct sock_filter`), a disassembler printing what
//! `tcpdump -d` / `-dd` / `-ddd` print (libpcap's `bpf_image.c`), and an
//! interpreter with libpcap's `bpf_filter.c` semantics.
//!
//! The interpreter runs filters where the kernel cannot: reading a pcap file
//! (`-r`), and the tests. It follows libpcap to the letter where the two
//! could differ: a load past the captured bytes rejects the packet, as does
//! a division or modulus by zero in X, and a shift by 32 or more in X gives
//! 0. Linux's ancillary loads (`SKF_AD_OFF + ...`: packet type, protocol,
//! VLAN tag) read the [`Metadata`] that a live capture gets from the ring.

use std::fmt::Write as _;

// Instruction classes.
pub const LD: u16 = 0x00;
pub const LDX: u16 = 0x01;
pub const ST: u16 = 0x02;
pub const STX: u16 = 0x03;
pub const ALU: u16 = 0x04;
pub const JMP: u16 = 0x05;
pub const RET: u16 = 0x06;
pub const MISC: u16 = 0x07;

// Load sizes.
pub const W: u16 = 0x00;
pub const H: u16 = 0x08;
pub const B: u16 = 0x10;

// Load modes.
pub const IMM: u16 = 0x00;
pub const ABS: u16 = 0x20;
pub const IND: u16 = 0x40;
pub const MEM: u16 = 0x60;
pub const LEN: u16 = 0x80;
pub const MSH: u16 = 0xa0;

// ALU operations.
pub const ADD: u16 = 0x00;
pub const SUB: u16 = 0x10;
pub const MUL: u16 = 0x20;
pub const DIV: u16 = 0x30;
pub const OR: u16 = 0x40;
pub const AND: u16 = 0x50;
pub const LSH: u16 = 0x60;
pub const RSH: u16 = 0x70;
pub const NEG: u16 = 0x80;
pub const MOD: u16 = 0x90;
pub const XOR: u16 = 0xa0;

// Jumps.
pub const JA: u16 = 0x00;
pub const JEQ: u16 = 0x10;
pub const JGT: u16 = 0x20;
pub const JGE: u16 = 0x30;
pub const JSET: u16 = 0x40;

// Operand sources.
pub const K: u16 = 0x00;
pub const X: u16 = 0x08;
/// `ret a`: return the accumulator.
pub const RET_A: u16 = 0x10;

// MISC operations.
pub const TAX: u16 = 0x00;
pub const TXA: u16 = 0x80;

/// Scratch memory words (`M[0]`..`M[15]`).
pub const MEMWORDS: usize = 16;

/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// Linux ancillary data: loads at `SKF_AD_OFF + n` read packet metadata.
pub const SKF_AD_OFF: u32 = 0xffff_f000;
pub const SKF_AD_PROTOCOL: u32 = 0;
pub const SKF_AD_PKTTYPE: u32 = 4;
pub const SKF_AD_IFINDEX: u32 = 8;
pub const SKF_AD_VLAN_TAG: u32 = 44;
pub const SKF_AD_VLAN_TAG_PRESENT: u32 = 48;

pub fn class(code: u16) -> u16 {
    code & 0x07
}
pub fn size(code: u16) -> u16 {
    code & 0x18
}
pub fn mode(code: u16) -> u16 {
    code & 0xe0
}
pub fn op(code: u16) -> u16 {
    code & 0xf0
}
pub fn src(code: u16) -> u16 {
    code & 0x08
}

/// One instruction, field for field `struct sock_filter` (so a slice of
/// them is what SO_ATTACH_FILTER reads): `jt`/`jf` are relative forward
/// jumps for conditional jumps, `k` the operand.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    pub const fn stmt(code: u16, k: u32) -> Insn {
        Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }
}

/// The packet metadata a live capture can see with ancillary loads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// `PACKET_HOST`, `PACKET_OUTGOING`, ... (`sll_pkttype`).
    pub pkttype: u32,
    /// The EtherType the kernel saw (`skb->protocol`, host order).
    pub protocol: u32,
    pub ifindex: u32,
    /// The VLAN tag the kernel removed from the frame, if any (TCI).
    pub vlan_tci: Option<u16>,
}

/// A compiled filter: what SO_ATTACH_FILTER takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub insns: Vec<Insn>,
}

impl Program {
    /// Runs the filter over one packet of which `data` was captured and
    /// `wire_len` was on the wire; returns the number of bytes to keep
    /// (0 = drop), as `bpf_filter` does.
    pub fn run(&self, data: &[u8], wire_len: u32, meta: &Metadata) -> u32 {
        run(&self.insns, data, wire_len, meta)
    }

    /// Whether the packet passes.
    pub fn matches(&self, data: &[u8], wire_len: u32) -> bool {
        self.run(data, wire_len, &Metadata::default()) != 0
    }

    /// `tcpdump -d`: one instruction per line in libpcap's words.
    pub fn disassemble(&self) -> String {
        let mut out = String::new();
        for (n, insn) in self.insns.iter().enumerate() {
            out.push_str(&image(insn, n));
            out.push('\n');
        }
        out
    }

    /// `tcpdump -dd`: a C array initialiser.
    pub fn as_c_array(&self) -> String {
        let mut out = String::new();
        for i in &self.insns {
            let _ = writeln!(
                out,
                "{{ 0x{:x}, {}, {}, 0x{:08x} }},",
                i.code, i.jt, i.jf, i.k
            );
        }
        out
    }

    /// `tcpdump -ddd`: the count, then one instruction per line in decimal.
    pub fn as_decimal(&self) -> String {
        let mut out = format!("{}\n", self.insns.len());
        for i in &self.insns {
            let _ = writeln!(out, "{} {} {} {}", i.code, i.jt, i.jf, i.k);
        }
        out
    }

    /// Reads `-ddd` output back.
    #[cfg(test)]
    pub fn from_decimal(text: &str) -> Option<Program> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut insns = Vec::with_capacity(count);
        for line in lines {
            let f: Vec<u64> = line
                .split_whitespace()
                .map(|w| w.parse().ok())
                .collect::<Option<_>>()?;
            if f.len() != 4 {
                return None;
            }
            insns.push(Insn {
                code: u16::try_from(f[0]).ok()?,
                jt: u8::try_from(f[1]).ok()?,
                jf: u8::try_from(f[2]).ok()?,
                k: u32::try_from(f[3]).ok()?,
            });
        }
        (insns.len() == count).then_some(Program { insns })
    }

    /// Checks what the kernel's `bpf_check_classic` checks, so a program we
    /// built is known to be attachable: size, known opcodes, forward jumps
    /// inside the program, scratch memory indexes, no constant division by
    /// zero, and a return at the end.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.insns.len();
        if n == 0 || n > MAX_INSNS {
            return Err(format!(
                "the program has {n} instructions; the kernel accepts 1 to {MAX_INSNS}"
            ));
        }
        for (pc, i) in self.insns.iter().enumerate() {
            let left = n - pc - 1;
            match class(i.code) {
                LD | LDX if mode(i.code) == MEM && i.k as usize >= MEMWORDS => {
                    return Err(format!("({pc:03}) scratch memory index {}", i.k));
                }
                ST | STX if i.k as usize >= MEMWORDS => {
                    return Err(format!("({pc:03}) scratch memory index {}", i.k));
                }
                ALU if src(i.code) == K && matches!(op(i.code), DIV | MOD) && i.k == 0 => {
                    return Err(format!("({pc:03}) division by zero"));
                }
                JMP => {
                    if op(i.code) == JA {
                        if i.k as usize >= left {
                            return Err(format!("({pc:03}) jump out of the program"));
                        }
                    } else if i.jt as usize >= left || i.jf as usize >= left {
                        return Err(format!("({pc:03}) jump out of the program"));
                    }
                }
                _ => {}
            }
        }
        if class(self.insns[n - 1].code) != RET {
            return Err("the program does not end with a return".into());
        }
        Ok(())
    }
}

/// The name libpcap prints for an ancillary load's offset.
fn ancillary_name(k: u32) -> Option<&'static str> {
    if k < SKF_AD_OFF {
        return None;
    }
    Some(match k - SKF_AD_OFF {
        0 => "proto",
        4 => "type",
        8 => "ifidx",
        12 => "nla",
        16 => "nlan",
        20 => "mark",
        24 => "queue",
        28 => "hatype",
        32 => "rxhash",
        36 => "cpu",
        44 => "vlan_tci",
        48 => "vlanp",
        52 => "poff",
        56 => "random",
        60 => "vlan_tpid",
        _ => return None,
    })
}

/// One instruction the way libpcap's `bpf_image()` prints it.
pub fn image(p: &Insn, n: usize) -> String {
    let k = p.k;
    let (name, operand): (&str, String) = match p.code {
        c if c == RET | K => ("ret", format!("#{}", k as i32)),
        c if c == RET | RET_A => ("ret", String::new()),
        c if c == LD | W | ABS || c == LD | H | ABS || c == LD | B | ABS => {
            let name = match size(c) {
                W => "ld",
                H => "ldh",
                _ => "ldb",
            };
            match ancillary_name(k) {
                Some(a) => (name, format!("[{a}]")),
                None => (name, format!("[{}]", k as i32)),
            }
        }
        c if c == LD | W | LEN => ("ld", "#pktlen".into()),
        c if c == LD | W | IND => ("ld", format!("[x + {}]", k as i32)),
        c if c == LD | H | IND => ("ldh", format!("[x + {}]", k as i32)),
        c if c == LD | B | IND => ("ldb", format!("[x + {}]", k as i32)),
        c if c == LD | IMM => ("ld", format!("#0x{k:x}")),
        c if c == LDX | IMM => ("ldx", format!("#0x{k:x}")),
        c if c == LDX | W | LEN => ("ldx", "#pktlen".into()),
        c if c == LDX | MSH | B => ("ldxb", format!("4*([{}]&0xf)", k as i32)),
        c if c == LD | MEM => ("ld", format!("M[{}]", k as i32)),
        c if c == LDX | MEM => ("ldx", format!("M[{}]", k as i32)),
        c if c == ST => ("st", format!("M[{}]", k as i32)),
        c if c == STX => ("stx", format!("M[{}]", k as i32)),
        c if c == JMP | JA => ("ja", format!("{}", n as u64 + 1 + u64::from(k))),
        c if class(c) == JMP => {
            let name = match op(c) {
                JGT => "jgt",
                JGE => "jge",
                JEQ => "jeq",
                JSET => "jset",
                _ => "unimp",
            };
            let operand = if src(c) == X {
                "x".to_owned()
            } else {
                format!("#0x{k:x}")
            };
            (name, operand)
        }
        c if class(c) == ALU => {
            let name = match op(c) {
                ADD => "add",
                SUB => "sub",
                MUL => "mul",
                DIV => "div",
                MOD => "mod",
                AND => "and",
                OR => "or",
                XOR => "xor",
                LSH => "lsh",
                RSH => "rsh",
                NEG => "neg",
                _ => "unimp",
            };
            let operand = if op(c) == NEG {
                String::new()
            } else if src(c) == X {
                "x".to_owned()
            } else if matches!(op(c), AND | OR | XOR) {
                format!("#0x{k:x}")
            } else {
                format!("#{}", k as i32)
            };
            (name, operand)
        }
        c if c == MISC | TAX => ("tax", String::new()),
        c if c == MISC | TXA => ("txa", String::new()),
        c => ("unimp", format!("0x{c:x}")),
    };
    if class(p.code) == JMP && op(p.code) != JA {
        format!(
            "({n:03}) {name:<8} {operand:<16} jt {}\tjf {}",
            n + 1 + usize::from(p.jt),
            n + 1 + usize::from(p.jf)
        )
    } else {
        format!("({n:03}) {name:<8} {operand}")
    }
}

/// Reads `len` bytes big-endian at `at`, or `None` past the end.
fn load(data: &[u8], at: u32, len: u32) -> Option<u32> {
    let start = at as usize;
    let end = start.checked_add(len as usize)?;
    let bytes = data.get(start..end)?;
    Some(bytes.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b)))
}

fn ancillary(k: u32, meta: &Metadata) -> u32 {
    match k.wrapping_sub(SKF_AD_OFF) {
        SKF_AD_PROTOCOL => meta.protocol,
        SKF_AD_PKTTYPE => meta.pkttype,
        SKF_AD_IFINDEX => meta.ifindex,
        SKF_AD_VLAN_TAG => u32::from(meta.vlan_tci.unwrap_or(0)),
        SKF_AD_VLAN_TAG_PRESENT => u32::from(meta.vlan_tci.is_some()),
        _ => 0,
    }
}

/// libpcap's `bpf_filter_with_aux_data`.
fn run(prog: &[Insn], data: &[u8], wire_len: u32, meta: &Metadata) -> u32 {
    let mut a: u32 = 0;
    let mut x: u32 = 0;
    let mut mem = [0u32; MEMWORDS];
    let mut pc = 0usize;
    loop {
        let Some(i) = prog.get(pc) else {
            return 0;
        };
        pc += 1;
        let k = i.k;
        match i.code {
            c if c == RET | K => return k,
            c if c == RET | RET_A => return a,
            c if class(c) == LD && mode(c) == ABS => {
                if k >= SKF_AD_OFF {
                    a = ancillary(k, meta);
                    continue;
                }
                let len = match size(c) {
                    W => 4,
                    H => 2,
                    _ => 1,
                };
                match load(data, k, len) {
                    Some(v) => a = v,
                    None => return 0,
                }
            }
            c if class(c) == LD && mode(c) == IND => {
                let len = match size(c) {
                    W => 4,
                    H => 2,
                    _ => 1,
                };
                let Some(at) = x.checked_add(k) else {
                    return 0;
                };
                match load(data, at, len) {
                    Some(v) => a = v,
                    None => return 0,
                }
            }
            c if c == LD | W | LEN => a = wire_len,
            c if c == LDX | W | LEN => x = wire_len,
            c if c == LD | IMM => a = k,
            c if c == LDX | IMM => x = k,
            c if c == LD | MEM => a = mem[k as usize % MEMWORDS],
            c if c == LDX | MEM => x = mem[k as usize % MEMWORDS],
            c if c == LDX | MSH | B => match data.get(k as usize) {
                Some(b) => x = u32::from(b & 0xf) << 2,
                None => return 0,
            },
            c if c == ST => mem[k as usize % MEMWORDS] = a,
            c if c == STX => mem[k as usize % MEMWORDS] = x,
            c if c == JMP | JA => pc += k as usize,
            c if class(c) == JMP => {
                let operand = if src(c) == X { x } else { k };
                let taken = match op(c) {
                    JEQ => a == operand,
                    JGT => a > operand,
                    JGE => a >= operand,
                    JSET => a & operand != 0,
                    _ => return 0,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            c if c == ALU | NEG => a = a.wrapping_neg(),
            c if class(c) == ALU => {
                let operand = if src(c) == X { x } else { k };
                a = match op(c) {
                    ADD => a.wrapping_add(operand),
                    SUB => a.wrapping_sub(operand),
                    MUL => a.wrapping_mul(operand),
                    DIV => match a.checked_div(operand) {
                        Some(v) => v,
                        None => return 0,
                    },
                    MOD => match a.checked_rem(operand) {
                        Some(v) => v,
                        None => return 0,
                    },
                    AND => a & operand,
                    OR => a | operand,
                    XOR => a ^ operand,
                    LSH => a.checked_shl(operand).unwrap_or(0),
                    RSH => a.checked_shr(operand).unwrap_or(0),
                    _ => return 0,
                };
            }
            c if c == MISC | TAX => x = a,
            c if c == MISC | TXA => a = x,
            _ => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(insns: &[Insn]) -> Program {
        Program {
            insns: insns.to_vec(),
        }
    }

    fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
        Insn { code, jt, jf, k }
    }

    #[test]
    fn disassembles_like_tcpdump() {
        // `tcpdump -d 'ip'` on Ethernet, byte for byte.
        let p = prog(&[
            Insn::stmt(LD | H | ABS, 12),
            jump(JMP | JEQ | K, 0x800, 0, 1),
            Insn::stmt(RET | K, 262144),
            Insn::stmt(RET | K, 0),
        ]);
        assert_eq!(
            p.disassemble(),
            "(000) ldh      [12]\n\
             (001) jeq      #0x800           jt 2\tjf 3\n\
             (002) ret      #262144\n\
             (003) ret      #0\n"
        );
        assert_eq!(
            image(&Insn::stmt(LDX | MSH | B, 14), 13),
            "(013) ldxb     4*([14]&0xf)"
        );
        assert_eq!(
            image(&Insn::stmt(LD | B | ABS, SKF_AD_OFF + 48), 0),
            "(000) ldb      [vlanp]"
        );
        assert_eq!(image(&Insn::stmt(JMP | JA, 3), 10), "(010) ja       14");
        assert_eq!(image(&Insn::stmt(MISC | TAX, 0), 1), "(001) tax      ");
    }

    #[test]
    fn decimal_round_trip() {
        let p = prog(&[
            Insn::stmt(LD | H | ABS, 12),
            jump(JMP | JEQ | K, 0x800, 0, 1),
            Insn::stmt(RET | K, 262144),
            Insn::stmt(RET | K, 0),
        ]);
        assert_eq!(
            p.as_decimal(),
            "4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n"
        );
        assert_eq!(Program::from_decimal(&p.as_decimal()), Some(p.clone()));
        assert!(p.validate().is_ok());
    }

    #[test]
    fn interpreter_follows_libpcap() {
        let ip = prog(&[
            Insn::stmt(LD | H | ABS, 12),
            jump(JMP | JEQ | K, 0x800, 0, 1),
            Insn::stmt(RET | K, 96),
            Insn::stmt(RET | K, 0),
        ]);
        let mut frame = vec![0u8; 14];
        frame[12] = 0x08;
        assert_eq!(ip.run(&frame, 60, &Metadata::default()), 96);
        frame[13] = 0x06;
        assert_eq!(ip.run(&frame, 60, &Metadata::default()), 0);
        // A load past the captured bytes rejects, whatever follows.
        assert_eq!(ip.run(&frame[..13], 60, &Metadata::default()), 0);

        // Division by X = 0 rejects; a shift by 32 gives 0.
        let div = prog(&[
            Insn::stmt(LD | IMM, 7),
            Insn::stmt(LDX | IMM, 0),
            Insn::stmt(ALU | DIV | X, 0),
            Insn::stmt(RET | K, 1),
        ]);
        assert_eq!(div.run(&[], 0, &Metadata::default()), 0);
        let shift = prog(&[
            Insn::stmt(LD | IMM, 7),
            Insn::stmt(LDX | IMM, 32),
            Insn::stmt(ALU | LSH | X, 0),
            Insn::stmt(RET | RET_A, 0),
        ]);
        assert_eq!(shift.run(&[], 0, &Metadata::default()), 0);

        // Ancillary loads read the metadata.
        let vlan = prog(&[
            Insn::stmt(LD | B | ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT),
            Insn::stmt(RET | RET_A, 0),
        ]);
        let tagged = Metadata {
            vlan_tci: Some(5),
            ..Metadata::default()
        };
        assert_eq!(vlan.run(&[], 0, &tagged), 1);
        assert_eq!(vlan.run(&[], 0, &Metadata::default()), 0);
    }

    #[test]
    fn validation_catches_what_the_kernel_rejects() {
        assert!(prog(&[]).validate().is_err());
        assert!(
            prog(&[jump(JMP | JEQ | K, 1, 5, 0), Insn::stmt(RET | K, 0)])
                .validate()
                .is_err()
        );
        assert!(
            prog(&[Insn::stmt(ST, 16), Insn::stmt(RET | K, 0)])
                .validate()
                .is_err()
        );
        assert!(prog(&[Insn::stmt(LD | IMM, 0)]).validate().is_err());
    }
}
