//! The block graph's optimizer, modelled pass for pass on libpcap 1.10's
//! `optimize.c`, because here optimizing changes which packets match.
//!
//! A classic BPF load past the captured bytes ends the filter with
//! "reject". libpcap's optimizer removes and reorders loads, so for
//! truncated packets its verdicts are those of the optimized program:
//! `ether[100] = 1 or 1 = 1` accepts everything, `port 80 or 443` accepts a
//! packet cut right after its source port 443 (the source-port tests are
//! pulled up before the destination-port ones), and `ip[0] * 0 = 0` accepts
//! IPv4 frames without an IP header. To select the same packets the agent
//! has to optimize the same way:
//!
//! 1. Passes without statement rewriting, repeated until nothing changes:
//!    value numbering (equal expressions get equal numbers: `ldh [12]`,
//!    `ldb [x+14]` with x = `4*([14]&0xf)`), the peephole rewrites of
//!    the comparison ending a block (`sub x; jeq #0` → `jeq x`, `and #k;
//!    jeq #0` → `jset #k`, constant operands folded in, decided jumps
//!    resolved), dead statements removed; then jump threading over edge
//!    dominators with `fold_edge`'s two rules (a test made on every path to
//!    an edge has the same outcome; an equality with constant k taken means
//!    an equality with another constant fails), and `or_pullup` /
//!    `and_pullup`.
//! 2. Passes that also rewrite statements (constants folded and
//!    propagated, `and #0` and `mul #0` become `ld #0`, redundant loads and
//!    stores dropped) but move no branch: a jump decided here stays in the
//!    program with both targets equal, loads before it gone.
//! 3. Identical blocks merged, the root moved past jumps whose targets
//!    meet; a root that is `ret #0` is "expression rejects all packets".
//!
//! Constant folding reports "division by zero" / "modulus by zero" as
//! libpcap does. Where libpcap treats two unknown values as equal (its
//! value number 0), this optimizer keeps them distinct: it can only miss a
//! simplification there, never make a wrong one.

use std::collections::HashMap;

use super::bpf::{self, Insn};
use super::cfg::{BlockId, Cfg, Exit};

/// Why optimizing stopped with an error (the messages are libpcap's).
#[derive(Debug, PartialEq, Eq)]
pub enum OptError {
    DivisionByZero,
    ModulusByZero,
    RejectsAll,
}

impl OptError {
    pub fn message(&self) -> &'static str {
        match self {
            OptError::DivisionByZero => "division by zero",
            OptError::ModulusByZero => "modulus by zero",
            OptError::RejectsAll => "expression rejects all packets",
        }
    }
}

/// A statement removed in place (libpcap's NOP), dropped at the end of a
/// block's processing.
const NOP: u16 = 0xffff;

/// How many passes a phase may take; libpcap stops "just moving branches"
/// after 100.
const MAX_PASSES: usize = 500;

type ValId = u32;

/// What a value number stands for (libpcap's `F(code, v0, v1)`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Val {
    /// `F(code, v0, v1)`; constants are `F(LD|IMM, k, 0)`.
    F(u16, u32, u32),
    /// Unknown on entry to a block (predecessors disagree, or the root).
    Unknown { block: BlockId, atom: u8 },
}

#[derive(Default)]
struct Values {
    table: Vec<Val>,
    index: HashMap<Val, ValId>,
}

impl Values {
    fn intern(&mut self, v: Val) -> ValId {
        if let Some(id) = self.index.get(&v) {
            return *id;
        }
        let id = self.table.len() as ValId;
        self.table.push(v.clone());
        self.index.insert(v, id);
        id
    }

    fn f(&mut self, code: u16, v0: u32, v1: u32) -> ValId {
        self.intern(Val::F(code, v0, v1))
    }

    fn k(&mut self, c: u32) -> ValId {
        self.f(bpf::LD | bpf::IMM, c, 0)
    }

    fn konst(&self, id: ValId) -> Option<u32> {
        match self.table[id as usize] {
            Val::F(code, k, _) if code == bpf::LD | bpf::IMM => Some(k),
            _ => None,
        }
    }

    fn is_unknown(&self, id: ValId) -> bool {
        matches!(self.table[id as usize], Val::Unknown { .. })
    }
}

/// Atoms: M[0..16], A, X.
const A: usize = 16;
const XR: usize = 17;
const ATOMS: usize = 18;
type State = [ValId; ATOMS];
type AtomSet = u32;

fn fold(op: u16, a: u32, b: u32) -> Result<u32, OptError> {
    Ok(match op {
        bpf::ADD => a.wrapping_add(b),
        bpf::SUB => a.wrapping_sub(b),
        bpf::MUL => a.wrapping_mul(b),
        bpf::DIV => a.checked_div(b).ok_or(OptError::DivisionByZero)?,
        bpf::MOD => a.checked_rem(b).ok_or(OptError::ModulusByZero)?,
        bpf::AND => a & b,
        bpf::OR => a | b,
        bpf::XOR => a ^ b,
        bpf::LSH => a.checked_shl(b).unwrap_or(0),
        bpf::RSH => a.checked_shr(b).unwrap_or(0),
        _ => a,
    })
}

