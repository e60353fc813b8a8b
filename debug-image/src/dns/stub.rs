//! A stub resolver that sends exactly what the pod's C library would, and
//! records every query it sends.
//!
//! Two algorithms, both transcribed from their sources because the order,
//! number and timing of queries *is* the diagnosis:
//!
//! **glibc 2.36** (`resolv/res_query.c` `__res_context_search`,
//! `resolv/res_send.c` `send_dg`/`send_vc`, `nss_dns` `gethostbyname4`):
//! - A name with at least `ndots` dots, or a trailing dot, is tried as-is
//!   first; a trailing dot stops there.
//! - Otherwise each search domain is tried in order, then the name as-is
//!   (unless already tried, or the search list held the root).
//! - NXDOMAIN and NODATA continue the search; SERVFAIL (from every server)
//!   continues too; a timeout or REFUSED stops the search but the name is
//!   still tried as-is; no server reachable at all (ICMP refused) stops
//!   everything.
//! - A and AAAA go out together on one UDP socket per server (`sendmmsg`),
//!   or one after the other with `single-request`, on a new socket for
//!   the AAAA with `single-request-reopen`. A timeout after one of the two
//!   answers switches the rest of the lookup to single-request (then
//!   reopen) mode, as glibc does.
//! - Servers are tried in order (`rotate` starts at a rotating offset), the
//!   whole list `attempts` times; server *i* is waited for
//!   `(timeout << i) / nservers` seconds (`timeout` for the first).
//! - SERVFAIL, NOTIMP, REFUSED and "lame" answers (NOERROR, no records,
//!   neither AA nor RA) move on to the next server; a truncated answer is
//!   repeated over TCP to the same server; `use-vc` uses TCP throughout.
//!
//! **musl 1.2** (`src/network/lookup_name.c`, `res_msend.c`):
//! - /etc/hosts first; search domains only when the name has fewer than
//!   `ndots` dots and no trailing dot, then the name as-is.
//! - The search stops at the first answer that is not NXDOMAIN: NODATA,
//!   SERVFAIL and timeouts all end it.
//! - Every query goes to every server at once, re-sent every
//!   `timeout/attempts` seconds until `timeout` seconds have passed;
//!   SERVFAIL is re-asked at once, REFUSED and other errors are ignored (so
//!   they end as a timeout); a truncated answer is fetched over TCP.
//!
//! Not modelled: `HOSTALIASES`, `LOCALDOMAIN`/`RES_OPTIONS` environment
//! overrides, glibc's `AI_ADDRCONFIG` filtering (we always ask for both
//! families unless told), nsswitch sources other than `files` and `dns`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;
use tokio::time::Instant;

use super::hosts::{HOSTS, Hosts, HostsOrder, NSSWITCH, Source};
use super::resolv_conf::{Libc, RESOLV_CONF, ResolvConf};
use super::transport::{Received, TcpChannel, Transport, UdpChannel, UdpFanout, describe};
use super::wire::{Query, QuerySpec, Reply, rcode, rcode_name};
use super::{Family, numeric};

/// glibc's `RESOLV_EDNS_BUFFER_SIZE`, advertised with `options edns0`.
const GLIBC_EDNS_PAYLOAD: u16 = 1200;
/// glibc's `MAXDNAME`: longer names are refused before any query.
const MAXDNAME: usize = 1025;

/// What the stub reads from the pod, and which library's rules apply.
#[derive(Clone, Debug, Serialize)]
pub struct Environment {
    pub libc: Libc,
    pub resolv_conf_path: String,
    pub conf: ResolvConf,
    #[serde(skip)]
    pub hosts: Hosts,
    pub hosts_path: String,
    pub order: HostsOrder,
}

impl Environment {
    /// Reads the three files for `libc`. Only an unreadable resolv.conf is
    /// an error (a missing one means the library's defaults).
    pub fn load(
        libc: Libc,
        resolv_conf: &str,
        hosts: &str,
        nsswitch: &str,
    ) -> Result<Environment, String> {
        let mut conf = ResolvConf::load(resolv_conf, libc)?;
        if libc == Libc::Glibc
            && let Ok(hostname) = std::fs::read_to_string("/proc/sys/kernel/hostname")
        {
            conf.default_search_from_hostname(&hostname);
        }
        let order = match libc {
            Libc::Glibc => HostsOrder::load_glibc(nsswitch),
            Libc::Musl => HostsOrder::musl(),
        };
        Ok(Environment {
            libc,
            resolv_conf_path: resolv_conf.to_owned(),
            conf,
            hosts: Hosts::load(hosts),
            hosts_path: hosts.to_owned(),
            order,
        })
    }

    /// What tools that connect somewhere use: glibc's rules with the hosts
    /// file first (kubelet writes the pod's own names there), since the
    /// agent image has no nsswitch.conf of its own to follow.
    pub fn load_for_tools() -> Result<Environment, String> {
        let mut env = Environment::load(Libc::Glibc, RESOLV_CONF, HOSTS, NSSWITCH)?;
        env.order = HostsOrder {
            sources: vec![Source::Files, Source::Dns],
            files_only_if_dns_unavailable: false,
            origin: "files then dns".to_owned(),
            unmodelled: Vec::new(),
        };
        Ok(env)
    }
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// What became of one query packet.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Still outstanding when the resolver stopped waiting for it (the
    /// other query of the pair failed first, or the search ended).
    Abandoned,
    Answered {
        rcode: String,
        answers: u16,
        authoritative: bool,
        truncated: bool,
        recursion_available: bool,
        size: usize,
        #[serde(serialize_with = "ms", rename = "latency_ms")]
        latency: Duration,
        addresses: Vec<IpAddr>,
        /// False when the resolver discarded it (musl ignores REFUSED, a
        /// second copy after a retry, ...).
        used: bool,
    },
    TimedOut {
        #[serde(serialize_with = "ms", rename = "waited_ms")]
        waited: Duration,
    },
    Failed {
        error: String,
    },
}

/// One query on the wire.
#[derive(Clone, Debug, Serialize)]
pub struct QueryLog {
    pub name: String,
    #[serde(rename = "type")]
    pub qtype: String,
    pub server: SocketAddr,
    pub transport: Transport,
    /// When it was sent, from the start of the lookup.
    #[serde(serialize_with = "ms", rename = "sent_at_ms")]
    pub sent_at: Duration,
    /// Which [`Step`] it belongs to.
    pub step: usize,
    pub outcome: Outcome,
    #[serde(skip)]
    pub(crate) sent_instant: Option<Instant>,
}

impl QueryLog {
    pub fn rcode(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Answered { rcode, .. } => Some(rcode),
            _ => None,
        }
    }
}

