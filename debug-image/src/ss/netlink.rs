//! Reading sockets from the kernel over NETLINK_SOCK_DIAG, like iproute2.
//!
//! One dump request per (family, protocol) for inet sockets and one for unix
//! sockets. The kernel filters by state; everything else (address and port
//! filters) is applied by the caller. Requests and attributes are built and
//! decoded with netlink-packet-sock-diag; three header fields the crate
//! folds away (the timer's expiry for TIME-WAIT, and the retransmit count
//! for keepalive and probe timers) are read from the raw header, because
//! `ss -o` prints them.

use std::io;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    Parseable,
};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    inet::{ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags, nlas::Nla},
    unix::{self, ShowFlags, UnixRequest, UnixResponse, nlas::Nla as UnixNla},
};
use netlink_sys::{Socket as NetlinkSocket, SocketAddr, protocols::NETLINK_SOCK_DIAG};

use super::model::{BbrInfo, Endpoint, Netid, SkMem, Socket, TcpState, Timer};
use super::tcp_info::TcpInfo;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// INET_DIAG_BBRINFO: returned when INET_DIAG_VEGASINFO is requested and
/// the socket uses bbr (the crate leaves it as an unknown attribute).
const INET_DIAG_BBRINFO: u16 = 16;
const INET_DIAG_CGROUP_ID: u16 = 21;
/// The kernel fills at most ~32 KiB per datagram for dumps; a larger
/// buffer only costs memory.
const RECV_BUFFER: usize = 64 * 1024;

/// Which optional parts of each socket to ask the kernel for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extensions {
    pub memory: bool,
    pub tcp_info: bool,
}