/// The atoms a statement uses and the one it defines (libpcap's
/// `atomuse`/`atomdef`, as sets).
fn use_def(s: &Insn) -> (AtomSet, AtomSet) {
    if s.code == NOP {
        return (0, 0);
    }
    let a = 1 << A;
    let x = 1 << XR;
    let m = |k: u32| 1u32 << (k as usize % bpf::MEMWORDS);
    match bpf::class(s.code) {
        bpf::LD | bpf::LDX => {
            let def = if bpf::class(s.code) == bpf::LD { a } else { x };
            match bpf::mode(s.code) {
                bpf::IND => (x, def),
                bpf::MEM => (m(s.k), def),
                _ => (0, def),
            }
        }
        bpf::ST => (a, m(s.k)),
        bpf::STX => (x, m(s.k)),
        bpf::ALU => {
            if bpf::src(s.code) == bpf::X && bpf::op(s.code) != bpf::NEG {
                (a | x, a)
            } else {
                (a, a)
            }
        }
        bpf::MISC => {
            if s.code == bpf::MISC | bpf::TAX {
                (a, x)
            } else {
                (x, a)
            }
        }
        _ => (0, 0),
    }
}

fn jump_uses(exit: &Exit) -> AtomSet {
    match exit {
        Exit::Branch { code, .. } if bpf::src(*code) == bpf::X => (1 << A) | (1 << XR),
        Exit::Branch { .. } => 1 << A,
        _ => 0,
    }
}

/// The two successors of a non-leaf (a `Goto` has the same one twice).
fn targets(exit: &Exit) -> Option<(BlockId, BlockId)> {
    match *exit {
        Exit::Branch { jt, jf, .. } => Some((jt, jf)),
        Exit::Goto(t) => Some((t, t)),
        Exit::Ret(_) => None,
    }
}

fn set_target(exit: &mut Exit, taken: bool, to: BlockId) {
    match exit {
        Exit::Branch { jt, jf, .. } => {
            if taken {
                *jt = to;
            } else {
                *jf = to;
            }
        }
        Exit::Goto(t) => *t = to,
        Exit::Ret(_) => {}
    }
}

/// The graph as one pass sees it: levels, predecessors, dominators, and
/// which atoms each block uses from before and leaves for after.
struct Shape {
    /// Blocks by level, bottom (leaves, 0) to top, each level in libpcap's
    /// list order.
    levels: Vec<Vec<BlockId>>,
    level: Vec<usize>,
    /// Reachable blocks, root first, predecessors before successors.
    topo: Vec<BlockId>,
    preds: Vec<Vec<(BlockId, bool)>>,
    dom: Vec<Vec<u64>>,
    in_use: Vec<AtomSet>,
    out_use: Vec<AtomSet>,
    /// What each block's statements define.
    defs: Vec<AtomSet>,
}

fn has_bit(set: &[u64], i: usize) -> bool {
    set[i / 64] & (1 << (i % 64)) != 0
}

fn shape(cfg: &Cfg) -> Shape {
    let n = cfg.blocks.len();
    // Levels by depth-first search, true branch first (find_levels_r).
    let mut level = vec![usize::MAX; n];
    let mut levels: Vec<Vec<BlockId>> = Vec::new();
    let mut finished = Vec::new();
    let mut stack: Vec<(BlockId, u8)> = vec![(cfg.entry, 0)];
    let mut seen = vec![false; n];
    seen[cfg.entry] = true;
    while let Some((b, state)) = stack.pop() {
        let succ = targets(&cfg.blocks[b].exit);
        match (succ, state) {
            (Some((jt, _)), 0) => {
                stack.push((b, 1));
                if !seen[jt] {
                    seen[jt] = true;
                    stack.push((jt, 0));
                }
            }
            (Some((_, jf)), 1) => {
                stack.push((b, 2));
                if !seen[jf] {
                    seen[jf] = true;
                    stack.push((jf, 0));
                }
            }
            _ => {
                let l = match succ {
                    Some((jt, jf)) => level[jt].max(level[jf]) + 1,
                    None => 0,
                };
                level[b] = l;
                if levels.len() <= l {
                    levels.resize(l + 1, Vec::new());
                }
                levels[l].push(b);
                finished.push(b);
            }
        }
    }
    // libpcap links each finished block at the head of its level's list.
    for l in &mut levels {
        l.reverse();
    }
    let mut topo = finished;
    topo.reverse();
    let mut preds: Vec<Vec<(BlockId, bool)>> = vec![Vec::new(); n];
    for &b in &topo {
        match cfg.blocks[b].exit {
            Exit::Branch { jt, jf, .. } => {
                preds[jt].push((b, true));
                preds[jf].push((b, false));
            }
            Exit::Goto(t) => preds[t].push((b, true)),
            Exit::Ret(_) => {}
        }
    }
    // Dominators, top-down.
    let words = n.div_ceil(64).max(1);
    let mut dom: Vec<Vec<u64>> = vec![vec![u64::MAX; words]; n];
    dom[cfg.entry] = vec![0; words];
    for &b in &topo {
        if b != cfg.entry {
            let mut acc = vec![u64::MAX; words];
            for &(p, _) in &preds[b] {
                for (w, d) in acc.iter_mut().zip(&dom[p]) {
                    *w &= d;
                }
            }
            dom[b] = acc;
        }
        dom[b][b / 64] |= 1 << (b % 64);
    }
    // Uses: bottom-up (find_ud).
    let mut in_use = vec![0; n];
    let mut out_use = vec![0; n];
    let mut defs = vec![0; n];
    for &b in topo.iter().rev() {
        let block = &cfg.blocks[b];
        let (mut used, mut def) = (0, 0);
        for s in &block.stmts {
            let (u, d) = use_def(s);
            used |= u & !def;
            def |= d;
        }
        used |= jump_uses(&block.exit) & !def;
        let mut kill = 0;
        let mut seen_use = 0;
        for s in &block.stmts {
            let (u, d) = use_def(s);
            seen_use |= u;
            kill |= d & !seen_use;
        }
        let out = match targets(&block.exit) {
            Some((jt, jf)) => in_use[jt] | in_use[jf],
            None => 0,
        };
        out_use[b] = out;
        in_use[b] = used | (out & !kill);
        defs[b] = def;
    }
    Shape {
        levels,
        level,
        topo,
        preds,
        dom,
        in_use,
        out_use,
        defs,
    }
}

