//! Host names to addresses for `nc` (and `paping`), never through libc:
//! the static agent has no NSS, so names go to the agent's own resolver
//! (the pod's /etc/hosts and resolv.conf, as the pod's libc would).
//!
//! Numeric addresses pass through untouched, and `-n` forbids anything else,
//! as netcat's `AI_NUMERICHOST` does. Errors keep netcat's opening
//! (`getaddrinfo for host "H" port P: ...`) so scripts that grep for it work.

use std::net::IpAddr;

pub use crate::dns::Family;

/// The addresses of `host`, in the order to try them. Err is the reason,
/// one line, for the caller to put after its own words.
pub async fn resolve(
    host: &str,
    family: Family,
    numeric_only: bool,
) -> Result<Vec<IpAddr>, String> {
    if let Some(addr) = crate::dns::numeric(host) {
        if !family.admits(addr) {
            let flag = if family == Family::V4 { "-4" } else { "-6" };
            return Err(format!(
                "Address family for hostname not supported; drop {flag} or give an address of that family"
            ));
        }
        return Ok(vec![addr]);
    }
    if numeric_only {
        return Err(
            "not a numeric address and -n forbids name lookups; drop -n or give an IP address"
                .into(),
        );
    }
    lookup(host, family).await
}

/// netcat's words around a failed lookup, for `nc`:
/// `getaddrinfo for host "H" port P: REASON`.
pub fn netcat_message(host: &str, port: u16, reason: &str) -> String {
    // The resolver names the host itself; netcat's opening already does.
    let prefix = format!("cannot resolve \"{host}\": ");
    let reason = reason.strip_prefix(&prefix).unwrap_or(reason);
    format!("getaddrinfo for host \"{host}\" port {port}: {reason}")
}

/// A name through the agent's DNS resolver (/etc/hosts, then DNS per
/// resolv.conf with its search list, as glibc in the pod would).
async fn lookup(name: &str, family: Family) -> Result<Vec<IpAddr>, String> {
    let addrs = crate::dns::resolve_host(name, family).await?;
    if addrs.is_empty() {
        return Err(format!("cannot resolve \"{name}\": no address found"));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn literals_pass_through_and_respect_the_family() {
        assert_eq!(
            run(resolve("198.51.100.1", Family::Any, false)),
            Ok(vec!["198.51.100.1".parse().unwrap()])
        );
        assert_eq!(
            run(resolve("fd42::1", Family::V6, true)),
            Ok(vec!["fd42::1".parse().unwrap()])
        );
        let err = run(resolve("fd42::1", Family::V4, false)).unwrap_err();
        assert!(
            err.starts_with("Address family for hostname not supported; drop -4"),
            "{err}"
        );
        let err = run(resolve("localhost", Family::Any, true)).unwrap_err();
        assert!(err.contains("-n forbids name lookups"), "{err}");
        assert_eq!(
            run(resolve("[fd42::1]", Family::Any, true)),
            Ok(vec!["fd42::1".parse().unwrap()])
        );
    }

    #[test]
    fn netcat_words_around_resolver_errors() {
        assert_eq!(
            netcat_message(
                "nx.test",
                80,
                "cannot resolve \"nx.test\": NXDOMAIN from 198.51.100.53"
            ),
            "getaddrinfo for host \"nx.test\" port 80: NXDOMAIN from 198.51.100.53"
        );
        assert_eq!(
            netcat_message("h", 1, "other words"),
            "getaddrinfo for host \"h\" port 1: other words"
        );
    }
}
