//! `resolve NAME` (also `dig --explain NAME`): replays the queries the
//! pod's C library sends for NAME and says what they cost and how to fix it.
//!
//! The replay is [`crate::dns::stub`] (glibc by default, musl with `--libc
//! musl`), fed the pod's /etc/resolv.conf, /etc/hosts and nsswitch.conf
//! (or the files under `--root`, e.g. `/proc/1/root` for the application
//! container when the pod shares its PID namespace). The findings name the
//! classic Kubernetes DNS problems when they show up in the replay:
//! search-list expansion under `ndots:5`, a search domain that answers for
//! everything (wildcard), a server that times out or fails, AAAA answered
//! later than A (or not at all: the conntrack race), truncated answers,
//! and configuration the library silently ignores.

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;
use netdiag_wire::OutputFormat;
use serde::Serialize;
use serde_json::json;

use crate::cli::{self, Failure};
use crate::dns::hosts::{HOSTS, NSSWITCH, Source};
use crate::dns::resolv_conf::RESOLV_CONF;
use crate::dns::stub::{self, Environment, Lookup, Outcome, Resolution, StepResult, Why};
use crate::dns::transport::{Received, UdpChannel};
use crate::dns::wire::{Query, QuerySpec, Reply};
use crate::dns::{Family, Libc};

/// `resolve`: show what the pod's resolver does with a name.
#[derive(Parser, Debug)]
#[command(
    name = "resolve",
    version,
    about = "Replay the queries the pod's C library sends for NAME, and explain them",
    after_help = "Reads /etc/resolv.conf (search, ndots, timeout, attempts, rotate, single-request, \
        single-request-reopen, use-vc, edns0), /etc/hosts and /etc/nsswitch.conf, like the library.\n\
        Exit status: 0 when the replay ran (whether or not NAME resolved), 1 on bad input."
)]
struct ResolveArgs {
    /// The host name, as the application passes it to getaddrinfo
    name: String,
    /// Which C library's rules to replay
    #[arg(long, value_name = "glibc|musl", default_value = "glibc", value_parser = parse_libc)]
    libc: Libc,
    /// Ask only for IPv4 addresses (AF_INET)
    #[arg(short = '4', conflicts_with = "ipv6")]
    ipv4: bool,
    /// Ask only for IPv6 addresses (AF_INET6)
    #[arg(short = '6')]
    ipv6: bool,
    /// Read etc/resolv.conf, etc/hosts, etc/nsswitch.conf under this directory
    /// (e.g. /proc/1/root for the application container)
    #[arg(long, value_name = "DIR")]
    root: Option<String>,
    /// resolv.conf to use
    #[arg(long, value_name = "PATH")]
    resolv_conf: Option<String>,
    /// hosts file to use
    #[arg(long, value_name = "PATH")]
    hosts: Option<String>,
    /// nsswitch.conf to use (glibc)
    #[arg(long, value_name = "PATH")]
    nsswitch: Option<String>,
    /// Output format: text or json
    #[arg(long = "output", value_name = "FORMAT", default_value = "text")]
    output: OutputFormat,
}

fn parse_libc(v: &str) -> Result<Libc, String> {
    match v {
        "glibc" | "gnu" => Ok(Libc::Glibc),
        "musl" => Ok(Libc::Musl),
        other => Err(format!(
            "unknown C library \"{other}\"; expected glibc or musl"
        )),
    }
}

/// The three files the resolver reads.
#[derive(Clone, Debug)]
pub struct Files {
    pub resolv_conf: String,
    pub hosts: String,
    pub nsswitch: String,
}

impl Files {
    pub fn system() -> Files {
        Files {
            resolv_conf: RESOLV_CONF.to_owned(),
            hosts: HOSTS.to_owned(),
            nsswitch: NSSWITCH.to_owned(),
        }
    }

    fn under(root: &str) -> Files {
        let root = root.trim_end_matches('/');
        Files {
            resolv_conf: format!("{root}{RESOLV_CONF}"),
            hosts: format!("{root}{HOSTS}"),
            nsswitch: format!("{root}{NSSWITCH}"),
        }
    }
}

