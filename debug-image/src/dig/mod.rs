//! `dig`: DNS queries from inside the pod, printed like bind's dig 9.18;
//! and `resolve` (also `dig --explain`): what the pod's own resolver does
//! with a name.
//!
//! parse ([`args`]: dig's `@server +option type name` grammar) → plan
//! (servers from `@` or /etc/resolv.conf, the search list with `+search`)
//! → query ([`crate::dns::transport`]: UDP with `+tries`/`+timeout` per
//! server, a truncated answer repeated over TCP, like dig) → render
//! ([`render`]: dig's sections, `+short`, or `-o json`). [`explain`] holds
//! `resolve`, built on [`crate::dns::stub`].
//!
//! Exit status, as bind's dig: 0 when a server answered (whatever the
//! rcode), 9 when none could be reached (`;; no servers could be
//! reached`); bad input is 1 with one error line.
//!
//! Differences from bind's dig: no DNS cookies are sent (servers that
//! require them answer BADCOOKIE); `;; WHEN:` is in UTC; one name per run.

mod args;
pub mod explain;
#[cfg(test)]
mod fuzz;
mod render;

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use hickory_proto::rr::{Name, RecordType};
use netdiag_wire::{OutputFormat, exit};
use tokio::time::Instant;

use crate::cli::{self, Failure};
use crate::dns::resolv_conf::{RESOLV_CONF, ResolvConf};
use crate::dns::transport::{Received, TcpChannel, Transport, UdpChannel, describe};
use crate::dns::wire::{self, Query, QuerySpec, Reply, rcode};
use crate::dns::{Family, Libc, resolve_host};
use args::DigArgs;

/// bind's dig default EDNS UDP payload.
const DEFAULT_EDNS_PAYLOAD: u16 = 1232;

pub fn main(args: Vec<OsString>) -> ExitCode {
    cli::finish("dig", run(args))
}

/// `resolve NAME`: the entry point of the `resolve` tool.
pub fn resolve_main(args: Vec<OsString>) -> ExitCode {
    cli::finish("resolve", explain::run(args))
}

fn run(args: Vec<OsString>) -> Result<u8, Failure> {
    let d = args::parse(args)?;
    for w in &d.warnings {
        eprintln!("{w}");
    }
    if d.explain {
        let name = d.name.clone().unwrap_or_default();
        return explain::explain(&name, d.libc, d.family, explain::Files::system(), d.output);
    }
    let plan = cli::block_on(plan(&d))?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let code = cli::block_on(execute(&d, &plan, &mut out))?;
    out.flush()?;
    Ok(code)
}

/// One server to ask, and how dig names it in `;; SERVER:`.
#[derive(Clone, Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub label: String,
}

/// What to send where.
#[derive(Clone, Debug)]
pub struct Plan {
    pub servers: Vec<Server>,
    /// `; (N servers found)` is printed when the server came from `@`.
    pub from_command_line: bool,
    /// The names to try in order (more than one only with `+search`).
    pub names: Vec<Name>,
    pub qtype: u16,
    pub qclass: u16,
}

