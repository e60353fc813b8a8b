//! `ss -s`: socket counts from /proc/net/sockstat{,6} and TCP's CurrEstab
//! from /proc/net/snmp, printed in iproute2's layout.

use std::io::{self, Write};

use serde::Serialize;

use crate::cli::Failure;
use crate::procfs;

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub total: u64,
    pub tcp_total: u64,
    pub tcp_established: u64,
    pub tcp_closed: u64,
    pub tcp_orphaned: u64,
    pub tcp_timewait: u64,
    pub raw: [u64; 2],
    pub udp: [u64; 2],
    pub tcp: [u64; 2],
    pub frag: [u64; 2],
}

pub fn read() -> Result<Summary, Failure> {
    let mut stats = procfs::parse_sockstat(&procfs::read("/proc/net/sockstat")?);
    // sockstat6 is absent when IPv6 is disabled: its counts are then zero.
    if let Ok(text) = std::fs::read_to_string("/proc/net/sockstat6") {
        stats.extend(procfs::parse_sockstat(&text));
    }
    let estab = procfs::parse_paired_tables(&procfs::read("/proc/net/snmp")?)
        .into_iter()
        .find(|c| c.name == "TcpCurrEstab")
        .map_or(0, |c| c.value);
    let v = |proto: &str, field: &str| procfs::sockstat_value(&stats, proto, field);
    let tcp4_hashed = v("TCP", "inuse");
    let tcp6_hashed = v("TCP6", "inuse");
    let tws = v("TCP", "tw");
    let alloc = v("TCP", "alloc");
    Ok(Summary {
        total: v("sockets", "used"),
        tcp_total: alloc + tws,
        tcp_established: estab,
        // iproute2: allocated sockets not in the hash tables (minus TIME-WAIT,
        // which are hashed but not allocated as full sockets).
        tcp_closed: alloc.wrapping_sub((tcp4_hashed + tcp6_hashed).wrapping_sub(tws)),
        tcp_orphaned: v("TCP", "orphan"),
        tcp_timewait: tws,
        raw: [v("RAW", "inuse"), v("RAW6", "inuse")],
        udp: [v("UDP", "inuse"), v("UDP6", "inuse")],
        tcp: [tcp4_hashed, tcp6_hashed],
        frag: [v("FRAG", "inuse"), v("FRAG6", "inuse")],
    })
}

pub fn print(s: &Summary, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "Total: {}", s.total)?;
    writeln!(
        out,
        "TCP:   {} (estab {}, closed {}, orphaned {}, timewait {})",
        s.tcp_total, s.tcp_established, s.tcp_closed as i64, s.tcp_orphaned, s.tcp_timewait
    )?;
    writeln!(out)?;
    writeln!(out, "Transport Total     IP        IPv6")?;
    let inet = [
        s.raw[0] + s.udp[0] + s.tcp[0],
        s.raw[1] + s.udp[1] + s.tcp[1],
    ];
    for (name, pair) in [
        ("RAW", s.raw),
        ("UDP", s.udp),
        ("TCP", s.tcp),
        ("INET", inet),
        ("FRAG", s.frag),
    ] {
        writeln!(
            out,
            "{name}\t  {:<9} {:<9} {:<9}",
            pair[0] + pair[1],
            pair[0],
            pair[1]
        )?;
    }
    writeln!(out)
}
