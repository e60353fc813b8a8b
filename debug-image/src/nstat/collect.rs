//! Reading the counters: one [`Snapshot`] of every source, in the order
//! iproute2's nstat prints them, then the agent's extra sources.
//!
//! nstat's sources and order: /proc/net/sctp/snmp (only when the sctp module
//! is loaded), /proc/net/snmp (Ip, Icmp, IcmpMsg, Tcp, Udp, UdpLite),
//! /proc/net/snmp6, /proc/net/netstat (TcpExt, IpExt, MPTcpExt). nstat loads
//! them in the reverse order and prepends each, hence this order. Like nstat
//! it drops the "useless numbers" (configuration values and gauges such as
//! `TcpCurrEstab`), and it honours the same environment overrides:
//! `PROC_NET_SNMP`, `PROC_NET_NETSTAT`, `PROC_NET_SNMP6`,
//! `PROC_NET_SCTP_SNMP`, else `$PROC_ROOT` (default `/proc`) + `/net/...`.
//!
//! The agent's extras come after: conntrack's per-CPU statistics
//! (`PROC_NET_STAT_NF_CONNTRACK`, else `$PROC_ROOT/net/stat/nf_conntrack`)
//! and the socket gauges of sockstat/sockstat6 (`PROC_NET_SOCKSTAT`,
//! `PROC_NET_SOCKSTAT6`, the names iproute2's ss uses). Their naming is
//! described in the [module doc](super).

use std::env;
use std::io;
use std::path::PathBuf;

use serde::Serialize;

use crate::cli::{Context, Failure};
use crate::procfs;

/// Counters nstat never shows: configuration values and gauges that would
/// make meaningless increments (misc/nstat.c `useless_numbers`).
const USELESS_NUMBERS: &[&str] = &[
    "IpForwarding",
    "IpDefaultTTL",
    "TcpRtoAlgorithm",
    "TcpRtoMin",
    "TcpRtoMax",
    "TcpMaxConn",
    "TcpCurrEstab",
];

/// Where a value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// /proc/net/sctp/snmp
    SctpSnmp,
    /// /proc/net/snmp
    Snmp,
    /// /proc/net/snmp6
    Snmp6,
    /// /proc/net/netstat
    Netstat,
    /// /proc/net/stat/nf_conntrack
    Conntrack,
    /// /proc/net/sockstat
    Sockstat,
    /// /proc/net/sockstat6
    Sockstat6,
}

impl Source {
    /// One of the files iproute2's nstat itself reads.
    pub fn is_nstat(self) -> bool {
        matches!(
            self,
            Source::SctpSnmp | Source::Snmp | Source::Snmp6 | Source::Netstat
        )
    }
}

/// Whether a value only grows (a counter: increments are meaningful) or
/// goes up and down (a gauge: always shown as is, never kept in history).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Counter,
    Gauge,
}

/// One named value read from the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub name: String,
    pub value: u64,
    pub source: Source,
    pub kind: Kind,
}

/// Everything read in one pass, in output order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub samples: Vec<Sample>,
}

/// The files' contents; `None` for a file that does not exist (IPv6
/// disabled, sctp or conntrack not loaded).
#[derive(Debug, Default)]
pub struct SourceTexts {
    pub sctp_snmp: Option<String>,
    pub snmp: String,
    pub snmp6: Option<String>,
    pub netstat: String,
    pub conntrack: Option<String>,
    pub sockstat: Option<String>,
    pub sockstat6: Option<String>,
}

/// The paths of every source, after the environment overrides.
#[derive(Clone, Debug)]
pub struct SourcePaths {
    pub sctp_snmp: PathBuf,
    pub snmp: PathBuf,
    pub snmp6: PathBuf,
    pub netstat: PathBuf,
    pub conntrack: PathBuf,
    pub sockstat: PathBuf,
    pub sockstat6: PathBuf,
}

impl SourcePaths {
    /// nstat's `generic_proc_open` rule: the variable names the whole path,
    /// else `$PROC_ROOT/<name>`.
    pub fn from_env() -> SourcePaths {
        let root = env::var_os("PROC_ROOT").unwrap_or_else(|| "/proc".into());
        let path = |var: &str, name: &str| {
            env::var_os(var).map_or_else(|| PathBuf::from(&root).join(name), PathBuf::from)
        };
        SourcePaths {
            sctp_snmp: path("PROC_NET_SCTP_SNMP", "net/sctp/snmp"),
            snmp: path("PROC_NET_SNMP", "net/snmp"),
            snmp6: path("PROC_NET_SNMP6", "net/snmp6"),
            netstat: path("PROC_NET_NETSTAT", "net/netstat"),
            conntrack: path("PROC_NET_STAT_NF_CONNTRACK", "net/stat/nf_conntrack"),
            sockstat: path("PROC_NET_SOCKSTAT", "net/sockstat"),
            sockstat6: path("PROC_NET_SOCKSTAT6", "net/sockstat6"),
        }
    }

