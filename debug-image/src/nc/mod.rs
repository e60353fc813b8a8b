//! `nc`: is the port reachable, and what does it say. OpenBSD-netcat
//! compatible for the options used every day:
//!
//! `nc [-v] [-n] [-z] [-u] [-l] [-k] [-N] [-p srcport] [-s srcaddr] [-w secs] [-4|-6] host port|lo-hi`
//!
//! parse ([`args`]: flags → a checked plan) → run (resolve without libc
//! ([`resolve`]), open sockets ([`connect`]), then either move bytes
//! ([`pump`]) or test ports ([`scan`])) → report in netcat's words
//! ([`report`]). Exit status as netcat's: 0 when a connection succeeded (or
//! a listener served one), 1 otherwise; bad input is one line and 1.
//!
//! Everything runs on a current-thread tokio runtime: one thread for the
//! sockets, plus tokio's helper thread for the blocking stdin/stdout reads
//! and writes. No capability is needed (no raw sockets, no privileged
//! ports unless the user asks to listen on one).

mod args;
mod connect;
mod pump;
mod report;
pub mod resolve;
mod scan;

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use netdiag_wire::exit;
use tokio::io::Stdin;

use crate::cli::{self, Failure};
use args::{Mode, Plan, Proto};
use connect::{BindError, Source};
use pump::PumpOptions;
pub use report::os_words;
use report::{ConnectError, Reporter};
use resolve::Family;

pub fn main(args: Vec<OsString>) -> ExitCode {
    cli::finish("nc", run(args))
}

fn run(args: Vec<OsString>) -> Result<u8, Failure> {
    let plan = args::parse(args)?;
    cli::block_on(execute(plan))
}

async fn execute(plan: Plan) -> Result<u8, Failure> {
    match plan.mode.clone() {
        Mode::Connect {
            host,
            ports,
            scan,
            source_addr,
            source_port,
        } => {
            let source = Source {
                addr: local_address(source_addr.as_deref(), &plan).await?,
                port: source_port,
            };
            connect_mode(&plan, host, &ports, scan, source).await
        }
        Mode::Listen { addr, port, keep } => {
            let ip = match local_address(addr.as_deref(), &plan).await? {
                Some(ip) => ip,
                None if plan.family == Family::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                None => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            };
            listen_mode(&plan, SocketAddr::new(ip, port), keep).await
        }
    }
}

/// `-s ADDR` (a literal or, unless `-n`, a name): the first address.
async fn local_address(given: Option<&str>, plan: &Plan) -> Result<Option<IpAddr>, Failure> {
    let Some(given) = given else {
        return Ok(None);
    };
    let port = match &plan.mode {
        Mode::Listen { port, .. } => *port,
        Mode::Connect { source_port, .. } => source_port.unwrap_or(0),
    };
    let addrs = resolve::resolve(given, plan.family, plan.numeric)
        .await
        .map_err(|why| Failure::msg(resolve::netcat_message(given, port, &why)))?;
    Ok(addrs.first().copied())
}

async fn connect_mode(
    plan: &Plan,
    host: String,
    ports: &[u16],
    scan: bool,
    source: Source,
) -> Result<u8, Failure> {
    let addrs = resolve::resolve(&host, plan.family, plan.numeric)
        .await
        .map_err(|why| Failure::msg(resolve::netcat_message(&host, ports[0], &why)))?;
    let addrs: Vec<IpAddr> = addrs.into_iter().filter(|a| source.admits(*a)).collect();
    if addrs.is_empty() {
        return Err(Failure::msg(format!(
            "no address of \"{host}\" has the family of the source address; drop -s or match it"
        )));
    }
    let reporter = Reporter {
        host,
        proto: plan.proto,
        numeric: plan.numeric,
    };
    if scan {
        let job = scan::ScanJob {
            addrs,
            proto: plan.proto,
            source,
            timeout: plan.timeout,
        };
        return scan::run(job, ports, &reporter, plan.verbose).await;
    }

    let mut stdin = tokio::io::stdin();
    let opts = PumpOptions {
        shutdown_on_eof: plan.shutdown_on_eof,
        idle_limit: plan.timeout,
        listen: false,
    };
    let mut status = exit::FAILURE;
    // Like netcat, a range without -z connects to each port in turn.
    for &port in ports {
        for &ip in &addrs {
            let dest = SocketAddr::new(ip, port);
            if connect_and_pump(plan, dest, source, &reporter, &mut stdin, opts).await? {
                status = exit::SUCCESS;
                break;
            }
        }
    }
    Ok(status)
}

