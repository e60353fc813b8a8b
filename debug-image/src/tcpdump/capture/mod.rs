//! Live capture: an AF_PACKET socket with a TPACKET_V3 memory-mapped ring
//! and the filter running in the kernel.
//!
//! Written here rather than taken from a crate: the Rust AF_PACKET crates
//! either read one packet per `recvfrom` (no ring), support only TPACKET_V1/
//! V2, cannot attach a classic BPF program, or read the shared ring through
//! unchecked casts of kernel-written offsets. The ring is small enough to
//! own: [`sys`] holds every system call that needs `unsafe`, [`ring`]
//! checks each offset the kernel writes before following it.
//!
//! The order of the setup matters. The socket is created for protocol 0,
//! which receives nothing; the filter is attached, the ring mapped,
//! promiscuous mode set; only then does `bind` to the interface and
//! `ETH_P_ALL` start reception. So no packet outside the filter is ever
//! queued for us, not even during startup (libpcap instead drains the
//! socket after attaching).
//!
//! `-i any` uses SOCK_DGRAM and builds the 16-byte Linux cooked header
//! (LINKTYPE_LINUX_SLL) from the ring's `sockaddr_ll`, as libpcap does. The
//! kernel runs filters on the data without that header, so the program
//! compiled for SLL is translated like libpcap's `fix_program`: offsets
//! past the header move back 16 bytes, the packet type and protocol fields
//! become ancillary loads; a program reading other header bytes runs in
//! user space instead (libpcap's fallback too). On Ethernet the kernel has
//! usually moved the outer VLAN tag into metadata: the filter is compiled
//! to test it there, and the tag is put back into the frame for printing
//! and pcap files.

pub mod iface;
mod ring;
mod sys;

use std::io;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::filter::LinkType;
use super::filter::bpf::{self, Insn, Program};
use super::savefile::Frame;
use ring::{RingPacket, TP_STATUS_VLAN_TPID_VALID, TP_STATUS_VLAN_VALID};

/// `sll_pkttype` of packets we sent.
pub const PACKET_OUTGOING: u8 = 4;
/// Length of the Linux cooked header.
const SLL_HDR_LEN: usize = 16;

/// What to capture and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// `None` (or "any"): every interface.
    pub interface: Option<String>,
    pub snaplen: u32,
    pub promiscuous: bool,
    /// Ring size in bytes.
    pub buffer_bytes: usize,
    pub immediate: bool,
}

/// Why opening the capture failed, for the caller to phrase.
#[derive(Debug)]
pub enum OpenError {
    NoSuchInterface(String),
    /// socket(AF_PACKET) or the promiscuous setting was refused.
    NotPermitted(io::Error),
    /// The kernel refused the filter program.
    FilterRefused(io::Error, usize),
    Other(String),
}

/// A packet from the ring (or rebuilt next to it), with what `-Q` needs.
#[derive(Debug)]
pub struct Captured<'a> {
    pub frame: Frame<'a>,
    pub outgoing: bool,
}

/// Packets the kernel counted since the capture started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Passed the filter (including those dropped for lack of room).
    pub received: u64,
    pub dropped: u64,
}

pub struct Capture {
    fd: OwnedFd,
    ring: ring::Ring,
    link: LinkType,
    loopback: Option<i32>,
    /// Set when the program cannot run in the kernel (`-i any` reading the
    /// cooked header): applied here instead.
    userspace: Option<Program>,
    stats: Stats,
    /// Where a frame is rebuilt when it is not the ring's bytes as they are
    /// (cooked header, VLAN tag put back): reused, never reallocated.
    scratch: Vec<u8>,
    /// How long the kernel may hold a partly filled block.
    pub retire: Duration,
}

/// The link type a capture on `interface` delivers.
pub fn link_type(interface: Option<&str>) -> LinkType {
    match interface {
        None | Some("any") => LinkType::LinuxSll,
        Some(_) => LinkType::Ethernet,
    }
}

