//! The order `getaddrinfo` hands addresses to a program: destination
//! address selection (RFC 3484, revised by RFC 6724) as glibc 2.36 and musl
//! 1.2 implement it. It decides which address `nc localhost 8080` tries
//! first (`::1` before `127.0.0.1`: a server listening on IPv4 only shows
//! up as a refused `::1` first), and which of a dual-stack service's
//! addresses a client really uses.
//!
//! Each destination is probed as the libcs do: a UDP socket `connect()`ed
//! to it (which sends nothing) tells whether there is a route and which
//! source address the kernel would pick. Then the rules, in order, each
//! deciding only when the earlier ones tie:
//! 1. usable destinations (a route exists) first;
//! 2. destinations whose scope equals their source's first;
//! 5. destinations whose label equals their source's first;
//! 6. higher precedence first;
//! 8. smaller scope first;
//! 9. longer matching prefix with the source first;
//! 10. otherwise the order the lookup produced.
//!
//! The libcs differ in their tables and in rule 9. glibc keeps RFC 3484's
//! precedences (IPv6 40, IPv4 10: an ULA fd42::1 comes before any IPv4
//! address) and scopes 127/8 and 169.254/16 as link-local; for IPv4 its
//! rule 9 only counts prefixes inside the source's subnet (from the
//! interface's netmask), so addresses on the pod's own subnet come first. musl uses RFC 6724's table (IPv4 35 above ULA 3),
//! compares prefixes for IPv6 only, and does not sort at all when every
//! address is IPv4. Rules 3, 4 and 7 (deprecated, home and temporary
//! addresses) need interface flags neither libc sees in a pod: skipped.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};

use super::Libc;

/// Sorts `addrs` in place into the order `libc`'s getaddrinfo returns.
pub fn sort(addrs: &mut [IpAddr], libc: Libc) {
    if addrs.len() < 2 || (libc == Libc::Musl && addrs.iter().all(IpAddr::is_ipv4)) {
        return;
    }
    let netmasks = interface_prefixes();
    let keyed: Vec<Candidate> = addrs
        .iter()
        .map(|&dest| Candidate::new(dest, route_source(dest), &netmasks))
        .collect();
    let mut order: Vec<usize> = (0..keyed.len()).collect();
    // A stable sort: rule 10 is the original order.
    order.sort_by(|&a, &b| compare(&keyed[a], &keyed[b], libc));
    let sorted: Vec<IpAddr> = order.iter().map(|&i| keyed[i].dest).collect();
    addrs.copy_from_slice(&sorted);
}

/// One destination with what the rules look at.
struct Candidate {
    dest: IpAddr,
    /// The source the kernel would use, and its interface prefix length;
    /// `None`: no route (rule 1).
    source: Option<(IpAddr, u8)>,
}

impl Candidate {
    fn new(dest: IpAddr, source: Option<IpAddr>, prefixes: &[(IpAddr, u8)]) -> Candidate {
        let source = source.map(|s| {
            let len = prefixes
                .iter()
                .find(|(addr, _)| *addr == s)
                .map_or(if s.is_ipv4() { 32 } else { 128 }, |&(_, len)| len);
            (s, len)
        });
        Candidate { dest, source }
    }
}

/// Less means "comes first".
fn compare(a: &Candidate, b: &Candidate, libc: Libc) -> Ordering {
    // Rule 1: usable destinations first.
    let (Some((a_src, a_len)), Some((b_src, b_len))) = (a.source, b.source) else {
        return b.source.is_some().cmp(&a.source.is_some());
    };
    let (a_dst, b_dst) = (mapped(a.dest), mapped(b.dest));
    let (a_src6, b_src6) = (mapped(a_src), mapped(b_src));
    let (a_policy, b_policy) = (policy(&a_dst, libc), policy(&b_dst, libc));
    // Rule 2: matching scope.
    let a_scope = scope(&a_dst, libc);
    let b_scope = scope(&b_dst, libc);
    let rule2 = (b_scope == scope(&b_src6, libc)).cmp(&(a_scope == scope(&a_src6, libc)));
    // Rule 5: matching label.
    let rule5 = (b_policy.label == policy(&b_src6, libc).label)
        .cmp(&(a_policy.label == policy(&a_src6, libc).label));
    // Rule 6: higher precedence.
    let rule6 = b_policy.precedence.cmp(&a_policy.precedence);
    // Rule 8: smaller scope.
    let rule8 = a_scope.cmp(&b_scope);
    // Rule 9: longest matching prefix.
    let rule9 = match libc {
        Libc::Glibc if a.dest.is_ipv4() && b.dest.is_ipv4() => {
            glibc_v4_match(b.dest, b_src, b_len).cmp(&glibc_v4_match(a.dest, a_src, a_len))
        }
        Libc::Glibc if a.dest.is_ipv6() && b.dest.is_ipv6() => {
            common_prefix(&b_dst, &b_src6).cmp(&common_prefix(&a_dst, &a_src6))
        }
        Libc::Musl => musl_prefix(b.dest, b_src).cmp(&musl_prefix(a.dest, a_src)),
        Libc::Glibc => Ordering::Equal,
    };
    rule2.then(rule5).then(rule6).then(rule8).then(rule9)
}