/// What value numbering found for a block.
#[derive(Clone)]
struct BlockVals {
    exit: State,
    /// The jump's operand: K(k) or X's value.
    oval: ValId,
}

/// Runs the optimizer.
pub fn optimize(cfg: &mut Cfg) -> Result<(), OptError> {
    for alter in [false, true] {
        for _ in 0..MAX_PASSES {
            if !pass(cfg, alter)? {
                break;
            }
        }
    }
    // libpcap keeps NOPs in a block's list until here (a block that ever
    // had statements keeps getting its jump rewritten).
    for block in &mut cfg.blocks {
        block.stmts.retain(|s| s.code != NOP);
    }
    intern_blocks(cfg);
    opt_root(cfg);
    if matches!(cfg.blocks[cfg.entry].exit, Exit::Ret(0)) {
        return Err(OptError::RejectsAll);
    }
    Ok(())
}

/// One libpcap `opt_loop` iteration; true if anything changed.
fn pass(cfg: &mut Cfg, alter: bool) -> Result<bool, OptError> {
    let sh = shape(cfg);
    let mut values = Values::default();
    let mut vals: Vec<Option<BlockVals>> = vec![None; cfg.blocks.len()];
    let mut changed = false;
    for &b in &sh.topo {
        let v = opt_blk(cfg, &sh, &vals, &mut values, b, alter, &mut changed)?;
        vals[b] = Some(v);
    }
    if alter {
        return Ok(changed);
    }
    // Jump threading, bottom-up.
    let edom = edge_dominators(cfg, &sh);
    for lvl in 1..sh.levels.len() {
        for &b in &sh.levels[lvl] {
            for taken in [true, false] {
                if matches!(cfg.blocks[b].exit, Exit::Goto(_)) && !taken {
                    continue;
                }
                changed |= opt_j(cfg, &sh, &vals, &values, &edom, b, taken);
            }
        }
    }
    // Pull-ups, bottom-up.
    let mut preds = PredIndex::new(cfg, &sh.topo);
    for lvl in 1..sh.levels.len() {
        for &b in &sh.levels[lvl] {
            changed |= pullup(cfg, &sh, &vals, &mut preds, b, false);
            changed |= pullup(cfg, &sh, &vals, &mut preds, b, true);
        }
    }
    Ok(changed)
}

/// Each block's predecessors as pull-ups need them: the edges into it from
/// the pass's blocks, in topological order of their source, a true edge
/// before a false one (a `Goto` counts once, as a true edge). Kept up to
/// date as pull-ups move edges, instead of scanning every block for every
/// pull-up: that scan made compiling a filter of a few hundred terms
/// quadratic in it.
struct PredIndex {
    /// Topological position of each block of the pass (`usize::MAX`: not
    /// in it, so its edges do not count).
    position: Vec<usize>,
    into: Vec<Vec<(BlockId, bool)>>,
}

impl PredIndex {
    fn new(cfg: &Cfg, topo: &[BlockId]) -> PredIndex {
        let mut index = PredIndex {
            position: vec![usize::MAX; cfg.blocks.len()],
            into: vec![Vec::new(); cfg.blocks.len()],
        };
        for (i, &b) in topo.iter().enumerate() {
            index.position[b] = i;
        }
        for &b in topo {
            index.link(cfg, b);
        }
        index
    }

    /// The edges leaving `b`: (taken, target).
    fn edges(cfg: &Cfg, b: BlockId) -> Vec<(bool, BlockId)> {
        match cfg.blocks[b].exit {
            Exit::Branch { jt, jf, .. } => vec![(true, jt), (false, jf)],
            Exit::Goto(t) => vec![(true, t)],
            Exit::Ret(_) => Vec::new(),
        }
    }

    fn link(&mut self, cfg: &Cfg, b: BlockId) {
        if self.position[b] == usize::MAX {
            return;
        }
        let key = |position: &[usize], (p, taken): (BlockId, bool)| (position[p], !taken);
        for (taken, to) in Self::edges(cfg, b) {
            let list = &mut self.into[to];
            let at =
                list.partition_point(|&e| key(&self.position, e) < key(&self.position, (b, taken)));
            list.insert(at, (b, taken));
        }
    }