impl Capture {
    /// Opens the capture with `program` (compiled for [`link_type`]).
    pub fn open(opts: &Options, program: &Program) -> Result<Capture, OpenError> {
        let any = matches!(opts.interface.as_deref(), None | Some("any"));
        let ifindex = match opts.interface.as_deref() {
            None | Some("any") => 0,
            Some(name) => nix::net::if_::if_nametoindex(name)
                .map_err(|_| OpenError::NoSuchInterface(name.to_owned()))?
                as i32,
        };
        let link = if any {
            LinkType::LinuxSll
        } else {
            LinkType::Ethernet
        };
        let loopback = iface::list()
            .ok()
            .and_then(|l| l.into_iter().find(|i| i.loopback).map(|i| i.index as i32));

        let fd = sys::packet_socket(any).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => OpenError::NotPermitted(e),
            _ => OpenError::Other(format!("socket(AF_PACKET): {e}")),
        })?;

        // The filter first: nothing can be received before it is in place.
        let (kernel, userspace) = if any {
            match cooked_program(program) {
                Some(p) => (p, None),
                None => (accept_all(opts.snaplen), Some(program.clone())),
            }
        } else {
            (program.clone(), None)
        };
        sys::attach_filter(fd.as_raw_fd(), &kernel.insns)
            .map_err(|e| OpenError::FilterRefused(e, kernel.insns.len()))?;

        let (block_size, block_nr) = ring_shape(opts.snaplen, opts.buffer_bytes);
        let frame_size: u32 = 2048;
        let retire = if opts.immediate { 1 } else { 100 };
        let req = sys::TpacketReq3 {
            block_size: block_size as u32,
            block_nr: block_nr as u32,
            frame_size,
            frame_nr: (block_size as u32 / frame_size) * block_nr as u32,
            retire_blk_tov: retire,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        let other = |what: &str, e: io::Error| OpenError::Other(format!("{what}: {e}"));
        sys::set_version_v3(&fd).map_err(|e| other("PACKET_VERSION TPACKET_V3", e))?;
        sys::set_rx_ring(&fd, &req).map_err(|e| other("PACKET_RX_RING", e))?;
        let map = sys::Mapping::new(&fd, block_size * block_nr)
            .map_err(|e| other("mapping the capture ring", e))?;
        if opts.promiscuous && !any {
            sys::add_promiscuous(&fd, ifindex).map_err(|e| match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => OpenError::NotPermitted(e),
                _ => other("promiscuous mode", e),
            })?;
        }
        sys::bind_link(&fd, ifindex).map_err(|e| match e.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) => {
                OpenError::NoSuchInterface(opts.interface.clone().unwrap_or_else(|| "any".into()))
            }
            _ => other("bind", e),
        })?;
        Ok(Capture {
            fd,
            ring: ring::Ring::new(map, block_size, block_nr),
            link,
            loopback,
            userspace,
            stats: Stats::default(),
            scratch: Vec::with_capacity(opts.snaplen as usize + SLL_HDR_LEN + 4),
            retire: Duration::from_millis(u64::from(retire)),
        })
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Whether the filter runs in user space (see the module doc).
    pub fn filters_in_userspace(&self) -> bool {
        self.userspace.is_some()
    }

    /// Hands every packet of every ready block to `each`, until it breaks.
    pub fn read_ready(
        &mut self,
        mut each: impl FnMut(Captured<'_>) -> ControlFlow<()>,
    ) -> io::Result<ControlFlow<()>> {
        let Capture {
            ring,
            link,
            loopback,
            userspace,
            scratch,
            ..
        } = self;
        loop {
            let flow = ring.next_block(|p| {
                // Loopback shows each packet twice, going out and coming in.
                if p.pkttype == PACKET_OUTGOING && Some(p.ifindex) == *loopback {
                    return ControlFlow::Continue(());
                }
                let frame = frame(*link, p, scratch);
                if let Some(prog) = userspace.as_ref()
                    && !prog.matches(frame.data, frame.orig_len)
                {
                    return ControlFlow::Continue(());
                }
                each(Captured {
                    frame,
                    outgoing: p.pkttype == PACKET_OUTGOING,
                })
            })?;
            match flow {
                None => return Ok(ControlFlow::Continue(())),
                Some(ControlFlow::Break(())) => return Ok(ControlFlow::Break(())),
                Some(ControlFlow::Continue(())) => {}
            }
        }
    }

    /// The kernel's counts so far (PACKET_STATISTICS, accumulated: the
    /// kernel resets them on every read).
    pub fn stats(&mut self) -> io::Result<Stats> {
        let s = sys::take_stats(&self.fd)?;
        self.stats.received += u64::from(s.packets);
        self.stats.dropped += u64::from(s.drops);
        Ok(self.stats)
    }
}

/// Blocks big enough for one packet of `snaplen` bytes (a power of two, at
/// least 64 KiB), as many as fit in `buffer` (at least 2).
fn ring_shape(snaplen: u32, buffer: usize) -> (usize, usize) {
    let need = snaplen as usize + 256;
    let block = need.max(64 * 1024).next_power_of_two();
    let count = (buffer / block).max(2);
    (block, count)
}

/// `ret #snaplen`: what the kernel runs when the real filter must run here.
fn accept_all(snaplen: u32) -> Program {
    Program {
        insns: vec![Insn::stmt(bpf::RET | bpf::K, snaplen)],
    }
}