/// Why a name was tried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "domain", rename_all = "snake_case")]
pub enum Why {
    /// Enough dots (or a trailing dot): tried as-is before the search list.
    AsIsFirst,
    /// The name with this search domain appended.
    Search(String),
    /// The name as-is, after the search list.
    AsIsLast,
}

/// How one tried name ended, in the resolver's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    Found,
    NxDomain,
    NoData,
    ServFail,
    TimedOut,
    Refused,
    /// Any other rcode (FORMERR, NOTIMP...) or a reply we could not use.
    Failed(String),
    /// No server could be reached at all (ICMP errors everywhere).
    Unreachable,
    /// Not a name that can be queried (too long, empty label).
    Invalid(String),
}

/// One name the resolver tried, with the reason and the result.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub name: String,
    pub why: Why,
    pub result: StepResult,
    #[serde(serialize_with = "ms", rename = "elapsed_ms")]
    pub elapsed: Duration,
}

/// Where the final answer came from.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Resolution {
    Found {
        addresses: Vec<IpAddr>,
        source: Source,
        /// The name that answered (with the search domain that made it).
        name: String,
        /// Where its CNAME chain ended.
        canonical: String,
    },
    NotFound {
        /// `HOST_NOT_FOUND`, `NO_DATA`, `TRY_AGAIN`, `NO_RECOVERY`,
        /// `UNAVAILABLE` or `INVALID`: what the application sees.
        error: String,
        detail: String,
    },
}

/// Everything one lookup did.
#[derive(Clone, Debug, Serialize)]
pub struct Lookup {
    pub input: String,
    pub libc: Libc,
    pub family: Family,
    pub steps: Vec<Step>,
    pub queries: Vec<QueryLog>,
    /// Things the resolver did on its own that explain the timing
    /// (switching to single-request mode, retrying over TCP, ...).
    pub events: Vec<String>,
    pub resolution: Resolution,
    #[serde(serialize_with = "ms", rename = "elapsed_ms")]
    pub elapsed: Duration,
}

impl Lookup {
    /// The addresses, or the one-line reason for [`super::resolve_host`].
    pub fn into_addresses(self) -> Result<Vec<IpAddr>, String> {
        match self.resolution {
            Resolution::Found { addresses, .. } if !addresses.is_empty() => Ok(addresses),
            Resolution::Found { name, .. } => Err(format!(
                "cannot resolve \"{}\": {name} has no address records",
                self.input
            )),
            Resolution::NotFound { detail, .. } => {
                Err(format!("cannot resolve \"{}\": {detail}", self.input))
            }
        }
    }
}

/// Resolves `name` as `env.libc` would, recording every query.
pub async fn lookup(env: &Environment, name: &str, family: Family) -> Lookup {
    let mut run = Run::new(env, family);
    let mut resolution = run.resolve(name).await;
    // getaddrinfo returns the addresses sorted for the destination
    // address selection rules; programs connect to the first.
    if let Resolution::Found { addresses, .. } = &mut resolution {
        super::order::sort(addresses, env.libc);
    }
    Lookup {
        input: name.to_owned(),
        libc: env.libc,
        family,
        steps: run.steps,
        queries: run.queries,
        events: run.events,
        resolution,
        elapsed: run.start.elapsed(),
    }
}

/// glibc's `h_errno` after a query or search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HErrno {
    HostNotFound,
    TryAgain,
    NoRecovery,
    NoData,
}

impl HErrno {
    fn name(self) -> &'static str {
        match self {
            HErrno::HostNotFound => "HOST_NOT_FOUND",
            HErrno::TryAgain => "TRY_AGAIN",
            HErrno::NoRecovery => "NO_RECOVERY",
            HErrno::NoData => "NO_DATA",
        }
    }
}

/// The answer buffers of one glibc query, as `send_dg` leaves them.
#[derive(Default)]
struct Buffers {
    first: Option<Reply>,
    first_len: usize,
    second: Option<Reply>,
    second_len: usize,
    /// `hp->rcode`: NOERROR until a packet lands in the first buffer.
    first_rcode: u8,
    got_somewhere: bool,
    v_circuit: bool,
    /// The last socket-level error, for the explanation.
    last_error: Option<String>,
}

/// How a `send_dg`/`send_vc` call ended.
enum Sent {
    /// Try the next server (or the next round).
    Next,
    /// Repeat with this server over TCP.
    Tcp,
    /// Answers are in the buffers.
    Done,
}

/// How one glibc query (`__res_context_query`) ended.
struct QueryResult {
    found: bool,
    herrno: HErrno,
    /// No server answered at all (errno ECONNREFUSED): the search stops.
    unreachable: bool,
    /// Timed out everywhere (errno ETIMEDOUT).
    timed_out: bool,
    first_rcode: u8,
    replies: Vec<Reply>,
}

struct Run<'e> {
    env: &'e Environment,
    family: Family,
    start: Instant,
    steps: Vec<Step>,
    queries: Vec<QueryLog>,
    events: Vec<String>,
    /// glibc turns RES_SNGLKUP / RES_SNGLKUPREOP on for the rest of the
    /// lookup after a server drops one of two parallel queries.
    sticky_single: bool,
    sticky_reopen: bool,
    /// `rotate`: glibc's global offset, advanced once per send.
    rotation: usize,
    /// Servers answered, for the one-line error.
    last_server: Option<SocketAddr>,
}