    fn unlink(&mut self, cfg: &Cfg, b: BlockId) {
        for (_, to) in Self::edges(cfg, b) {
            self.into[to].retain(|&(p, _)| p != b);
        }
    }

    /// `set_target` that keeps the index right.
    fn retarget(&mut self, cfg: &mut Cfg, b: BlockId, taken: bool, to: BlockId) {
        self.unlink(cfg, b);
        set_target(&mut cfg.blocks[b].exit, taken, to);
        self.link(cfg, b);
    }
}

/// Value numbering of one block, then its peephole rewrites and dead
/// statements (libpcap's `opt_blk`).
fn opt_blk(
    cfg: &mut Cfg,
    sh: &Shape,
    vals: &[Option<BlockVals>],
    values: &mut Values,
    b: BlockId,
    alter: bool,
    changed: &mut bool,
) -> Result<BlockVals, OptError> {
    let mut entry: State = [0; ATOMS];
    for (i, slot) in entry.iter_mut().enumerate() {
        let mut agreed: Option<ValId> = None;
        let mut differ = sh.preds[b].is_empty();
        for &(p, _) in &sh.preds[b] {
            let v = vals[p].as_ref().expect("predecessors first").exit[i];
            match agreed {
                None => agreed = Some(v),
                Some(a) if a != v => differ = true,
                _ => {}
            }
        }
        *slot = match (differ, agreed) {
            (false, Some(v)) => v,
            _ => values.intern(Val::Unknown {
                block: b,
                atom: i as u8,
            }),
        };
    }
    let mut st = entry;
    let block = &mut cfg.blocks[b];
    for s in block.stmts.iter_mut() {
        if opt_stmt(s, &mut st, values, alter)? {
            *changed = true;
        }
    }
    let a_same = st[A] == entry[A] && !values.is_unknown(entry[A]);
    let x_same = st[XR] == entry[XR] && !values.is_unknown(entry[XR]);
    let is_ret = matches!(block.exit, Exit::Ret(_));
    if alter && ((sh.out_use[b] == 0 && a_same && x_same) || is_ret) {
        if block.stmts.iter().any(|s| s.code != NOP) {
            *changed = true;
        }
        block.stmts.clear();
    } else {
        *changed |= peephole(block, sh.out_use[b], &st, values);
        *changed |= dead_stores(block, sh.out_use[b]);
    }
    let oval = match block.exit {
        Exit::Branch { code, k, .. } => {
            if bpf::src(code) == bpf::K {
                values.k(k)
            } else {
                st[XR]
            }
        }
        _ => values.k(0),
    };
    Ok(BlockVals { exit: st, oval })
}

/// libpcap's `vstore`: with `alter`, a statement that would store the
/// value already there becomes a NOP.
fn vstore(s: &mut Insn, slot: &mut ValId, v: ValId, alter: bool) -> bool {
    if alter && *slot == v {
        s.code = NOP;
        true
    } else {
        *slot = v;
        false
    }
}