async fn plan(d: &DigArgs) -> Result<Plan, Failure> {
    // resolv.conf matters without @server (servers) and with +search.
    let conf = match ResolvConf::load(RESOLV_CONF, Libc::Glibc) {
        Ok(c) => Some(c),
        Err(e) if d.server.is_none() || d.search => {
            return Err(Failure::msg(format!("{e}; name a server with @ADDRESS")));
        }
        Err(_) => None,
    };
    let mut servers = Vec::new();
    let from_command_line = d.server.is_some();
    match &d.server {
        Some(text) => {
            let addrs = match crate::dns::numeric(text) {
                Some(ip) => vec![ip],
                None => resolve_host(text, d.family)
                    .await
                    .map_err(|e| Failure::msg(format!("couldn't get address for '{text}': {e}")))?,
            };
            for ip in addrs {
                servers.push(Server {
                    addr: SocketAddr::new(ip, d.port),
                    label: text.clone(),
                });
            }
        }
        None => {
            let conf = conf.as_ref().expect("loaded above when no @server");
            for ns in &conf.nameservers {
                servers.push(Server {
                    addr: SocketAddr::new(ns.ip(), d.port),
                    label: ns.ip().to_string(),
                });
            }
        }
    }
    let before = servers.len();
    servers.retain(|s| d.family.admits(s.addr.ip()));
    if servers.is_empty() {
        let which = if d.family == Family::V4 {
            "IPv4"
        } else {
            "IPv6"
        };
        let flag = if d.family == Family::V4 { "-4" } else { "-6" };
        return Err(Failure::msg(if before == 0 {
            "no name server to ask; name one with @ADDRESS".to_owned()
        } else {
            format!(
                "{flag} given but no {which} name server is configured; drop {flag} or name one with @ADDRESS"
            )
        }));
    }

    let qtype = d
        .qtype
        .unwrap_or(if d.name.is_none() && d.reverse.is_none() {
            u16::from(RecordType::NS)
        } else {
            u16::from(RecordType::A)
        });
    let names = match (d.reverse, &d.name) {
        (Some(ip), _) => vec![reverse_name(ip)],
        (None, None) => vec![Name::root()],
        (None, Some(text)) => {
            let name = wire::parse_name(text).map_err(Failure::msg)?;
            let mut names = Vec::new();
            if d.search && !text.ends_with('.') {
                let conf = conf.as_ref();
                let ndots = d.ndots.or(conf.map(|c| c.ndots)).unwrap_or(1);
                if (text.matches('.').count() as u32) < ndots {
                    for domain in conf.map(|c| c.search.as_slice()).unwrap_or(&[]) {
                        let full = format!("{text}.{domain}.");
                        if let Ok(n) = wire::parse_name(&full) {
                            names.push(n);
                        }
                    }
                }
            }
            let mut as_is = name;
            as_is.set_fqdn(true);
            names.push(as_is);
            names
        }
    };
    Ok(Plan {
        servers,
        from_command_line,
        names,
        qtype,
        qclass: d.qclass,
    })
}

/// `in-addr.arpa.` / `ip6.arpa.` name for `-x`.
pub fn reverse_name(ip: IpAddr) -> Name {
    let text = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(73);
            for byte in v6.octets().iter().rev() {
                s.push(char::from_digit(u32::from(byte & 0x0f), 16).unwrap_or('0'));
                s.push('.');
                s.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
                s.push('.');
            }
            s.push_str("ip6.arpa.");
            s
        }
    };
    Name::from_ascii(text).unwrap_or_else(|_| Name::root())
}

/// A reply and where and how it came.
pub struct Answer {
    pub reply: Reply,
    pub server: Server,
    pub transport: Transport,
    pub rtt: Duration,
    pub when: SystemTime,
}

/// Something dig prints while it works (`;; communications error ...`).
pub struct Progress<'a> {
    out: &'a mut dyn Write,
    json: bool,
    pub lines: Vec<String>,
}

impl Progress<'_> {
    fn line(&mut self, text: String) -> io::Result<()> {
        if self.json {
            // Keep stdout one JSON document.
            eprintln!("{text}");
        } else {
            writeln!(self.out, "{text}")?;
        }
        self.lines.push(text);
        Ok(())
    }
}

