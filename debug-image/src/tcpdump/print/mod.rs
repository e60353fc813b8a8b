//! Packets as text, the way `tcpdump -nn` (4.99) prints them: one line per
//! packet (two with `-v` for IP), the link-level header with `-e`, hex and
//! ASCII dumps with `-x`/`-X`/`-A`, timestamps per `-t` options.
//!
//! Decoded: Ethernet (VLAN tags, 802.3/LLC named), Linux cooked (`-i
//! any`), ARP/RARP, IPv4, IPv6 with extension headers, TCP (relative
//! sequence numbers per conversation, options), UDP, ICMP, ICMPv6, DNS
//! over UDP and TCP port 53. Other protocols get tcpdump's generic forms
//! (`ip-proto-47 40`, `ethertype Unknown (0x88b5), length 60:` and a hex
//! dump). Headers are read with pnet_packet's types where they fit.
//!
//! Times are UTC: the agent's image has no time zone database, and the
//! nodes of a cluster almost always run in UTC anyway.

mod dns;
mod hex;
mod icmp;
mod ip;
mod link;
mod tcp;
mod time;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use super::args::PrintOptions;
use super::filter::LinkType;
use super::savefile::Frame;

pub type Out = String;

/// What a TCP conversation started with (tcpdump's `tcp_seq_hash`).
#[derive(Clone, Copy, Debug)]
struct SeqBase {
    seq: u32,
    ack: u32,
}

pub struct Printer {
    opts: PrintOptions,
    link: LinkType,
    tcp: HashMap<tcp::ConvKey, SeqBase>,
    previous: Option<Duration>,
    first: Option<Duration>,
}

impl Printer {
    pub fn new(opts: PrintOptions, link: LinkType) -> Printer {
        Printer {
            opts,
            link,
            tcp: HashMap::new(),
            previous: None,
            first: None,
        }
    }

    /// Prints one packet, newline included.
    pub fn print(&mut self, p: &Frame<'_>, out: &mut impl Write) -> io::Result<()> {
        let mut line = String::with_capacity(160);
        time::format(self.opts.time, p.ts, self.previous, self.first, &mut line);
        self.first.get_or_insert(p.ts);
        self.previous = Some(p.ts);
        let hdrlen = match self.link {
            LinkType::Ethernet => link::ethernet(self, p.data, p.orig_len, &mut line),
            LinkType::LinuxSll => link::sll(self, p.data, p.orig_len, &mut line),
        };
        let hdrlen = hdrlen.min(p.data.len());
        if self.opts.hex > 0 {
            let from = if self.opts.hex > 1 { 0 } else { hdrlen };
            if p.data.len() > from || self.opts.hex > 1 {
                if self.opts.ascii_with_hex {
                    hex::hex_and_ascii(&p.data[from..], &mut line);
                } else {
                    hex::hex(&p.data[from..], &mut line);
                }
            }
        } else if self.opts.ascii && p.data.len() > hdrlen {
            hex::ascii(&p.data[hdrlen..], &mut line);
        }
        line.push('\n');
        out.write_all(line.as_bytes())
    }

    fn verbose(&self) -> u8 {
        self.opts.verbose
    }

    fn link_header(&self) -> bool {
        self.opts.link_header
    }
}

/// A MAC address as tcpdump prints it.
pub fn mac(b: &[u8]) -> String {
    let mut s = String::with_capacity(17);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// tcpdump's raw dump of a payload it cannot decode (`ND_DEFAULTPRINT`):
/// hex lines, as `-x` prints them.
pub fn default_print(data: &[u8], out: &mut Out) {
    hex::hex(data, out);
}

#[cfg(test)]
mod tests;