/// Dumps the inet sockets of one family (AF_INET/AF_INET6) and protocol
/// (IPPROTO_TCP/UDP/RAW) whose state bit is set in `states`.
pub fn dump_inet(
    family: u8,
    netid: Netid,
    states: u32,
    ext: Extensions,
    emit: &mut dyn FnMut(Socket) -> io::Result<()>,
) -> io::Result<()> {
    let protocol = match netid {
        Netid::Tcp => libc::IPPROTO_TCP as u8,
        Netid::Udp => libc::IPPROTO_UDP as u8,
        Netid::Raw => libc::IPPROTO_RAW as u8,
        _ => unreachable!("dump_inet is for inet tables"),
    };
    let mut extensions = ExtensionFlags::empty();
    if ext.memory {
        extensions |= ExtensionFlags::MEMINFO | ExtensionFlags::SKMEMINFO;
    }
    if ext.tcp_info {
        extensions |= ExtensionFlags::INFO | ExtensionFlags::VEGASINFO | ExtensionFlags::CONG;
    }
    let socket_id = if family == libc::AF_INET as u8 {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    let request = SockDiagMessage::InetRequest(InetRequest {
        family,
        protocol,
        extensions,
        states: StateFlags::from_bits_truncate(states),
        socket_id,
    });
    dump(request, |payload| emit(decode_inet(payload, netid)?))
}

/// Dumps unix sockets whose state bit is set in `states`.
pub fn dump_unix(
    states: u32,
    ext: Extensions,
    emit: &mut dyn FnMut(Socket) -> io::Result<()>,
) -> io::Result<()> {
    let mut show_flags = ShowFlags::NAME | ShowFlags::PEER | ShowFlags::RQLEN;
    if ext.memory {
        show_flags |= ShowFlags::MEMINFO;
    }
    let request = SockDiagMessage::UnixRequest(UnixRequest {
        state_flags: unix::StateFlags::from_bits_truncate(states),
        inode: 0,
        show_flags,
        cookie: [0xff; 8],
    });
    dump(request, |payload| emit(decode_unix(payload)?))
}

/// Sends one dump request and feeds each answer's payload to `each` until
/// the kernel says it is done.
fn dump(request: SockDiagMessage, mut each: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut socket = NetlinkSocket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;

    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request));
    message.finalize();
    let mut bytes = vec![0u8; message.buffer_len()];
    message.serialize(&mut bytes);
    socket.send(&bytes, 0)?;

    let mut buffer = vec![0u8; RECV_BUFFER];
    loop {
        let len = socket.recv(&mut &mut buffer[..], 0)?;
        let mut offset = 0;
        while offset < len {
            let nl = NetlinkBuffer::new_checked(&buffer[offset..len]).map_err(invalid)?;
            let msg_len = nl.length() as usize;
            match nl.message_type() {
                // Both carry an errno: DONE says "-ENOENT" when the
                // protocol's diag module is not available.
                NLMSG_DONE | NLMSG_ERROR => {
                    let payload = nl.payload();
                    let code = payload
                        .get(..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(0);
                    if code < 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    return Ok(());
                }
                _ => each(nl.payload())?,
            }
            // Messages are 4-byte aligned.
            offset += (msg_len + 3) & !3;
            if msg_len == 0 {
                break;
            }
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed sock_diag answer: {e}"),
    )
}

/// Size of `struct unix_diag_msg`, after which the attributes start.
const UNIX_DIAG_MSG_LEN: usize = 16;
const UNIX_DIAG_MEMINFO: u16 = 7;

fn unix_meminfo(payload: &[u8]) -> Option<SkMem> {
    let attrs = payload.get(UNIX_DIAG_MSG_LEN..)?;
    for nla in netlink_packet_core::NlasIterator::new(attrs).flatten() {
        if nla.kind() == UNIX_DIAG_MEMINFO {
            return Some(skmem_from_words(nla.value()));
        }
    }
    None
}

/// Decodes the SK_MEMINFO_* array; words missing on old kernels are None/0.
fn skmem_from_words(bytes: &[u8]) -> SkMem {
    let word = |i: usize| {
        bytes
            .get(i * 4..i * 4 + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    SkMem {
        rmem_alloc: word(0).unwrap_or(0),
        rcvbuf: word(1).unwrap_or(0),
        wmem_alloc: word(2).unwrap_or(0),
        sndbuf: word(3).unwrap_or(0),
        fwd_alloc: word(4).unwrap_or(0),
        wmem_queued: word(5).unwrap_or(0),
        optmem: word(6).unwrap_or(0),
        backlog: word(7),
        drops: word(8),
    }
}

/// Offsets in `struct inet_diag_msg` of the fields read directly.
const MSG_TIMER: usize = 2;
const MSG_RETRANS: usize = 3;
const MSG_EXPIRES: usize = 52;

fn decode_inet(payload: &[u8], netid: Netid) -> io::Result<Socket> {
    let response = InetResponse::parse(payload).map_err(invalid)?;
    let h = &response.header;
    let id = &h.socket_id;
    let expires = payload
        .get(MSG_EXPIRES..MSG_EXPIRES + 4)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    let timer = Timer::from_kernel(payload[MSG_TIMER], expires, payload[MSG_RETRANS]);

    let mut socket = Socket {
        netid,
        state: TcpState(h.state),
        recv_q: h.recv_queue,
        send_q: h.send_queue,
        local: Endpoint::Inet {
            address: id.source_address,
            port: id.source_port,
            ifindex: id.interface_id,
        },
        peer: Endpoint::Inet {
            address: id.destination_address,
            port: id.destination_port,
            ifindex: 0,
        },
        inode: h.inode,
        uid: h.uid,
        cookie: u64::from_ne_bytes(id.cookie),
        v6only: None,
        timer,
        shutdown: None,
        mark: None,
        cgroup_id: None,
        skmem: None,
        congestion: None,
        tcp_info: None,
        bbr: None,
        processes: Vec::new(),
    };
    for nla in &response.nlas {
        match nla {
            Nla::SkV6Only(v) => socket.v6only = Some(*v),
            Nla::Shutdown(mask) => socket.shutdown = Some(*mask),
            Nla::Mark(mark) => socket.mark = Some(*mark),
            Nla::MemInfo(m) => {
                socket.skmem = Some(SkMem {
                    rmem_alloc: m.receive_queue,
                    rcvbuf: m.receive_queue_max,
                    wmem_alloc: m.bottom_send_queues,
                    sndbuf: m.send_queue_max,
                    fwd_alloc: m.cache,
                    wmem_queued: m.send_queue,
                    optmem: m.options,
                    backlog: Some(m.backlog_queue_length),
                    drops: Some(m.drops),
                })
            }
            Nla::Congestion(name) => socket.congestion = Some(name.clone()),
            Nla::TcpInfo(bytes) => socket.tcp_info = Some(TcpInfo::parse(bytes.as_slice())),
            Nla::Other(other) => {
                use netlink_packet_core::Nla as _;
                let mut value = vec![0u8; other.value_len()];
                other.emit_value(&mut value);
                match other.kind() {
                    INET_DIAG_BBRINFO if value.len() >= 20 => {
                        let word = |i: usize| {
                            u32::from_ne_bytes([value[i], value[i + 1], value[i + 2], value[i + 3]])
                        };
                        socket.bbr = Some(BbrInfo {
                            bw: (u64::from(word(4)) << 32) | u64::from(word(0)),
                            min_rtt_us: word(8),
                            pacing_gain: word(12),
                            cwnd_gain: word(16),
                        });
                    }
                    INET_DIAG_CGROUP_ID if value.len() >= 8 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&value[..8]);
                        socket.cgroup_id = Some(u64::from_ne_bytes(b));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(socket)
}

fn decode_unix(payload: &[u8]) -> io::Result<Socket> {
    let response = UnixResponse::parse(payload).map_err(invalid)?;
    let h = &response.header;
    let netid = match i32::from(h.kind) {
        libc::SOCK_STREAM => Netid::UnixStream,
        libc::SOCK_SEQPACKET => Netid::UnixSeqpacket,
        _ => Netid::UnixDgram,
    };
    let mut path = None;
    let mut peer_inode = 0;
    let (mut recv_q, mut send_q) = (0, 0);
    let skmem = None;
    let mut shutdown = None;
    for nla in &response.nlas {
        match nla {
            UnixNla::Name(unix::nlas::UnixDiagName::Pathname(p)) => {
                path = Some(p.to_string_lossy().into_owned());
            }
            UnixNla::Name(unix::nlas::UnixDiagName::Abstract(bytes)) => {
                // iproute2 shows the leading NUL, and any inside, as '@'.
                let mut name = String::from("@");
                name.push_str(&String::from_utf8_lossy(bytes.as_slice()).replace('\0', "@"));
                path = Some(name);
            }
            UnixNla::Peer(inode) => peer_inode = *inode,
            UnixNla::ReceiveQueueLength(r, w) => (recv_q, send_q) = (*r, *w),
            UnixNla::Shutdown(mask) => shutdown = Some(*mask),
            _ => {}
        }
    }
    // The crate keeps only 3 of UNIX_DIAG_MEMINFO's 9 words; ss -m prints
    // all of them, so decode that attribute from the raw answer.
    let skmem = skmem.or_else(|| unix_meminfo(payload));
    Ok(Socket {
        netid,
        state: TcpState(h.state),
        recv_q,
        send_q,
        local: Endpoint::Unix {
            path,
            inode: h.inode,
        },
        peer: Endpoint::Unix {
            path: None,
            inode: peer_inode,
        },
        inode: h.inode,
        uid: 0,
        cookie: u64::from_ne_bytes(h.cookie),
        v6only: None,
        timer: None,
        shutdown,
        mark: None,
        cgroup_id: None,
        skmem,
        congestion: None,
        tcp_info: None,
        bbr: None,
        processes: Vec::new(),
    })
}
