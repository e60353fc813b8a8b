//! Parsers for the /proc/net text files that `ss -s` and `nstat` read.
//!
//! All of them are per network namespace: opened from inside the pod's
//! namespace they describe the pod, not the node. The parsers take the file's
//! text so they can be tested on fixtures; `read` adds the path to errors.

use std::fs;

use crate::cli::{Context, Failure};

/// One counter, named as nstat names it (`TcpExtListenOverflows`: the table
/// prefix without its colon, then the field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    pub name: String,
    pub value: u64,
}

/// Reads a /proc file, naming it in the error.
pub fn read(path: &str) -> Result<String, Failure> {
    fs::read_to_string(path).context(|| format!("cannot read {path}"))
}

/// Parses the paired-line tables of /proc/net/snmp and /proc/net/netstat:
/// a header line `Tcp: RtoAlgorithm RtoMin ...` followed by a value line
/// `Tcp: 1 200 ...`. Values that do not parse as integers (never seen in
/// practice) are skipped rather than guessed. Negative values (`Tcp: MaxConn
/// -1`) are kept as their two's-complement bit pattern, as nstat prints them.
pub fn parse_paired_tables(text: &str) -> Vec<Counter> {
    let mut counters = Vec::new();
    let mut lines = text.lines();
    while let (Some(header), Some(values)) = (lines.next(), lines.next()) {
        let mut names = header.split_whitespace();
        let mut vals = values.split_whitespace();
        let (Some(prefix), Some(vprefix)) = (names.next(), vals.next()) else {
            continue;
        };
        if prefix != vprefix {
            // Out of step: resynchronise on the value line as the next header.
            continue;
        }
        let table = prefix.trim_end_matches(':');
        for (name, value) in names.zip(vals) {
            let value = match value.parse::<u64>() {
                Ok(v) => v,
                Err(_) => match value.parse::<i64>() {
                    Ok(v) => v as u64,
                    Err(_) => continue,
                },
            };
            counters.push(Counter {
                name: format!("{table}{name}"),
                value,
            });
        }
    }
    counters
}

/// Parses /proc/net/snmp6 and /proc/net/dev_snmp6-style files: one
/// `Name value` pair per line.
pub fn parse_name_value_lines(text: &str) -> Vec<Counter> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?;
            let value = fields.next()?.parse::<u64>().ok()?;
            Some(Counter {
                name: name.to_owned(),
                value,
            })
        })
        .collect()
}

/// Parses /proc/net/sockstat and sockstat6: `TCP: inuse 3 orphan 0 tw 1 ...`
/// into `(protocol, field, value)` triples, e.g. `("TCP", "inuse", 3)`.
pub fn parse_sockstat(text: &str) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((proto, rest)) = line.split_once(':') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        for pair in fields.chunks_exact(2) {
            if let Ok(v) = pair[1].parse::<u64>() {
                out.push((proto.trim().to_owned(), pair[0].to_owned(), v));
            }
        }
    }
    out
}

/// Looks up one sockstat value, 0 when absent (the kernel omits lines for
/// protocols that are not loaded).
pub fn sockstat_value(stats: &[(String, String, u64)], proto: &str, field: &str) -> u64 {
    stats
        .iter()
        .find(|(p, f, _)| p == proto && f == field)
        .map_or(0, |(_, _, v)| *v)
}

/// A per-CPU statistics table such as /proc/net/stat/nf_conntrack: a header
/// line naming the columns, then one line per possible CPU holding each
/// column as 8-digit hexadecimal (`0000001a`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerCpuTable {
    pub columns: Vec<String>,
    /// One row per CPU, each as long as `columns`.
    pub cpus: Vec<Vec<u64>>,
}

impl PerCpuTable {
    /// The column's total over every CPU (the per-CPU counters' real value).
    pub fn sum(&self, column: usize) -> u64 {
        self.cpus.iter().map(|row| row[column]).sum()
    }

    /// The column's value on the first CPU's row: for columns such as
    /// conntrack's `entries`, a namespace-wide figure repeated on every row,
    /// which summing would multiply by the number of CPUs.
    pub fn first(&self, column: usize) -> u64 {
        self.cpus.first().map_or(0, |row| row[column])
    }
}

