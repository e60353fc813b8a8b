//! Port and protocol names for `ss` without `-n`, from /etc/services
//! ([`crate::services`]) and /etc/protocols when the image has them (a
//! scratch image does not: then every port prints as a number, as with
//! `-n`), with iproute2's rule of no names inside the ephemeral range.
//!
//! Parsed directly rather than through libc, which a static binary cannot
//! use reliably (NSS).

use std::collections::HashMap;
use std::fs;
use std::sync::OnceLock;

/// The service name for a port, like iproute2: none for ports inside the
/// ephemeral range (names there are noise: "socks", "cfinger").
pub fn name_by_port(port: u16, proto: &str) -> Option<&'static str> {
    let (lo, hi) = ephemeral_range();
    if (lo..=hi).contains(&port) {
        return None;
    }
    crate::services::name_by_port(port, proto)
}

/// A port named in a filter (`sport = :http`).
pub fn port_by_name(name: &str) -> Option<u16> {
    crate::services::port_by_name_any_proto(name)
}

/// The IP protocol name for a raw socket's "port" (its protocol number).
pub fn protocol_name(number: u16) -> Option<&'static str> {
    static PROTOCOLS: OnceLock<HashMap<u16, String>> = OnceLock::new();
    PROTOCOLS
        .get_or_init(|| {
            let text = fs::read_to_string("/etc/protocols").unwrap_or_default();
            text.lines()
                .filter_map(|line| {
                    let mut f = line.split('#').next()?.split_whitespace();
                    let name = f.next()?;
                    let num = f.next()?.parse::<u16>().ok()?;
                    Some((num, name.to_owned()))
                })
                .collect()
        })
        .get(&number)
        .map(String::as_str)
}

/// /proc/sys/net/ipv4/ip_local_port_range, or iproute2's fallback.
pub fn ephemeral_range() -> (u16, u16) {
    static RANGE: OnceLock<(u16, u16)> = OnceLock::new();
    *RANGE.get_or_init(|| {
        fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| {
                let mut it = t.split_whitespace().map(|n| n.parse::<u16>());
                Some((it.next()?.ok()?, it.next()?.ok()?))
            })
            .unwrap_or((1024, 4999))
    })
}