impl<'e> Run<'e> {
    fn new(env: &'e Environment, family: Family) -> Run<'e> {
        Run {
            env,
            family,
            start: Instant::now(),
            steps: Vec::new(),
            queries: Vec::new(),
            events: Vec::new(),
            sticky_single: false,
            sticky_reopen: false,
            rotation: usize::from(Message::query().metadata.id),
            last_server: None,
        }
    }

    async fn resolve(&mut self, name: &str) -> Resolution {
        if let Some(addr) = numeric(name) {
            return Resolution::Found {
                addresses: if self.family.admits(addr) {
                    vec![addr]
                } else {
                    Vec::new()
                },
                source: Source::Files,
                name: name.to_owned(),
                canonical: name.to_owned(),
            };
        }
        if name.is_empty() {
            return not_found("INVALID", "the name is empty".to_owned());
        }
        match self.env.libc {
            Libc::Glibc => self.glibc(name).await,
            Libc::Musl => self.musl(name).await,
        }
    }

    fn hosts_answer(&mut self, name: &str) -> Option<Resolution> {
        let found = self.env.hosts.lookup(name, self.family);
        (!found.is_empty()).then(|| Resolution::Found {
            addresses: found,
            source: Source::Files,
            name: name.to_owned(),
            canonical: name.to_owned(),
        })
    }

    // ---------------------------------------------------------------- glibc

    async fn glibc(&mut self, name: &str) -> Resolution {
        let mut last = not_found(
            "HOST_NOT_FOUND",
            "no source on the hosts: line can answer".to_owned(),
        );
        let sources = self.env.order.sources.clone();
        for source in sources {
            match source {
                Source::Files => {
                    if let Some(found) = self.hosts_answer(name) {
                        return found;
                    }
                    if matches!(&last, Resolution::NotFound { error, .. } if error == "HOST_NOT_FOUND" && self.steps.is_empty())
                    {
                        last =
                            not_found("HOST_NOT_FOUND", format!("not in {}", self.env.hosts_path));
                    }
                }
                Source::Dns => {
                    // getaddrinfo hands nss_dns a 1024-byte buffer; when the
                    // addresses do not fit (ERANGE) it doubles the buffer and
                    // runs the whole lookup again, queries and all.
                    let mut buffer = GLIBC_GAI_BUFFER;
                    let (resolution, unavailable) = loop {
                        let (resolution, unavailable) = self.glibc_dns(name).await;
                        let needed = match &resolution {
                            Resolution::Found {
                                addresses,
                                canonical,
                                ..
                            } => tuple_bytes(canonical, addresses.len()),
                            _ => 0,
                        };
                        if needed <= buffer || buffer >= 1 << 20 {
                            break (resolution, unavailable);
                        }
                        self.events.push(format!(
                            "{} addresses need about {needed} bytes, more than getaddrinfo's {buffer}-byte buffer: glibc repeats the whole lookup with {} bytes",
                            match &resolution {
                                Resolution::Found { addresses, .. } => addresses.len(),
                                _ => 0,
                            },
                            buffer * 2
                        ));
                        buffer *= 2;
                    };
                    if matches!(resolution, Resolution::Found { .. }) {
                        return resolution;
                    }
                    last = resolution;
                    if self.env.order.files_only_if_dns_unavailable && !unavailable {
                        return last;
                    }
                }
            }
        }
        last
    }

    /// `_nss_dns_gethostbyname4_r` (or 3 for one family): the search, then
    /// the status nsswitch sees. The flag is nss's UNAVAIL.
    async fn glibc_dns(&mut self, name: &str) -> (Resolution, bool) {
        let conf = &self.env.conf;
        let dots = name.matches('.').count();
        let trailing_dot = name.ends_with('.');
        let mut saved: Option<HErrno> = None;
        let mut tried_as_is = false;
        let mut root_on_list = false;
        let mut searched = false;
        let mut got_nodata = false;
        let mut got_servfail = false;
        let mut last_herrno = HErrno::HostNotFound;
        // nss_dns says UNAVAIL when the last send failed (errno
        // ETIMEDOUT or ECONNREFUSED): then `files` may still be asked.
        let mut last_failed = false;

        if dots >= conf.ndots as usize || trailing_dot {
            let r = self.glibc_querydomain(name, None, Why::AsIsFirst).await;
            if r.found || trailing_dot {
                return self.glibc_finish(r);
            }
            saved = Some(r.herrno);
            last_herrno = r.herrno;
            last_failed = r.timed_out || r.unreachable;
            tried_as_is = true;
        }

        if dots == 0 || !trailing_dot {
            let domains = conf.search.clone();
            for domain in domains {
                searched = true;
                let domain = domain.strip_prefix('.').unwrap_or(&domain).to_owned();
                if domain.is_empty() {
                    root_on_list = true;
                }
                let r = self
                    .glibc_querydomain(name, Some(&domain), Why::Search(domain.clone()))
                    .await;
                if r.found {
                    return self.glibc_finish(r);
                }
                last_failed = r.timed_out || r.unreachable;
                last_herrno = r.herrno;
                if r.unreachable {
                    let detail = self.unreachable_detail();
                    return (not_found("TRY_AGAIN", detail), true);
                }
                let done = match r.herrno {
                    HErrno::NoData => {
                        got_nodata = true;
                        false
                    }
                    HErrno::HostNotFound => false,
                    HErrno::TryAgain if r.first_rcode == rcode::SERVFAIL as u8 => {
                        got_servfail = true;
                        false
                    }
                    _ => true,
                };
                if done {
                    self.events.push(format!(
                        "{} for {name}.{domain}: glibc stops the search list here (only SERVFAIL, NXDOMAIN and NODATA go on to the next domain)",
                        r.herrno.name()
                    ));
                    break;
                }
            }
        }

        let no_tld = dots == 0 && searched && conf.no_tld_query;
        if !no_tld && !tried_as_is && !root_on_list {
            let r = self.glibc_querydomain(name, None, Why::AsIsLast).await;
            if r.found {
                return self.glibc_finish(r);
            }
            last_failed = r.timed_out || r.unreachable;
            last_herrno = r.herrno;
            if r.unreachable {
                let detail = self.unreachable_detail();
                return (not_found("TRY_AGAIN", detail), true);
            }
        }
        let herrno = if let Some(s) = saved {
            s
        } else if got_nodata {
            HErrno::NoData
        } else if got_servfail {
            HErrno::TryAgain
        } else {
            last_herrno
        };
        let detail = self.failure_detail(herrno);
        // nss_dns reports UNAVAIL when the last send failed outright.
        (not_found(herrno.name(), detail), last_failed)
    }

    /// The lookup ends with this query's result (found, or a trailing-dot
    /// name that failed).
    fn glibc_finish(&mut self, r: QueryResult) -> (Resolution, bool) {
        let tried = self
            .steps
            .last()
            .map_or_else(String::new, |s| s.name.clone());
        if !r.found {
            let detail = if r.unreachable {
                self.unreachable_detail()
            } else {
                self.failure_detail(r.herrno)
            };
            return (
                not_found(r.herrno.name(), detail),
                r.unreachable || r.timed_out,
            );
        }
        let qname = Name::from_ascii(&tried).unwrap_or_default();
        let mut addresses = Vec::new();
        let mut canonical = qname.clone();
        for reply in &r.replies {
            let (addrs, end) = reply.addresses(&qname);
            if !addrs.is_empty() {
                canonical = end;
            }
            addresses.extend(addrs.into_iter().filter(|a| self.family.admits(*a)));
        }
        (
            Resolution::Found {
                addresses,
                source: Source::Dns,
                name: fqdn(&tried),
                canonical: fqdn(&canonical.to_ascii()),
            },
            false,
        )
    }

    /// `__res_context_querydomain` + `__res_context_query`: one name, A and
    /// AAAA (or one of them), through `__res_context_send`.
    async fn glibc_querydomain(
        &mut self,
        name: &str,
        domain: Option<&str>,
        why: Why,
    ) -> QueryResult {
        let full = match domain {
            None => name.to_owned(),
            Some(d) => format!("{name}.{d}"),
        };
        let step_started = self.start.elapsed();
        let step_index = self.steps.len();
        self.steps.push(Step {
            name: fqdn(&full),
            why,
            result: StepResult::Failed("not sent".to_owned()),
            elapsed: Duration::ZERO,
        });
        if full.len() >= MAXDNAME - 1 {
            self.steps[step_index].result = StepResult::Invalid("name too long".to_owned());
            return QueryResult::invalid();
        }
        let qname = match super::wire::parse_name(&full) {
            Ok(n) => n,
            Err(e) => {
                self.steps[step_index].result = StepResult::Invalid(e);
                return QueryResult::invalid();
            }
        };
        let conf = &self.env.conf;
        let types: Vec<RecordType> = match self.family {
            Family::Any if conf.no_aaaa => vec![RecordType::A],
            Family::Any => vec![RecordType::A, RecordType::AAAA],
            Family::V4 => vec![RecordType::A],
            Family::V6 => vec![RecordType::AAAA],
        };
        let mut queries = Vec::new();
        for t in types {
            let mut spec = QuerySpec::stub(qname.clone(), t);
            spec.authentic_data = conf.trust_ad;
            if conf.edns0 {
                spec.edns_payload = Some(GLIBC_EDNS_PAYLOAD);
            }
            match Query::build(&spec) {
                Ok(q) => queries.push(q),
                Err(e) => {
                    self.steps[step_index].result = StepResult::Invalid(e);
                    return QueryResult::invalid();
                }
            }
        }
        let mut buffers = Buffers::default();
        let sent_ok = self.glibc_send(&queries, &mut buffers, step_index).await;
        let result = if !sent_ok {
            let unreachable = !buffers.v_circuit && !buffers.got_somewhere;
            QueryResult {
                found: false,
                herrno: HErrno::TryAgain,
                unreachable,
                timed_out: !unreachable,
                first_rcode: buffers.first_rcode,
                replies: Vec::new(),
            }
        } else {
            let two = queries.len() == 2;
            let (herrno, found) = analyse(&buffers, two);
            let mut replies = Vec::new();
            if buffers.first_len > 0
                && let Some(r) = buffers.first.take()
            {
                replies.push(r);
            }
            if buffers.second_len > 0
                && let Some(r) = buffers.second.take()
            {
                replies.push(r);
            }
            QueryResult {
                found,
                herrno,
                unreachable: false,
                timed_out: false,
                first_rcode: buffers.first_rcode,
                replies,
            }
        };
        let step = &mut self.steps[step_index];
        step.elapsed = self.start.elapsed().saturating_sub(step_started);
        step.result = if result.found {
            StepResult::Found
        } else if result.unreachable {
            StepResult::Unreachable
        } else {
            match result.herrno {
                HErrno::HostNotFound => StepResult::NxDomain,
                HErrno::NoData => StepResult::NoData,
                HErrno::TryAgain if result.first_rcode == rcode::SERVFAIL as u8 => {
                    StepResult::ServFail
                }
                HErrno::TryAgain if !sent_ok && buffers.first_rcode == rcode::REFUSED as u8 => {
                    StepResult::Refused
                }
                HErrno::TryAgain if !sent_ok => StepResult::TimedOut,
                HErrno::TryAgain => StepResult::ServFail,
                HErrno::NoRecovery => {
                    let code = buffers
                        .first
                        .as_ref()
                        .map_or(0, |r| u16::from(r.header.rcode));
                    if code == rcode::REFUSED {
                        StepResult::Refused
                    } else {
                        StepResult::Failed(rcode_name(code))
                    }
                }
            }
        };
        result
    }

    /// `__res_context_send`: every server, `attempts` rounds.
    async fn glibc_send(&mut self, queries: &[Query], b: &mut Buffers, step: usize) -> bool {
        let conf = &self.env.conf;
        let servers = conf.nameservers.clone();
        let nscount = servers.len();
        b.v_circuit = conf.use_vc || queries.iter().any(|q| q.bytes.len() > 512);
        let offset = if conf.rotate && nscount > 1 {
            self.rotation = self.rotation.wrapping_add(1);
            self.rotation % nscount
        } else {
            0
        };
        // glibc keeps one UDP socket per server open across rounds until
        // something closes them all (`__res_iclose`); a retry after a
        // timeout or a REFUSED pair reuses the socket (same source port).
        let mut sockets: Vec<Option<UdpChannel>> = (0..nscount).map(|_| None).collect();
        let mut attempt = 0;
        let attempts = conf.attempts.max(1) as usize;
        while attempt < attempts {
            for shift in 0..nscount {
                let ns = (shift + offset) % nscount;
                loop {
                    if b.v_circuit {
                        // One TCP attempt per server.
                        attempt = attempts;
                        match self.glibc_send_vc(ns, &servers, queries, b, step).await {
                            Sent::Done => return true,
                            _ => break,
                        }
                    }
                    match self
                        .glibc_send_dg(ns, &servers, queries, b, step, &mut sockets)
                        .await
                    {
                        Sent::Next => break,
                        Sent::Tcp => {
                            self.events.push(format!(
                                "truncated UDP answer from {}: repeated over TCP",
                                servers[ns]
                            ));
                            continue;
                        }
                        Sent::Done => {
                            if b.first_len == 0 && b.second_len == 0 {
                                break;
                            }
                            return true;
                        }
                    }
                }
            }
            attempt += 1;
        }
        false
    }

    fn log_sent(
        &mut self,
        q: &Query,
        server: SocketAddr,
        transport: Transport,
        step: usize,
    ) -> usize {
        let now = Instant::now();
        self.queries.push(QueryLog {
            name: fqdn(&q.name.to_ascii()),
            qtype: super::types::type_name(u16::from(q.qtype)),
            server,
            transport,
            sent_at: now.duration_since(self.start),
            step,
            outcome: Outcome::Abandoned,
            sent_instant: Some(now),
        });
        self.queries.len() - 1
    }

    fn log_reply(&mut self, index: usize, reply: &Reply, used: bool) {
        let log = &mut self.queries[index];
        let latency = log.sent_instant.map_or(Duration::ZERO, |t| t.elapsed());
        let qname = Name::from_ascii(&log.name).unwrap_or_default();
        let addresses = reply.addresses(&qname).0;
        log.outcome = Outcome::Answered {
            rcode: rcode_name(reply.rcode()),
            answers: reply.header.ancount,
            authoritative: reply.header.aa,
            truncated: reply.header.tc,
            recursion_available: reply.header.ra,
            size: reply.size,
            latency,
            addresses,
            used,
        };
        self.last_server = Some(log.server);
    }

    fn log_unanswered(&mut self, indexes: &[usize], outcome: impl Fn(Duration) -> Outcome) {
        for &i in indexes {
            let log = &mut self.queries[i];
            if matches!(log.outcome, Outcome::Abandoned) {
                let waited = log.sent_instant.map_or(Duration::ZERO, |t| t.elapsed());
                log.outcome = outcome(waited);
            }
        }
    }

    /// `send_dg`: the UDP exchange with one server.
    async fn glibc_send_dg(
        &mut self,
        ns: usize,
        servers: &[SocketAddr],
        queries: &[Query],
        b: &mut Buffers,
        step: usize,
        sockets: &mut [Option<UdpChannel>],
    ) -> Sent {
        let conf = &self.env.conf;
        let server = servers[ns];
        let mut seconds = u64::from(conf.timeout_secs) << ns;
        if ns > 0 {
            seconds /= servers.len() as u64;
        }
        let seconds = seconds.max(1);
        let two = queries.len() == 2;
        let mut single = self.sticky_single || conf.single_request || conf.single_request_reopen;
        let mut reopen = self.sticky_reopen || conf.single_request_reopen;
        let saved_got_somewhere = b.got_somewhere;

        'reopen: loop {
            let opened = match sockets[ns].take() {
                Some(c) => Ok(c),
                None => UdpChannel::open(server).await,
            };
            let mut channel = match opened {
                Ok(c) => c,
                Err(e) => {
                    close_all(sockets);
                    b.last_error = Some(format!("{server}: {}", describe(&e)));
                    self.events.push(format!(
                        "cannot open a UDP socket to {server}: {}",
                        describe(&e)
                    ));
                    return Sent::Next;
                }
            };
            'retry: loop {
                let deadline = Instant::now() + Duration::from_secs(seconds);
                let mut got_first = false;
                let mut got_second = !two;
                let mut first_len = 0usize;
                let mut logs: Vec<usize> = Vec::new();
                let mut log_of = [usize::MAX; 2];

                let i = self.log_sent(&queries[0], server, Transport::Udp, step);
                log_of[0] = i;
                logs.push(i);
                if let Err(e) = channel.send(&queries[0].bytes).await {
                    close_all(sockets);
                    self.fail_logs(&logs, &e, b, server);
                    return Sent::Next;
                }
                if two && !single {
                    let i = self.log_sent(&queries[1], server, Transport::Udp, step);
                    log_of[1] = i;
                    logs.push(i);
                    // glibc sends both with one sendmmsg, then sees the
                    // ICMP error of the first at poll. With two sends the
                    // error fails the second send instead (and is consumed):
                    // send again, so the wire shows what sendmmsg sends,
                    // then fail as glibc's poll does.
                    let sent = channel.send(&queries[1].bytes).await;
                    if let Err(e) = &sent
                        && e.kind() == std::io::ErrorKind::ConnectionRefused
                    {
                        let _ = channel.send(&queries[1].bytes).await;
                        close_all(sockets);
                        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
                        self.fail_logs(&logs, &e, b, server);
                        return Sent::Next;
                    }
                    if let Err(e) = sent {
                        close_all(sockets);
                        self.fail_logs(&logs, &e, b, server);
                        return Sent::Next;
                    }
                }
                loop {
                    match channel.recv_until(deadline).await {
                        Received::TimedOut => {
                            if first_len > 1 && (got_first || (two && got_second)) {
                                if !single {
                                    single = true;
                                    self.sticky_single = true;
                                    b.got_somewhere = saved_got_somewhere;
                                    self.log_unanswered(&logs, |w| Outcome::TimedOut { waited: w });
                                    self.events.push(format!(
                                        "{server} answered only one of the parallel A/AAAA queries: glibc switches to single-request mode for the rest of this lookup and asks again"
                                    ));
                                    continue 'retry;
                                } else if !reopen {
                                    reopen = true;
                                    self.sticky_reopen = true;
                                    b.got_somewhere = saved_got_somewhere;
                                    self.log_unanswered(&logs, |w| Outcome::TimedOut { waited: w });
                                    self.events.push(format!(
                                        "{server} still answered only one query: glibc switches to single-request-reopen (a new socket for the second query)"
                                    ));
                                    close_all(sockets);
                                    continue 'reopen;
                                }
                                self.log_unanswered(&logs, |w| Outcome::TimedOut { waited: w });
                                // glibc pretends the second answer came.
                                sockets[ns] = Some(channel);
                                b.first_len = first_len;
                                b.second_len = 0;
                                return Sent::Done;
                            }
                            b.got_somewhere = true;
                            // The socket stays open for the next round.
                            sockets[ns] = Some(channel);
                            self.log_unanswered(&logs, |w| Outcome::TimedOut { waited: w });
                            b.last_error = Some(format!("{server}: timed out"));
                            b.first_len = 0;
                            b.second_len = 0;
                            return Sent::Next;
                        }
                        Received::Failed(e) => {
                            close_all(sockets);
                            self.fail_logs(&logs, &e, b, server);
                            return Sent::Next;
                        }
                        Received::Message(len) => {
                            b.got_somewhere = true;
                            let Some(reply) = Reply::parse(channel.message(len)) else {
                                close_all(sockets);
                                b.last_error = Some(format!("{server}: undersized reply"));
                                self.events.push(format!(
                                    "{server} sent a {len}-byte reply, shorter than a DNS header: next server"
                                ));
                                self.log_unanswered(&logs, |_| Outcome::Failed {
                                    error: "undersized reply".to_owned(),
                                });
                                return Sent::Next;
                            };
                            let matching = if !got_first && reply.answers(&queries[0]) {
                                1
                            } else if two && !got_second && reply.answers(&queries[1]) {
                                2
                            } else {
                                0
                            };
                            if matching == 0 {
                                self.events.push(format!(
                                    "ignored a reply from {server} (id {}) that matches no outstanding query",
                                    reply.header.id
                                ));
                                continue;
                            }
                            let slot = matching - 1;
                            // glibc: the first packet of this exchange goes
                            // to the first buffer, the next to the second.
                            let into_first = (!got_first && !got_second) || !two;
                            let h = reply.header;
                            if log_of[slot] != usize::MAX {
                                self.log_reply(log_of[slot], &reply, true);
                            }
                            if into_first {
                                b.first_rcode = h.rcode;
                            }
                            let error_rcode = matches!(
                                u16::from(h.rcode),
                                rcode::SERVFAIL | rcode::NOTIMP | rcode::REFUSED
                            );
                            let lame =
                                h.rcode == 0 && h.ancount == 0 && !h.aa && !h.ra && h.arcount == 0;
                            if into_first {
                                b.first = Some(reply);
                            } else {
                                b.second = Some(reply);
                            }
                            if error_rcode || lame {
                                if lame {
                                    self.events.push(format!(
                                        "{server} gave an empty answer without AA or RA (a lame server): glibc tries the next server"
                                    ));
                                }
                                if got_first || (two && got_second) {
                                    // One answer already accepted: keep it.
                                    // (glibc returns without closing.)
                                    sockets[ns] = Some(channel);
                                    b.first_len = first_len;
                                    b.second_len = 0;
                                    self.log_unanswered(&logs, |_| Outcome::Abandoned);
                                    return Sent::Done;
                                }
                                // Parallel queries: wait for the other
                                // answer. One at a time (single-request,
                                // measured on glibc 2.36): give up on this
                                // server at once, on a new socket next time.
                                if two && !single {
                                    first_len = 0;
                                    if matching == 1 {
                                        got_first = true;
                                    } else {
                                        got_second = true;
                                    }
                                    continue;
                                }
                                close_all(sockets);
                                b.first_len = 0;
                                return Sent::Next;
                            }
                            if h.tc {
                                close_all(sockets);
                                b.v_circuit = true;
                                b.first_len = 0;
                                b.second_len = 0;
                                self.log_unanswered(&logs, |_| Outcome::Abandoned);
                                return Sent::Tcp;
                            }
                            if into_first {
                                first_len = len;
                            } else {
                                b.second_len = len;
                            }
                            if matching == 1 {
                                got_first = true;
                            } else {
                                got_second = true;
                            }
                            if got_first && got_second {
                                b.first_len = first_len;
                                return Sent::Done;
                            }
                            if single && log_of[1] == usize::MAX {
                                if reopen {
                                    close_all(sockets);
                                    drop(channel);
                                    channel = match UdpChannel::open(server).await {
                                        Ok(c) => c,
                                        Err(e) => {
                                            self.fail_logs(&logs, &e, b, server);
                                            return Sent::Next;
                                        }
                                    };
                                }
                                let i = self.log_sent(&queries[1], server, Transport::Udp, step);
                                log_of[1] = i;
                                logs.push(i);
                                if let Err(e) = channel.send(&queries[1].bytes).await {
                                    close_all(sockets);
                                    self.fail_logs(&logs, &e, b, server);
                                    return Sent::Next;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn fail_logs(
        &mut self,
        logs: &[usize],
        e: &std::io::Error,
        b: &mut Buffers,
        server: SocketAddr,
    ) {
        let text = describe(e);
        b.last_error = Some(format!("{server}: {text}"));
        b.first_len = 0;
        b.second_len = 0;
        self.log_unanswered(logs, |_| Outcome::Failed {
            error: text.clone(),
        });
    }

    /// `send_vc`: both queries on one TCP connection. glibc blocks without
    /// a limit here; we wait at most `timeout` seconds for each step.
    async fn glibc_send_vc(
        &mut self,
        ns: usize,
        servers: &[SocketAddr],
        queries: &[Query],
        b: &mut Buffers,
        step: usize,
    ) -> Sent {
        let server = servers[ns];
        let deadline = Instant::now() + self.env.conf.timeout();
        let two = queries.len() == 2;
        let logs: Vec<usize> = queries
            .iter()
            .map(|q| self.log_sent(q, server, Transport::Tcp, step))
            .collect();
        let mut channel = match TcpChannel::connect(server, deadline).await {
            Ok(c) => c,
            Err(e) => {
                self.fail_logs(&logs, &e, b, server);
                return Sent::Next;
            }
        };
        let messages: Vec<&[u8]> = queries.iter().map(|q| q.bytes.as_slice()).collect();
        if let Err(e) = channel.send(&messages).await {
            self.fail_logs(&logs, &e, b, server);
            return Sent::Next;
        }
        let (mut got_first, mut got_second) = (false, !two);
        loop {
            match channel.recv_until(deadline).await {
                Received::Message(len) => {
                    let Some(reply) = Reply::parse(channel.message(len)) else {
                        self.log_unanswered(&logs, |_| Outcome::Failed {
                            error: "undersized reply".to_owned(),
                        });
                        return Sent::Next;
                    };
                    let id = reply.header.id;
                    let slot = if !got_first && id == queries[0].id {
                        0
                    } else if two && !got_second && id == queries[1].id {
                        1
                    } else {
                        continue;
                    };
                    self.log_reply(logs[slot], &reply, true);
                    let into_first = (!got_first && !got_second) || !two;
                    if into_first {
                        b.first_rcode = reply.header.rcode;
                        b.first_len = len;
                        b.first = Some(reply);
                    } else {
                        b.second_len = len;
                        b.second = Some(reply);
                    }
                    if slot == 0 {
                        got_first = true;
                    } else {
                        got_second = true;
                    }
                    if got_first && got_second {
                        return Sent::Done;
                    }
                }
                Received::TimedOut => {
                    self.log_unanswered(&logs, |w| Outcome::TimedOut { waited: w });
                    b.last_error = Some(format!("{server}: TCP timed out"));
                    b.first_len = 0;
                    b.second_len = 0;
                    return Sent::Next;
                }
                Received::Failed(e) => {
                    self.fail_logs(&logs, &e, b, server);
                    return Sent::Next;
                }
            }
        }
    }

    // ----------------------------------------------------------------- musl

    async fn musl(&mut self, name: &str) -> Resolution {
        if let Some(found) = self.hosts_answer(name) {
            return found;
        }
        let conf = &self.env.conf;
        let dots = name.matches('.').count();
        let trailing = name.ends_with('.');
        let base = name.strip_suffix('.').unwrap_or(name);
        if base.is_empty() || base.ends_with('.') {
            return not_found(
                "INVALID",
                format!("\"{name}\" is not a valid host name (EAI_NONAME)"),
            );
        }
        let search: Vec<String> = if dots >= conf.ndots as usize || trailing {
            Vec::new()
        } else {
            conf.search.clone()
        };
        for domain in search {
            if domain.len() >= 256 - base.len() - 1 {
                continue;
            }
            let full = format!("{base}.{domain}");
            if let Some(done) = self.musl_name_from_dns(&full, Why::Search(domain)).await {
                return done;
            }
        }
        match self.musl_name_from_dns(name, Why::AsIsLast).await {
            Some(done) => done,
            None => not_found("HOST_NOT_FOUND", self.failure_detail(HErrno::HostNotFound)),
        }
    }

    /// musl's `name_from_dns`: `None` means NXDOMAIN (go on searching).
    async fn musl_name_from_dns(&mut self, full: &str, why: Why) -> Option<Resolution> {
        let step_started = self.start.elapsed();
        let step = self.steps.len();
        self.steps.push(Step {
            name: fqdn(full),
            why,
            result: StepResult::Failed("not sent".to_owned()),
            elapsed: Duration::ZERO,
        });
        let qname = match super::wire::parse_name(full) {
            Ok(n) => n,
            Err(e) => {
                // __res_mkquery fails: musl returns 0 and moves on.
                self.steps[step].result = StepResult::Invalid(e);
                return None;
            }
        };
        let types: &[RecordType] = match self.family {
            Family::Any => &[RecordType::A, RecordType::AAAA],
            Family::V4 => &[RecordType::A],
            Family::V6 => &[RecordType::AAAA],
        };
        let mut queries: Vec<Query> = Vec::new();
        for &t in types {
            let Ok(q) = Query::build(&QuerySpec::stub(qname.clone(), t)) else {
                self.steps[step].result = StepResult::Invalid("cannot encode".to_owned());
                return None;
            };
            // Ensure query IDs are distinct, as musl does.
            let q = match queries.first() {
                Some(first) if first.id == q.id => {
                    let id = q.id.wrapping_add(0x100);
                    q.with_id(id)
                }
                _ => q,
            };
            queries.push(q);
        }
        let answers = self.musl_msend(&queries, step).await;
        let elapsed = self.start.elapsed().saturating_sub(step_started);
        self.steps[step].elapsed = elapsed;
        for answer in &answers {
            match answer {
                None => {
                    self.steps[step].result = StepResult::TimedOut;
                    return Some(not_found(
                        "TRY_AGAIN",
                        self.failure_detail(HErrno::TryAgain),
                    ));
                }
                Some(r) if r.header.rcode == rcode::SERVFAIL as u8 => {
                    self.steps[step].result = StepResult::ServFail;
                    return Some(not_found(
                        "TRY_AGAIN",
                        self.failure_detail(HErrno::TryAgain),
                    ));
                }
                Some(r) if r.header.rcode == rcode::NXDOMAIN as u8 => {
                    self.steps[step].result = StepResult::NxDomain;
                    return None;
                }
                Some(r) if r.header.rcode != 0 => {
                    self.steps[step].result =
                        StepResult::Failed(rcode_name(u16::from(r.header.rcode)));
                    return Some(not_found(
                        "NO_RECOVERY",
                        self.failure_detail(HErrno::NoRecovery),
                    ));
                }
                Some(_) => {}
            }
        }
        let mut addresses = Vec::new();
        let mut canonical = qname.clone();
        // musl parses the replies in reverse order of the queries and
        // keeps every A/AAAA record of the asked type.
        for (q, r) in queries.iter().zip(&answers).rev() {
            let Some(Ok(m)) = r.as_ref().map(|r| &r.message) else {
                continue;
            };
            for rec in &m.answers {
                match &rec.data {
                    hickory_proto::rr::RData::A(a) if q.qtype == RecordType::A => {
                        addresses.push(IpAddr::V4(a.0))
                    }
                    hickory_proto::rr::RData::AAAA(a) if q.qtype == RecordType::AAAA => {
                        addresses.push(IpAddr::V6(a.0))
                    }
                    hickory_proto::rr::RData::CNAME(c) => canonical = c.0.clone(),
                    _ => {}
                }
            }
        }
        if addresses.is_empty() {
            self.steps[step].result = StepResult::NoData;
            self.events.push(format!(
                "{}: NODATA; musl stops here (it only goes on to the next search domain after NXDOMAIN)",
                fqdn(full)
            ));
            return Some(not_found("NO_DATA", self.failure_detail(HErrno::NoData)));
        }
        // musl sorts A before AAAA for the application (RFC 3484 sorting
        // aside); keep reply order per family.
        addresses.sort_by_key(|a| a.is_ipv6());
        self.steps[step].result = StepResult::Found;
        Some(Resolution::Found {
            addresses,
            source: Source::Dns,
            name: fqdn(full),
            canonical: fqdn(&canonical.to_ascii()),
        })
    }

    /// musl's `__res_msend_rc`: every query to every server at once,
    /// re-sent every `timeout/attempts`, until `timeout`.
    async fn musl_msend(&mut self, queries: &[Query], step: usize) -> Vec<Option<Reply>> {
        let conf = &self.env.conf;
        let servers = conf.nameservers.clone();
        let timeout = Duration::from_secs(u64::from(conf.timeout_secs));
        let retry_interval = timeout / conf.attempts.max(1);
        let mut answers: Vec<Option<Reply>> = vec![None; queries.len()];
        let mut socket = match UdpFanout::open(&servers).await {
            Ok(s) => s,
            Err(e) => {
                self.events
                    .push(format!("cannot open a UDP socket: {}", describe(&e)));
                return answers;
            }
        };
        let t0 = Instant::now();
        let end = t0 + timeout;
        // log index per (query, server) of the latest send
        let mut latest: Vec<Vec<usize>> = vec![vec![usize::MAX; servers.len()]; queries.len()];
        let mut all_logs: Vec<usize> = Vec::new();
        let mut next_round = t0;
        let mut servfail_retry = 0usize;
        loop {
            if answers.iter().all(Option::is_some) {
                break;
            }
            let now = Instant::now();
            if now >= end {
                break;
            }
            if now >= next_round {
                for (qi, q) in queries.iter().enumerate() {
                    if answers[qi].is_some() {
                        continue;
                    }
                    for (si, &server) in servers.iter().enumerate() {
                        let i = self.log_sent(q, server, Transport::Udp, step);
                        all_logs.push(i);
                        latest[qi][si] = i;
                        if let Err(e) = socket.send_to(&q.bytes, server).await {
                            let text = describe(&e);
                            self.queries[i].outcome = Outcome::Failed { error: text };
                        }
                    }
                }
                next_round = now + retry_interval;
                servfail_retry = 2 * queries.len();
            }
            let wait_until = next_round.min(end);
            let (received, from) = socket.recv_until(wait_until).await;
            let len = match received {
                Received::Message(len) => len,
                Received::TimedOut | Received::Failed(_) => continue,
            };
            let Some(from) = from else { continue };
            let Some(si) = servers.iter().position(|s| *s == from) else {
                continue;
            };
            let bytes = socket.message(len).to_vec();
            let Some(reply) = Reply::parse(&bytes) else {
                continue;
            };
            let Some(qi) = queries.iter().position(|q| q.id == reply.header.id) else {
                continue;
            };
            if answers[qi].is_some() {
                continue;
            }
            let log = latest[qi][si];
            match u16::from(reply.header.rcode) {
                rcode::NOERROR | rcode::NXDOMAIN => {}
                rcode::SERVFAIL => {
                    if log != usize::MAX {
                        self.log_reply(log, &reply, false);
                    }
                    if servfail_retry > 0 {
                        servfail_retry -= 1;
                        let i = self.log_sent(&queries[qi], from, Transport::Udp, step);
                        all_logs.push(i);
                        latest[qi][si] = i;
                        let _ = socket.send_to(&queries[qi].bytes, from).await;
                        self.events.push(format!(
                            "SERVFAIL from {from}: musl asks it again at once and never accepts a SERVFAIL"
                        ));
                    }
                    continue;
                }
                other => {
                    if log != usize::MAX {
                        self.log_reply(log, &reply, false);
                    }
                    self.events.push(format!(
                        "{} from {from}: musl ignores this answer and keeps waiting",
                        rcode_name(other)
                    ));
                    continue;
                }
            }
            if log != usize::MAX {
                self.log_reply(log, &reply, true);
            }
            if reply.header.tc {
                self.events.push(format!(
                    "truncated answer from {from}: musl fetches it again over TCP"
                ));
                let i = self.log_sent(&queries[qi], from, Transport::Tcp, step);
                all_logs.push(i);
                match tcp_once(&queries[qi], from, end).await {
                    Ok(r) => {
                        self.log_reply(i, &r, true);
                        answers[qi] = Some(r);
                    }
                    Err(e) => {
                        self.queries[i].outcome = Outcome::Failed { error: e };
                    }
                }
                continue;
            }
            answers[qi] = Some(reply);
        }
        self.log_unanswered(&all_logs, |w| Outcome::TimedOut { waited: w });
        answers
    }

    // -------------------------------------------------------------- wording

    fn unreachable_detail(&self) -> String {
        let servers: Vec<String> = self
            .env
            .conf
            .nameservers
            .iter()
            .map(|s| s.ip().to_string())
            .collect();
        let why = self
            .queries
            .iter()
            .rev()
            .find_map(|q| match &q.outcome {
                Outcome::Failed { error } => Some(error.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "unreachable".to_owned());
        format!(
            "no name server could be reached ({}: {why})",
            servers.join(", ")
        )
    }

    /// The one-line reason, from the last answer or failure seen.
    fn failure_detail(&self, herrno: HErrno) -> String {
        let tried = self.steps.len();
        let suffix = if tried > 1 {
            format!(" ({tried} names tried with the search list)")
        } else {
            String::new()
        };
        let last_answer = self.queries.iter().rev().find_map(|q| match &q.outcome {
            Outcome::Answered { rcode, used, .. } if *used => Some((rcode.clone(), q.server)),
            _ => None,
        });
        let timeouts = self
            .queries
            .iter()
            .filter(|q| matches!(q.outcome, Outcome::TimedOut { .. }))
            .count();
        match herrno {
            HErrno::TryAgain if timeouts > 0 => {
                let servers: Vec<String> = self
                    .env
                    .conf
                    .nameservers
                    .iter()
                    .map(|s| s.ip().to_string())
                    .collect();
                format!("no answer from {} (timed out){suffix}", servers.join(", "))
            }
            HErrno::NoData => match last_answer {
                Some((_, server)) => {
                    format!("no address records (NODATA) from {}{suffix}", server.ip())
                }
                None => format!("no address records{suffix}"),
            },
            _ => match last_answer {
                Some((rcode, server)) => format!("{rcode} from {}{suffix}", server.ip()),
                None => match self.steps.last().map(|s| &s.result) {
                    Some(StepResult::Invalid(why)) => why.clone(),
                    _ => format!("{}{suffix}", herrno.name()),
                },
            },
        }
    }
}

impl QueryResult {
    /// `res_mkquery` failed: NO_RECOVERY without a query.
    fn invalid() -> QueryResult {
        QueryResult {
            found: false,
            herrno: HErrno::NoRecovery,
            unreachable: false,
            timed_out: false,
            first_rcode: 0,
            replies: Vec::new(),
        }
    }
}

/// The first buffer getaddrinfo gives nss_dns (a 1024-byte scratch_buffer).
const GLIBC_GAI_BUFFER: usize = 1024;

/// What nss_dns's `gaih_getanswer` puts in that buffer: the canonical name
/// (NUL-terminated, 8-byte aligned) and one 40-byte `struct
/// gaih_addrtuple` per address.
fn tuple_bytes(canonical: &str, addresses: usize) -> usize {
    let name = canonical.trim_end_matches('.').len() + 1;
    name.div_ceil(8) * 8 + 40 * addresses
}

/// glibc's `__res_iclose`: every server's UDP socket closed.
fn close_all(sockets: &mut [Option<UdpChannel>]) {
    for s in sockets {
        *s = None;
    }
}

/// One query over TCP (musl's truncation fallback).
async fn tcp_once(query: &Query, server: SocketAddr, deadline: Instant) -> Result<Reply, String> {
    let mut channel = TcpChannel::connect(server, deadline)
        .await
        .map_err(|e| describe(&e))?;
    channel
        .send(&[&query.bytes])
        .await
        .map_err(|e| describe(&e))?;
    loop {
        match channel.recv_until(deadline).await {
            Received::Message(len) => {
                if let Some(r) = Reply::parse(channel.message(len))
                    && r.header.id == query.id
                {
                    return Ok(r);
                }
            }
            Received::TimedOut => return Err("timed out".to_owned()),
            Received::Failed(e) => return Err(describe(&e)),
        }
    }
}

/// `__res_context_query`'s verdict on the answer buffers.
fn analyse(b: &Buffers, two: bool) -> (HErrno, bool) {
    let view = |r: &Option<Reply>| {
        r.as_ref()
            .map_or((0u8, 0u16), |r| (r.header.rcode, r.header.ancount))
    };
    let mut hp = view(&b.first);
    let mut hp2 = hp;
    if two && b.second_len >= super::wire::HEADER_LEN {
        hp2 = view(&b.second);
        if b.first_len < super::wire::HEADER_LEN {
            hp = hp2;
        }
    }
    let usable = b.first_len > 0 || b.second_len > 0;
    let positive = |h: (u8, u16)| h.0 == 0 && h.1 != 0;
    if !positive(hp) && !positive(hp2) {
        let code = if hp.0 == 0 { hp2.0 } else { hp.0 };
        let herrno = match u16::from(code) {
            rcode::NXDOMAIN => HErrno::HostNotFound,
            rcode::SERVFAIL => HErrno::TryAgain,
            rcode::NOERROR => HErrno::NoData,
            _ => HErrno::NoRecovery,
        };
        return (herrno, false);
    }
    (HErrno::HostNotFound, usable)
}

fn not_found(error: &str, detail: String) -> Resolution {
    Resolution::NotFound {
        error: error.to_owned(),
        detail,
    }
}

/// `name` with exactly one trailing dot.
pub fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}