/// An IPv4 address as the tables see it: `::ffff:a.b.c.d`.
fn mapped(addr: IpAddr) -> Ipv6Addr {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// RFC 4291 scopes: 2 link-local, 5 site-local, 14 global.
fn scope(addr: &Ipv6Addr, libc: Libc) -> u8 {
    let o = addr.octets();
    if o[0] == 0xff {
        return o[1] & 0x0f;
    }
    if (o[0] == 0xfe && o[1] & 0xc0 == 0x80) || *addr == Ipv6Addr::LOCALHOST {
        return 2;
    }
    if o[0] == 0xfe && o[1] & 0xc0 == 0xc0 {
        return 5;
    }
    if libc == Libc::Glibc
        && let Some(v4) = addr.to_ipv4_mapped()
        && (v4.is_loopback() || v4.is_link_local())
    {
        return 2;
    }
    14
}

#[derive(Clone, Copy)]
struct Policy {
    precedence: u8,
    label: u8,
}

/// The default policy table entry for `addr`: the longest prefix that
/// matches wins (the tables are listed longest first).
fn policy(addr: &Ipv6Addr, libc: Libc) -> Policy {
    // (prefix, length, precedence, label)
    const GLIBC: &[(u128, u8, u8, u8)] = &[
        (1, 128, 50, 0),            // ::1
        (0xffff << 32, 96, 10, 4),  // ::ffff:0:0/96, IPv4
        (0, 96, 20, 3),             // ::/96, IPv4-compatible
        (0x2001 << 112, 32, 40, 7), // 2001::/32, Teredo
        (0x2002 << 112, 16, 30, 2), // 2002::/16, 6to4
        (0xfec0 << 112, 10, 40, 5), // fec0::/10, site-local
        (0xfc00 << 112, 7, 40, 6),  // fc00::/7, ULA
        (0, 0, 40, 1),              // ::/0
    ];
    const MUSL: &[(u128, u8, u8, u8)] = &[
        (1, 128, 50, 0),            // ::1
        (0xffff << 32, 96, 35, 4),  // ::ffff:0:0/96, IPv4
        (0, 96, 1, 3),              // ::/96
        (0x2001 << 112, 32, 5, 5),  // 2001::/32, Teredo
        (0x2002 << 112, 16, 30, 2), // 2002::/16, 6to4
        (0xfec0 << 112, 10, 1, 11), // fec0::/10
        (0x3ffe << 112, 16, 1, 12), // 3ffe::/16, 6bone
        (0xfc00 << 112, 7, 3, 13),  // fc00::/7, ULA
        (0, 0, 40, 1),              // ::/0
    ];
    let table = match libc {
        Libc::Glibc => GLIBC,
        Libc::Musl => MUSL,
    };
    let bits = u128::from_be_bytes(addr.octets());
    let mut best: Option<(u8, Policy)> = None;
    for &(prefix, len, precedence, label) in table {
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len))
        };
        if bits & mask == prefix & mask && best.is_none_or(|(l, _)| len > l) {
            best = Some((len, Policy { precedence, label }));
        }
    }
    best.map_or(
        Policy {
            precedence: 40,
            label: 1,
        },
        |(_, p)| p,
    )
}

fn common_prefix(a: &Ipv6Addr, b: &Ipv6Addr) -> u32 {
    (u128::from_be_bytes(a.octets()) ^ u128::from_be_bytes(b.octets())).leading_zeros()
}

