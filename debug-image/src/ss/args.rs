//! `ss`'s command line: the flags as typed (clap), then the query they mean.
//!
//! The translation from flags to tables/families/states copies iproute2's
//! rules (misc/ss.c `main`), including their quirks, because SREs rely on
//! them: plain `ss -t` hides LISTEN and TIME-WAIT, `-l` adds unconnected
//! UDP, `-x` alone means unix sockets of every type, and the Netid/State
//! columns disappear when only one table/state can be shown.

use std::ffi::OsString;

use clap::Parser;
use netdiag_wire::OutputFormat;

use super::filter::{self, Expr};
use super::model::{Netid, TcpState};
use crate::cli::{self, Failure};

/// `ss`: socket statistics, read from the kernel over NETLINK_SOCK_DIAG.
#[derive(Parser, Debug)]
#[command(
    name = "ss",
    version,
    about = "Socket statistics, like iproute2 ss, read over NETLINK_SOCK_DIAG",
    after_help = "FILTER := [ state STATE ] [ exclude STATE ] [ EXPRESSION ]\n  \
        STATE := established|syn-sent|syn-recv|fin-wait-1|fin-wait-2|time-wait|closed|close-wait|\n           \
        last-ack|listening|closing|all|connected|synchronized|bucket|big\n  \
        EXPRESSION := src|dst ADDR[/PLEN][:PORT] | sport|dport OP [:]PORT | autobound\n                \
        joined by and/or/not and ( ), e.g. '( dport = :443 or sport = :443 )'\n\n\
        Output: -o json prints one JSON document with every field."
)]
pub struct SsArgs {
    /// Don't resolve service names (ports are always numeric without /etc/services)
    #[arg(short = 'n', long)]
    pub numeric: bool,
    /// Display all sockets (all states)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Display listening sockets (and unconnected datagram sockets)
    #[arg(short = 'l', long)]
    pub listening: bool,
    /// Show timer information
    #[arg(short = 'o', long = "options")]
    pub timers: bool,
    /// Show detailed socket information (uid, inode, cookie, shutdown)
    #[arg(short = 'e', long)]
    pub extended: bool,
    /// Show socket memory usage (skmem)
    #[arg(short = 'm', long)]
    pub memory: bool,
    /// Show processes using each socket (needs to read other processes' fds)
    #[arg(short = 'p', long)]
    pub processes: bool,
    /// Show internal TCP information (rtt, cwnd, retrans, ...)
    #[arg(short = 'i', long)]
    pub info: bool,
    /// Show a summary of socket usage
    #[arg(short = 's', long)]
    pub summary: bool,
    /// Display only IPv4 sockets
    #[arg(short = '4', long)]
    pub ipv4: bool,
    /// Display only IPv6 sockets
    #[arg(short = '6', long)]
    pub ipv6: bool,
    /// Display TCP sockets
    #[arg(short = 't', long)]
    pub tcp: bool,
    /// Display UDP sockets
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// Display RAW sockets
    #[arg(short = 'w', long)]
    pub raw: bool,
    /// Display Unix domain sockets
    #[arg(short = 'x', long)]
    pub unix: bool,
    /// Display sockets of this family: inet, inet6, unix
    #[arg(short = 'f', long, value_name = "FAMILY")]
    pub family: Vec<String>,
    /// Socket tables to show: all, inet, tcp, udp, raw, unix, unix_stream,
    /// unix_dgram, unix_seqpacket (comma separated; !name removes)
    #[arg(
        short = 'A',
        long = "query",
        visible_alias = "socket",
        value_name = "QUERY"
    )]
    pub query: Vec<String>,
    /// Suppress the header line
    #[arg(short = 'H', long = "no-header")]
    pub no_header: bool,
    /// Print each socket's data on a single line
    #[arg(short = 'O', long)]
    pub oneline: bool,
    /// Output format: text (like iproute2) or json
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub output: OutputFormat,
    /// Filter: [state STATE] [exclude STATE] [EXPRESSION]
    #[arg(value_name = "FILTER", trailing_var_arg = true)]
    pub filter: Vec<String>,
}

/// What to show, once the flags have been interpreted.
#[derive(Debug)]
pub struct Query {
    /// Tables to read, in the order iproute2 prints them.
    pub tables: Vec<Netid>,
    pub ipv4: bool,
    pub ipv6: bool,
    /// Bit `1 << state` for every state to show.
    pub states: u32,
    pub filter: Option<Expr>,
    pub show: Show,
    /// `-s`: print the summary; `summary_only` when nothing else was asked.
    pub summary: bool,
    pub summary_only: bool,
    pub output: OutputFormat,
    /// Set when iproute2 would print nothing but this notice and exit 0.
    pub nothing_to_show: Option<&'static str>,
}

