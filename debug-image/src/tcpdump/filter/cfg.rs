//! The compiler's intermediate form: a graph of basic blocks, each a run of
//! straight-line BPF statements ending in a conditional jump, a jump, or a
//! return (libpcap's `struct block` and `struct slist`).
//!
//! Boolean structure is built the way libpcap's `gen_and`/`gen_or`/`gen_not`
//! build it, by backpatching: a [`Frag`] is a piece of program with one entry
//! and lists of dangling "true" and "false" exits; `and` sends the first
//! piece's true exits to the second piece, `or` its false exits, `not` swaps
//! the lists. [`Cfg::finish`] sends what is left to `ret #snaplen` and
//! `ret #0`. [`Cfg::linearize`] lays the blocks out as a BPF program, with
//! the long-jump trampolines classic BPF needs when a conditional target is
//! more than 255 instructions away.

use std::fmt;

use super::bpf::{self, Insn, Program};

pub type BlockId = usize;

/// Where a block's control goes when it ends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// `ret #k`
    Ret(u32),
    /// Unconditionally on.
    Goto(BlockId),
    /// A conditional jump: `code` is `JMP | op | src`.
    Branch {
        code: u16,
        k: u32,
        jt: BlockId,
        jf: BlockId,
    },
}

/// Not yet patched: a dangling exit of a [`Frag`].
pub const DANGLING: BlockId = usize::MAX;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Block {
    pub stmts: Vec<Insn>,
    pub exit: Exit,
}

/// One branch of a conditional block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hole {
    pub block: BlockId,
    pub taken: bool,
}

/// A piece of program with one entry and dangling true/false exits.
#[derive(Clone, Debug)]
pub struct Frag {
    pub entry: BlockId,
    pub trues: Vec<Hole>,
    pub falses: Vec<Hole>,
}

/// The graph of blocks; `entry` is where the program starts.
#[derive(Clone, Debug, Default)]
pub struct Cfg {
    pub blocks: Vec<Block>,
    pub entry: BlockId,
}

impl Cfg {
    pub fn add(&mut self, block: Block) -> BlockId {
        self.blocks.push(block);
        self.blocks.len() - 1
    }

    /// A test: `stmts`, then `code k` deciding true or false.
    pub fn test(&mut self, stmts: Vec<Insn>, code: u16, k: u32) -> Frag {
        let id = self.add(Block {
            stmts,
            exit: Exit::Branch {
                code,
                k,
                jt: DANGLING,
                jf: DANGLING,
            },
        });
        Frag {
            entry: id,
            trues: vec![Hole {
                block: id,
                taken: true,
            }],
            falses: vec![Hole {
                block: id,
                taken: false,
            }],
        }
    }

    fn patch(&mut self, holes: &[Hole], target: BlockId) {
        for h in holes {
            match &mut self.blocks[h.block].exit {
                Exit::Branch { jt, jf, .. } => {
                    if h.taken {
                        *jt = target;
                    } else {
                        *jf = target;
                    }
                }
                Exit::Goto(t) => *t = target,
                Exit::Ret(_) => {}
            }
        }
    }

    /// `a and b`: b runs only when a is true.
    pub fn and(&mut self, a: Frag, b: Frag) -> Frag {
        self.patch(&a.trues, b.entry);
        let mut falses = a.falses;
        falses.extend(b.falses);
        Frag {
            entry: a.entry,
            trues: b.trues,
            falses,
        }
    }

    /// `a or b`: b runs only when a is false.
    pub fn or(&mut self, a: Frag, b: Frag) -> Frag {
        self.patch(&a.falses, b.entry);
        let mut trues = a.trues;
        trues.extend(b.trues);
        Frag {
            entry: a.entry,
            trues,
            falses: b.falses,
        }
    }

    pub fn not(&mut self, a: Frag) -> Frag {
        Frag {
            entry: a.entry,
            trues: a.falses,
            falses: a.trues,
        }
    }

    /// Runs `stmts` before `frag`, in a block of their own.
    pub fn prepend(&mut self, stmts: Vec<Insn>, frag: Frag) -> Frag {
        if stmts.is_empty() {
            return frag;
        }
        let id = self.add(Block {
            stmts,
            exit: Exit::Goto(frag.entry),
        });
        Frag { entry: id, ..frag }
    }

