//! The `--drops` view: the counters that mean a packet, segment, connection
//! or datagram was lost, refused or had to be sent again, each with one line
//! saying what it counts and, where there is one, the usual knob.
//!
//! The list is curated rather than pattern-matched (`*Drop*` would miss
//! `ListenOverflows` and `RcvbufErrors` and catch `TCPBacklogCoalesce`'s
//! neighbours). Names are nstat's (`TcpExt` + the /proc/net/netstat field)
//! plus the conntrack names of [`super::collect`]. A counter the running
//! kernel does not have is simply absent from the view.

/// `(counter name, meaning)`, grouped by table; the view prints counters in
/// the kernel's order, not this one.
#[rustfmt::skip] // one row per counter reads better than rustfmt's split tuples
const DROP_COUNTERS: &[(&str, &str)] = &[
    // IPv4 (/proc/net/snmp Ip, /proc/net/netstat IpExt)
    ("IpInHdrErrors", "IPv4 packets dropped for a bad header (checksum, version, TTL exceeded, options)"),
    ("IpInAddrErrors", "IPv4 packets dropped: destination address not valid here"),
    ("IpInUnknownProtos", "IPv4 packets dropped: no handler for their protocol"),
    ("IpInDiscards", "IPv4 input packets dropped for lack of resources (memory)"),
    ("IpOutDiscards", "IPv4 output packets dropped for lack of resources"),
    ("IpOutNoRoutes", "IPv4 packets dropped: no route to the destination"),
    ("IpReasmTimeout", "IPv4 fragments given up waiting for the rest of their packet"),
    ("IpReasmFails", "IPv4 packets that could not be reassembled from fragments"),
    ("IpFragFails", "IPv4 packets dropped: too big for the path MTU and Don't Fragment set"),
    ("IpExtInNoRoutes", "IPv4 packets received with no route to forward them"),
    ("IpExtInTruncatedPkts", "IPv4 packets shorter than their header says (truncated)"),
    ("IpExtInCsumErrors", "IPv4 packets with a bad header checksum"),
    // ICMP
    ("IcmpInErrors", "ICMP messages received with errors (bad length, checksum)"),
    ("IcmpInCsumErrors", "ICMP messages received with a bad checksum"),
    ("IcmpOutErrors", "ICMP messages not sent because of errors (no buffer)"),
    // TCP (/proc/net/snmp Tcp)
    ("TcpAttemptFails", "connection attempts that failed (SYN-SENT/SYN-RECV to CLOSED: refused, timed out)"),
    ("TcpEstabResets", "established connections reset"),
    ("TcpRetransSegs", "TCP segments retransmitted (loss or large delay on the path)"),
    ("TcpInErrs", "TCP segments received in error (bad checksum, malformed)"),
    ("TcpOutRsts", "TCP resets sent (closed port, aborted connection)"),
    ("TcpInCsumErrors", "TCP segments received with a bad checksum"),
    // TCP extended (/proc/net/netstat TcpExt)
    ("TcpExtSyncookiesSent", "SYN cookies sent: a listener's SYN queue overflowed (SYN flood or backlog too small)"),
    ("TcpExtSyncookiesFailed", "ACKs carrying an invalid SYN cookie (dropped)"),
    ("TcpExtEmbryonicRsts", "resets received for connections still in SYN-RECV"),
    ("TcpExtPruneCalled", "receive queues pruned under socket memory pressure (a reader too slow for its rcvbuf)"),
    ("TcpExtRcvPruned", "segments dropped from receive queues after pruning (socket buffer overrun)"),
    ("TcpExtOfoPruned", "out-of-order segments dropped to free socket memory"),
    ("TcpExtLockDroppedIcmps", "ICMP errors dropped because their socket was busy"),
    ("TcpExtPAWSEstab", "segments dropped by the PAWS timestamp check on established connections"),
    ("TcpExtListenOverflows", "connections dropped: a listener's accept queue was full (raise net.core.somaxconn and the listen() backlog, accept faster)"),
    ("TcpExtListenDrops", "connection requests dropped at a listening socket, for any reason (includes ListenOverflows)"),
    ("TcpExtTCPLostRetransmit", "retransmitted segments that were lost again"),
    ("TcpExtTCPFastRetrans", "segments resent by fast retransmit (loss detected from duplicate ACKs/SACK)"),
    ("TcpExtTCPSlowStartRetrans", "segments resent in slow start after a loss"),
    ("TcpExtTCPTimeouts", "retransmission timeouts (RTO) fired: no ACK in time, severe loss or a dead peer"),
    ("TcpExtTCPAbortOnMemory", "connections aborted for lack of memory (tcp_mem or too many orphans)"),
    ("TcpExtTCPAbortOnTimeout", "connections aborted after too many retransmission timeouts"),
    ("TcpExtTCPAbortFailed", "resets that could not be sent (no memory)"),
    ("TcpExtTCPMemoryPressures", "times TCP entered memory pressure (net.ipv4.tcp_mem)"),
    ("TcpExtTCPBacklogDrop", "segments dropped: socket backlog full while the application held the socket"),
    ("TcpExtPFMemallocDrop", "segments dropped: received into emergency memory the socket may not use"),
    ("TcpExtTCPMinTTLDrop", "segments dropped by the socket's minimum TTL"),
    ("TcpExtTCPDeferAcceptDrop", "connections dropped by TCP_DEFER_ACCEPT (no data in time)"),
    ("TcpExtTCPTimeWaitOverflow", "TIME-WAIT sockets not created: tcp_max_tw_buckets reached"),
    ("TcpExtTCPReqQFullDoCookies", "SYN queue full: answered with a SYN cookie"),
    ("TcpExtTCPReqQFullDrop", "SYNs dropped: SYN queue full and SYN cookies off"),
    ("TcpExtTCPRetransFail", "retransmissions that failed locally (no memory, qdisc refused)"),
    ("TcpExtTCPOFODrop", "out-of-order segments dropped: receive buffer full"),
    ("TcpExtTCPFastOpenListenOverflow", "TCP Fast Open requests refused: TFO queue full"),
    ("TcpExtTCPSynRetrans", "SYN and SYN-ACK retransmissions (the handshake lost packets, or a listener dropped them)"),
    ("TcpExtTCPMTUPFail", "path MTU probes that failed"),
    ("TcpExtTCPZeroWindowDrop", "segments dropped: the receive window was zero"),
    ("TcpExtTCPRcvQDrop", "segments dropped: receive queue over the socket's memory limit"),
    ("TcpExtTCPMigrateReqFailure", "connection requests lost while moving them to another listener"),
    // UDP (/proc/net/snmp Udp, /proc/net/snmp6 Udp6)
    ("UdpNoPorts", "UDP datagrams to a port nobody listens on"),
    ("UdpInErrors", "UDP datagrams received but not delivered (buffer full, checksum, memory)"),
    ("UdpRcvbufErrors", "UDP datagrams dropped: socket receive buffer full (raise SO_RCVBUF/rmem, read faster)"),
    ("UdpSndbufErrors", "UDP datagrams not sent: socket send buffer full"),
    ("UdpInCsumErrors", "UDP datagrams with a bad checksum"),
    ("UdpMemErrors", "UDP datagrams dropped: net.ipv4.udp_mem limit reached"),
    // IPv6 (/proc/net/snmp6)
    ("Ip6InHdrErrors", "IPv6 packets dropped for a bad header (hop limit exceeded, malformed)"),
    ("Ip6InTooBigErrors", "IPv6 packets too big to forward"),
    ("Ip6InNoRoutes", "IPv6 packets received with no route to forward them"),
    ("Ip6InAddrErrors", "IPv6 packets dropped: destination address not valid here"),
    ("Ip6InUnknownProtos", "IPv6 packets dropped: no handler for their next header"),
    ("Ip6InTruncatedPkts", "IPv6 packets shorter than their header says (truncated)"),
    ("Ip6InDiscards", "IPv6 input packets dropped for lack of resources"),
    ("Ip6OutDiscards", "IPv6 output packets dropped for lack of resources"),
    ("Ip6OutNoRoutes", "IPv6 packets dropped: no route to the destination"),
    ("Ip6ReasmTimeout", "IPv6 fragments given up waiting for the rest of their packet"),
    ("Ip6ReasmFails", "IPv6 packets that could not be reassembled from fragments"),
    ("Ip6FragFails", "IPv6 packets that could not be fragmented"),
    ("Icmp6InErrors", "ICMPv6 messages received with errors"),
    ("Icmp6OutErrors", "ICMPv6 messages not sent because of errors"),
    ("Icmp6InCsumErrors", "ICMPv6 messages received with a bad checksum"),
    ("Udp6NoPorts", "UDP/IPv6 datagrams to a port nobody listens on"),
    ("Udp6InErrors", "UDP/IPv6 datagrams received but not delivered (buffer full, checksum, memory)"),
    ("Udp6RcvbufErrors", "UDP/IPv6 datagrams dropped: socket receive buffer full (raise SO_RCVBUF/rmem, read faster)"),
    ("Udp6SndbufErrors", "UDP/IPv6 datagrams not sent: socket send buffer full"),
    ("Udp6InCsumErrors", "UDP/IPv6 datagrams with a bad checksum"),
    ("Udp6MemErrors", "UDP/IPv6 datagrams dropped: net.ipv4.udp_mem limit reached"),
    // conntrack (/proc/net/stat/nf_conntrack, summed over CPUs)
    ("ConntrackInvalid", "packets conntrack could not track (dropped wherever a rule drops INVALID)"),
    ("ConntrackInsertFailed", "new connections lost: inserting their conntrack entry failed (a race, e.g. parallel UDP DNS queries)"),
    ("ConntrackDrop", "packets dropped by conntrack: table full (raise net.netfilter.nf_conntrack_max) or no memory"),
    ("ConntrackEarlyDrop", "conntrack entries evicted early to make room: the table is full"),
    ("ConntrackChainlength", "new connections dropped: their conntrack hash chain was too long"),
];