/// Which optional parts of each socket to show.
#[derive(Clone, Copy, Debug, Default)]
pub struct Show {
    pub numeric: bool,
    pub timers: bool,
    pub extended: bool,
    pub memory: bool,
    pub info: bool,
    pub processes: bool,
    pub header: bool,
    pub oneline: bool,
    pub netid_column: bool,
    pub state_column: bool,
}

const ALL_STATES: u32 = (1 << 12) - 2;
/// iproute2's SS_CONN: everything but LISTEN, CLOSE, TIME-WAIT, SYN-RECV.
const CONNECTED_DEFAULT: u32 = ALL_STATES
    & !((1 << TcpState::LISTEN)
        | (1 << TcpState::CLOSE)
        | (1 << TcpState::TIME_WAIT)
        | (1 << TcpState::SYN_RECV));
const INET_TABLES: [Netid; 3] = [Netid::Tcp, Netid::Udp, Netid::Raw];
const UNIX_TABLES: [Netid; 3] = [Netid::UnixStream, Netid::UnixDgram, Netid::UnixSeqpacket];
/// Printing order of iproute2: unix, raw, udp, tcp.
const PRINT_ORDER: [Netid; 6] = [
    Netid::UnixStream,
    Netid::UnixDgram,
    Netid::UnixSeqpacket,
    Netid::Raw,
    Netid::Udp,
    Netid::Tcp,
];

/// Families as iproute2's filter tracks them.
#[derive(Clone, Copy, Default)]
struct Families {
    v4: bool,
    v6: bool,
    unix: bool,
}

impl Families {
    fn any(self) -> bool {
        self.v4 || self.v6 || self.unix
    }
}

/// Default states a table contributes when named (`default_dbs`).
fn table_default_states(t: Netid) -> u32 {
    match t {
        Netid::Tcp | Netid::UnixStream | Netid::UnixSeqpacket => CONNECTED_DEFAULT,
        Netid::Udp | Netid::Raw => 1 << TcpState::ESTABLISHED,
        Netid::UnixDgram => 1 << TcpState::CLOSE,
    }
}

/// Parses `ss`'s arguments (including the tool name in position 0).
pub fn parse(args: Vec<OsString>) -> Result<(SsArgs, Query), Failure> {
    let args: SsArgs = cli::parse("ss", cli::rewrite_output_flag(args))?;
    let query = interpret(&args).map_err(Failure::Message)?;
    Ok((args, query))
}

