//! `tcpdump`: packet capture in the pod's network namespace, filtered in
//! the kernel by the pcap-filter language, printed like `tcpdump -nn` or
//! written as pcap for Wireshark.
//!
//! parse ([`args`]) → compile the filter ([`filter`]: pcap-filter → classic
//! BPF with libpcap 1.10's semantics, for the link type of the source) →
//! packets from a TPACKET_V3 ring with the filter in the kernel
//! ([`capture`], driven by [`live`] until `-c`, a signal or the end of
//! stdin, see [`stop`]) or from a pcap file ([`savefile`]) → a [`sink`]:
//! the text printer ([`print`]) or a pcap file.
//!
//! Differences from tcpdump, on purpose: names are never resolved in the
//! output (no /etc/services in the image; `-n` is implied); times are UTC;
//! packets still in the kernel's ring when a capture is stopped are
//! collected rather than lost; the capture also stops when stdin (a pipe)
//! ends, which is how `kubectl netdiag` ends it; without `-i` the capture
//! is on all interfaces (`any`, where tcpdump takes the first one), and
//! `-d` without `-i` shows that program rather than assuming Ethernet.

mod args;
mod capture;
pub mod filter;
mod live;
mod print;
mod savefile;
mod sink;
mod stop;

use std::ffi::OsString;
use std::io::{self, Write};
use std::net::IpAddr;
use std::process::ExitCode;

use crate::cli::{self, Failure};
use args::{DumpFormat, Plan};
use capture::{Capture, OpenError};
use filter::{LinkType, Target};
use sink::{PcapSink, Sink, TextSink};

pub fn main(args: Vec<OsString>) -> ExitCode {
    cli::finish("tcpdump", run(args))
}

fn run(args: Vec<OsString>) -> Result<u8, Failure> {
    let plan = args::parse(args)?;
    if plan.list_interfaces {
        let list = capture::iface::list().map_err(Failure::msg)?;
        io::stdout()
            .lock()
            .write_all(capture::iface::describe_all(&list).as_bytes())?;
        return Ok(0);
    }
    match plan.read.clone() {
        Some(path) => offline(&plan, &path),
        None => live_capture(&plan),
    }
}

/// Host names in a filter, resolved the way the pod's programs resolve
/// them (its /etc/hosts and resolv.conf), once, before capturing.
fn resolve(name: &str) -> Result<Vec<IpAddr>, String> {
    let lookup = async {
        crate::dns::resolve_host(name, crate::dns::Family::Any)
            .await
            .map_err(|e| Failure::Message(format!("unknown host '{name}' ({e})")))
    };
    cli::block_on(lookup).map_err(|e| e.to_string())
}

/// `-r FILE`: filter and print (or copy) a pcap file.
fn offline(plan: &Plan, path: &str) -> Result<u8, Failure> {
    let mut reader = savefile::Reader::open(path).map_err(Failure::msg)?;
    let link = LinkType::from_linktype(reader.linktype()).ok_or_else(|| {
        Failure::msg(format!(
            "{path}: link type {} is not supported; only Ethernet (1) and Linux cooked (113) are",
            reader.linktype()
        ))
    })?;
    let target = Target {
        link,
        vlan_metadata: false,
        savefile: true,
        snaplen: plan.snaplen,
        netmask: Some(0),
        resolve: &resolve,
    };
    let Some(program) = compile_filter(plan, &target)? else {
        return Ok(0);
    };
    eprintln!(
        "reading from file {path}, link-type {}, snapshot length {}",
        link.describe(),
        reader.snaplen()
    );
    let mut sink = open_sink(plan, link)?;
    let mut written = 0u64;
    while let Some(packet) = reader.next_packet() {
        let packet = packet.map_err(|e| Failure::msg(format!("{path}: {e}")))?;
        if program.matches(&packet.data, packet.orig_len) {
            sink.packet(&packet.frame())?;
            written += 1;
            if plan.count.is_some_and(|c| written >= c) {
                break;
            }
        }
    }
    sink.flush()?;
    Ok(0)
}

fn open_sink(plan: &Plan, link: LinkType) -> Result<Box<dyn Sink>, Failure> {
    Ok(match &plan.write {
        Some(path) => Box::new(PcapSink(
            savefile::Writer::create(path, link.linktype(), plan.snaplen, plan.packet_buffered)
                .map_err(Failure::msg)?,
        )),
        None => Box::new(TextSink::new(print::Printer::new(plan.print, link))),
    })
}

