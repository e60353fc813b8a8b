//! Fallback for inet tables whose sock_diag module the kernel lacks
//! (commonly `raw_diag`: the dump answers ENOENT), read from
//! /proc/net/{tcp,udp,raw}{,6} exactly as iproute2 falls back.
//!
//! Only what those files carry is filled in: state, queues, addresses,
//! uid and inode (no memory or TCP internals).

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::model::{Endpoint, Netid, Socket, TcpState};

pub fn read(
    netid: Netid,
    v6: bool,
    states: u32,
    emit: &mut dyn FnMut(Socket) -> io::Result<()>,
) -> io::Result<()> {
    let base = match netid {
        Netid::Tcp => "tcp",
        Netid::Udp => "udp",
        Netid::Raw => "raw",
        _ => return Ok(()),
    };
    let path = format!("/proc/net/{base}{}", if v6 { "6" } else { "" });
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        // No IPv6 in this kernel: nothing to list.
        Err(e) if v6 && e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for line in text.lines().skip(1) {
        if let Some(s) = parse_line(line, netid, v6)
            && states & (1 << s.state.0) != 0
        {
            emit(s)?;
        }
    }
    Ok(())
}

/// `sl local rem st tx:rx tr:when retr uid timeout inode ref pointer ...`
fn parse_line(line: &str, netid: Netid, v6: bool) -> Option<Socket> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let (local, local_port) = endpoint(f.get(1)?, v6)?;
    let (peer, peer_port) = endpoint(f.get(2)?, v6)?;
    let state = u8::from_str_radix(f.get(3)?, 16).ok()?;
    let (tx, rx) = f.get(4)?.split_once(':')?;
    let uid = f.get(7)?.parse().ok()?;
    let inode = f.get(9)?.parse().ok()?;
    let pointer = f
        .get(11)
        .and_then(|p| u64::from_str_radix(p, 16).ok())
        .unwrap_or(0);
    Some(Socket {
        netid,
        state: TcpState(state),
        recv_q: u32::from_str_radix(rx, 16).ok()?,
        send_q: u32::from_str_radix(tx, 16).ok()?,
        local: Endpoint::Inet {
            address: local,
            port: local_port,
            ifindex: 0,
        },
        peer: Endpoint::Inet {
            address: peer,
            port: peer_port,
            ifindex: 0,
        },
        inode,
        uid,
        cookie: pointer,
        v6only: None,
        timer: None,
        shutdown: None,
        mark: None,
        cgroup_id: None,
        skmem: None,
        congestion: None,
        tcp_info: None,
        bbr: None,
        processes: Vec::new(),
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6): each 32-bit
/// word is printed in host byte order by the kernel.
fn endpoint(text: &str, v6: bool) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok();
    let ip = if v6 {
        let mut bytes = [0u8; 16];
        for i in 0..4 {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?.to_ne_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::from(word(0)?.to_ne_bytes()))
    };
    Some((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_raw_line() {
        let line = "   1: 0100007F:0001 00000000:0000 07 00000000:00000002 00:00000000 00000000     0        0 8665 2 0000000000000000 0";
        let s = parse_line(line, Netid::Raw, false).unwrap();
        assert_eq!(
            s.local,
            Endpoint::Inet {
                address: "127.0.0.1".parse().unwrap(),
                port: 1,
                ifindex: 0
            }
        );
        assert_eq!((s.state.0, s.recv_q, s.send_q, s.inode), (7, 2, 0, 8665));
    }

    #[test]
    fn parses_v6_words() {
        let line = "   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123 1 0000000000000000 100 0 0 10 0";
        let s = parse_line(line, Netid::Tcp, true).unwrap();
        assert_eq!(
            s.local,
            Endpoint::Inet {
                address: "::1".parse().unwrap(),
                port: 22,
                ifindex: 0
            }
        );
        assert_eq!(s.state.0, TcpState::LISTEN);
    }
}