fn interpret(a: &SsArgs) -> Result<Query, String> {
    let mut tables: Vec<Netid> = Vec::new();
    let mut families = Families::default();
    let mut states = 0u32;
    let mut do_default = true;
    let mut state_filter = 0u32;

    let enable = |tables: &mut Vec<Netid>, states: &mut u32, t: Netid| {
        if !tables.contains(&t) {
            tables.push(t);
        }
        *states |= table_default_states(t);
    };
    // Flags in iproute2's switch order; the result does not depend on order.
    if a.tcp {
        enable(&mut tables, &mut states, Netid::Tcp);
        do_default = false;
    }
    if a.udp {
        enable(&mut tables, &mut states, Netid::Udp);
        do_default = false;
    }
    if a.raw {
        enable(&mut tables, &mut states, Netid::Raw);
        do_default = false;
    }
    let af_set = |families: &mut Families, states: &mut u32, which: &str| -> Result<(), String> {
        match which {
            "inet" => families.v4 = true,
            "inet6" => families.v6 = true,
            "unix" => families.unix = true,
            "link" | "netlink" | "vsock" | "tipc" | "xdp" => {
                return Err(format!(
                    "\"{which}\" sockets are not supported by netdiag's ss; use inet, inet6 or unix"
                ));
            }
            other => {
                return Err(format!(
                    "\"{other}\" is invalid family; expected inet, inet6 or unix"
                ));
            }
        }
        *states |= CONNECTED_DEFAULT;
        Ok(())
    };
    if a.unix {
        af_set(&mut families, &mut states, "unix")?;
        do_default = false;
    }
    if a.ipv4 {
        af_set(&mut families, &mut states, "inet")?;
        do_default = false;
    }
    if a.ipv6 {
        af_set(&mut families, &mut states, "inet6")?;
        do_default = false;
    }
    for f in &a.family {
        af_set(&mut families, &mut states, f)?;
        do_default = false;
    }
    if a.all {
        state_filter = ALL_STATES;
    }
    if a.listening {
        state_filter = (1 << TcpState::LISTEN) | (1 << TcpState::CLOSE);
    }
    if !a.query.is_empty() {
        tables.clear();
        if state_filter == 0 {
            state_filter = CONNECTED_DEFAULT;
        }
        do_default = false;
        for q in a.query.iter().flat_map(|q| q.split(',')) {
            let (on, name) = match q.strip_prefix('!') {
                Some(n) => (false, n),
                None => (true, q),
            };
            let named: &[Netid] = match name {
                "all" => &PRINT_ORDER,
                "inet" => &INET_TABLES,
                "tcp" => &[Netid::Tcp],
                "udp" => &[Netid::Udp],
                "raw" => &[Netid::Raw],
                "unix" => &UNIX_TABLES,
                "unix_stream" | "u_str" => &[Netid::UnixStream],
                "unix_dgram" | "u_dgr" => &[Netid::UnixDgram],
                "unix_seqpacket" | "u_seq" => &[Netid::UnixSeqpacket],
                "mptcp" | "dccp" | "sctp" | "packet" | "packet_raw" | "p_raw" | "packet_dgram"
                | "p_dgr" | "netlink" | "tipc" | "vsock" | "vsock_stream" | "v_str"
                | "vsock_dgram" | "v_dgr" | "xdp" => {
                    return Err(format!(
                        "\"{name}\" sockets are not supported by netdiag's ss; supported: tcp, udp, raw, unix"
                    ));
                }
                other => {
                    return Err(format!(
                        "\"{other}\" is illegal socket table id; see 'ss --help'"
                    ));
                }
            };
            for t in named {
                if on {
                    enable(&mut tables, &mut states, *t);
                } else {
                    tables.retain(|x| x != t);
                }
            }
        }
    }

    // Leading `state X` / `exclude X` clauses, then the filter expression.
    let mut words = a.filter.as_slice();
    let mut saw_states = false;
    while let Some(first) = words.first() {
        let include = match first.as_str() {
            "state" => true,
            "exclude" | "excl" => false,
            _ => break,
        };
        let Some(name) = words.get(1) else {
            return Err(format!(
                "\"{first}\" needs a state name after it; see 'ss --help'"
            ));
        };
        let bits = scan_state(name)?;
        if !saw_states {
            state_filter = if include { 0 } else { ALL_STATES };
        }
        if include {
            state_filter |= bits;
        } else {
            state_filter &= !bits;
        }
        saw_states = true;
        words = &words[2..];
    }

    let summary_only = a.summary && do_default && words.is_empty();
    if do_default {
        if state_filter == 0 {
            state_filter = CONNECTED_DEFAULT;
        }
        tables = PRINT_ORDER.to_vec();
    }
    if state_filter != 0 {
        states = state_filter;
    }
    // filter_merge_defaults: tables imply their families and vice versa.
    for t in &tables {
        let has = if t.is_unix() {
            families.unix
        } else {
            families.v4 || families.v6
        };
        if !has {
            if t.is_unix() {
                families.unix = true;
            } else {
                families.v4 = true;
                families.v6 = true;
            }
        }
    }
    let mut add = |t: &[Netid]| {
        if !t.iter().any(|x| tables.contains(x)) {
            tables.extend_from_slice(t);
        }
    };
    if families.v4 || families.v6 {
        add(&INET_TABLES);
    }
    if families.unix {
        add(&UNIX_TABLES);
    }
    tables.sort_by_key(|t| PRINT_ORDER.iter().position(|p| p == t));

    let filter = filter::parse(words, &|name| super::services::port_by_name(name))?;

    let nothing_to_show = if tables.is_empty() {
        Some("no socket tables to show with such filter.")
    } else if !families.any() {
        Some("no families to show with such filter.")
    } else if states == 0 {
        Some("no socket states to show with such filter.")
    } else {
        None
    };

    let show = Show {
        numeric: a.numeric,
        timers: a.timers || a.extended,
        extended: a.extended,
        memory: a.memory,
        info: a.info,
        processes: a.processes,
        header: !a.no_header,
        oneline: a.oneline,
        netid_column: tables.len() > 1,
        state_column: states.count_ones() > 1,
    };
    Ok(Query {
        tables,
        ipv4: families.v4,
        ipv6: families.v6,
        states,
        filter,
        show,
        summary: a.summary,
        summary_only,
        output: a.output,
        nothing_to_show,
    })
}