/// Parses a per-CPU hex table ([`PerCpuTable`]). A row whose field count
/// differs from the header's, or a field that is not hexadecimal, is an
/// error naming the 1-based line: the kernel never writes one, so guessing
/// would hide a format change.
pub fn parse_per_cpu_hex_table(text: &str) -> Result<PerCpuTable, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let columns: Vec<String> = match lines.next() {
        Some(header) => header.split_whitespace().map(str::to_owned).collect(),
        None => return Err("empty file".to_owned()),
    };
    let mut cpus = Vec::new();
    for (index, line) in lines.enumerate() {
        let line_no = index + 2;
        let row = line
            .split_whitespace()
            .map(|field| u64::from_str_radix(field, 16))
            .collect::<Result<Vec<u64>, _>>()
            .map_err(|_| format!("line {line_no} holds a field that is not hexadecimal"))?;
        if row.len() != columns.len() {
            return Err(format!(
                "line {line_no} has {} fields for {} columns",
                row.len(),
                columns.len()
            ));
        }
        cpus.push(row);
    }
    Ok(PerCpuTable { columns, cpus })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_tables() {
        let text = "Tcp: RtoAlgorithm MaxConn CurrEstab\nTcp: 1 -1 3\n\
                    Udp: InDatagrams RcvbufErrors\nUdp: 10 2\n";
        let c = parse_paired_tables(text);
        assert_eq!(
            c[0],
            Counter {
                name: "TcpRtoAlgorithm".into(),
                value: 1
            }
        );
        assert_eq!(c[1].value, u64::MAX);
        assert_eq!(
            c[2],
            Counter {
                name: "TcpCurrEstab".into(),
                value: 3
            }
        );
        assert_eq!(
            c[4],
            Counter {
                name: "UdpRcvbufErrors".into(),
                value: 2
            }
        );
    }

    #[test]
    fn sockstat() {
        let text =
            "sockets: used 120\nTCP: inuse 3 orphan 0 tw 1 alloc 5 mem 1\nFRAG: inuse 0 memory 0\n";
        let s = parse_sockstat(text);
        assert_eq!(sockstat_value(&s, "sockets", "used"), 120);
        assert_eq!(sockstat_value(&s, "TCP", "tw"), 1);
        assert_eq!(sockstat_value(&s, "UDP", "inuse"), 0);
    }

    #[test]
    fn snmp6_lines() {
        let c = parse_name_value_lines("Ip6InReceives                   \t42\nUdp6InErrors 0\n");
        assert_eq!(
            c,
            vec![
                Counter {
                    name: "Ip6InReceives".into(),
                    value: 42
                },
                Counter {
                    name: "Udp6InErrors".into(),
                    value: 0
                },
            ]
        );
    }

    #[test]
    fn per_cpu_hex_table_sums_columns_over_cpus() {
        let text = "entries  clashres found insert_failed drop\n\
                    0000000a  00000000 0000000f 00000001 000000ff\n\
                    0000000a  00000000 00000001 00000002 00000001\n";
        let t = parse_per_cpu_hex_table(text).unwrap();
        assert_eq!(
            t.columns,
            ["entries", "clashres", "found", "insert_failed", "drop"]
        );
        assert_eq!(t.cpus.len(), 2);
        assert_eq!(t.sum(2), 16);
        assert_eq!(t.sum(3), 3);
        assert_eq!(t.sum(4), 256);
        assert_eq!(t.first(0), 10);
        // 32-bit per-CPU values must not overflow when summed.
        let big = "drop\nffffffff\nffffffff\n";
        assert_eq!(parse_per_cpu_hex_table(big).unwrap().sum(0), 0x1_ffff_fffe);
    }

    #[test]
    fn per_cpu_hex_table_rejects_malformed_rows() {
        assert!(
            parse_per_cpu_hex_table("a b\n00000001\n")
                .unwrap_err()
                .contains("line 2")
        );
        assert!(
            parse_per_cpu_hex_table("a\nzz\n")
                .unwrap_err()
                .contains("not hexadecimal")
        );
        assert!(parse_per_cpu_hex_table("").is_err());
    }
}
