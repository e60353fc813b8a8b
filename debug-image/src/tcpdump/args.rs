//! `tcpdump`'s command line: tcpdump's own flags (clap), then what they
//! mean ([`Plan`]): where packets come from and go, how they are printed,
//! and the filter text.
//!
//! Flags keep tcpdump's letters and meanings. Output is always numeric
//! (`-n`/`-nn` are accepted and change nothing): the agent's image has no
//! /etc/services or /etc/hosts, and a capture tool that resolves names
//! sends DNS queries of its own into the traffic being captured.

use std::ffi::OsString;

use clap::{ArgAction, Parser};

use crate::cli::{self, Failure};

/// tcpdump's default snap length (`-s 0` means the same).
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// The ring's size without `-B`: a few MiB, like libpcap's 2 MiB default.
pub const DEFAULT_BUFFER_KIB: usize = 4096;
/// The largest `-B` accepted: the ring is locked kernel memory in someone
/// else's pod.
pub const MAX_BUFFER_KIB: usize = 256 * 1024;

/// `tcpdump`: capture packets in the pod's network namespace, filtered in
/// the kernel, printed like tcpdump or written as pcap.
#[derive(Parser, Debug)]
#[command(
    name = "tcpdump",
    version,
    about = "Capture packets with a pcap-filter expression, like tcpdump -nn",
    after_help = "EXPRESSION: a pcap-filter expression, e.g. 'tcp port 443 and host 198.51.100.7', \
        'tcp[tcpflags] & tcp-rst != 0', 'udp port 53'.\n\
        Wireshark display filters (tcp.flags.reset == 1) are not capture filters.\n\
        The capture stops after -c packets, on SIGINT/SIGTERM, or when stdin (a pipe) ends, \
        and prints tcpdump's three statistics lines on stderr.\n\
        Times are printed in UTC. --debug-filter prints the filter compiler's stages."
)]
pub struct TcpdumpArgs {
    /// Interface to capture on ('any' for all; default: any)
    #[arg(short = 'i', long = "interface", value_name = "INTERFACE")]
    pub interface: Option<String>,
    /// List the interfaces that can be captured on, and exit
    #[arg(short = 'D', long = "list-interfaces")]
    pub list_interfaces: bool,
    /// Read packets from a pcap file ('-' for stdin) instead of capturing
    #[arg(short = 'r', value_name = "FILE")]
    pub read: Option<String>,
    /// Write raw packets to a pcap file ('-' for stdout) instead of printing them
    #[arg(short = 'w', value_name = "FILE")]
    pub write: Option<String>,
    /// With -w, flush the file after every packet (for '-w - | wireshark -k -i -')
    #[arg(short = 'U', long = "packet-buffered")]
    pub packet_buffered: bool,
    /// Exit after this many packets
    #[arg(short = 'c', value_name = "COUNT")]
    pub count: Option<u64>,
    /// Bytes to keep of each packet (0: 262144)
    #[arg(short = 's', long = "snapshot-length", value_name = "SNAPLEN")]
    pub snaplen: Option<u32>,
    /// Don't put the interface in promiscuous mode
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    pub no_promiscuous: bool,
    /// Capture buffer (ring) size in KiB (default 4096)
    #[arg(short = 'B', long = "buffer-size", value_name = "KIB")]
    pub buffer_kib: Option<usize>,
    /// Deliver each packet as soon as it arrives instead of in batches
    #[arg(long = "immediate-mode")]
    pub immediate: bool,
    /// Direction of packets to capture: in, out or inout
    #[arg(short = 'Q', long = "direction", value_name = "DIRECTION")]
    pub direction: Option<String>,
    /// Print the link-level header
    #[arg(short = 'e')]
    pub link_header: bool,
    /// More detail (-v, -vv)
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
    /// Print each packet in hex (-xx: with the link-level header)
    #[arg(short = 'x', action = ArgAction::Count)]
    pub hex: u8,
    /// Print each packet in hex and ASCII (-XX: with the link-level header)
    #[arg(short = 'X', action = ArgAction::Count)]
    pub hex_ascii: u8,
    /// Print each packet in ASCII
    #[arg(short = 'A')]
    pub ascii: bool,
    /// Timestamps: -t none, -tt seconds, -ttt delta, -tttt date and time, -ttttt since first
    #[arg(short = 't', action = ArgAction::Count)]
    pub timestamps: u8,
    /// Print the compiled BPF program and exit (-dd: as C, -ddd: as decimal)
    #[arg(short = 'd', action = ArgAction::Count)]
    pub dump_program: u8,
    /// Read the filter expression from a file
    #[arg(short = 'F', value_name = "FILE")]
    pub filter_file: Option<String>,
    /// Don't resolve names (always the case: accepted for compatibility)
    #[arg(short = 'n', action = ArgAction::Count)]
    pub numeric: u8,
    /// Print the filter compiler's stages and exit
    #[arg(long = "debug-filter")]
    pub debug_filter: bool,
    /// The filter expression (several words are joined with spaces)
    #[arg(value_name = "EXPRESSION", allow_hyphen_values = true)]
    pub expression: Vec<String>,
}