    /// Reads every file. /proc/net/snmp and /proc/net/netstat exist on every
    /// Linux with IPv4, so their absence is an error (usually: /proc is not
    /// mounted); the others are optional.
    pub fn read(&self) -> Result<SourceTexts, Failure> {
        let required = |path: &PathBuf| {
            std::fs::read_to_string(path)
                .context(|| format!("cannot read {}; is /proc mounted?", path.display()))
        };
        let optional = |path: &PathBuf| match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context(|| format!("cannot read {}", path.display())),
        };
        Ok(SourceTexts {
            sctp_snmp: optional(&self.sctp_snmp)?,
            snmp: required(&self.snmp)?,
            snmp6: optional(&self.snmp6)?,
            netstat: required(&self.netstat)?,
            conntrack: optional(&self.conntrack)?,
            sockstat: optional(&self.sockstat)?,
            sockstat6: optional(&self.sockstat6)?,
        })
    }
}

/// Turns the files' text into a snapshot. An unparsable conntrack table is
/// reported in the returned warning and left out rather than failing the
/// whole run: the kernel's own counters are still worth showing.
pub fn snapshot(texts: &SourceTexts) -> (Snapshot, Option<String>) {
    let mut samples = Vec::new();
    let mut push_counters = |counters: Vec<procfs::Counter>, source: Source| {
        samples.extend(
            counters
                .into_iter()
                .filter(|c| !USELESS_NUMBERS.contains(&c.name.as_str()))
                .map(|c| Sample {
                    name: c.name,
                    value: c.value,
                    source,
                    kind: Kind::Counter,
                }),
        );
    };
    if let Some(text) = &texts.sctp_snmp {
        push_counters(procfs::parse_name_value_lines(text), Source::SctpSnmp);
    }
    push_counters(procfs::parse_paired_tables(&texts.snmp), Source::Snmp);
    if let Some(text) = &texts.snmp6 {
        push_counters(procfs::parse_name_value_lines(text), Source::Snmp6);
    }
    push_counters(procfs::parse_paired_tables(&texts.netstat), Source::Netstat);

    let mut warning = None;
    if let Some(text) = &texts.conntrack {
        match procfs::parse_per_cpu_hex_table(text) {
            Ok(table) => samples.extend(conntrack_samples(&table)),
            Err(e) => {
                warning = Some(format!(
                    "ignoring the conntrack statistics: cannot parse them ({e})"
                ))
            }
        }
    }
    for (text, source) in [
        (&texts.sockstat, Source::Sockstat),
        (&texts.sockstat6, Source::Sockstat6),
    ] {
        if let Some(text) = text {
            samples.extend(sockstat_samples(text, source));
        }
    }
    (Snapshot { samples }, warning)
}

/// Conntrack's columns as `Conntrack` + the column name in CamelCase
/// (`insert_failed` → `ConntrackInsertFailed`), summed over CPUs. `entries`
/// is the namespace's current number of connections, printed on every CPU's
/// row: a gauge, taken once.
fn conntrack_samples(table: &procfs::PerCpuTable) -> Vec<Sample> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let gauge = column == "entries";
            Sample {
                name: format!("Conntrack{}", camel_case(column)),
                value: if gauge { table.first(i) } else { table.sum(i) },
                source: Source::Conntrack,
                kind: if gauge { Kind::Gauge } else { Kind::Counter },
            }
        })
        .collect()
}

/// Sockstat lines (`TCP: inuse 3 orphan 0 tw 1 alloc 5 mem 1`) as
/// `Sockstat` + protocol + field, nstat's capitalisation
/// (`SockstatTcpInuse`, `SockstatUdpLiteInuse`, `SockstatTcp6Inuse`,
/// `SockstatSocketsUsed`). All are gauges.
fn sockstat_samples(text: &str, source: Source) -> Vec<Sample> {
    procfs::parse_sockstat(text)
        .into_iter()
        .map(|(proto, field, value)| Sample {
            name: format!(
                "Sockstat{}{}",
                sockstat_protocol(&proto),
                camel_case(&field)
            ),
            value,
            source,
            kind: Kind::Gauge,
        })
        .collect()
}

/// `TCP6` → `Tcp6`, `UDPLITE` → `UdpLite`, `sockets` → `Sockets`.
fn sockstat_protocol(proto: &str) -> String {
    let lower = proto.to_ascii_lowercase();
    match lower.strip_prefix("udplite") {
        Some(rest) => format!("UdpLite{rest}"),
        None => camel_case(&lower),
    }
}