/// libpcap's `opt_stmt`: the statement's symbolic effect; with `alter`,
/// rewrites using known constants. Returns whether it changed `s`.
fn opt_stmt(
    s: &mut Insn,
    val: &mut State,
    values: &mut Values,
    alter: bool,
) -> Result<bool, OptError> {
    let code = s.code;
    if code == NOP {
        return Ok(false);
    }
    let mut changed = false;
    match bpf::class(code) {
        bpf::LD => match bpf::mode(code) {
            bpf::ABS => {
                let v = values.f(code, s.k, 0);
                changed |= vstore(s, &mut val[A], v, alter);
            }
            bpf::IND => {
                let x = val[XR];
                let v = match values.konst(x) {
                    Some(c) if alter => {
                        *s = Insn::stmt(bpf::LD | bpf::ABS | bpf::size(code), s.k.wrapping_add(c));
                        changed = true;
                        values.f(s.code, s.k, 0)
                    }
                    _ => values.f(code, s.k, x),
                };
                changed |= vstore(s, &mut val[A], v, alter);
            }
            bpf::LEN => {
                let v = values.f(bpf::LD | bpf::W | bpf::LEN, 0, 0);
                changed |= vstore(s, &mut val[A], v, alter);
            }
            bpf::IMM => {
                let v = values.k(s.k);
                changed |= vstore(s, &mut val[A], v, alter);
            }
            bpf::MEM => {
                let v = val[s.k as usize % bpf::MEMWORDS];
                if alter && let Some(c) = values.konst(v) {
                    *s = Insn::stmt(bpf::LD | bpf::IMM, c);
                    changed = true;
                }
                changed |= vstore(s, &mut val[A], v, alter);
            }
            _ => {}
        },
        bpf::LDX => match bpf::mode(code) {
            bpf::IMM => {
                let v = values.k(s.k);
                changed |= vstore(s, &mut val[XR], v, alter);
            }
            bpf::MSH => {
                let v = values.f(code, s.k, 0);
                changed |= vstore(s, &mut val[XR], v, alter);
            }
            bpf::MEM => {
                let v = val[s.k as usize % bpf::MEMWORDS];
                if alter && let Some(c) = values.konst(v) {
                    *s = Insn::stmt(bpf::LDX | bpf::IMM, c);
                    changed = true;
                }
                changed |= vstore(s, &mut val[XR], v, alter);
            }
            bpf::LEN => {
                let v = values.f(bpf::LDX | bpf::W | bpf::LEN, 0, 0);
                changed |= vstore(s, &mut val[XR], v, alter);
            }
            _ => {}
        },
        bpf::ST => {
            let a = val[A];
            changed |= vstore(s, &mut val[s.k as usize % bpf::MEMWORDS], a, alter);
        }
        bpf::STX => {
            let x = val[XR];
            changed |= vstore(s, &mut val[s.k as usize % bpf::MEMWORDS], x, alter);
        }
        bpf::MISC => {
            if code == bpf::MISC | bpf::TAX {
                let a = val[A];
                changed |= vstore(s, &mut val[XR], a, alter);
            } else {
                let x = val[XR];
                changed |= vstore(s, &mut val[A], x, alter);
            }
        }
        bpf::ALU => {
            let op = bpf::op(code);
            if op == bpf::NEG {
                match values.konst(val[A]) {
                    Some(c) if alter => {
                        *s = Insn::stmt(bpf::LD | bpf::IMM, c.wrapping_neg());
                        val[A] = values.k(s.k);
                        changed = true;
                    }
                    _ => val[A] = values.f(code, val[A], 0),
                }
            } else if bpf::src(code) == bpf::K {
                if alter {
                    if s.k == 0 {
                        match op {
                            bpf::ADD | bpf::LSH | bpf::RSH | bpf::OR | bpf::XOR => {
                                s.code = NOP;
                                return Ok(true);
                            }
                            bpf::MUL | bpf::AND => {
                                *s = Insn::stmt(bpf::LD | bpf::IMM, 0);
                                val[A] = values.k(0);
                                return Ok(true);
                            }
                            bpf::DIV => return Err(OptError::DivisionByZero),
                            bpf::MOD => return Err(OptError::ModulusByZero),
                            _ => {}
                        }
                    }
                    if let Some(a) = values.konst(val[A]) {
                        let r = fold(op, a, s.k)?;
                        *s = Insn::stmt(bpf::LD | bpf::IMM, r);
                        val[A] = values.k(r);
                        return Ok(true);
                    }
                }
                let kv = values.k(s.k);
                val[A] = values.f(code, val[A], kv);
            } else {
                if alter && let Some(x) = values.konst(val[XR]) {
                    if let Some(a) = values.konst(val[A]) {
                        let r = fold(op, a, x)?;
                        *s = Insn::stmt(bpf::LD | bpf::IMM, r);
                        val[A] = values.k(r);
                    } else {
                        *s = Insn::stmt(bpf::ALU | op | bpf::K, x);
                        let kv = values.k(x);
                        val[A] = values.f(s.code, val[A], kv);
                    }
                    return Ok(true);
                }
                if alter && values.konst(val[A]) == Some(0) {
                    match op {
                        bpf::ADD | bpf::OR | bpf::XOR => {
                            *s = Insn::stmt(bpf::MISC | bpf::TXA, 0);
                            let x = val[XR];
                            vstore(s, &mut val[A], x, alter);
                            return Ok(true);
                        }
                        bpf::MUL | bpf::DIV | bpf::MOD | bpf::AND | bpf::LSH | bpf::RSH => {
                            *s = Insn::stmt(bpf::LD | bpf::IMM, 0);
                            let zero = values.k(0);
                            vstore(s, &mut val[A], zero, alter);
                            return Ok(true);
                        }
                        _ => {}
                    }
                }
                val[A] = values.f(code, val[A], val[XR]);
            }
        }
        _ => {}
    }
    Ok(changed)
}

/// libpcap's `opt_peep`. `st` holds the values at the end of the block.
fn peephole(block: &mut super::cfg::Block, out_use: AtomSet, st: &State, values: &Values) -> bool {
    // A block created without statements gets no peephole at all.
    if block.stmts.is_empty() {
        return false;
    }
    let next_live =
        |stmts: &[Insn], from: usize| (from..stmts.len()).find(|&i| stmts[i].code != NOP);
    let mut changed = false;
    let mut last = 0;
    let mut s_at = next_live(&block.stmts, 0);
    while let Some(s_idx) = s_at {
        let Some(n_idx) = next_live(&block.stmts, s_idx + 1) else {
            break;
        };
        last = n_idx;
        let s = block.stmts[s_idx];
        // st M[k]; ldx M[k] → st M[k]; tax
        if s.code == bpf::ST
            && block.stmts[n_idx].code == bpf::LDX | bpf::MEM
            && s.k == block.stmts[n_idx].k
        {
            block.stmts[n_idx] = Insn::stmt(bpf::MISC | bpf::TAX, 0);
            changed = true;
        }
        // ld #k; tax → ldx #k; txa
        if s.code == bpf::LD | bpf::IMM && block.stmts[n_idx].code == bpf::MISC | bpf::TAX {
            block.stmts[s_idx] = Insn::stmt(bpf::LDX | bpf::IMM, s.k);
            block.stmts[n_idx] = Insn::stmt(bpf::MISC | bpf::TXA, 0);
            changed = true;
        }
        // ld #k; [ldxb 4*([n]&0xf)]; add x; tax; ld [x+m] → [ldxb]; ld [x+m+k]
        if block.stmts[s_idx].code == bpf::LD | bpf::IMM && out_use & (1 << XR) == 0 {
            let k = block.stmts[s_idx].k;
            let add = if block.stmts[n_idx].code != bpf::LDX | bpf::MSH | bpf::B {
                Some(n_idx)
            } else {
                next_live(&block.stmts, n_idx + 1)
            };
            let add = add.filter(|&a| block.stmts[a].code == bpf::ALU | bpf::ADD | bpf::X);
            let tax = add
                .and_then(|a| next_live(&block.stmts, a + 1))
                .filter(|&t| block.stmts[t].code == bpf::MISC | bpf::TAX);
            let ild = tax
                .and_then(|t| next_live(&block.stmts, t + 1))
                .filter(|&l| {
                    bpf::class(block.stmts[l].code) == bpf::LD
                        && bpf::mode(block.stmts[l].code) == bpf::IND
                });
            if let (Some(add), Some(tax), Some(ild)) = (add, tax, ild) {
                block.stmts[ild].k = block.stmts[ild].k.wrapping_add(k);
                block.stmts[s_idx].code = NOP;
                block.stmts[add].code = NOP;
                block.stmts[tax].code = NOP;
                changed = true;
            }
        }
        s_at = next_live(&block.stmts, n_idx);
    }
    changed | peep_jump(block, out_use, st, values, last)
}

