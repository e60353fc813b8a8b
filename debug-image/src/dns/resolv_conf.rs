//! `/etc/resolv.conf` as the pod's C library reads it.
//!
//! glibc and musl read the same file differently, and the differences are
//! what `resolve` explains, so parsing takes the [`Libc`] whose rules apply:
//!
//! | | glibc 2.36 (`res_init.c`) | musl 1.2 (`resolvconf.c`) |
//! |---|---|---|
//! | `nameserver` | first 3, port 53 | first 3, port 53 |
//! | no `nameserver` | 127.0.0.1 | 127.0.0.1 |
//! | `search`/`domain` | last line wins, any length | last line wins, 255 bytes |
//! | `ndots` | default 1, max 15 | default 1, max 15 |
//! | `timeout` | default 5 s, max 30 | default 5 s, max 60 |
//! | `attempts` | default 2, max 5 | default 2, max 10 |
//! | `rotate`, `single-request(-reopen)`, `use-vc`, `edns0`, `no-aaaa`, `trust-ad`, `no-tld-query` | honoured | ignored |
//!
//! Comments start with `#` or `;` at the beginning of a line, as in both
//! libraries. Options neither library knows are kept in
//! [`ResolvConf::ignored`] so the explanation can name them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Which C library's stub resolver to model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Libc {
    /// GNU libc (Debian, Ubuntu, RHEL, distroless/base): the default.
    Glibc,
    /// musl (Alpine, distroless/static with Go's cgo off uses neither).
    Musl,
}

impl Libc {
    pub fn name(self) -> &'static str {
        match self {
            Libc::Glibc => "glibc",
            Libc::Musl => "musl",
        }
    }
}

/// The file every tool reads unless told otherwise.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Both libraries accept at most this many `nameserver` lines (MAXNS).
pub const MAX_NAMESERVERS: usize = 3;

/// The resolver configuration in effect for one C library.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ResolvConf {
    /// Servers in file order, at most [`MAX_NAMESERVERS`].
    pub nameservers: Vec<SocketAddr>,
    /// `nameserver` lines beyond the third, which the library ignores.
    pub extra_nameservers: Vec<String>,
    /// True when the file named no usable server and the library fell back
    /// to 127.0.0.1 (almost always a broken pod DNS setup).
    pub nameserver_defaulted: bool,
    /// The search list, without trailing dots.
    pub search: Vec<String>,
    /// Whether a `search` or `domain` line set it (glibc otherwise uses
    /// the domain part of the host name).
    pub search_configured: bool,
    pub ndots: u32,
    /// Per-server timeout (`timeout:`), in whole seconds as in the file.
    pub timeout_secs: u32,
    pub attempts: u32,
    pub rotate: bool,
    pub single_request: bool,
    pub single_request_reopen: bool,
    pub use_vc: bool,
    pub edns0: bool,
    pub no_aaaa: bool,
    pub trust_ad: bool,
    pub no_tld_query: bool,
    /// Options and lines this library does not understand (or ignores),
    /// word for word.
    pub ignored: Vec<String>,
}