pub fn run(args: Vec<OsString>) -> Result<u8, Failure> {
    let a: ResolveArgs = cli::parse("resolve", cli::rewrite_output_flag(args))?;
    let mut files = match &a.root {
        Some(root) => Files::under(root),
        None => Files::system(),
    };
    if let Some(p) = a.resolv_conf {
        files.resolv_conf = p;
    }
    if let Some(p) = a.hosts {
        files.hosts = p;
    }
    if let Some(p) = a.nsswitch {
        files.nsswitch = p;
    }
    let family = match (a.ipv4, a.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    explain(&a.name, a.libc, family, files, a.output)
}

/// A finding of the verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub message: String,
}

/// Extra queries made to explain a result; the pod's resolver did not
/// send them.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub question: String,
    pub server: String,
    pub rcode: Option<String>,
    pub addresses: Vec<IpAddr>,
}

/// Runs the replay for `name` and prints it with the verdict.
pub fn explain(
    name: &str,
    libc: Libc,
    family: Family,
    files: Files,
    output: OutputFormat,
) -> Result<u8, Failure> {
    validate(name)?;
    let env = Environment::load(libc, &files.resolv_conf, &files.hosts, &files.nsswitch)
        .map_err(|e| Failure::msg(format!("{e}; point --resolv-conf at a readable file")))?;
    let (lookup, checks) = cli::block_on(async {
        let lookup = stub::lookup(&env, name, family).await;
        let checks = wildcard_checks(&env, &lookup).await;
        Ok((lookup, checks))
    })?;
    let (findings, fix) = verdict(&env, &lookup, &checks);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match output {
        OutputFormat::Json => {
            let doc = json!({
                "environment": env,
                "lookup": lookup,
                "checks": checks,
                "findings": findings,
                "fix": fix,
            });
            serde_json::to_writer_pretty(&mut out, &doc).map_err(io::Error::from)?;
            writeln!(out)?;
        }
        OutputFormat::Text => print(&mut out, &env, &lookup, &checks, &findings, fix.as_deref())?,
    }
    out.flush()?;
    Ok(0)
}

/// Input the resolver would reject before sending anything, reported as
/// bad input rather than replayed.
fn validate(name: &str) -> Result<(), Failure> {
    if name.is_empty() {
        return Err(Failure::msg(
            "the name is empty; give a host name like web.default",
        ));
    }
    if crate::dns::numeric(name).is_some() {
        return Ok(());
    }
    let base = name.strip_suffix('.').unwrap_or(name);
    if base.is_empty() || base.contains("..") || base.starts_with('.') {
        return Err(Failure::msg(format!(
            "'{name}' is not a legal name (empty label)"
        )));
    }
    if let Some(label) = base.split('.').find(|l| l.len() > 63) {
        return Err(Failure::msg(format!(
            "'{name}' is not a legal name (label of {} characters; at most 63)",
            label.len()
        )));
    }
    if base.len() > 253 {
        return Err(Failure::msg(format!(
            "'{name}' is not a legal name ({} characters; at most 253)",
            base.len()
        )));
    }
    Ok(())
}