    /// Sends the remaining exits to `ret #accept` and `ret #0`.
    pub fn finish(&mut self, frag: Frag, accept: u32) {
        let yes = self.add(Block {
            stmts: Vec::new(),
            exit: Exit::Ret(accept),
        });
        let no = self.add(Block {
            stmts: Vec::new(),
            exit: Exit::Ret(0),
        });
        self.patch(&frag.trues, yes);
        self.patch(&frag.falses, no);
        self.entry = frag.entry;
    }

    /// The blocks reachable from the entry, in an order where every jump
    /// goes forward (reverse postorder), true branches first, as libpcap lays
    /// them out.
    pub fn order(&self) -> Vec<BlockId> {
        let mut seen = vec![false; self.blocks.len()];
        let mut post = Vec::with_capacity(self.blocks.len());
        // Iterative DFS: (block, next successor index to visit).
        let mut stack: Vec<(BlockId, usize)> = vec![(self.entry, 0)];
        seen[self.entry] = true;
        while let Some((b, i)) = stack.pop() {
            // Visit jf first so that jt comes first in reverse postorder,
            // as in libpcap's layout.
            let succ: Vec<BlockId> = match self.blocks[b].exit {
                Exit::Ret(_) => Vec::new(),
                Exit::Goto(t) => vec![t],
                Exit::Branch { jt, jf, .. } => vec![jf, jt],
            };
            if i < succ.len() {
                stack.push((b, i + 1));
                let s = succ[i];
                if !seen[s] {
                    seen[s] = true;
                    stack.push((s, 0));
                }
            } else {
                post.push(b);
            }
        }
        post.reverse();
        post
    }