impl ResolvConf {
    /// What each library uses when the file is empty or missing.
    pub fn defaults() -> ResolvConf {
        ResolvConf {
            nameservers: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)],
            extra_nameservers: Vec::new(),
            nameserver_defaulted: true,
            search: Vec::new(),
            search_configured: false,
            ndots: 1,
            timeout_secs: 5,
            attempts: 2,
            rotate: false,
            single_request: false,
            single_request_reopen: false,
            use_vc: false,
            edns0: false,
            no_aaaa: false,
            trust_ad: false,
            no_tld_query: false,
            ignored: Vec::new(),
        }
    }

    /// Reads `path` for `libc`. A missing file gives the library's
    /// defaults (as the libraries do); any other read error is reported.
    pub fn load(path: &str, libc: Libc) -> Result<ResolvConf, String> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Self::parse(&String::from_utf8_lossy(&bytes), libc)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut conf = Self::defaults();
                conf.ignored.push(format!("{path} does not exist"));
                Ok(conf)
            }
            Err(e) => Err(format!("cannot read {path}: {e}")),
        }
    }

    /// Parses the text of a resolv.conf with `libc`'s rules.
    pub fn parse(text: &str, libc: Libc) -> ResolvConf {
        let mut conf = Self::defaults();
        conf.nameservers.clear();
        let mut search: Option<Vec<String>> = None;
        for line in text.lines() {
            if line.starts_with(['#', ';']) {
                continue;
            }
            let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword {
                "nameserver" => {
                    let Some(addr) = words.next() else { continue };
                    match parse_nameserver(addr) {
                        Some(ip) if conf.nameservers.len() < MAX_NAMESERVERS => {
                            conf.nameservers.push(SocketAddr::new(ip, 53));
                        }
                        Some(_) => conf.extra_nameservers.push(addr.to_owned()),
                        None => conf.ignored.push(format!("nameserver {addr}")),
                    }
                }
                "domain" => {
                    // A `domain` line replaces the search list with itself.
                    search = words.next().map(|d| vec![d.to_owned()]);
                }
                "search" => {
                    let list: Vec<String> = words.map(str::to_owned).collect();
                    search = Some(list);
                    if libc == Libc::Musl {
                        // musl copies the rest of the line into 256 bytes.
                        let rest = line["search".len()..].trim_start();
                        if rest.len() > 255 {
                            let kept = musl_truncated_search(rest);
                            conf.ignored.push(format!(
                                "search list beyond 255 bytes (musl keeps {} domains)",
                                kept.len()
                            ));
                            search = Some(kept);
                        }
                    }
                }
                "options" => {
                    for option in words {
                        conf.apply_option(option, libc);
                    }
                }
                "sortlist" => {}
                other => conf.ignored.push(other.to_owned()),
            }
        }
        if let Some(list) = search {
            conf.search_configured = true;
            conf.search = list
                .into_iter()
                .map(|d| d.strip_suffix('.').unwrap_or(&d).to_owned())
                .collect();
        }
        conf.nameserver_defaulted = conf.nameservers.is_empty();
        if conf.nameserver_defaulted {
            conf.nameservers
                .push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        }
        conf
    }

    /// One word of an `options` line.
    fn apply_option(&mut self, option: &str, libc: Libc) {
        let (max_timeout, max_attempts) = match libc {
            Libc::Glibc => (30, 5),
            Libc::Musl => (60, 10),
        };
        if let Some(v) = option.strip_prefix("ndots:") {
            self.ndots = leading_number(v).min(15);
        } else if let Some(v) = option.strip_prefix("timeout:") {
            // glibc: "timeout:0" still waits a second per server.
            self.timeout_secs = leading_number(v).clamp(1, max_timeout);
        } else if let Some(v) = option.strip_prefix("attempts:") {
            self.attempts = leading_number(v).clamp(1, max_attempts);
        } else if libc == Libc::Musl {
            self.ignored.push(format!("options {option}"));
        } else {
            match option {
                "rotate" => self.rotate = true,
                "single-request" => self.single_request = true,
                "single-request-reopen" => self.single_request_reopen = true,
                "use-vc" => self.use_vc = true,
                "edns0" => self.edns0 = true,
                "no-aaaa" => self.no_aaaa = true,
                "trust-ad" => self.trust_ad = true,
                "no-tld-query" => self.no_tld_query = true,
                "debug" | "inet6" | "ip6-bytestring" | "ip6-dotint" | "no-ip6-dotint"
                | "no-check-names" | "no-reload" | "insecure1" | "insecure2" => {}
                other => self.ignored.push(format!("options {other}")),
            }
        }
    }

    /// glibc's default search list when the file has none: the domain
    /// part of the host name (`gethostname`), if it has one.
    pub fn default_search_from_hostname(&mut self, hostname: &str) {
        if self.search_configured {
            return;
        }
        if let Some((_, domain)) = hostname.trim().split_once('.')
            && !domain.is_empty()
        {
            self.search = vec![domain.trim_end_matches('.').to_owned()];
        }
    }

    /// The per-server wait, as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.timeout_secs))
    }
}

/// The numeric value at the start of an option argument, as `atoi` reads
/// it ("5", "5x" → 5; "" or "x" → 0).
fn leading_number(v: &str) -> u32 {
    let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or(if digits.is_empty() { 0 } else { u32::MAX })
}

