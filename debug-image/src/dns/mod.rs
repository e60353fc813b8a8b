//! Name resolution for the agent, without libc: the pod's resolver
//! configuration, its hosts file, and a stub resolver that sends the same
//! queries glibc's or musl's would.
//!
//! The agent is a static binary with no working `getaddrinfo` (and must not
//! use one: it would read the agent image's files, not the pod's), so every
//! tool that takes a host name resolves it here:
//!
//! ```ignore
//! let addrs = crate::dns::resolve_host("web.default", crate::dns::Family::Any).await?;
//! ```
//!
//! - [`resolv_conf`]: `/etc/resolv.conf` with glibc's or musl's limits.
//! - [`hosts`]: `/etc/hosts` and nsswitch's `hosts:` order.
//! - [`wire`]: queries and replies (hickory-proto), header and question checks.
//! - [`transport`]: UDP/TCP exchanges with deadlines.
//! - [`stub`]: the search-list algorithms of glibc 2.36 (`res_query.c`,
//!   `res_send.c`) and musl 1.2 (`lookup_name.c`, `res_msend.c`), recording
//!   every query, for `resolve` and for [`resolve_host`].
//! - [`order`]: the order getaddrinfo returns the addresses in (RFC
//!   3484/6724 destination address selection, each libc's way).
//! - [`types`] and [`present`]: record type names and bind's text form of
//!   records, shared by `dig` and `resolve`.

pub mod hosts;
pub mod order;
pub mod present;
pub mod resolv_conf;
pub mod stub;
pub mod transport;
pub mod types;
pub mod wire;

use std::net::IpAddr;

pub use resolv_conf::Libc;

/// Which address families a lookup wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4 and IPv6 (A and AAAA), as `getaddrinfo` with `AF_UNSPEC`.
    Any,
    V4,
    V6,
}

impl Family {
    /// Whether an address of this family is wanted.
    pub fn admits(self, addr: IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => addr.is_ipv4(),
            Family::V6 => addr.is_ipv6(),
        }
    }
}

/// Resolves a host name the way the pod's own programs would (glibc's
/// rules, /etc/hosts first), for tools that connect to it.
///
/// A numeric address (`198.51.100.7`, `fd42::1`, `[fd42::1]`) is returned
/// as-is without any query. Otherwise /etc/hosts, then DNS per
/// /etc/resolv.conf with search/ndots. The error is one user-facing line,
/// e.g. `cannot resolve "x": NXDOMAIN from 198.51.100.53`.
pub async fn resolve_host(name: &str, family: Family) -> Result<Vec<IpAddr>, String> {
    if let Some(addr) = numeric(name) {
        return if family.admits(addr) {
            Ok(vec![addr])
        } else {
            let (is, flag) = if addr.is_ipv4() {
                ("an IPv4", "-6")
            } else {
                ("an IPv6", "-4")
            };
            Err(format!(
                "\"{name}\" is {is} address but {flag} was given; drop {flag} or give a matching address"
            ))
        };
    }
    let env = stub::Environment::load_for_tools()?;
    let lookup = stub::lookup(&env, name, family).await;
    lookup.into_addresses()
}

/// A literal address, with or without IPv6 brackets.
pub fn numeric(name: &str) -> Option<IpAddr> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    bare.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_addresses_need_no_lookup() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        let v6: IpAddr = "fd42::1".parse().unwrap();
        assert_eq!(
            rt.block_on(resolve_host("198.51.100.7", Family::Any)),
            Ok(vec![v4])
        );
        assert_eq!(
            rt.block_on(resolve_host("[fd42::1]", Family::V6)),
            Ok(vec![v6])
        );
        let e = rt
            .block_on(resolve_host("fd42::1", Family::V4))
            .unwrap_err();
        assert!(e.contains("IPv6") && !e.contains('\n'), "{e}");
    }
}
