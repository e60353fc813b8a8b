//! `ss`: socket statistics from inside the pod's network namespace.
//!
//! parse ([`args`]) → run (read the kernel's socket tables over
//! NETLINK_SOCK_DIAG, [`netlink`], filter with [`filter`], attach processes
//! from /proc with [`procs`]) → render ([`render`]: iproute2's columns via
//! [`columns`], or `-o json`). Sockets stream from the kernel to the printer
//! one at a time, so memory stays small with tens of thousands of sockets.
//!
//! Tables supported: tcp, udp, raw (IPv4 and IPv6) and unix. Netlink,
//! packet, SCTP, DCCP, MPTCP, vsock and TIPC sockets are not listed.

mod args;
mod columns;
mod filter;
mod model;
mod netlink;
mod procnet;
mod procs;
mod render;
mod services;
mod summary;
mod tcp_info;

use std::ffi::OsString;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use netdiag_wire::OutputFormat;

use crate::cli::{self, Failure};
use args::Query;
use model::Socket;
use netlink::Extensions;
use render::{JsonSink, Sink, TextSink};

pub fn main(args: Vec<OsString>) -> ExitCode {
    cli::finish("ss", run(args))
}

fn run(args: Vec<OsString>) -> Result<u8, Failure> {
    let (_, query) = args::parse(args)?;
    if let Some(notice) = query.nothing_to_show {
        eprintln!("ss: {notice}");
        return Ok(0);
    }

    let stdout = io::stdout();
    let screen_width = stdout.is_terminal().then(terminal_width).flatten();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());

    let summary = if query.summary {
        Some(summary::read()?)
    } else {
        None
    };
    if query.output == OutputFormat::Text
        && let Some(s) = &summary
    {
        summary::print(s, &mut out)?;
    }
    if query.summary_only && query.output == OutputFormat::Text {
        out.flush()?;
        return Ok(0);
    }

    let processes = query.show.processes.then(procs::scan);
    if let Some(table) = &processes {
        if table.readable == 0 {
            eprintln!(
                "ss: -p: no process is visible or readable here (no shared PID namespace, or \
                 reading other processes' fds needs uid 0 and CAP_SYS_PTRACE); the process column stays empty"
            );
        } else if table.unreadable > 0 {
            eprintln!(
                "ss: -p: {} process(es) could not be read (permission); their sockets show no process",
                table.unreadable
            );
        }
    }

    let mut sink: Box<dyn Sink + '_> = match query.output {
        OutputFormat::Text => Box::new(TextSink::new(&mut out, query.show, screen_width)),
        OutputFormat::Json => {
            let summary = summary.map(|s| serde_json::to_value(s).unwrap_or_default());
            Box::new(JsonSink::new(&mut out, summary))
        }
    };
    each_socket(&query, processes.as_ref(), |s| sink.socket(s))?;
    sink.finish()?;
    Ok(0)
}

/// Reads every requested table in iproute2's order (unix, raw, udp, tcp;
/// IPv4 before IPv6) and passes each matching socket to `emit` as it
/// arrives from the kernel: nothing is collected, so memory does not grow
/// with the number of sockets.
fn each_socket(
    query: &Query,
    processes: Option<&procs::ProcessTable>,
    mut emit: impl FnMut(&Socket) -> io::Result<()>,
) -> Result<(), Failure> {
    let ext = Extensions {
        memory: query.show.memory,
        tcp_info: query.show.info,
    };
    let ephemeral = services::ephemeral_range();
    let mut matching = |mut socket: Socket| -> io::Result<()> {
        // One unix dump returns all three unix types: keep the asked ones.
        if !query.tables.contains(&socket.netid) {
            return Ok(());
        }
        if let Some(f) = &query.filter
            && !f.matches(&socket, ephemeral)
        {
            return Ok(());
        }
        if let Some(p) = processes.and_then(|p| p.by_inode.get(&socket.inode)) {
            socket.processes = p.clone();
        }
        emit(&socket)
    };
    let mut unix_done = false;
    for &table in &query.tables {
        let result = if table.is_unix() {
            if unix_done {
                continue;
            }
            unix_done = true;
            netlink::dump_unix(query.states, ext, &mut matching)
        } else {
            let mut result = Ok(());
            for (wanted, family) in [(query.ipv4, libc::AF_INET), (query.ipv6, libc::AF_INET6)] {
                if !wanted || result.is_err() {
                    continue;
                }
                result = netlink::dump_inet(family as u8, table, query.states, ext, &mut matching);
                // The protocol's diag module is missing (raw_diag often is,
                // and a pod cannot load it): read /proc/net like iproute2.
                // The kernel answers ENOENT before sending any socket.
                if matches!(&result, Err(e) if e.raw_os_error() == Some(libc::ENOENT)) {
                    let v6 = family == libc::AF_INET6;
                    result = procnet::read(table, v6, query.states, &mut matching);
                }
            }
            result
        };
        result.map_err(|e| {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Failure::BrokenPipe;
            }
            Failure::msg(format!(
                "reading {} sockets over NETLINK_SOCK_DIAG: {}",
                table.label(),
                cli::describe_io_error(&e)
            ))
        })?;
    }
    Ok(())
}

/// The terminal's width in columns, as iproute2 asks for it.
fn terminal_width() -> Option<usize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}
