//! The TPACKET_V3 receive ring: blocks of packets the kernel fills and
//! hands to user space, read in place and handed back.
//!
//! Layout (linux/if_packet.h): each block starts with `tpacket_block_desc`
//! (status, packet count, offset of the first packet); each packet with
//! `tpacket3_hdr` (next offset, time, lengths, status, data offset, VLAN
//! tag) followed by a `sockaddr_ll` (interface, packet type, protocol,
//! link-layer address). All offsets read from the ring are checked
//! against the block before use: a corrupt ring yields an error, never a
//! read outside the mapping.

use std::io;
use std::ops::ControlFlow;

use super::sys::Mapping;

// tpacket_block_desc / tpacket_hdr_v1
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;

// tpacket3_hdr
const PKT_NEXT_OFFSET: usize = 0;
const PKT_SEC: usize = 4;
const PKT_NSEC: usize = 8;
const PKT_SNAPLEN: usize = 12;
const PKT_LEN: usize = 16;
const PKT_STATUS: usize = 20;
const PKT_MAC: usize = 24;
const PKT_VLAN_TCI: usize = 32;
const PKT_VLAN_TPID: usize = 36;
/// TPACKET_ALIGN(sizeof(struct tpacket3_hdr)): where the sockaddr_ll is.
const PKT_SLL: usize = 48;
/// sockaddr_ll fields, relative to it.
const SLL_PROTOCOL: usize = 2;
const SLL_IFINDEX: usize = 4;
const SLL_HATYPE: usize = 8;
const SLL_PKTTYPE: usize = 10;
const SLL_HALEN: usize = 11;
const SLL_ADDR: usize = 12;
const SLL_END: usize = 20;

pub const TP_STATUS_KERNEL: u32 = 0;
pub const TP_STATUS_USER: u32 = 1;
pub const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
pub const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// One packet as the ring describes it; `data` points into the ring.
#[derive(Debug)]
pub struct RingPacket<'a> {
    pub sec: u32,
    pub nsec: u32,
    /// Length on the wire.
    pub len: u32,
    pub status: u32,
    pub data: &'a [u8],
    pub pkttype: u8,
    pub ifindex: i32,
    /// EtherType the kernel saw (host order).
    pub protocol: u16,
    pub hatype: u16,
    pub addr: [u8; 8],
    pub halen: u8,
    pub vlan_tci: u16,
    pub vlan_tpid: u16,
}

pub struct Ring {
    map: Mapping,
    block_size: usize,
    block_nr: usize,
    next: usize,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Ring {
    pub fn new(map: Mapping, block_size: usize, block_nr: usize) -> Ring {
        Ring {
            map,
            block_size,
            block_nr,
            next: 0,
        }
    }

    /// Whether the kernel has handed over the next block.
    pub fn ready(&self) -> bool {
        let base = self.next * self.block_size;
        self.map
            .load_u32(base + BLOCK_STATUS)
            .is_some_and(|s| s & TP_STATUS_USER != 0)
    }

    /// Walks the packets of the next block if the kernel has handed it
    /// over, then hands it back. `None`: no block is ready. A `Break` from
    /// `each` ends the walk; the rest of the block is dropped.
    pub fn next_block(
        &mut self,
        mut each: impl FnMut(&RingPacket<'_>) -> ControlFlow<()>,
    ) -> io::Result<Option<ControlFlow<()>>> {
        if !self.ready() {
            return Ok(None);
        }
        let base = self.next * self.block_size;
        let corrupt = || io::Error::other("the capture ring holds a malformed block");
        let block = self
            .map
            .bytes(base, self.block_size)
            .filter(|_| base + self.block_size <= self.map.len())
            .ok_or_else(corrupt)?;
        let count = u32_at(block, BLOCK_NUM_PKTS);
        let mut off = u32_at(block, BLOCK_FIRST_PKT) as usize;
        let mut flow = ControlFlow::Continue(());
        for _ in 0..count {
            let hdr = block
                .get(off..off + PKT_SLL + SLL_END)
                .ok_or_else(corrupt)?;
            let mac = usize::from(u16_at(hdr, PKT_MAC));
            let snaplen = u32_at(hdr, PKT_SNAPLEN) as usize;
            let data = block
                .get(off + mac..off + mac + snaplen)
                .ok_or_else(corrupt)?;
            let sll = &hdr[PKT_SLL..];
            let mut addr = [0u8; 8];
            addr.copy_from_slice(&sll[SLL_ADDR..SLL_END]);
            let packet = RingPacket {
                sec: u32_at(hdr, PKT_SEC),
                nsec: u32_at(hdr, PKT_NSEC),
                len: u32_at(hdr, PKT_LEN),
                status: u32_at(hdr, PKT_STATUS),
                data,
                pkttype: sll[SLL_PKTTYPE],
                ifindex: u32_at(sll, SLL_IFINDEX) as i32,
                protocol: u16::from_be(u16_at(sll, SLL_PROTOCOL)),
                hatype: u16_at(sll, SLL_HATYPE),
                addr,
                halen: sll[SLL_HALEN],
                vlan_tci: u32_at(hdr, PKT_VLAN_TCI) as u16,
                vlan_tpid: u16_at(hdr, PKT_VLAN_TPID),
            };
            flow = each(&packet);
            if flow.is_break() {
                break;
            }
            let next = u32_at(hdr, PKT_NEXT_OFFSET) as usize;
            if next == 0 {
                break;
            }
            off += next;
        }
        self.map.store_u32(base + BLOCK_STATUS, TP_STATUS_KERNEL);
        self.next = (self.next + 1) % self.block_nr;
        Ok(Some(flow))
    }
}