/// When a search domain answered, two questions decide whether that was
/// what the user meant: does the domain answer for *any* name (a
/// wildcard), and does the name itself exist as typed?
async fn wildcard_checks(env: &Environment, lookup: &Lookup) -> Vec<Check> {
    let Resolution::Found { name: answered, .. } = &lookup.resolution else {
        return Vec::new();
    };
    let Some(step) = lookup.steps.iter().find(|s| &s.name == answered) else {
        return Vec::new();
    };
    let Why::Search(domain) = &step.why else {
        return Vec::new();
    };
    // Ask the server that gave the answer.
    let answered_by = lookup.queries.iter().find_map(|q| match q.outcome {
        Outcome::Answered { used: true, .. } if q.name == *answered => Some(q.server),
        _ => None,
    });
    let Some(server) = answered_by.or_else(|| env.conf.nameservers.first().copied()) else {
        return Vec::new();
    };
    let probe_label = format!(
        "netdiag-probe-{:04x}",
        hickory_proto::op::Message::query().metadata.id
    );
    let mut checks = Vec::new();
    let mut questions = vec![format!("{probe_label}.{domain}.")];
    if lookup.input.contains('.') {
        questions.push(stub::fqdn(&lookup.input));
    }
    for q in questions {
        let Ok(name) = crate::dns::wire::parse_name(&q) else {
            continue;
        };
        let Ok(query) = Query::build(&QuerySpec::stub(
            name.clone(),
            hickory_proto::rr::RecordType::A,
        )) else {
            continue;
        };
        let mut check = Check {
            question: q.clone(),
            server: server.to_string(),
            rcode: None,
            addresses: Vec::new(),
        };
        if let Ok(mut channel) = UdpChannel::open(server).await
            && channel.send(&query.bytes).await.is_ok()
        {
            let deadline = tokio::time::Instant::now() + env.conf.timeout();
            while let Received::Message(len) = channel.recv_until(deadline).await {
                if let Some(reply) = Reply::parse(channel.message(len))
                    && reply.answers(&query)
                {
                    check.rcode = Some(crate::dns::wire::rcode_name(reply.rcode()));
                    check.addresses = reply.addresses(&name).0;
                    break;
                }
            }
        }
        checks.push(check);
    }
    checks
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// The findings and the single most useful fix.
fn verdict(env: &Environment, lookup: &Lookup, checks: &[Check]) -> (Vec<Finding>, Option<String>) {
    let conf = &env.conf;
    let mut findings = Vec::new();
    let mut fix = None;
    let input = lookup.input.as_str();
    let dots = input.trim_end_matches('.').matches('.').count();

    // Search-list expansion: the queries sent for names that were not the
    // one that answered.
    let answered_step = match &lookup.resolution {
        Resolution::Found {
            name,
            source: Source::Dns,
            ..
        } => lookup.steps.iter().position(|s| &s.name == name),
        _ => None,
    };
    let wasted_steps: Vec<usize> = lookup
        .steps
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            Some(*i) != answered_step
                && matches!(s.why, Why::Search(_))
                && matches!(s.result, StepResult::NxDomain | StepResult::NoData)
                && answered_step.is_some_and(|a| *i < a)
        })
        .map(|(i, _)| i)
        .collect();
    let wasted_queries = lookup
        .queries
        .iter()
        .filter(|q| wasted_steps.contains(&q.step))
        .count();
    let wasted_time: Duration = wasted_steps.iter().map(|&i| lookup.steps[i].elapsed).sum();
    if let (Some(a), true) = (answered_step, wasted_queries > 0) {
        let step = &lookup.steps[a];
        findings.push(Finding {
            kind: "search_expansion",
            message: format!(
                "{wasted_queries} of {} queries ({}) went to search-list names that do not exist before {} answered (ndots:{} and \"{input}\" has {dots} dot{})",
                lookup.queries.len(),
                ms(wasted_time),
                step.name,
                conf.ndots,
                if dots == 1 { "" } else { "s" },
            ),
        });
        fix = Some(match &step.why {
            Why::AsIsLast if dots >= 1 => format!(
                "use \"{}\" (trailing dot: asked as-is, no search list), or set dnsConfig.options ndots: \"{dots}\" in the pod spec so names with {dots}+ dots are tried as-is first",
                stub::fqdn(input)
            ),
            _ => format!(
                "use the fully qualified name \"{}\" (with the trailing dot) in the application's configuration",
                step.name
            ),
        });
    }
    if let Some(a) = answered_step
        && matches!(lookup.steps[a].why, Why::AsIsFirst)
        && lookup.steps.len() == 1
    {
        findings.push(Finding {
            kind: "no_expansion",
            message: format!(
                "\"{input}\" was asked as-is first (it has {dots} dot{} and ndots is {}), no search-list queries",
                if dots == 1 { "" } else { "s" },
                conf.ndots
            ),
        });
    }

    // A search domain that answers for everything.
    if let Some(probe) = checks.first()
        && !probe.addresses.is_empty()
    {
        let domain = probe.question.split_once('.').map_or("", |(_, d)| d);
        findings.push(Finding {
            kind: "wildcard",
            message: format!(
                "search domain {domain} answers for any name ({} → {}): a wildcard record, so names that should fail (or go to the internet) resolve inside it",
                probe.question,
                join(&probe.addresses)
            ),
        });
        fix.get_or_insert_with(|| {
            format!(
                "use \"{}\" with a trailing dot, or remove the wildcard from {domain}",
                stub::fqdn(input)
            )
        });
    }
    if let (
        Some(as_is),
        Resolution::Found {
            addresses, name, ..
        },
    ) = (checks.get(1), &lookup.resolution)
        && !as_is.addresses.is_empty()
        && as_is.addresses.iter().all(|a| !addresses.contains(a))
    {
        findings.push(Finding {
            kind: "shadowed",
            message: format!(
                "{name} (a search-list expansion) answered {}, but \"{}\" itself resolves to {}: the search domain shadows the name you meant",
                join(addresses),
                as_is.question,
                join(&as_is.addresses)
            ),
        });
        fix = Some(format!(
            "use \"{}\" (trailing dot) so the search list is skipped",
            as_is.question
        ));
    }

    // Servers that time out or fail.
    for server in &conf.nameservers {
        let to_server: Vec<_> = lookup
            .queries
            .iter()
            .filter(|q| q.server == *server)
            .collect();
        let timeouts: Vec<Duration> = to_server
            .iter()
            .filter_map(|q| match q.outcome {
                Outcome::TimedOut { waited } => Some(waited),
                _ => None,
            })
            .collect();
        let servfails = to_server
            .iter()
            .filter(|q| q.rcode() == Some("SERVFAIL"))
            .count();
        let refused = to_server
            .iter()
            .filter(|q| q.rcode() == Some("REFUSED"))
            .count();
        let failed: Vec<&str> = to_server
            .iter()
            .filter_map(|q| match &q.outcome {
                Outcome::Failed { error } => Some(error.as_str()),
                _ => None,
            })
            .collect();
        if !timeouts.is_empty() {
            let lost = timeouts.iter().max().copied().unwrap_or_default();
            findings.push(Finding {
                kind: "timeout",
                message: format!(
                    "{} quer{} to {} got no answer (waited up to {} each); the resolver waits timeout:{} × attempts:{} per name",
                    timeouts.len(),
                    if timeouts.len() == 1 { "y" } else { "ies" },
                    server.ip(),
                    ms(lost),
                    conf.timeout_secs,
                    conf.attempts
                ),
            });
        }
        if servfails > 0 {
            findings.push(Finding {
                kind: "servfail",
                message: format!(
                    "{servfails} SERVFAIL answer{} from {}: the server could not get an answer upstream (check the DNS pods' logs and their upstream)",
                    if servfails == 1 { "" } else { "s" },
                    server.ip()
                ),
            });
        }
        if refused > 0 {
            findings.push(Finding {
                kind: "refused",
                message: format!(
                    "{refused} REFUSED answer{} from {}: it does not serve these names for this client{}",
                    if refused == 1 { "" } else { "s" },
                    server.ip(),
                    if env.libc == Libc::Glibc {
                        " (glibc stops walking the search list at a REFUSED)"
                    } else {
                        " (musl ignores REFUSED and waits until its timeout)"
                    }
                ),
            });
        }
        if let Some(err) = failed.first() {
            findings.push(Finding {
                kind: "unreachable",
                message: format!(
                    "{} quer{} to {} failed: {err} (is a DNS server listening there? NetworkPolicy?)",
                    failed.len(),
                    if failed.len() == 1 { "y" } else { "ies" },
                    server.ip()
                ),
            });
        }
    }

    // AAAA slower than A (or lost): the conntrack race, or an upstream
    // that is slow for AAAA.
    for (i, step) in lookup.steps.iter().enumerate() {
        let of = |t: &str| {
            lookup
                .queries
                .iter()
                .filter(|q| q.step == i && q.qtype == t)
                .collect::<Vec<_>>()
        };
        let (a, aaaa) = (of("A"), of("AAAA"));
        let latency = |qs: &[&stub::QueryLog]| {
            qs.iter().find_map(|q| match q.outcome {
                Outcome::Answered { latency, .. } => Some(latency),
                _ => None,
            })
        };
        match (latency(&a), latency(&aaaa)) {
            (Some(la), Some(l6)) if l6 > la * 2 && l6 - la > Duration::from_millis(50) => {
                findings.push(Finding {
                    kind: "aaaa_slow",
                    message: format!(
                        "{}: AAAA answered in {}, A in {}: the AAAA lookup sets the pace (upstream slow for AAAA, or the first AAAA was lost and re-sent)",
                        step.name,
                        ms(l6),
                        ms(la)
                    ),
                });
            }
            (Some(_), None)
                if aaaa
                    .iter()
                    .any(|q| matches!(q.outcome, Outcome::TimedOut { .. })) =>
            {
                findings.push(Finding {
                    kind: "aaaa_lost",
                    message: format!(
                        "{}: A was answered but AAAA timed out: the classic conntrack race of parallel A/AAAA queries on one socket (5 s stalls)",
                        step.name
                    ),
                });
                fix.get_or_insert_with(|| {
                    "add dnsConfig.options single-request-reopen (glibc), or run NodeLocal DNSCache"
                        .to_owned()
                });
            }
            _ => {}
        }
    }

    // Truncation.
    let truncated = lookup
        .queries
        .iter()
        .filter(|q| {
            matches!(
                q.outcome,
                Outcome::Answered {
                    truncated: true,
                    ..
                }
            )
        })
        .count();
    if truncated > 0 {
        findings.push(Finding {
            kind: "truncated",
            message: format!(
                "{truncated} answer{} came back truncated over UDP and {} repeated over TCP: TCP port 53 must be allowed to the DNS server",
                if truncated == 1 { "" } else { "s" },
                if truncated == 1 { "was" } else { "were" }
            ),
        });
    }
    for event in &lookup.events {
        if event.contains("single-request") {
            findings.push(Finding {
                kind: "single_request_fallback",
                message: event.clone(),
            });
        }
    }

    // Configuration the library ignores or defaults.
    if conf.nameserver_defaulted {
        findings.push(Finding {
            kind: "no_nameserver",
            message: format!(
                "{} names no usable nameserver: the library falls back to 127.0.0.1",
                env.resolv_conf_path
            ),
        });
    }
    if !conf.extra_nameservers.is_empty() {
        findings.push(Finding {
            kind: "extra_nameservers",
            message: format!(
                "only the first 3 nameservers are used; ignored: {}",
                conf.extra_nameservers.join(", ")
            ),
        });
    }
    if !conf.ignored.is_empty() {
        findings.push(Finding {
            kind: "ignored_config",
            message: format!("{} ignores: {}", env.libc.name(), conf.ignored.join("; ")),
        });
    }
    if let Resolution::Found {
        source: Source::Files,
        ..
    } = lookup.resolution
    {
        findings.push(Finding {
            kind: "hosts_file",
            message: format!("answered from {} without any DNS query", env.hosts_path),
        });
    }
    if let Resolution::NotFound { error, .. } = &lookup.resolution
        && fix.is_none()
    {
        let all_nx = !lookup.steps.is_empty()
            && lookup
                .steps
                .iter()
                .all(|s| s.result == StepResult::NxDomain);
        if all_nx {
            fix = Some(format!(
                "no name server knows \"{input}\" under any search domain: check the spelling, the namespace (service.namespace), and that the Service exists"
            ));
        } else if error == "NO_DATA" {
            fix = Some(format!(
                "\"{input}\" exists but has no address record of the asked family"
            ));
        }
    }
    (findings, fix)
}