/// glibc's IPv4 rule 9: the bits destination and source have in common,
/// counted only inside the source's subnet (0 outside it).
fn glibc_v4_match(dest: IpAddr, source: IpAddr, prefix_len: u8) -> u32 {
    let (IpAddr::V4(d), IpAddr::V4(s)) = (dest, source) else {
        return 0;
    };
    let (d, s) = (u32::from(d), u32::from(s));
    let mask = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    };
    if d & mask == s & mask {
        (d ^ s).leading_zeros()
    } else {
        0
    }
}

/// musl's rule 9: the common prefix, for IPv6 destinations only.
fn musl_prefix(dest: IpAddr, source: IpAddr) -> u32 {
    match (dest, source) {
        (IpAddr::V6(d), IpAddr::V6(s)) => common_prefix(&d, &s),
        _ => 0,
    }
}

/// The source address the kernel would use towards `dest`, if it has a
/// route: what `connect()` on a UDP socket and `getsockname()` tell, as
/// both libcs do it. No packet is sent.
fn route_source(dest: IpAddr) -> Option<IpAddr> {
    let dest = SocketAddr::new(dest, 9);
    let socket = UdpSocket::bind(super::transport::unspecified_for(dest)).ok()?;
    socket.connect(dest).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// The addresses of this network namespace's interfaces with their prefix
/// lengths (glibc's rule 9 needs the source's netmask).
fn interface_prefixes() -> Vec<(IpAddr, u8)> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|ifa| {
            let addr = ifa.address?;
            let mask = ifa.netmask?;
            if let (Some(a), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
                return Some((IpAddr::V4(a.ip()), u32::from(m.ip()).count_ones() as u8));
            }
            let (a, m) = (addr.as_sockaddr_in6()?, mask.as_sockaddr_in6()?);
            let len = u128::from_be_bytes(m.ip().octets()).count_ones() as u8;
            Some((IpAddr::V6(a.ip()), len))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn tables() {
        let g = |s: &str| policy(&mapped(s.parse().unwrap()), Libc::Glibc).precedence;
        let m = |s: &str| policy(&mapped(s.parse().unwrap()), Libc::Musl).precedence;
        assert_eq!(
            (g("::1"), g("198.51.100.1"), g("fd42::1"), g("2002::1")),
            (50, 10, 40, 30)
        );
        assert_eq!(
            (m("::1"), m("198.51.100.1"), m("fd42::1"), m("2001::1")),
            (50, 35, 3, 5)
        );
        assert_eq!(policy(&v6("fd42::1"), Libc::Musl).label, 13);
        assert_eq!(scope(&mapped("127.0.0.1".parse().unwrap()), Libc::Glibc), 2);
        assert_eq!(scope(&mapped("127.0.0.1".parse().unwrap()), Libc::Musl), 14);
        assert_eq!(scope(&v6("fe80::1"), Libc::Musl), 2);
    }

    #[test]
    fn rules_in_order() {
        let c = |dest: &str, src: Option<(&str, u8)>| Candidate {
            dest: dest.parse().unwrap(),
            source: src.map(|(s, l)| (s.parse().unwrap(), l)),
        };
        // Rule 1: a routable destination before an unroutable one.
        let routed = c("198.51.100.9", Some(("198.51.100.2", 24)));
        let unrouted = c("fd42::9", None);
        assert_eq!(compare(&routed, &unrouted, Libc::Glibc), Ordering::Less);
        // Rule 6: glibc puts an ULA before IPv4, musl the other way round.
        let ula = c("fd42::9", Some(("fd42::2", 64)));
        assert_eq!(compare(&ula, &routed, Libc::Glibc), Ordering::Less);
        assert_eq!(compare(&ula, &routed, Libc::Musl), Ordering::Greater);
        // glibc's rule 9 for IPv4: inside the source's subnet first.
        let outside = c("203.0.113.9", Some(("198.51.100.2", 24)));
        assert_eq!(compare(&routed, &outside, Libc::Glibc), Ordering::Less);
        assert_eq!(compare(&routed, &outside, Libc::Musl), Ordering::Equal);
    }

    #[test]
    fn musl_leaves_ipv4_alone() {
        let mut addrs: Vec<IpAddr> =
            vec!["203.0.113.9".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        sort(&mut addrs, Libc::Musl);
        assert_eq!(addrs[0], "203.0.113.9".parse::<IpAddr>().unwrap());
    }
}