/// How `-d` should print the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpFormat {
    Assembly,
    C,
    Decimal,
}

/// `-Q`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
    InOut,
}

/// `-t` and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeFormat {
    /// `12:34:56.789012`
    Time,
    /// `-t`
    None,
    /// `-tt`: `1700000000.789012`
    Epoch,
    /// `-ttt`: ` 00:00:00.000123` since the previous packet
    Delta,
    /// `-tttt`: `2023-11-14 22:13:20.789012`
    DateTime,
    /// `-ttttt`: since the first packet
    SinceFirst,
}

/// How packets are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrintOptions {
    pub link_header: bool,
    pub verbose: u8,
    /// 0: none; 1: hex of the packet after the link header; 2: with it.
    pub hex: u8,
    pub ascii_with_hex: bool,
    pub ascii: bool,
    pub time: TimeFormat,
}

/// What to do, decided from the flags.
#[derive(Debug)]
pub struct Plan {
    pub interface: Option<String>,
    pub list_interfaces: bool,
    pub read: Option<String>,
    pub write: Option<String>,
    pub packet_buffered: bool,
    pub count: Option<u64>,
    pub snaplen: u32,
    pub promiscuous: bool,
    pub buffer_bytes: usize,
    pub immediate: bool,
    pub direction: Direction,
    pub print: PrintOptions,
    pub dump: Option<DumpFormat>,
    pub debug_filter: bool,
    /// The filter text ("" = every packet).
    pub filter: String,
}

pub fn parse(args: Vec<OsString>) -> Result<Plan, Failure> {
    let a: TcpdumpArgs = cli::parse("tcpdump", args)?;
    let filter = match &a.filter_file {
        Some(path) => {
            if !a.expression.is_empty() {
                return Err(Failure::msg(
                    "-F and an expression on the command line were both given; use one",
                ));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::msg(format!("-F {path}: {e}")))?;
            // tcpdump drops '#' comments from filter files.
            text.lines()
                .map(|l| l.split('#').next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(" ")
                .trim()
                .to_owned()
        }
        None => a.expression.join(" "),
    };
    let snaplen = match a.snaplen {
        None | Some(0) => DEFAULT_SNAPLEN,
        Some(n) => n.min(DEFAULT_SNAPLEN),
    };
    if a.count == Some(0) {
        return Err(Failure::msg("-c 0: the count must be at least 1"));
    }
    let buffer_kib = a.buffer_kib.unwrap_or(DEFAULT_BUFFER_KIB);
    if buffer_kib == 0 || buffer_kib > MAX_BUFFER_KIB {
        return Err(Failure::msg(format!(
            "-B {buffer_kib}: the buffer must be between 1 and {MAX_BUFFER_KIB} KiB"
        )));
    }
    let direction = match a.direction.as_deref() {
        None | Some("inout") => Direction::InOut,
        Some("in") => Direction::In,
        Some("out") => Direction::Out,
        Some(other) => {
            return Err(Failure::msg(format!(
                "-Q {other:?}: expected in, out or inout"
            )));
        }
    };
    if a.read.is_some() && a.interface.is_some() {
        return Err(Failure::msg(
            "-r and -i were both given; read a file or capture, not both",
        ));
    }
    let dump = match a.dump_program {
        0 => None,
        1 => Some(DumpFormat::Assembly),
        2 => Some(DumpFormat::C),
        _ => Some(DumpFormat::Decimal),
    };
    let time = match a.timestamps {
        0 => TimeFormat::Time,
        1 => TimeFormat::None,
        2 => TimeFormat::Epoch,
        3 => TimeFormat::Delta,
        4 => TimeFormat::DateTime,
        _ => TimeFormat::SinceFirst,
    };
    let hex = a.hex.max(a.hex_ascii).min(2);
    Ok(Plan {
        interface: a.interface,
        list_interfaces: a.list_interfaces,
        read: a.read,
        write: a.write,
        packet_buffered: a.packet_buffered,
        count: a.count,
        snaplen,
        promiscuous: !a.no_promiscuous,
        buffer_bytes: buffer_kib * 1024,
        immediate: a.immediate,
        direction,
        print: PrintOptions {
            link_header: a.link_header,
            verbose: a.verbose,
            hex,
            ascii_with_hex: a.hex_ascii > 0,
            ascii: a.ascii && hex == 0,
            time,
        },
        dump,
        debug_filter: a.debug_filter,
        filter,
    })
}