/// A `nameserver` address: IPv4, or IPv6 with an optional `%scope` (which
/// we cannot apply without interface lookups, so it is dropped).
fn parse_nameserver(text: &str) -> Option<IpAddr> {
    let addr = text.split('%').next()?;
    addr.parse().ok()
}

/// The domains musl keeps when the search line is longer than its 256-byte
/// buffer: whole words within the first 255 bytes.
fn musl_truncated_search(rest: &str) -> Vec<String> {
    let mut end = 255.min(rest.len());
    while !rest.is_char_boundary(end) {
        end -= 1;
    }
    let cut = &rest[..end];
    let complete = rest
        .as_bytes()
        .get(255)
        .is_none_or(|b| b.is_ascii_whitespace());
    let mut words: Vec<String> = cut.split_whitespace().map(str::to_owned).collect();
    if !complete {
        words.pop();
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "search default.svc.cluster.local svc.cluster.local cluster.local\n\
                       nameserver 10.96.0.10\n\
                       options ndots:5\n";

    #[test]
    fn pod_resolv_conf() {
        let c = ResolvConf::parse(POD, Libc::Glibc);
        assert_eq!(c.nameservers, vec!["10.96.0.10:53".parse().unwrap()]);
        assert_eq!(
            c.search,
            [
                "default.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!((c.ndots, c.timeout_secs, c.attempts), (5, 5, 2));
        assert!(!c.nameserver_defaulted);
    }

    #[test]
    fn limits_and_last_search_line_win() {
        let text = "nameserver 198.51.100.1\nnameserver fd42::1\nnameserver 198.51.100.2\n\
                    nameserver 198.51.100.3\nsearch a.example b.example\ndomain c.example\n\
                    options ndots:40 timeout:45 attempts:9 rotate edns0 bogus\n# nameserver 1.1.1.1\n";
        let g = ResolvConf::parse(text, Libc::Glibc);
        assert_eq!(g.nameservers.len(), 3);
        assert_eq!(g.extra_nameservers, ["198.51.100.3"]);
        assert_eq!(g.search, ["c.example"]);
        assert_eq!((g.ndots, g.timeout_secs, g.attempts), (15, 30, 5));
        assert!(g.rotate && g.edns0);
        assert_eq!(g.ignored, ["options bogus"]);
        let m = ResolvConf::parse(text, Libc::Musl);
        assert_eq!((m.ndots, m.timeout_secs, m.attempts), (15, 45, 9));
        assert!(!m.rotate);
        assert!(m.ignored.contains(&"options rotate".to_owned()));
    }

    #[test]
    fn glibc_searches_the_hostname_domain_without_a_search_line() {
        let mut c = ResolvConf::parse("nameserver 198.51.100.53\n", Libc::Glibc);
        c.default_search_from_hostname("build-7.ci.example\n");
        assert_eq!(c.search, ["ci.example"]);
        let mut c = ResolvConf::parse("search a.example\n", Libc::Glibc);
        c.default_search_from_hostname("build-7.ci.example");
        assert_eq!(c.search, ["a.example"]);
    }

    #[test]
    fn no_nameserver_means_loopback() {
        let c = ResolvConf::parse("search x\n", Libc::Glibc);
        assert!(c.nameserver_defaulted);
        assert_eq!(c.nameservers, vec!["127.0.0.1:53".parse().unwrap()]);
    }

    #[test]
    fn trailing_dots_in_search_are_dropped_and_numbers_read_like_atoi() {
        let c = ResolvConf::parse(
            "search cluster.local.\noptions ndots:2x timeout:0\n",
            Libc::Glibc,
        );
        assert_eq!(c.search, ["cluster.local"]);
        assert_eq!((c.ndots, c.timeout_secs), (2, 1));
    }

    #[test]
    fn musl_keeps_255_bytes_of_search() {
        let long: Vec<String> = (0..30).map(|i| format!("d{i:02}.example.com")).collect();
        let text = format!("search {}\n", long.join(" "));
        let m = ResolvConf::parse(&text, Libc::Musl);
        assert!(m.search.len() < 30 && !m.search.is_empty());
        assert!(m.search.join(" ").len() <= 255);
        assert_eq!(ResolvConf::parse(&text, Libc::Glibc).search.len(), 30);
    }
}