async fn execute(d: &DigArgs, plan: &Plan, out: &mut dyn Write) -> Result<u8, Failure> {
    let json = d.output == OutputFormat::Json;
    let mut progress = Progress {
        out,
        json,
        lines: Vec::new(),
    };
    let mut answered: Option<(Answer, &Name)> = None;
    for (i, name) in plan.names.iter().enumerate() {
        let Some(answer) = ask_servers(d, plan, name, &mut progress).await? else {
            break;
        };
        // +search moves on only after NXDOMAIN, as dig does.
        let more = i + 1 < plan.names.len() && answer.reply.rcode() == rcode::NXDOMAIN;
        if more {
            if d.show_search && !json {
                render::print(d, plan, name, &answer, progress.out)?;
            }
            continue;
        }
        answered = Some((answer, name));
        break;
    }
    let Progress { out, lines, .. } = progress;
    match (answered, d.output) {
        (Some((answer, name)), OutputFormat::Text) => {
            render::print(d, plan, name, &answer, out)?;
            Ok(exit::SUCCESS)
        }
        (Some((answer, name)), OutputFormat::Json) => {
            render::json(d, plan, name, Some(&answer), &lines, out)?;
            Ok(exit::SUCCESS)
        }
        (None, OutputFormat::Text) => {
            let tcp = d.tcp.unwrap_or(plan.qtype == u16::from(RecordType::ANY));
            render::no_servers(d, plan, !tcp, out)?;
            Ok(exit::DIG_NO_SERVERS)
        }
        (None, OutputFormat::Json) => {
            render::json(d, plan, &plan.names[0], None, &lines, out)?;
            Ok(exit::DIG_NO_SERVERS)
        }
    }
}

/// The query for `name` as dig builds it.
fn build_query(d: &DigArgs, plan: &Plan, name: &Name) -> Result<Query, Failure> {
    let spec = QuerySpec {
        name: name.clone(),
        qtype: RecordType::from(plan.qtype),
        recursion_desired: d.recurse,
        authentic_data: d.adflag,
        checking_disabled: d.cdflag,
        // An explicit +bufsize turns EDNS on even after +noedns (bind).
        edns_payload: if d.edns || d.bufsize.is_some() {
            Some(d.bufsize.unwrap_or(DEFAULT_EDNS_PAYLOAD))
        } else {
            None
        },
    };
    let mut query = Query::build(&spec).map_err(Failure::msg)?;
    if plan.qclass != 1 {
        // hickory builds IN queries; the class sits in the last two bytes
        // of the question, before any OPT record.
        let qend = question_end(&query.bytes)
            .ok_or_else(|| Failure::msg("cannot encode the query class".to_owned()))?;
        query.bytes[qend - 2..qend].copy_from_slice(&plan.qclass.to_be_bytes());
    }
    Ok(query)
}

