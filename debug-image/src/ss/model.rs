//! What `ss` knows about one socket, independent of how it was read
//! (netlink) and how it is shown (text columns or JSON).

use std::net::IpAddr;

use serde::Serialize;

/// Which socket table a socket came from: iproute2's "Netid" column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Netid {
    Tcp,
    Udp,
    Raw,
    UnixStream,
    UnixDgram,
    UnixSeqpacket,
}

impl Netid {
    /// The abbreviation iproute2 prints.
    pub fn label(self) -> &'static str {
        match self {
            Netid::Tcp => "tcp",
            Netid::Udp => "udp",
            Netid::Raw => "raw",
            Netid::UnixStream => "u_str",
            Netid::UnixDgram => "u_dgr",
            Netid::UnixSeqpacket => "u_seq",
        }
    }

    pub fn is_unix(self) -> bool {
        matches!(
            self,
            Netid::UnixStream | Netid::UnixDgram | Netid::UnixSeqpacket
        )
    }
}

/// The kernel's TCP state numbers (include/net/tcp_states.h), which
/// sock_diag reuses for every protocol (UDP "UNCONN" is `Close`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TcpState(pub u8);

impl TcpState {
    pub const ESTABLISHED: u8 = 1;
    pub const SYN_SENT: u8 = 2;
    pub const SYN_RECV: u8 = 3;
    pub const FIN_WAIT1: u8 = 4;
    pub const FIN_WAIT2: u8 = 5;
    pub const TIME_WAIT: u8 = 6;
    pub const CLOSE: u8 = 7;
    pub const CLOSE_WAIT: u8 = 8;
    pub const LAST_ACK: u8 = 9;
    pub const LISTEN: u8 = 10;
    pub const CLOSING: u8 = 11;

    /// The column text iproute2 prints.
    pub fn label(self) -> &'static str {
        match self.0 {
            Self::ESTABLISHED => "ESTAB",
            Self::SYN_SENT => "SYN-SENT",
            Self::SYN_RECV => "SYN-RECV",
            Self::FIN_WAIT1 => "FIN-WAIT-1",
            Self::FIN_WAIT2 => "FIN-WAIT-2",
            Self::TIME_WAIT => "TIME-WAIT",
            Self::CLOSE => "UNCONN",
            Self::CLOSE_WAIT => "CLOSE-WAIT",
            Self::LAST_ACK => "LAST-ACK",
            Self::LISTEN => "LISTEN",
            Self::CLOSING => "CLOSING",
            _ => "UNKNOWN",
        }
    }
}

impl Serialize for TcpState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

/// One end of a socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Endpoint {
    Inet {
        address: IpAddr,
        /// For raw sockets: the IP protocol number, as the kernel reports it.
        port: u16,
        /// Interface the socket is bound to or scoped on (0: none).
        #[serde(skip_serializing_if = "is_zero")]
        ifindex: u32,
    },
    Unix {
        /// Path, `@name` for the abstract namespace, or none.
        path: Option<String>,
        /// The socket's inode (local end) or its peer's (remote end).
        inode: u32,
    },
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// A pending kernel timer on a TCP socket (`-o`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Timer {
    /// `on` (retransmit), `keepalive`, `timewait`, `persist`.
    pub kind: &'static str,
    pub expires_ms: u32,
    /// Retransmissions (for `on`) or probes sent so far.
    pub retrans: u8,
}

impl Timer {
    pub fn from_kernel(code: u8, expires_ms: u32, retrans: u8) -> Option<Timer> {
        let kind = match code {
            0 => return None,
            1 => "on",
            2 => "keepalive",
            3 => "timewait",
            4 => "persist",
            _ => "unknown",
        };
        Some(Timer {
            kind,
            expires_ms,
            retrans,
        })
    }
}

/// Socket memory (`-m`): the kernel's SK_MEMINFO_* array.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SkMem {
    /// Bytes queued for reading.
    pub rmem_alloc: u32,
    /// Receive buffer size (SO_RCVBUF).
    pub rcvbuf: u32,
    /// Bytes in flight to the device.
    pub wmem_alloc: u32,
    /// Send buffer size (SO_SNDBUF).
    pub sndbuf: u32,
    pub fwd_alloc: u32,
    /// Bytes queued for sending.
    pub wmem_queued: u32,
    pub optmem: u32,
    /// Packets in the socket backlog (absent on very old kernels).
    pub backlog: Option<u32>,
    /// Packets dropped at this socket (absent on very old kernels).
    pub drops: Option<u32>,
}

/// BBR's own view of the path (`-i`, when the congestion control is bbr).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BbrInfo {
    /// Estimated bottleneck bandwidth in bytes per second.
    pub bw: u64,
    pub min_rtt_us: u32,
    /// Gains in units of 1/256.
    pub pacing_gain: u32,
    pub cwnd_gain: u32,
}

/// A process holding the socket open (`-p`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessRef {
    pub name: String,
    pub pid: u32,
    pub fd: u32,
}

/// Everything known about one socket. Optional parts are filled only when
/// the corresponding flag asked the kernel for them.
#[derive(Clone, Debug, Serialize)]
pub struct Socket {
    pub netid: Netid,
    pub state: TcpState,
    /// LISTEN: connections waiting in the accept queue. Otherwise bytes not
    /// yet read by the application.
    pub recv_q: u32,
    /// LISTEN: the backlog limit. Otherwise bytes not yet acknowledged
    /// (TCP) or queued (UDP).
    pub send_q: u32,
    pub local: Endpoint,
    pub peer: Endpoint,
    pub inode: u32,
    pub uid: u32,
    /// The kernel's socket cookie (`sk:` in `ss -e`).
    pub cookie: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v6only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer: Option<Timer>,
    /// Shutdown mask: bit 0 = no more receives, bit 1 = no more sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skmem: Option<SkMem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub congestion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_info: Option<super::tcp_info::TcpInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bbr: Option<BbrInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessRef>,
}