/// The meaning of a drop counter, or `None` when `name` is not one.
pub fn meaning(name: &str) -> Option<&'static str> {
    DROP_COUNTERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, m)| *m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_loss_counters_are_in_the_view() {
        for name in [
            "TcpExtListenOverflows",
            "TcpExtListenDrops",
            "TcpExtTCPRcvQDrop",
            "TcpExtTCPBacklogDrop",
            "UdpRcvbufErrors",
            "UdpSndbufErrors",
            "UdpInErrors",
            "TcpInErrs",
            "TcpRetransSegs",
            "TcpExtTCPAbortOnMemory",
            "TcpExtTCPZeroWindowDrop",
            "IpInDiscards",
            "IpOutNoRoutes",
            "UdpNoPorts",
            "UdpInCsumErrors",
            "Udp6InErrors",
            "Udp6NoPorts",
            "Udp6RcvbufErrors",
            "TcpExtTCPTimeouts",
            "TcpExtTCPSynRetrans",
            "ConntrackInsertFailed",
            "ConntrackDrop",
            "ConntrackEarlyDrop",
        ] {
            assert!(
                meaning(name).is_some(),
                "{name} missing from the drops view"
            );
        }
    }

    #[test]
    fn ordinary_traffic_counters_are_not_drops() {
        for name in [
            "IpInReceives",
            "TcpActiveOpens",
            "UdpInDatagrams",
            "TcpExtTCPHPHits",
            "ConntrackFound",
        ] {
            assert_eq!(meaning(name), None, "{name}");
        }
    }

    #[test]
    fn names_are_unique_and_meanings_are_one_line() {
        for (i, (name, text)) in DROP_COUNTERS.iter().enumerate() {
            assert!(
                DROP_COUNTERS[i + 1..].iter().all(|(n, _)| n != name),
                "{name} listed twice"
            );
            assert!(!text.is_empty() && !text.contains('\n'), "{name}");
        }
    }
}