/// One connection attempt; on success, reports it and pipes until done.
/// Returns whether it connected.
async fn connect_and_pump(
    plan: &Plan,
    dest: SocketAddr,
    source: Source,
    reporter: &Reporter,
    stdin: &mut Stdin,
    opts: PumpOptions,
) -> Result<bool, Failure> {
    let bind_failed = |BindError(e)| Failure::msg(format!("bind failed: {}", os_words(&e)));
    let failed = |e: ConnectError| -> Result<bool, Failure> {
        if plan.verbose {
            reporter.failed(dest.ip(), dest.port(), &e)?;
        }
        Ok(false)
    };
    match plan.proto {
        Proto::Tcp => match connect::tcp(dest, source, plan.timeout)
            .await
            .map_err(bind_failed)?
        {
            Err(e) => failed(e),
            Ok(mut stream) => {
                if plan.verbose {
                    reporter.succeeded(dest.ip(), dest.port())?;
                }
                pump::tcp(&mut stream, stdin, opts).await;
                Ok(true)
            }
        },
        Proto::Udp => match connect::udp(dest, source).await.map_err(bind_failed)? {
            Err(e) => failed(e),
            Ok(socket) => {
                // netcat would first send "X" probes when -v is given; we
                // leave the payload untouched (use -z to probe).
                if plan.verbose {
                    reporter.succeeded(dest.ip(), dest.port())?;
                }
                pump::udp(&socket, stdin, opts).await;
                Ok(true)
            }
        },
    }
}

async fn listen_mode(plan: &Plan, local: SocketAddr, keep: bool) -> Result<u8, Failure> {
    let cannot_listen = |e: std::io::Error| {
        let hint = match e.raw_os_error() {
            Some(libc::EADDRINUSE) => "; another socket holds this port, pick another",
            Some(libc::EACCES) => "; ports below 1024 need CAP_NET_BIND_SERVICE, pick a higher one",
            Some(libc::EADDRNOTAVAIL) => "; -s must be an address of this pod",
            _ => "",
        };
        Failure::msg(format!(
            "cannot listen on {} port {}: {}{hint}",
            local.ip(),
            local.port(),
            os_words(&e)
        ))
    };
    let mut stdin = tokio::io::stdin();
    let opts = PumpOptions {
        shutdown_on_eof: plan.shutdown_on_eof,
        idle_limit: plan.timeout,
        listen: true,
    };
    match plan.proto {
        Proto::Tcp => {
            let mut listener = Some(connect::tcp_listener(local).map_err(cannot_listen)?);
            if plan.verbose {
                let bound = listener.as_ref().and_then(|l| l.local_addr().ok());
                report::listening(plan.proto, bound.unwrap_or(local))?;
            }
            while let Some(l) = &listener {
                let (mut stream, peer) = l
                    .accept()
                    .await
                    .map_err(|e| Failure::msg(format!("accept failed: {}", os_words(&e))))?;
                if !keep {
                    // netcat serves one connection: later clients are refused.
                    listener = None;
                }
                if plan.verbose {
                    report::received(peer)?;
                }
                pump::tcp(&mut stream, &mut stdin, opts).await;
            }
        }
        Proto::Udp => {
            let socket = connect::udp_listener(local).await.map_err(cannot_listen)?;
            if plan.verbose {
                report::listening(plan.proto, socket.local_addr().unwrap_or(local))?;
            }
            let mut first = [0u8; 1];
            let (_, peer) = socket
                .peek_from(&mut first)
                .await
                .map_err(|e| Failure::msg(format!("receiving: {}", os_words(&e))))?;
            if plan.verbose {
                report::received(peer)?;
            }
            if !keep {
                // Like netcat: talk to the first sender only.
                socket
                    .connect(peer)
                    .await
                    .map_err(|e| Failure::msg(format!("connect to {peer}: {}", os_words(&e))))?;
            }
            pump::udp(&socket, &mut stdin, opts).await;
        }
    }
    Ok(exit::SUCCESS)
}