/// `insert_failed` → `InsertFailed`, `inuse` → `Inuse`.
fn camel_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = "Ip: Forwarding DefaultTTL InReceives InDiscards\n\
                        Ip: 2 64 100 3\n\
                        Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens CurrEstab RetransSegs\n\
                        Tcp: 1 200 120000 -1 7 2 5\n";
    const NETSTAT: &str = "TcpExt: ListenOverflows ListenDrops\nTcpExt: 4 6\n\
                           IpExt: InOctets\nIpExt: 1234\n";
    const SNMP6: &str =
        "Ip6InReceives                   \t42\nUdp6InErrors                    \t1\n";
    const SCTP: &str = "SctpCurrEstab                   \t0\nSctpActiveEstabs                \t5\n";
    const CONNTRACK: &str = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n\
        00000007  00000000 00000010 00000000 00000002 00000000 00000000 00000000 00000009 00000001 00000000 00000000 00000000  00000000 00000000 00000000 00000000\n\
        00000007  00000000 0000000a 00000000 00000001 00000000 00000000 00000000 00000003 00000002 000000ff 00000000 00000000  00000000 00000000 00000000 00000001\n";
    const SOCKSTAT: &str =
        "sockets: used 120\nTCP: inuse 3 orphan 0 tw 1 alloc 5 mem 1\nUDPLITE: inuse 0\n";
    const SOCKSTAT6: &str = "TCP6: inuse 2\nFRAG6: inuse 0 memory 0\n";

    fn names(s: &Snapshot) -> Vec<&str> {
        s.samples.iter().map(|x| x.name.as_str()).collect()
    }

    fn value(s: &Snapshot, name: &str) -> u64 {
        s.samples.iter().find(|x| x.name == name).unwrap().value
    }

    fn all_sources() -> SourceTexts {
        SourceTexts {
            sctp_snmp: Some(SCTP.into()),
            snmp: SNMP.into(),
            snmp6: Some(SNMP6.into()),
            netstat: NETSTAT.into(),
            conntrack: Some(CONNTRACK.into()),
            sockstat: Some(SOCKSTAT.into()),
            sockstat6: Some(SOCKSTAT6.into()),
        }
    }

    #[test]
    fn nstat_order_without_useless_numbers() {
        let texts = SourceTexts {
            sctp_snmp: Some(SCTP.into()),
            snmp: SNMP.into(),
            snmp6: Some(SNMP6.into()),
            netstat: NETSTAT.into(),
            ..SourceTexts::default()
        };
        let (snap, warning) = snapshot(&texts);
        assert_eq!(warning, None);
        assert_eq!(
            names(&snap),
            [
                "SctpCurrEstab",
                "SctpActiveEstabs",
                "IpInReceives",
                "IpInDiscards",
                "TcpActiveOpens",
                "TcpRetransSegs",
                "Ip6InReceives",
                "Udp6InErrors",
                "TcpExtListenOverflows",
                "TcpExtListenDrops",
                "IpExtInOctets",
            ]
        );
        assert!(
            snap.samples
                .iter()
                .all(|s| s.kind == Kind::Counter && s.source.is_nstat())
        );
    }

    #[test]
    fn conntrack_counters_are_summed_over_cpus_and_entries_is_taken_once() {
        let (snap, _) = snapshot(&all_sources());
        assert_eq!(value(&snap, "ConntrackEntries"), 7);
        assert_eq!(value(&snap, "ConntrackFound"), 0x10 + 0x0a);
        assert_eq!(value(&snap, "ConntrackInvalid"), 3);
        assert_eq!(value(&snap, "ConntrackInsert"), 12);
        assert_eq!(value(&snap, "ConntrackInsertFailed"), 3);
        assert_eq!(value(&snap, "ConntrackDrop"), 255);
        assert_eq!(value(&snap, "ConntrackIcmpError"), 0);
        assert_eq!(value(&snap, "ConntrackSearchRestart"), 1);
        let entries = snap
            .samples
            .iter()
            .find(|s| s.name == "ConntrackEntries")
            .unwrap();
        assert_eq!(entries.kind, Kind::Gauge);
        let drop = snap
            .samples
            .iter()
            .find(|s| s.name == "ConntrackDrop")
            .unwrap();
        assert_eq!((drop.kind, drop.source), (Kind::Counter, Source::Conntrack));
    }

    #[test]
    fn sockstat_gauges_follow_the_counters() {
        let (snap, _) = snapshot(&all_sources());
        let tail: Vec<&str> = names(&snap)
            .into_iter()
            .skip_while(|n| !n.starts_with("Sockstat"))
            .collect();
        assert_eq!(
            tail,
            [
                "SockstatSocketsUsed",
                "SockstatTcpInuse",
                "SockstatTcpOrphan",
                "SockstatTcpTw",
                "SockstatTcpAlloc",
                "SockstatTcpMem",
                "SockstatUdpLiteInuse",
                "SockstatTcp6Inuse",
                "SockstatFrag6Inuse",
                "SockstatFrag6Memory",
            ]
        );
        assert_eq!(value(&snap, "SockstatSocketsUsed"), 120);
        let tw = snap
            .samples
            .iter()
            .find(|s| s.name == "SockstatTcpTw")
            .unwrap();
        assert_eq!((tw.kind, tw.source), (Kind::Gauge, Source::Sockstat));
    }

    #[test]
    fn a_broken_conntrack_table_is_left_out_with_a_warning() {
        let texts = SourceTexts {
            conntrack: Some("entries drop\n00000001\n".into()),
            ..all_sources()
        };
        let (snap, warning) = snapshot(&texts);
        assert!(
            warning
                .unwrap()
                .contains("line 2 has 1 fields for 2 columns")
        );
        assert!(!names(&snap).iter().any(|n| n.starts_with("Conntrack")));
        assert_eq!(value(&snap, "TcpExtListenOverflows"), 4);
    }
}