/// The jump part of `opt_peep`.
fn peep_jump(
    block: &mut super::cfg::Block,
    out_use: AtomSet,
    st: &State,
    values: &Values,
    last: usize,
) -> bool {
    let Exit::Branch {
        mut code,
        mut k,
        mut jt,
        mut jf,
    } = block.exit
    else {
        return false;
    };
    let before = block.exit.clone();
    let li = last;
    let last_was = block.stmts[li].code;
    if code == bpf::JMP | bpf::JEQ | bpf::K
        && out_use & (1 << A) == 0
        && block.stmts[li].code != NOP
    {
        let l = block.stmts[li];
        if l.code == bpf::ALU | bpf::SUB | bpf::X {
            if let Some(c) = values.konst(st[XR]) {
                k = k.wrapping_add(c);
                block.stmts[li].code = NOP;
            } else if k == 0 {
                block.stmts[li].code = NOP;
                code = bpf::JMP | bpf::JEQ | bpf::X;
            }
        } else if l.code == bpf::ALU | bpf::SUB | bpf::K {
            block.stmts[li].code = NOP;
            k = k.wrapping_add(l.k);
        } else if l.code == bpf::ALU | bpf::AND | bpf::K && k == 0 {
            k = l.k;
            code = bpf::JMP | bpf::JSET | bpf::K;
            block.stmts[li].code = NOP;
            std::mem::swap(&mut jt, &mut jf);
        }
    }
    if code == bpf::JMP | bpf::JSET | bpf::K {
        if k == 0 {
            jt = jf;
        }
        if k == u32::MAX {
            jf = jt;
        }
    }
    if bpf::src(code) == bpf::X
        && let Some(c) = values.konst(st[XR])
    {
        code &= !bpf::X;
        k = c;
    }
    if bpf::src(code) == bpf::K
        && let Some(a) = values.konst(st[A])
    {
        let taken = match bpf::op(code) {
            bpf::JEQ => a == k,
            bpf::JGT => a > k,
            bpf::JGE => a >= k,
            _ => a & k != 0,
        };
        if taken {
            jf = jt;
        } else {
            jt = jf;
        }
    }
    block.exit = Exit::Branch { code, k, jt, jf };
    block.exit != before || block.stmts[li].code != last_was
}

/// libpcap's `opt_deadstores`: a definition overwritten before any use, or
/// not used after the block, is removed.
fn dead_stores(block: &mut super::cfg::Block, out_use: AtomSet) -> bool {
    let mut changed = false;
    let mut last: [Option<usize>; ATOMS] = [None; ATOMS];
    let n = block.stmts.len();
    for i in 0..=n {
        let (u, d) = if i < n {
            use_def(&block.stmts[i])
        } else {
            (jump_uses(&block.exit), 0)
        };
        for (atom, slot) in last.iter_mut().enumerate() {
            if u & (1 << atom) != 0 {
                *slot = None;
            }
        }
        for (atom, slot) in last.iter_mut().enumerate() {
            if d & (1 << atom) != 0
                && let Some(prev) = slot.replace(i)
            {
                block.stmts[prev].code = NOP;
                changed = true;
            }
        }
    }
    for (atom, slot) in last.iter().enumerate() {
        if let Some(i) = slot
            && out_use & (1 << atom) == 0
        {
            block.stmts[*i].code = NOP;
            changed = true;
        }
    }
    changed
}

type Edge = (BlockId, bool);

/// An edge's number in the bit sets: two per block.
fn edge_id(e: Edge) -> usize {
    2 * e.0 + usize::from(!e.1)
}

fn edge_of(id: usize) -> Edge {
    (id / 2, id.is_multiple_of(2))
}