fn question_end(bytes: &[u8]) -> Option<usize> {
    let mut at = wire::HEADER_LEN;
    loop {
        let len = usize::from(*bytes.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        at += len;
    }
    let end = at + 4;
    (end <= bytes.len()).then_some(end)
}

/// dig's server loop: each server in turn, `+tries` UDP attempts each (or
/// one TCP attempt), a truncated answer repeated over TCP.
async fn ask_servers(
    d: &DigArgs,
    plan: &Plan,
    name: &Name,
    progress: &mut Progress<'_>,
) -> Result<Option<Answer>, Failure> {
    let timeout = Duration::from_secs(u64::from(d.timeout_secs));
    // dig 9.18 asks ANY over TCP unless +notcp says otherwise.
    let tcp = d.tcp.unwrap_or(plan.qtype == u16::from(RecordType::ANY));
    // dig names the lookup as typed in its TCP error line.
    let shown = match &d.name {
        Some(text) if plan.names.len() == 1 && d.reverse.is_none() => text.clone(),
        _ => crate::dns::present::name(name),
    };
    for server in &plan.servers {
        let query = build_query(d, plan, name)?;
        if tcp {
            for _ in 0..d.tries {
                match ask_tcp(&query, server, timeout).await {
                    Ok(answer) => return Ok(Some(answer)),
                    Err(e) => progress.line(format!(
                        ";; Connection to {}({}) for {shown} failed: {e}.",
                        hash_port(server.addr),
                        server.label,
                    ))?,
                }
            }
            continue;
        }
        for _ in 0..d.tries {
            match ask_udp(&query, server, timeout, progress).await? {
                UdpResult::Answer(answer) => {
                    let answer = *answer;
                    if answer.reply.header.tc && !d.ignore_tc {
                        progress.line(";; Truncated, retrying in TCP mode.".to_owned())?;
                        match ask_tcp(&query, server, timeout).await {
                            Ok(answer) => return Ok(Some(answer)),
                            Err(e) => {
                                progress.line(format!(
                                    ";; Connection to {}({}) for {shown} failed: {e}.",
                                    hash_port(server.addr),
                                    server.label,
                                ))?;
                                break;
                            }
                        }
                    }
                    return Ok(Some(answer));
                }
                UdpResult::Failed(why) => {
                    progress.line(format!(
                        ";; communications error to {}: {why}",
                        hash_port(server.addr)
                    ))?;
                }
            }
        }
    }
    Ok(None)
}

/// `198.51.100.53#53`, `fd42::53#53`: how dig writes a server.
pub fn hash_port(addr: SocketAddr) -> String {
    format!("{}#{}", addr.ip(), addr.port())
}

enum UdpResult {
    Answer(Box<Answer>),
    Failed(String),
}

async fn ask_udp(
    query: &Query,
    server: &Server,
    timeout: Duration,
    progress: &mut Progress<'_>,
) -> io::Result<UdpResult> {
    let mut channel = match UdpChannel::open(server.addr).await {
        Ok(c) => c,
        Err(e) => return Ok(UdpResult::Failed(describe(&e))),
    };
    let sent = Instant::now();
    if let Err(e) = channel.send(&query.bytes).await {
        return Ok(UdpResult::Failed(describe(&e)));
    }
    let deadline = sent + timeout;
    loop {
        match channel.recv_until(deadline).await {
            Received::TimedOut => return Ok(UdpResult::Failed("timed out".to_owned())),
            Received::Failed(e) => return Ok(UdpResult::Failed(describe(&e))),
            Received::Message(len) => {
                let rtt = sent.elapsed();
                let Some(reply) = Reply::parse(channel.message(len)) else {
                    progress.line(format!(
                        ";; Warning: ignoring a {len}-byte reply shorter than a DNS header"
                    ))?;
                    continue;
                };
                if reply.header.id != query.id {
                    progress.line(format!(
                        ";; Warning: ID mismatch: expected ID {}, got {}",
                        query.id, reply.header.id
                    ))?;
                    continue;
                }
                if !reply.header.qr {
                    progress.line(";; Warning: query response not set".to_owned())?;
                    continue;
                }
                return Ok(UdpResult::Answer(Box::new(Answer {
                    reply,
                    server: server.clone(),
                    transport: Transport::Udp,
                    rtt,
                    when: SystemTime::now(),
                })));
            }
        }
    }
}

async fn ask_tcp(query: &Query, server: &Server, timeout: Duration) -> Result<Answer, String> {
    let sent = Instant::now();
    let deadline = sent + timeout;
    let mut channel = TcpChannel::connect(server.addr, deadline)
        .await
        .map_err(|e| describe(&e))?;
    channel
        .send(&[&query.bytes])
        .await
        .map_err(|e| describe(&e))?;
    loop {
        match channel.recv_until(deadline).await {
            Received::TimedOut => return Err("timed out".to_owned()),
            Received::Failed(e) => return Err(describe(&e)),
            Received::Message(len) => {
                let Some(reply) = Reply::parse(channel.message(len)) else {
                    return Err("short reply".to_owned());
                };
                if reply.header.id != query.id {
                    continue;
                }
                return Ok(Answer {
                    reply,
                    server: server.clone(),
                    transport: Transport::Tcp,
                    rtt: sent.elapsed(),
                    when: SystemTime::now(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("198.51.100.10".parse().unwrap()).to_ascii(),
            "10.100.51.198.in-addr.arpa."
        );
        let v6 = reverse_name("fd42::53".parse().unwrap()).to_ascii();
        assert!(
            v6.starts_with("3.5.0.0.0.0.0.0") && v6.ends_with(".2.4.d.f.ip6.arpa."),
            "{v6}"
        );
    }
}