    /// Lays the graph out as a BPF program.
    pub fn linearize(&self) -> Program {
        let order = self.order();
        let mut position = vec![usize::MAX; self.blocks.len()];
        // Branches whose target is too far for an 8-bit offset get a `ja`
        // right after the conditional jump. Once needed, always needed, so
        // this converges.
        let mut far_jt = vec![false; self.blocks.len()];
        let mut far_jf = vec![false; self.blocks.len()];
        let mut next_of = vec![None; self.blocks.len()];
        for w in order.windows(2) {
            next_of[w[0]] = Some(w[1]);
        }
        loop {
            let mut at = 0;
            for &b in &order {
                position[b] = at;
                at += self.block_len(b, next_of[b], far_jt[b], far_jf[b]);
            }
            let mut changed = false;
            for &b in &order {
                if let Exit::Branch { jt, jf, .. } = self.blocks[b].exit {
                    let base = position[b] + self.blocks[b].stmts.len() + 1;
                    if !far_jt[b] && position[jt] - base > 255 {
                        far_jt[b] = true;
                        changed = true;
                    }
                    if !far_jf[b] && position[jf] - base > 255 {
                        far_jf[b] = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let mut insns = Vec::new();
        for (n, &b) in order.iter().enumerate() {
            let block = &self.blocks[b];
            debug_assert_eq!(insns.len(), position[b]);
            insns.extend_from_slice(&block.stmts);
            let next = order.get(n + 1).copied();
            match block.exit {
                Exit::Ret(k) => insns.push(Insn::stmt(bpf::RET | bpf::K, k)),
                Exit::Goto(t) => {
                    if Some(t) != next {
                        let from = insns.len() + 1;
                        insns.push(Insn::stmt(bpf::JMP | bpf::JA, (position[t] - from) as u32));
                    }
                }
                Exit::Branch { code, k, jt, jf } => {
                    let here = insns.len();
                    let base = here + 1;
                    let mut tramp = base;
                    let jt_off = if far_jt[b] {
                        let t = tramp - base;
                        tramp += 1;
                        t
                    } else {
                        position[jt] - base
                    };
                    let jf_off = if far_jf[b] {
                        tramp - base
                    } else {
                        position[jf] - base
                    };
                    insns.push(Insn {
                        code,
                        jt: jt_off as u8,
                        jf: jf_off as u8,
                        k,
                    });
                    if far_jt[b] {
                        let from = insns.len() + 1;
                        insns.push(Insn::stmt(bpf::JMP | bpf::JA, (position[jt] - from) as u32));
                    }
                    if far_jf[b] {
                        let from = insns.len() + 1;
                        insns.push(Insn::stmt(bpf::JMP | bpf::JA, (position[jf] - from) as u32));
                    }
                }
            }
        }
        Program { insns }
    }

    fn block_len(&self, b: BlockId, next: Option<BlockId>, far_jt: bool, far_jf: bool) -> usize {
        let block = &self.blocks[b];
        let exit = match block.exit {
            Exit::Ret(_) => 1,
            Exit::Goto(t) => usize::from(Some(t) != next),
            Exit::Branch { .. } => 1 + usize::from(far_jt) + usize::from(far_jf),
        };
        block.stmts.len() + exit
    }
}

/// The graph, block by block, for `--debug-filter`.
impl fmt::Display for Cfg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.order() {
            let block = &self.blocks[b];
            writeln!(f, "B{b}:")?;
            for s in &block.stmts {
                writeln!(f, "    {}", bpf::image(s, 0).trim_start_matches("(000) "))?;
            }
            match block.exit {
                Exit::Ret(k) => writeln!(f, "    ret #{k}")?,
                Exit::Goto(t) => writeln!(f, "    goto B{t}")?,
                Exit::Branch { code, k, jt, jf } => {
                    let text = bpf::image(&Insn::stmt(code, k), 0);
                    let text = text.trim_start_matches("(000) ");
                    let text = text.split("jt").next().unwrap_or("").trim_end();
                    writeln!(f, "    {text} ? B{jt} : B{jf}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcpdump::filter::bpf::{ABS, H, JEQ, JMP, K, LD, Metadata};

    fn eq_test(cfg: &mut Cfg, off: u32, v: u32) -> Frag {
        cfg.test(vec![Insn::stmt(LD | H | ABS, off)], JMP | JEQ | K, v)
    }

    #[test]
    fn backpatching_builds_and_or_not() {
        // (ldh[0]==1 or ldh[2]==2) and not ldh[4]==3
        let mut cfg = Cfg::default();
        let a = eq_test(&mut cfg, 0, 1);
        let b = eq_test(&mut cfg, 2, 2);
        let c = eq_test(&mut cfg, 4, 3);
        let ab = cfg.or(a, b);
        let nc = cfg.not(c);
        let all = cfg.and(ab, nc);
        cfg.finish(all, 100);
        let prog = cfg.linearize();
        prog.validate().unwrap();
        let run = |p: [u8; 6]| prog.run(&p, 6, &Metadata::default());
        assert_eq!(run([0, 1, 0, 0, 0, 0]), 100);
        assert_eq!(run([0, 0, 0, 2, 0, 0]), 100);
        assert_eq!(run([0, 1, 0, 0, 0, 3]), 0);
        assert_eq!(run([0, 0, 0, 0, 0, 0]), 0);
    }

    #[test]
    fn far_targets_get_long_jumps() {
        // One test whose false branch skips 600 tests ORed after it.
        let mut cfg = Cfg::default();
        let mut f = eq_test(&mut cfg, 0, 1);
        let first = f.entry;
        let mut rest = eq_test(&mut cfg, 2, 0);
        for i in 0..600 {
            let t = eq_test(&mut cfg, 2, i + 1);
            rest = cfg.or(rest, t);
        }
        f = cfg.and(f, rest);
        assert_eq!(f.entry, first);
        cfg.finish(f, 1);
        let prog = cfg.linearize();
        prog.validate().unwrap();
        assert!(prog.insns.iter().any(|i| i.code == JMP | bpf::JA));
        assert_eq!(prog.run(&[0, 1, 0, 0], 4, &Metadata::default()), 1);
        assert_eq!(prog.run(&[0, 1, 2, 88], 4, &Metadata::default()), 1);
        assert_eq!(prog.run(&[0, 2, 0, 0], 4, &Metadata::default()), 0);
        assert_eq!(prog.run(&[0, 1, 9, 9], 4, &Metadata::default()), 0);
    }
}