/// A live capture on `-i` (default: all interfaces).
fn live_capture(plan: &Plan) -> Result<u8, Failure> {
    let name = plan.interface.as_deref().unwrap_or("any");
    let interfaces = capture::iface::list().map_err(Failure::msg)?;
    let netmask = if name == "any" {
        0
    } else {
        let Some(iface) = interfaces.iter().find(|i| i.name == name) else {
            return Err(no_such_interface(name));
        };
        iface.netmask.unwrap_or(0)
    };
    let link = capture::link_type(Some(name));
    let target = Target {
        link,
        vlan_metadata: link == LinkType::Ethernet,
        savefile: false,
        snaplen: plan.snaplen,
        netmask: Some(netmask),
        resolve: &resolve,
    };
    let Some(program) = compile_filter(plan, &target)? else {
        return Ok(0);
    };
    // Signals are taken from here on, so one arriving during setup is
    // handled by the loop rather than killing us half-way.
    let stopper =
        stop::Stopper::new().map_err(|e| Failure::msg(format!("setting up signals: {e}")))?;
    let opts = capture::Options {
        interface: Some(name.to_owned()),
        snaplen: plan.snaplen,
        promiscuous: plan.promiscuous,
        buffer_bytes: plan.buffer_bytes,
        immediate: plan.immediate,
    };
    let mut cap = Capture::open(&opts, &program).map_err(|e| open_failure(e, name))?;
    if cap.filters_in_userspace() {
        eprintln!(
            "tcpdump: the filter reads the cooked header of -i any, which the kernel cannot test; filtering in user space"
        );
    }
    let listening = format!(
        "listening on {name}, link-type {}, snapshot length {} bytes",
        cap.link().describe(),
        plan.snaplen
    );
    if plan.write.is_none() && plan.print.verbose == 0 {
        eprintln!("tcpdump: verbose output suppressed, use -v[v]... for full protocol decode");
        eprintln!("{listening}");
    } else {
        eprintln!("tcpdump: {listening}");
    }
    let mut sink = open_sink(plan, link)?;
    let (captured, stats) = live::run(plan, &mut cap, &stopper, sink.as_mut())?;
    live::print_stats(captured, stats)?;
    Ok(0)
}

fn no_such_interface(name: &str) -> Failure {
    Failure::msg(format!(
        "no such interface \"{name}\" in this network namespace; 'tcpdump -D' lists the ones here"
    ))
}

fn open_failure(e: OpenError, name: &str) -> Failure {
    match e {
        OpenError::NoSuchInterface(n) => no_such_interface(&n),
        OpenError::NotPermitted(e) => Failure::msg(format!(
            "capturing on {name} needs the NET_RAW capability ({e}); run the agent with CAP_NET_RAW"
        )),
        OpenError::FilterRefused(e, n) => Failure::msg(format!(
            "the kernel refused the compiled filter ({n} instructions): {e}; simplify the filter"
        )),
        OpenError::Other(m) => Failure::msg(m),
    }
}

/// Compiles the filter; prints it and returns `None` for `-d` and
/// `--debug-filter`. A bad filter is one error line, then the filter with a
/// caret under the offending token.
fn compile_filter(
    plan: &Plan,
    target: &Target<'_>,
) -> Result<Option<filter::bpf::Program>, Failure> {
    let text = plan.filter.as_str();
    let (program, stages) = match filter::compile_stages(text, target) {
        Ok(done) => done,
        Err(e) => {
            eprintln!("tcpdump: {}", e.one_line(text));
            if let Some(caret) = e.caret(text) {
                eprintln!("{caret}");
            }
            return Err(Failure::Exit(netdiag_wire::exit::FAILURE));
        }
    };
    let mut out = io::stdout().lock();
    if plan.debug_filter {
        writeln!(out, "== tokens\n{}", stages.tokens)?;
        writeln!(out, "== syntax tree\n{}\n", stages.tree)?;
        writeln!(
            out,
            "== blocks ({})\n{}",
            target.link.describe(),
            stages.blocks
        )?;
        writeln!(out, "== optimized\n{}", stages.optimized)?;
        writeln!(out, "== program\n{}", program.disassemble())?;
        return Ok(None);
    }
    match plan.dump {
        Some(DumpFormat::Assembly) => write!(out, "{}", program.disassemble())?,
        Some(DumpFormat::C) => write!(out, "{}", program.as_c_array())?,
        Some(DumpFormat::Decimal) => write!(out, "{}", program.as_decimal())?,
        None => return Ok(Some(program)),
    }
    Ok(None)
}
