//! `netdiag-agent`: one static multi-call binary holding the network tools
//! that a distroless pod lacks.
//!
//! Like busybox it picks the tool from its first argument
//! (`netdiag-agent ss -tlnp`) or, when invoked through a link named after a
//! tool, from `argv[0]` (`ss -tlnp`). Each tool lives in its own module and
//! keeps the same three visible steps: parse the arguments, run (talk to the
//! kernel), render (text like the classic tool, or `-o json`).

mod attached;
mod calendar;
mod cli;
mod dig;
mod dns;
mod nc;
mod nstat;
mod paping;
mod procfs;
mod services;
mod ss;
mod tcpdump;
#[cfg(test)]
mod test_rng;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

/// A tool: its name, a one-line summary, and its entry point, which receives
/// the arguments including the tool's own name in position 0.
struct Tool {
    name: &'static str,
    about: &'static str,
    main: fn(Vec<OsString>) -> ExitCode,
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "ss",
        about: "socket statistics, like iproute2 ss",
        main: ss::main,
    },
    Tool {
        name: "nstat",
        about: "protocol counters and drops, like iproute2 nstat",
        main: nstat::main,
    },
    Tool {
        name: "nc",
        about: "TCP/UDP connect, listen and port scan, like OpenBSD netcat",
        main: nc::main,
    },
    Tool {
        name: "paping",
        about: "TCP connect latency and loss over time, like paping",
        main: paping::main,
    },
    Tool {
        name: "dig",
        about: "DNS queries, like bind's dig (+short, +tcp, -x, -o json)",
        main: dig::main,
    },
    Tool {
        name: "resolve",
        about: "replay the pod's resolver (search, ndots, glibc/musl) for a name",
        main: dig::resolve_main,
    },
    Tool {
        name: "tcpdump",
        about: "packet capture with kernel filters, like tcpdump -nn",
        main: tcpdump::main,
    },
];

fn main() -> ExitCode {
    attached::arm_parent_death_signal();
    let args: Vec<OsString> = std::env::args_os().collect();
    // Launched by kubectl-netdiag: wrap the tool in the attach protocol.
    if let Some(version) = std::env::var_os(netdiag_wire::frame::PROTOCOL_ENV) {
        let version = version.to_string_lossy().into_owned();
        let invoked_as = invoked_name(&args);
        let tool_args = if find_tool(&invoked_as).is_some() {
            let mut a = args.clone();
            a[0] = invoked_as.into();
            a
        } else {
            args[1..].to_vec()
        };
        return attached::run(&version, tool_args);
    }
    let invoked_as = invoked_name(&args);

    if let Some(tool) = find_tool(&invoked_as) {
        return (tool.main)(args);
    }
    match args.get(1).and_then(|a| a.to_str()) {
        None | Some("-h" | "--help" | "help") => {
            print_usage();
            ExitCode::SUCCESS
        }
        Some("-V" | "--version" | "version") => {
            println!("netdiag-agent {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(name) => match find_tool(name) {
            Some(tool) => (tool.main)(args[1..].to_vec()),
            None => {
                eprintln!(
                    "netdiag-agent: unknown tool \"{name}\"; expected one of: {} (see 'netdiag-agent --help')",
                    TOOLS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
                );
                ExitCode::from(netdiag_wire::exit::FAILURE)
            }
        },
    }
}

/// The program name we were run as, without its directory.
fn invoked_name(args: &[OsString]) -> String {
    args.first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("netdiag-agent")
        .to_owned()
}

fn find_tool(name: &str) -> Option<&'static Tool> {
    TOOLS.iter().find(|t| t.name == name)
}

fn print_usage() {
    println!(
        "netdiag-agent {}: network diagnostics for pods without tools\n\n\
         Usage: netdiag-agent TOOL [ARGS...]   (or through a link named after the tool)\n\n\
         Tools:",
        env!("CARGO_PKG_VERSION")
    );
    for tool in TOOLS {
        println!("  {:<8} {}", tool.name, tool.about);
    }
    println!("\nRun 'netdiag-agent TOOL --help' for a tool's options.");
}