fn join(addrs: &[IpAddr]) -> String {
    addrs
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn why_text(why: &Why) -> String {
    match why {
        Why::AsIsFirst => "as typed (enough dots)".to_owned(),
        Why::Search(d) => format!("search {d}"),
        Why::AsIsLast => "as typed (after the search list)".to_owned(),
    }
}

fn outcome_cells(o: &Outcome) -> (String, String, String) {
    match o {
        Outcome::Answered {
            rcode,
            answers,
            truncated,
            latency,
            used,
            ..
        } => {
            let mut r = rcode.clone();
            if *truncated {
                r.push_str(",TC");
            }
            if !used {
                r.push_str(" (ignored)");
            }
            (r, answers.to_string(), ms(*latency))
        }
        Outcome::TimedOut { waited } => ("timeout".to_owned(), "-".to_owned(), ms(*waited)),
        Outcome::Failed { error } => (error.clone(), "-".to_owned(), "-".to_owned()),
        Outcome::Abandoned => (
            "(not waited for)".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
        ),
    }
}

fn print(
    out: &mut dyn Write,
    env: &Environment,
    lookup: &Lookup,
    checks: &[Check],
    findings: &[Finding],
    fix: Option<&str>,
) -> io::Result<()> {
    let conf = &env.conf;
    writeln!(out, "resolve {} ({} rules)", lookup.input, env.libc.name())?;
    let servers: Vec<String> = conf
        .nameservers
        .iter()
        .map(|s| s.ip().to_string())
        .collect();
    let mut options = vec![
        format!("ndots:{}", conf.ndots),
        format!("timeout:{}", conf.timeout_secs),
        format!("attempts:{}", conf.attempts),
    ];
    for (on, name) in [
        (conf.rotate, "rotate"),
        (conf.single_request, "single-request"),
        (conf.single_request_reopen, "single-request-reopen"),
        (conf.use_vc, "use-vc"),
        (conf.edns0, "edns0"),
        (conf.no_aaaa, "no-aaaa"),
        (conf.trust_ad, "trust-ad"),
    ] {
        if on && env.libc == Libc::Glibc {
            options.push(name.to_owned());
        }
    }
    writeln!(
        out,
        "  {}: nameserver {}; search {}; options {}",
        env.resolv_conf_path,
        servers.join(" "),
        if conf.search.is_empty() {
            "(none)".to_owned()
        } else {
            conf.search.join(" ")
        },
        options.join(" ")
    )?;
    writeln!(out, "  hosts: {}", env.order.origin)?;
    writeln!(out)?;

    if lookup.queries.is_empty() {
        writeln!(out, "No DNS query was sent.")?;
    } else {
        let rows: Vec<[String; 8]> = lookup
            .queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let (rcode, answers, latency) = outcome_cells(&q.outcome);
                [
                    (i + 1).to_string(),
                    format!("+{}", ms(q.sent_at)),
                    q.name.clone(),
                    q.qtype.clone(),
                    format!("{}/{}", q.server.ip(), q.transport.name().to_lowercase()),
                    rcode,
                    answers,
                    latency,
                ]
            })
            .collect();
        let header = [
            "#", "SENT", "NAME", "TYPE", "SERVER", "RCODE", "ANSWERS", "TIME",
        ];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |cells: &[&str]| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
                if i == 0 || i == 1 || i == 6 || i == 7 {
                    s.push_str(&format!("{c:>w$}  "));
                } else {
                    s.push_str(&format!("{c:<w$}  "));
                }
            }
            s.trim_end().to_owned()
        };
        writeln!(out, "{}", line(&header))?;
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            writeln!(out, "{}", line(&cells))?;
        }
    }
    writeln!(out)?;
    writeln!(out, "Names tried:")?;
    if lookup.steps.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for (i, s) in lookup.steps.iter().enumerate() {
        let result = match &s.result {
            StepResult::Found => "FOUND".to_owned(),
            StepResult::NxDomain => "NXDOMAIN".to_owned(),
            StepResult::NoData => "NODATA".to_owned(),
            StepResult::ServFail => "SERVFAIL".to_owned(),
            StepResult::TimedOut => "TIMEOUT".to_owned(),
            StepResult::Refused => "REFUSED".to_owned(),
            StepResult::Failed(r) => r.clone(),
            StepResult::Unreachable => "UNREACHABLE".to_owned(),
            StepResult::Invalid(why) => format!("invalid: {why}"),
        };
        writeln!(
            out,
            "  {}. {}  [{}]  {}  {}",
            i + 1,
            s.name,
            why_text(&s.why),
            result,
            ms(s.elapsed)
        )?;
    }
    for event in &lookup.events {
        writeln!(out, "  note: {event}")?;
    }
    writeln!(out)?;
    match &lookup.resolution {
        Resolution::Found {
            addresses,
            source,
            name,
            canonical,
        } => {
            let via = match source {
                Source::Files => format!("from {}", env.hosts_path),
                Source::Dns => {
                    if canonical != name {
                        format!("from DNS as {name} (CNAME → {canonical})")
                    } else {
                        format!("from DNS as {name}")
                    }
                }
            };
            let addrs = if addresses.is_empty() {
                "no address records".to_owned()
            } else {
                join(addresses)
            };
            writeln!(
                out,
                "Result: {} → {addrs} ({via}; {} quer{}, {})",
                lookup.input,
                lookup.queries.len(),
                if lookup.queries.len() == 1 {
                    "y"
                } else {
                    "ies"
                },
                ms(lookup.elapsed)
            )?;
        }
        Resolution::NotFound { error, detail } => {
            writeln!(
                out,
                "Result: {} does not resolve: {error}, {detail} ({} quer{}, {})",
                lookup.input,
                lookup.queries.len(),
                if lookup.queries.len() == 1 {
                    "y"
                } else {
                    "ies"
                },
                ms(lookup.elapsed)
            )?;
        }
    }
    if !checks.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "Checks (extra queries, not sent by the pod's resolver):"
        )?;
        for c in checks {
            writeln!(
                out,
                "  {} A @{}: {}{}",
                c.question,
                c.server,
                c.rcode.as_deref().unwrap_or("no answer"),
                if c.addresses.is_empty() {
                    String::new()
                } else {
                    format!(" {}", join(&c.addresses))
                }
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "Verdict:")?;
    if findings.is_empty() {
        writeln!(out, "  nothing unusual")?;
    }
    for f in findings {
        writeln!(out, "  - {}", f.message)?;
    }
    if let Some(fix) = fix {
        writeln!(out, "  fix: {fix}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::hosts::{Hosts, HostsOrder};
    use crate::dns::resolv_conf::ResolvConf;
    use crate::dns::stub::{QueryLog, Step};
    use crate::dns::transport::Transport;

    fn env() -> Environment {
        Environment {
            libc: Libc::Glibc,
            resolv_conf_path: "/etc/resolv.conf".to_owned(),
            conf: ResolvConf::parse(
                "search default.svc.cluster.local svc.cluster.local cluster.local\n\
                 nameserver 198.51.100.53\noptions ndots:5\n",
                Libc::Glibc,
            ),
            hosts: Hosts::default(),
            hosts_path: "/etc/hosts".to_owned(),
            order: HostsOrder::musl(),
        }
    }

    fn query(step: usize, qtype: &str, outcome: Outcome) -> QueryLog {
        QueryLog {
            name: "web.default.svc.cluster.local.".to_owned(),
            qtype: qtype.to_owned(),
            server: "198.51.100.53:53".parse().unwrap(),
            transport: Transport::Udp,
            sent_at: Duration::ZERO,
            step,
            outcome,
            sent_instant: None,
        }
    }

    fn answered(latency_ms: u64) -> Outcome {
        Outcome::Answered {
            rcode: "NOERROR".to_owned(),
            answers: 1,
            authoritative: true,
            truncated: false,
            recursion_available: true,
            size: 80,
            latency: Duration::from_millis(latency_ms),
            addresses: Vec::new(),
            used: true,
        }
    }

    fn lookup(queries: Vec<QueryLog>) -> Lookup {
        Lookup {
            input: "web.default.svc.cluster.local.".to_owned(),
            libc: Libc::Glibc,
            family: Family::Any,
            steps: vec![Step {
                name: "web.default.svc.cluster.local.".to_owned(),
                why: Why::AsIsFirst,
                result: StepResult::Found,
                elapsed: Duration::from_millis(400),
            }],
            queries,
            events: Vec::new(),
            resolution: Resolution::Found {
                addresses: vec!["198.51.100.80".parse().unwrap()],
                source: Source::Dns,
                name: "web.default.svc.cluster.local.".to_owned(),
                canonical: "web.default.svc.cluster.local.".to_owned(),
            },
            elapsed: Duration::from_millis(400),
        }
    }

    #[test]
    fn aaaa_slower_than_a_is_named() {
        let l = lookup(vec![
            query(0, "A", answered(2)),
            query(0, "AAAA", answered(400)),
        ]);
        let (findings, _) = verdict(&env(), &l, &[]);
        assert!(
            findings.iter().any(|f| f.kind == "aaaa_slow"),
            "{findings:?}"
        );
        let l = lookup(vec![
            query(0, "A", answered(2)),
            query(0, "AAAA", answered(3)),
        ]);
        let (findings, _) = verdict(&env(), &l, &[]);
        assert!(
            !findings.iter().any(|f| f.kind == "aaaa_slow"),
            "{findings:?}"
        );
    }

    #[test]
    fn lost_aaaa_suggests_single_request_reopen() {
        let timed_out = Outcome::TimedOut {
            waited: Duration::from_secs(5),
        };
        let l = lookup(vec![
            query(0, "A", answered(2)),
            query(0, "AAAA", timed_out),
        ]);
        let (findings, fix) = verdict(&env(), &l, &[]);
        assert!(
            findings.iter().any(|f| f.kind == "aaaa_lost"),
            "{findings:?}"
        );
        assert!(fix.unwrap().contains("single-request-reopen"));
    }

    #[test]
    fn names_resolve_rejects_before_sending() {
        assert!(validate("a..b").is_err());
        assert!(validate(&"x".repeat(64)).is_err());
        assert!(validate("").is_err());
        assert!(validate("web.default.").is_ok());
        assert!(validate("198.51.100.7").is_ok());
    }
}