/// libpcap's `fix_program` for cooked sockets: the kernel's data starts at
/// the network header, 16 bytes later than the SLL frame the program was
/// compiled for. `None` if the program reads cooked-header bytes other than
/// the packet type (0) and protocol (14).
pub fn cooked_program(program: &Program) -> Option<Program> {
    let mut out = program.clone();
    for insn in &mut out.insns {
        let class = bpf::class(insn.code);
        if class != bpf::LD && class != bpf::LDX {
            continue;
        }
        if !matches!(bpf::mode(insn.code), bpf::ABS | bpf::IND | bpf::MSH) {
            continue;
        }
        insn.k = match insn.k {
            k if k >= bpf::SKF_AD_OFF => k,
            k if k >= SLL_HDR_LEN as u32 => k - SLL_HDR_LEN as u32,
            0 => bpf::SKF_AD_OFF + bpf::SKF_AD_PKTTYPE,
            14 => bpf::SKF_AD_OFF + bpf::SKF_AD_PROTOCOL,
            _ => return None,
        };
    }
    Some(out)
}

/// The frame as it goes to the printer and the pcap file: the link-layer
/// header the capture's link type promises, with the VLAN tag the kernel
/// took out put back. The ring's bytes themselves when nothing needs
/// adding (an untagged Ethernet frame), else rebuilt in `scratch`.
fn frame<'a>(link: LinkType, p: &RingPacket<'a>, scratch: &'a mut Vec<u8>) -> Frame<'a> {
    let ts = Duration::new(u64::from(p.sec), p.nsec.min(999_999_999));
    let tagged = p.status & TP_STATUS_VLAN_VALID != 0;
    if link == LinkType::Ethernet && (!tagged || p.data.len() < 12) {
        return Frame {
            ts,
            orig_len: p.len,
            data: p.data,
        };
    }
    scratch.clear();
    let mut orig_len = p.len;
    let tag_at = match link {
        LinkType::Ethernet => {
            scratch.extend_from_slice(p.data);
            12
        }
        LinkType::LinuxSll => {
            scratch.extend_from_slice(&u16::from(p.pkttype).to_be_bytes());
            scratch.extend_from_slice(&p.hatype.to_be_bytes());
            scratch.extend_from_slice(&u16::from(p.halen).to_be_bytes());
            scratch.extend_from_slice(&p.addr);
            scratch.extend_from_slice(&p.protocol.to_be_bytes());
            scratch.extend_from_slice(p.data);
            orig_len += SLL_HDR_LEN as u32;
            14
        }
    };
    if tagged && scratch.len() >= tag_at {
        let tpid = if p.status & TP_STATUS_VLAN_TPID_VALID != 0 && p.vlan_tpid != 0 {
            p.vlan_tpid
        } else {
            0x8100
        };
        let mut tag = [0u8; 4];
        tag[..2].copy_from_slice(&tpid.to_be_bytes());
        tag[2..].copy_from_slice(&p.vlan_tci.to_be_bytes());
        scratch.splice(tag_at..tag_at, tag);
        orig_len += 4;
    }
    Frame {
        ts,
        orig_len,
        data: scratch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_bounded_and_fits_a_packet() {
        assert_eq!(ring_shape(262_144, 4 << 20), (512 * 1024, 8));
        assert_eq!(ring_shape(96, 4 << 20), (64 * 1024, 64));
        assert_eq!(ring_shape(262_144, 1024), (512 * 1024, 2));
    }

    #[test]
    fn cooked_programs_move_to_the_network_header() {
        let p = Program {
            insns: vec![
                Insn::stmt(bpf::LD | bpf::H | bpf::ABS, 14),
                Insn::stmt(bpf::LD | bpf::B | bpf::ABS, 25),
                Insn::stmt(bpf::LDX | bpf::MSH | bpf::B, 16),
                Insn::stmt(bpf::LD | bpf::H | bpf::ABS, 0),
                Insn::stmt(bpf::RET | bpf::K, 1),
            ],
        };
        let fixed = cooked_program(&p).unwrap();
        assert_eq!(fixed.insns[0].k, bpf::SKF_AD_OFF + bpf::SKF_AD_PROTOCOL);
        assert_eq!(fixed.insns[1].k, 9);
        assert_eq!(fixed.insns[2].k, 0);
        assert_eq!(fixed.insns[3].k, bpf::SKF_AD_OFF + bpf::SKF_AD_PKTTYPE);
        let reads_address = Program {
            insns: vec![
                Insn::stmt(bpf::LD | bpf::W | bpf::ABS, 6),
                Insn::stmt(bpf::RET | bpf::K, 1),
            ],
        };
        assert!(cooked_program(&reads_address).is_none());
    }
}