/// Edge dominators: for each edge, the set of edges on every path to it.
fn edge_dominators(cfg: &Cfg, sh: &Shape) -> Vec<Vec<u64>> {
    let words = (2 * cfg.blocks.len()).div_ceil(64).max(1);
    let mut edom: Vec<Vec<u64>> = vec![Vec::new(); 2 * cfg.blocks.len()];
    for &b in &sh.topo {
        let mut base: Option<Vec<u64>> = None;
        for &(p, taken) in &sh.preds[b] {
            let incoming = &edom[edge_id((p, taken))];
            base = Some(match base {
                None => incoming.clone(),
                Some(mut acc) => {
                    for (w, x) in acc.iter_mut().zip(incoming) {
                        *w &= x;
                    }
                    acc
                }
            });
        }
        let base = base.unwrap_or_else(|| vec![0; words]);
        let outs: &[bool] = match cfg.blocks[b].exit {
            Exit::Branch { .. } => &[true, false],
            Exit::Goto(_) => &[true],
            Exit::Ret(_) => &[],
        };
        for &taken in outs {
            let id = edge_id((b, taken));
            let mut set = base.clone();
            set[id / 64] |= 1 << (id % 64);
            edom[id] = set;
        }
    }
    edom
}

/// libpcap's `use_conflict`: moving an edge from `pred` past `skipped`
/// straight to `target` must not change a value `target` leaves for
/// later. Also (our blocks can hand values to their successor, libpcap's
/// cannot) `target` must not read what `skipped` computed.
fn use_conflict(
    sh: &Shape,
    vals: &[Option<BlockVals>],
    pred: BlockId,
    skipped: BlockId,
    target: BlockId,
) -> bool {
    if sh.defs[skipped] & sh.in_use[target] != 0 {
        return true;
    }
    let used = sh.out_use[target];
    if used == 0 {
        return false;
    }
    let (Some(p), Some(t)) = (&vals[pred], &vals[target]) else {
        return true;
    };
    (0..ATOMS).any(|atom| used & (1 << atom) != 0 && p.exit[atom] != t.exit[atom])
}

/// libpcap's `fold_edge`: where `child`'s jump goes, given that the jump
/// of `fact` went `taken`.
fn fold_edge(
    cfg: &Cfg,
    vals: &[Option<BlockVals>],
    values: &Values,
    child: BlockId,
    fact: Edge,
) -> Option<BlockId> {
    let Exit::Branch { code, jt, jf, .. } = cfg.blocks[child].exit else {
        return None;
    };
    let Exit::Branch { code: fcode, .. } = cfg.blocks[fact.0].exit else {
        return None;
    };
    if code != fcode {
        return None;
    }
    let c = vals[child].as_ref()?;
    let f = vals[fact.0].as_ref()?;
    if c.exit[A] != f.exit[A] || values.is_unknown(c.exit[A]) {
        return None;
    }
    if c.oval == f.oval {
        return Some(if fact.1 { jt } else { jf });
    }
    if fact.1 && code == bpf::JMP | bpf::JEQ | bpf::K {
        return Some(jf);
    }
    None
}

/// libpcap's `opt_j` for the edge of `b` that is `taken`.
fn opt_j(
    cfg: &mut Cfg,
    sh: &Shape,
    vals: &[Option<BlockVals>],
    values: &Values,
    edom: &[Vec<u64>],
    b: BlockId,
    taken: bool,
) -> bool {
    let current =
        |cfg: &Cfg| targets(&cfg.blocks[b].exit).map(|(jt, jf)| if taken { jt } else { jf });
    let Some(mut succ) = current(cfg) else {
        return false;
    };
    let mut changed = false;
    let Some((sjt, sjf)) = targets(&cfg.blocks[succ].exit) else {
        return false;
    };
    if sjt == sjf && !use_conflict(sh, vals, b, succ, sjt) {
        set_target(&mut cfg.blocks[b].exit, taken, sjt);
        succ = sjt;
        changed = true;
    }
    let facts: Vec<Edge> = edom[edge_id((b, taken))]
        .iter()
        .enumerate()
        .flat_map(|(w, word)| {
            (0..64)
                .filter(move |i| word & (1 << i) != 0)
                .map(move |i| edge_of(w * 64 + i))
        })
        .collect();
    let mut guard = 0;
    'top: loop {
        guard += 1;
        if guard > cfg.blocks.len() + 1 {
            break;
        }
        for &fact in &facts {
            let Some(target) = fold_edge(cfg, vals, values, succ, fact) else {
                continue;
            };
            if use_conflict(sh, vals, b, succ, target) {
                continue;
            }
            set_target(&mut cfg.blocks[b].exit, taken, target);
            changed = true;
            succ = target;
            if targets(&cfg.blocks[target].exit).is_some() {
                continue 'top;
            }
            break 'top;
        }
        break;
    }
    changed
}

/// A jump field: the true or false target of a block.
#[derive(Clone, Copy)]
struct Slot {
    block: BlockId,
    taken: bool,
}

fn read(cfg: &Cfg, s: Slot) -> Option<BlockId> {
    targets(&cfg.blocks[s.block].exit).map(|(jt, jf)| if s.taken { jt } else { jf })
}

