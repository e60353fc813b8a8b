//! A classic BPF interpreter for the tests, independent of the agent's:
//! it runs libpcap's programs and the agent's side by side on the same
//! frames, with the Linux packet metadata (VLAN tag, packet type) a live
//! capture's ancillary loads read. Semantics of libpcap's `bpf_filter`.

/// `-ddd` output → instructions (code, jt, jf, k).
pub fn parse_ddd(text: &str) -> Vec<(u16, u8, u8, u32)> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let count: usize = lines.next().expect("a count line").trim().parse().unwrap();
    let prog: Vec<(u16, u8, u8, u32)> = lines
        .map(|l| {
            let f: Vec<u32> = l.split_whitespace().map(|w| w.parse().unwrap()).collect();
            (f[0] as u16, f[1] as u8, f[2] as u8, f[3])
        })
        .collect();
    assert_eq!(prog.len(), count, "-ddd count line disagrees");
    prog
}

/// What the kernel knows about a packet besides its bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Meta {
    pub vlan_tci: Option<u16>,
    pub pkttype: u32,
    pub protocol: u32,
}

const SKF_AD_OFF: u32 = 0xffff_f000;

fn ancillary(k: u32, m: &Meta) -> u32 {
    match k.wrapping_sub(SKF_AD_OFF) {
        0 => m.protocol,
        4 => m.pkttype,
        44 => u32::from(m.vlan_tci.unwrap_or(0)),
        48 => u32::from(m.vlan_tci.is_some()),
        _ => 0,
    }
}

fn load(data: &[u8], at: u32, len: usize) -> Option<u32> {
    let at = at as usize;
    let b = data.get(at..at.checked_add(len)?)?;
    Some(b.iter().fold(0, |v, x| (v << 8) | u32::from(*x)))
}

/// Runs `prog` on a packet; true if it is accepted.
pub fn accepts(prog: &[(u16, u8, u8, u32)], data: &[u8], wire: u32, m: &Meta) -> bool {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    while let Some(&(code, jt, jf, k)) = prog.get(pc) {
        pc += 1;
        let size = match code & 0x18 {
            0x00 => 4,
            0x08 => 2,
            _ => 1,
        };
        match code & 0x07 {
            0x06 => return (if code & 0x18 == 0x10 { a } else { k }) != 0,
            0x00 => {
                a = match code & 0xe0 {
                    0x00 => k,
                    0x20 if k >= SKF_AD_OFF => ancillary(k, m),
                    0x20 => match load(data, k, size) {
                        Some(v) => v,
                        None => return false,
                    },
                    0x40 => match x.checked_add(k).and_then(|at| load(data, at, size)) {
                        Some(v) => v,
                        None => return false,
                    },
                    0x60 => mem[k as usize % 16],
                    0x80 => wire,
                    _ => return false,
                }
            }
            0x01 => {
                x = match code & 0xe0 {
                    0x00 => k,
                    0x60 => mem[k as usize % 16],
                    0x80 => wire,
                    0xa0 => match data.get(k as usize) {
                        Some(b) => u32::from(b & 0xf) << 2,
                        None => return false,
                    },
                    _ => return false,
                }
            }
            0x02 => mem[k as usize % 16] = a,
            0x03 => mem[k as usize % 16] = x,
            0x04 => {
                let b = if code & 0x08 != 0 { x } else { k };
                a = match code & 0xf0 {
                    0x00 => a.wrapping_add(b),
                    0x10 => a.wrapping_sub(b),
                    0x20 => a.wrapping_mul(b),
                    0x30 => match a.checked_div(b) {
                        Some(v) => v,
                        None => return false,
                    },
                    0x40 => a | b,
                    0x50 => a & b,
                    0x60 => a.checked_shl(b).unwrap_or(0),
                    0x70 => a.checked_shr(b).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => match a.checked_rem(b) {
                        Some(v) => v,
                        None => return false,
                    },
                    0xa0 => a ^ b,
                    _ => return false,
                }
            }
            0x05 => {
                if code & 0xf0 == 0x00 {
                    pc += k as usize;
                    continue;
                }
                let b = if code & 0x08 != 0 { x } else { k };
                let taken = match code & 0xf0 {
                    0x10 => a == b,
                    0x20 => a > b,
                    0x30 => a >= b,
                    0x40 => a & b != 0,
                    _ => return false,
                };
                pc += usize::from(if taken { jt } else { jf });
            }
            _ => {
                if code == 0x07 {
                    x = a;
                } else {
                    a = x;
                }
            }
        }
    }
    false
}
