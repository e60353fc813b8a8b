//! `struct tcp_info` (include/uapi/linux/tcp.h) decoded from the bytes of
//! the INET_DIAG_INFO attribute.
//!
//! Decoded here by offset rather than through netlink-packet-sock-diag's
//! `rich_nlas` struct because the kernel's struct grows over time: older
//! kernels send fewer bytes, newer ones more. Like iproute2 we read what is
//! there and treat missing trailing fields as zero, so one static agent
//! works on every node kernel.

use serde::Serialize;

/// The fields `ss -i` shows, with the kernel's units (microseconds for
/// times unless named `_ms`, bytes, segments).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TcpInfo {
    pub ca_state: u8,
    pub retransmits: u8,
    pub probes: u8,
    pub backoff: u8,
    /// TCPI_OPT_* bits: 1 timestamps, 2 sack, 4 wscale, 8 ecn, 16 ecn seen,
    /// 32 syn data (fastopen).
    pub options: u8,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub delivery_rate_app_limited: bool,
    pub rto: u32,
    pub ato: u32,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    pub unacked: u32,
    pub sacked: u32,
    pub lost: u32,
    pub retrans: u32,
    pub fackets: u32,
    pub last_data_sent_ms: u32,
    pub last_ack_sent_ms: u32,
    pub last_data_recv_ms: u32,
    pub last_ack_recv_ms: u32,
    pub pmtu: u32,
    pub rcv_ssthresh: u32,
    pub rtt: u32,
    pub rttvar: u32,
    pub snd_ssthresh: u32,
    pub snd_cwnd: u32,
    pub advmss: u32,
    pub reordering: u32,
    pub rcv_rtt: u32,
    pub rcv_space: u32,
    pub total_retrans: u32,
    pub pacing_rate: u64,
    pub max_pacing_rate: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_out: u32,
    pub segs_in: u32,
    pub notsent_bytes: u32,
    pub min_rtt: u32,
    pub data_segs_in: u32,
    pub data_segs_out: u32,
    pub delivery_rate: u64,
    pub busy_time: u64,
    pub rwnd_limited: u64,
    pub sndbuf_limited: u64,
    pub delivered: u32,
    pub delivered_ce: u32,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub dsack_dups: u32,
    pub reord_seen: u32,
    pub rcv_ooopack: u32,
    pub snd_wnd: u32,
}

/// Option bits of `tcpi_options`.
pub const OPT_TIMESTAMPS: u8 = 1;
pub const OPT_SACK: u8 = 2;
pub const OPT_WSCALE: u8 = 4;
pub const OPT_ECN: u8 = 8;
pub const OPT_ECN_SEEN: u8 = 16;
pub const OPT_SYN_DATA: u8 = 32;

/// Reads little-endian fields at fixed offsets, zero past the end.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn u8(&self, at: usize) -> u8 {
        self.0.get(at).copied().unwrap_or(0)
    }
    fn u32(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = self.u8(at + i);
        }
        u32::from_ne_bytes(b)
    }
    fn u64(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = self.u8(at + i);
        }
        u64::from_ne_bytes(b)
    }
}

impl TcpInfo {
    /// Decodes the attribute payload; offsets are those of the uapi struct.
    pub fn parse(bytes: &[u8]) -> TcpInfo {
        let f = Fields(bytes);
        let wscale = f.u8(6);
        TcpInfo {
            ca_state: f.u8(1),
            retransmits: f.u8(2),
            probes: f.u8(3),
            backoff: f.u8(4),
            options: f.u8(5),
            // `__u8 tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4;` low nibble first.
            snd_wscale: wscale & 0x0f,
            rcv_wscale: wscale >> 4,
            delivery_rate_app_limited: f.u8(7) & 1 != 0,
            rto: f.u32(8),
            ato: f.u32(12),
            snd_mss: f.u32(16),
            rcv_mss: f.u32(20),
            unacked: f.u32(24),
            sacked: f.u32(28),
            lost: f.u32(32),
            retrans: f.u32(36),
            fackets: f.u32(40),
            last_data_sent_ms: f.u32(44),
            last_ack_sent_ms: f.u32(48),
            last_data_recv_ms: f.u32(52),
            last_ack_recv_ms: f.u32(56),
            pmtu: f.u32(60),
            rcv_ssthresh: f.u32(64),
            rtt: f.u32(68),
            rttvar: f.u32(72),
            snd_ssthresh: f.u32(76),
            snd_cwnd: f.u32(80),
            advmss: f.u32(84),
            reordering: f.u32(88),
            rcv_rtt: f.u32(92),
            rcv_space: f.u32(96),
            total_retrans: f.u32(100),
            pacing_rate: f.u64(104),
            max_pacing_rate: f.u64(112),
            bytes_acked: f.u64(120),
            bytes_received: f.u64(128),
            segs_out: f.u32(136),
            segs_in: f.u32(140),
            notsent_bytes: f.u32(144),
            min_rtt: f.u32(148),
            data_segs_in: f.u32(152),
            data_segs_out: f.u32(156),
            delivery_rate: f.u64(160),
            busy_time: f.u64(168),
            rwnd_limited: f.u64(176),
            sndbuf_limited: f.u64(184),
            delivered: f.u32(192),
            delivered_ce: f.u32(196),
            bytes_sent: f.u64(200),
            bytes_retrans: f.u64(208),
            dsack_dups: f.u32(216),
            reord_seen: f.u32(220),
            rcv_ooopack: f.u32(224),
            snd_wnd: f.u32(228),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_payload_zero_fills() {
        // An old kernel's 104-byte struct: fields past it read as zero.
        let mut bytes = vec![0u8; 104];
        bytes[5] = OPT_SACK | OPT_WSCALE;
        bytes[6] = 0x7a; // rcv 7, snd 10
        bytes[68..72].copy_from_slice(&1234u32.to_ne_bytes());
        bytes[80..84].copy_from_slice(&10u32.to_ne_bytes());
        let info = TcpInfo::parse(&bytes);
        assert_eq!((info.snd_wscale, info.rcv_wscale), (10, 7));
        assert_eq!(info.rtt, 1234);
        assert_eq!(info.snd_cwnd, 10);
        assert_eq!(info.bytes_sent, 0);
        assert_eq!(info.options, OPT_SACK | OPT_WSCALE);
    }
}