/// iproute2's scan_state: a state name or one of the state groups.
pub fn scan_state(name: &str) -> Result<u32, String> {
    let lower = name.to_ascii_lowercase();
    let bit = |s: u8| 1u32 << s;
    Ok(match lower.as_str() {
        "close" | "closed" | "unconnected" => bit(TcpState::CLOSE),
        "syn-rcv" | "syn-recv" => bit(TcpState::SYN_RECV),
        "established" => bit(TcpState::ESTABLISHED),
        "syn-sent" => bit(TcpState::SYN_SENT),
        "fin-wait-1" => bit(TcpState::FIN_WAIT1),
        "fin-wait-2" => bit(TcpState::FIN_WAIT2),
        "time-wait" => bit(TcpState::TIME_WAIT),
        "close-wait" => bit(TcpState::CLOSE_WAIT),
        "last-ack" => bit(TcpState::LAST_ACK),
        "listening" | "listen" => bit(TcpState::LISTEN),
        "closing" => bit(TcpState::CLOSING),
        "all" => ALL_STATES,
        "connected" => ALL_STATES & !(bit(TcpState::CLOSE) | bit(TcpState::LISTEN)),
        "synchronized" => {
            ALL_STATES & !(bit(TcpState::CLOSE) | bit(TcpState::LISTEN) | bit(TcpState::SYN_SENT))
        }
        "bucket" => bit(TcpState::SYN_RECV) | bit(TcpState::TIME_WAIT),
        "big" => ALL_STATES & !(bit(TcpState::SYN_RECV) | bit(TcpState::TIME_WAIT)),
        _ => {
            return Err(format!(
                "wrong state name \"{name}\"; expected established, syn-sent, syn-recv, fin-wait-1, \
                 fin-wait-2, time-wait, closed, close-wait, last-ack, listening, closing, all, \
                 connected, synchronized, bucket or big"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(args: &[&str]) -> Result<Query, String> {
        let mut v = vec!["ss"];
        v.extend_from_slice(args);
        let parsed = SsArgs::try_parse_from(v).map_err(|e| e.to_string())?;
        interpret(&parsed)
    }

    #[test]
    fn tcp_listening_has_no_netid_column() {
        let query = q(&["-tln"]).unwrap();
        assert_eq!(query.tables, vec![Netid::Tcp]);
        assert!(!query.show.netid_column);
        assert!(query.show.state_column);
        assert_eq!(
            query.states,
            (1 << TcpState::LISTEN) | (1 << TcpState::CLOSE)
        );
    }

    #[test]
    fn default_hides_listen_and_time_wait() {
        let query = q(&["-t"]).unwrap();
        assert_eq!(query.states & (1 << TcpState::TIME_WAIT), 0);
        assert_eq!(query.states & (1 << TcpState::LISTEN), 0);
        assert_ne!(query.states & (1 << TcpState::ESTABLISHED), 0);
    }

    #[test]
    fn single_state_hides_state_column() {
        let query = q(&["-t", "state", "established"]).unwrap();
        assert_eq!(query.states, 1 << TcpState::ESTABLISHED);
        assert!(!query.show.state_column);
        let query = q(&["-t", "state", "time-wait", "state", "listening"]).unwrap();
        assert!(query.show.state_column);
        let query = q(&["-ta", "exclude", "listening"]).unwrap();
        assert_eq!(query.states & (1 << TcpState::LISTEN), 0);
    }

    #[test]
    fn unix_and_families() {
        assert_eq!(q(&["-x"]).unwrap().tables, UNIX_TABLES.to_vec());
        let query = q(&["-4"]).unwrap();
        assert_eq!(query.tables, vec![Netid::Raw, Netid::Udp, Netid::Tcp]);
        assert!(query.ipv4 && !query.ipv6);
        assert_eq!(
            q(&["-A", "tcp,udp"]).unwrap().tables,
            vec![Netid::Udp, Netid::Tcp]
        );
    }

    #[test]
    fn bad_input_names_what_was_wrong() {
        assert!(q(&["state", "bogus"]).unwrap_err().contains("\"bogus\""));
        assert!(q(&["-A", "nope"]).unwrap_err().contains("\"nope\""));
        assert!(q(&["-f", "link"]).unwrap_err().contains("not supported"));
        assert!(
            q(&["-t", "dport", "=", ":abc"])
                .unwrap_err()
                .contains("\"abc\"")
        );
    }
}
