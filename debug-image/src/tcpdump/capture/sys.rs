//! The system calls of packet capture that no safe wrapper offers: the
//! AF_PACKET socket options, `bind` to a link-layer address, and the
//! memory mapping of the receive ring. Every `unsafe` of the capture code
//! is here, one small function per call, each with its SAFETY argument.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use crate::tcpdump::filter::bpf::Insn;

pub const SOL_PACKET: libc::c_int = 263;
pub const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
pub const PACKET_RX_RING: libc::c_int = 5;
pub const PACKET_STATISTICS: libc::c_int = 6;
pub const PACKET_VERSION: libc::c_int = 10;
pub const TPACKET_V3: libc::c_int = 2;
pub const PACKET_MR_PROMISC: u16 = 1;
pub const ETH_P_ALL: u16 = 0x0003;

/// `struct tpacket_req3`: the shape of the ring.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TpacketReq3 {
    pub block_size: u32,
    pub block_nr: u32,
    pub frame_size: u32,
    pub frame_nr: u32,
    pub retire_blk_tov: u32,
    pub sizeof_priv: u32,
    pub feature_req_word: u32,
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TpacketStatsV3 {
    pub packets: u32,
    pub drops: u32,
    pub freeze_q_cnt: u32,
}

/// `struct packet_mreq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct PacketMreq {
    ifindex: i32,
    kind: u16,
    alen: u16,
    address: [u8; 8],
}

/// `struct sock_fprog`.
#[repr(C)]
#[derive(Clone, Copy)]
struct SockFprog {
    len: u16,
    filter: *const Insn,
}

/// An AF_PACKET socket that receives nothing yet: protocol 0 until
/// [`bind_link`] names the interface and `ETH_P_ALL`, so no packet can
/// arrive before the filter is attached. `cooked`: SOCK_DGRAM (the
/// link-layer header removed, for `-i any`) instead of SOCK_RAW.
pub fn packet_socket(cooked: bool) -> io::Result<OwnedFd> {
    let kind = if cooked {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_RAW
    };
    // SAFETY: socket(2) takes plain integers and returns a new descriptor
    // or -1; nothing is borrowed.
    #[allow(unsafe_code)]
    let fd = unsafe { libc::socket(libc::AF_PACKET, kind | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is open, and nothing
    // else owns it.
    #[allow(unsafe_code)]
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// setsockopt(2) with a plain-data value.
fn set_opt<T: Copy>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points at a live `T` of exactly the size passed, for
    // the duration of the call; `T` is plain data (`Copy`, `repr(C)` at
    // every call site); the kernel only reads it.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub fn set_version_v3(fd: &OwnedFd) -> io::Result<()> {
    set_opt(fd.as_raw_fd(), SOL_PACKET, PACKET_VERSION, &TPACKET_V3)
}

pub fn set_rx_ring(fd: &OwnedFd, req: &TpacketReq3) -> io::Result<()> {
    set_opt(fd.as_raw_fd(), SOL_PACKET, PACKET_RX_RING, req)
}

/// Puts the interface in promiscuous mode for as long as the socket lives.
pub fn add_promiscuous(fd: &OwnedFd, ifindex: i32) -> io::Result<()> {
    let mreq = PacketMreq {
        ifindex,
        kind: PACKET_MR_PROMISC,
        ..PacketMreq::default()
    };
    set_opt(fd.as_raw_fd(), SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq)
}

/// SO_ATTACH_FILTER: from now on the kernel runs `program` on every packet
/// for this socket and queues only those it accepts.
pub fn attach_filter(fd: RawFd, program: &[Insn]) -> io::Result<()> {
    let prog = SockFprog {
        len: u16::try_from(program.len())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
        filter: program.as_ptr(),
    };
    // `Insn` is laid out like `struct sock_filter` (u16, u8, u8, u32), and
    // the kernel copies the instructions before returning.
    set_opt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
}

/// PACKET_STATISTICS: counts since the last call (the kernel resets them).
pub fn take_stats(fd: &OwnedFd) -> io::Result<TpacketStatsV3> {
    let mut stats = TpacketStatsV3::default();
    let mut len = std::mem::size_of::<TpacketStatsV3>() as libc::socklen_t;
    // SAFETY: `stats` is a live, writable struct of `len` bytes and `len`
    // is a live socklen_t; the kernel writes at most `len` bytes.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            SOL_PACKET,
            PACKET_STATISTICS,
            (&mut stats as *mut TpacketStatsV3).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(stats)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Binds to interface `ifindex` (0: all) for every protocol: reception
/// starts here.
pub fn bind_link(fd: &OwnedFd, ifindex: i32) -> io::Result<()> {
    let addr = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ETH_P_ALL.to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `addr` is a complete sockaddr_ll living across the call and
    // the length passed is its size; bind(2) only reads it.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The ring shared with the kernel, unmapped on drop.
pub struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of the socket's ring.
    pub fn new(fd: &OwnedFd, len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh shared mapping of the socket's ring, at an
        // address the kernel chooses; no existing memory is affected.
        #[allow(unsafe_code)]
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { base, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The 32-bit word at `offset`, read as the kernel may be writing it.
    /// `None` if it is not inside the mapping or not aligned.
    pub fn load_u32(&self, offset: usize) -> Option<u32> {
        if !offset.is_multiple_of(4) || offset.checked_add(4)? > self.len {
            return None;
        }
        // SAFETY: in bounds and 4-byte aligned (checked above; the mapping
        // itself is page-aligned), inside memory mapped for the lifetime of
        // `self`. The kernel writes these words concurrently, hence the
        // atomic access; Acquire pairs with the kernel's barrier before it
        // hands a block to user space.
        #[allow(unsafe_code)]
        let v = unsafe {
            std::sync::atomic::AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast::<u32>())
                .load(std::sync::atomic::Ordering::Acquire)
        };
        Some(v)
    }

    /// Writes the 32-bit word at `offset` (a block's status, to hand the
    /// block back to the kernel). Out-of-bounds or unaligned writes are
    /// ignored (callers only pass offsets they read from).
    pub fn store_u32(&self, offset: usize, value: u32) {
        if !offset.is_multiple_of(4) || offset.checked_add(4).is_none_or(|end| end > self.len) {
            return;
        }
        // SAFETY: in bounds and aligned as checked; Release makes our reads
        // of the block happen before the kernel may reuse it.
        #[allow(unsafe_code)]
        unsafe {
            std::sync::atomic::AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast::<u32>())
                .store(value, std::sync::atomic::Ordering::Release);
        }
    }

    /// `len` bytes at `offset`, if inside the mapping. Only for blocks the
    /// kernel has handed to user space (status TP_STATUS_USER), which it
    /// does not write until they are handed back.
    pub fn bytes(&self, offset: usize, len: usize) -> Option<&[u8]> {
        if offset.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: in bounds as checked, within the live mapping; the
        // kernel does not write a block while user space owns it, and the
        // slice's lifetime is tied to `&self`, before any handing back.
        #[allow(unsafe_code)]
        Some(unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(offset), len) })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly what mmap returned and nothing
        // borrows the mapping any more (borrows are tied to `&self`).
        #[allow(unsafe_code)]
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}