/// libpcap's `or_pullup` (`and == false`) and `and_pullup`: in a chain of
/// tests joined by `or` (`and`), a later test of the value the chain
/// started with moves up before the first test of another value.
fn pullup(
    cfg: &mut Cfg,
    sh: &Shape,
    vals: &[Option<BlockVals>],
    index: &mut PredIndex,
    b: BlockId,
    and: bool,
) -> bool {
    // Fresh predecessors: earlier pull-ups of this pass moved edges.
    let preds = index.into[b].clone();
    if preds.is_empty() || sh.level[b] == usize::MAX {
        return false;
    }
    let exit_a = |blk: BlockId| vals[blk].as_ref().map(|v| v.exit[A]);
    let val = exit_a(preds[0].0);
    if val.is_none() || preds.iter().any(|&(p, _)| exit_a(p) != val) {
        return false;
    }
    // The chain follows false edges for `or`, true edges for `and`; every
    // member must share b's other target.
    let follow = and;
    let other = |cfg: &Cfg, blk: BlockId| {
        targets(&cfg.blocks[blk].exit).map(|(jt, jf)| if and { jf } else { jt })
    };
    let b_other = other(cfg, b);
    let first = preds[0];
    let mut diffp = Slot {
        block: first.0,
        taken: first.1,
    };
    let mut at_top = true;
    loop {
        let Some(d) = read(cfg, diffp) else {
            return false;
        };
        if targets(&cfg.blocks[d].exit).is_none() || other(cfg, d) != b_other {
            return false;
        }
        if !has_bit(&sh.dom[d], b) {
            return false;
        }
        if exit_a(d) != val {
            break;
        }
        diffp = Slot {
            block: d,
            taken: follow,
        };
        at_top = false;
    }
    let Some(diff) = read(cfg, diffp) else {
        return false;
    };
    let mut samep = Slot {
        block: diff,
        taken: follow,
    };
    loop {
        let Some(s) = read(cfg, samep) else {
            return false;
        };
        if targets(&cfg.blocks[s].exit).is_none() || other(cfg, s) != b_other {
            return false;
        }
        if !has_bit(&sh.dom[s], b) {
            return false;
        }
        if exit_a(s) == val {
            break;
        }
        samep = Slot {
            block: s,
            taken: follow,
        };
    }
    let Some(pull) = read(cfg, samep) else {
        return false;
    };
    if !matches!(cfg.blocks[pull].exit, Exit::Branch { .. })
        || matches!(cfg.blocks[samep.block].exit, Exit::Goto(_))
    {
        return false;
    }
    let Some(after_pull) = read(
        cfg,
        Slot {
            block: pull,
            taken: follow,
        },
    ) else {
        return false;
    };
    index.retarget(cfg, samep.block, samep.taken, after_pull);
    index.retarget(cfg, pull, follow, diff);
    if at_top {
        for (p, taken) in preds {
            index.retarget(cfg, p, taken, pull);
        }
    } else {
        index.retarget(cfg, diffp.block, diffp.taken, pull);
    }
    true
}

/// libpcap's `intern_blocks`: identical blocks become one.
fn intern_blocks(cfg: &mut Cfg) {
    loop {
        let order = cfg.order();
        let mut canon: HashMap<super::cfg::Block, BlockId> = HashMap::new();
        let mut replace: HashMap<BlockId, BlockId> = HashMap::new();
        for &b in &order {
            let block = cfg.blocks[b].clone();
            match canon.get(&block) {
                Some(&c) if c != b => {
                    replace.insert(b, c);
                }
                _ => {
                    canon.insert(block, b);
                }
            }
        }
        if replace.is_empty() {
            return;
        }
        for &b in &order {
            if let Some((jt, jf)) = targets(&cfg.blocks[b].exit) {
                if let Some(&r) = replace.get(&jt) {
                    set_target(&mut cfg.blocks[b].exit, true, r);
                }
                if !matches!(cfg.blocks[b].exit, Exit::Goto(_))
                    && let Some(&r) = replace.get(&jf)
                {
                    set_target(&mut cfg.blocks[b].exit, false, r);
                }
            }
        }
        if let Some(&r) = replace.get(&cfg.entry) {
            cfg.entry = r;
        }
    }
}

/// libpcap's `opt_root`: start at the first jump whose targets differ,
/// keeping the original root's statements; a `ret` needs none. The new
/// root is reached only through the skipped chain, so it can take them.
fn opt_root(cfg: &mut Cfg) {
    let root = cfg.entry;
    let mut stmts = std::mem::take(&mut cfg.blocks[root].stmts);
    let mut b = root;
    let mut guard = 0;
    while let Some((jt, jf)) = targets(&cfg.blocks[b].exit) {
        if jt != jf || guard > cfg.blocks.len() {
            break;
        }
        b = jt;
        guard += 1;
    }
    if b != root {
        stmts.extend(std::mem::take(&mut cfg.blocks[b].stmts));
    }
    if matches!(cfg.blocks[b].exit, Exit::Ret(_)) {
        stmts.clear();
    }
    cfg.blocks[b].stmts = stmts;
    cfg.entry = b;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_follows_libpcap() {
        assert_eq!(fold(bpf::LSH, 1, 32), Ok(0));
        assert_eq!(fold(bpf::SUB, 1, 2), Ok(u32::MAX));
        assert_eq!(fold(bpf::DIV, 1, 0), Err(OptError::DivisionByZero));
        assert_eq!(fold(bpf::MOD, 1, 0), Err(OptError::ModulusByZero));
    }
}
