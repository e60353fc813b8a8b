//! `/etc/hosts` and the `hosts:` line of `/etc/nsswitch.conf`: the parts of
//! name lookup that happen before (or instead of) DNS.
//!
//! glibc consults the sources of the `hosts:` line in order; without an
//! nsswitch.conf (common in distroless images) its built-in default is
//! `dns [!UNAVAIL=return] files`, so /etc/hosts is only read when DNS is
//! unreachable. musl has no nsswitch and always reads /etc/hosts first.
//! Names match case-insensitively and exactly as given (`localhost.` does
//! not match `localhost`), as in glibc's `nss_files`.

use std::net::IpAddr;

use super::Family;

pub const HOSTS: &str = "/etc/hosts";
pub const NSSWITCH: &str = "/etc/nsswitch.conf";

/// One address line: the address and every name on it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    addr: IpAddr,
    names: Vec<String>,
}

/// The parsed hosts file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hosts {
    entries: Vec<Entry>,
}

impl Hosts {
    /// Reads `path`; a missing or unreadable file is an empty table (both
    /// libraries then simply find nothing there).
    pub fn load(path: &str) -> Hosts {
        std::fs::read(path)
            .map(|b| Hosts::parse(&String::from_utf8_lossy(&b)))
            .unwrap_or_default()
    }

    pub fn parse(text: &str) -> Hosts {
        let entries = text
            .lines()
            .filter_map(|line| {
                let line = line.split('#').next().unwrap_or("");
                let mut words = line.split_whitespace();
                let addr = words.next()?.split('%').next()?.parse().ok()?;
                let names: Vec<String> = words.map(str::to_owned).collect();
                (!names.is_empty()).then_some(Entry { addr, names })
            })
            .collect();
        Hosts { entries }
    }

    /// Every address listed for `name` in file order, restricted to
    /// `family`.
    pub fn lookup(&self, name: &str, family: Family) -> Vec<IpAddr> {
        self.entries
            .iter()
            .filter(|e| family.admits(e.addr))
            .filter(|e| e.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .map(|e| e.addr)
            .collect()
    }
}

/// A source on the `hosts:` line that this resolver models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Files,
    Dns,
}

/// The lookup order for host names.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HostsOrder {
    pub sources: Vec<Source>,
    /// `files` is consulted only when DNS was unreachable (glibc's default
    /// `dns [!UNAVAIL=return] files` when there is no nsswitch.conf).
    pub files_only_if_dns_unavailable: bool,
    /// Where the order came from, for the explanation.
    pub origin: String,
    /// Sources on the line that we do not model (mdns4, myhostname, ...).
    pub unmodelled: Vec<String>,
}

impl HostsOrder {
    /// musl: always /etc/hosts, then DNS.
    pub fn musl() -> HostsOrder {
        HostsOrder {
            sources: vec![Source::Files, Source::Dns],
            files_only_if_dns_unavailable: false,
            origin: "musl (fixed order)".to_owned(),
            unmodelled: Vec::new(),
        }
    }

    /// glibc's order from `path`, or its built-in default when the file
    /// does not exist.
    pub fn load_glibc(path: &str) -> HostsOrder {
        match std::fs::read(path) {
            Ok(bytes) => Self::parse_glibc(&String::from_utf8_lossy(&bytes), path),
            Err(_) => HostsOrder {
                sources: vec![Source::Dns, Source::Files],
                files_only_if_dns_unavailable: true,
                origin: format!("glibc default (no {path}): dns [!UNAVAIL=return] files"),
                unmodelled: Vec::new(),
            },
        }
    }

    pub fn parse_glibc(text: &str, path: &str) -> HostsOrder {
        let line = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .find_map(|l| l.strip_prefix("hosts:"));
        let Some(line) = line else {
            return HostsOrder {
                sources: vec![Source::Dns, Source::Files],
                files_only_if_dns_unavailable: true,
                origin: format!("glibc default (no hosts: line in {path})"),
                unmodelled: Vec::new(),
            };
        };
        let mut order = HostsOrder {
            sources: Vec::new(),
            files_only_if_dns_unavailable: false,
            origin: format!("{path}: hosts:{line}"),
            unmodelled: Vec::new(),
        };
        // Drop the [STATUS=action] clauses: we only model the order.
        let mut rest = line;
        let mut words = Vec::new();
        while let Some(open) = rest.find('[') {
            words.extend(rest[..open].split_whitespace());
            rest = rest[open..].split_once(']').map_or("", |(_, after)| after);
        }
        words.extend(rest.split_whitespace());
        for word in words {
            match word {
                "files" => order.sources.push(Source::Files),
                "dns" => order.sources.push(Source::Dns),
                other => order.unmodelled.push(other.to_owned()),
            }
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lookup() {
        let h = Hosts::parse(
            "127.0.0.1 localhost\n::1 localhost ip6-localhost # comment\n\
             198.51.100.7  Db.Internal db   # the database\nbad line\n# 1.2.3.4 db\n",
        );
        let any: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(h.lookup("localhost", Family::Any), any);
        assert_eq!(h.lookup("LOCALHOST", Family::V6), vec![any[1]]);
        assert_eq!(
            h.lookup("db.internal", Family::Any),
            vec!["198.51.100.7".parse::<IpAddr>().unwrap()]
        );
        assert!(h.lookup("localhost.", Family::Any).is_empty());
        assert!(h.lookup("line", Family::Any).is_empty());
    }

    #[test]
    fn nsswitch_orders() {
        let o = HostsOrder::parse_glibc(
            "passwd: files\nhosts:  files mdns4_minimal [NOTFOUND=return] dns myhostname\n",
            "/etc/nsswitch.conf",
        );
        assert_eq!(o.sources, [Source::Files, Source::Dns]);
        assert_eq!(o.unmodelled, ["mdns4_minimal", "myhostname"]);
        let d = HostsOrder::parse_glibc("passwd: files\n", "x");
        assert_eq!(d.sources, [Source::Dns, Source::Files]);
        assert!(d.files_only_if_dns_unavailable);
    }
}
