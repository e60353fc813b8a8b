//! The packet corpus the filter compiler is checked on: ~6,000 frames built
//! byte by byte, deterministic (a fixed-seed generator), written as pcap.
//!
//! It covers what filters distinguish: Ethernet II and 802.3/LLC/SNAP
//! frames; VLAN tags (802.1Q, 802.1ad, 0x9100, stacked); ARP and RARP;
//! IPv4 with options, fragments (first, middle, last), odd header lengths;
//! IPv6 with hop-by-hop, routing, destination-options and fragment
//! headers; TCP with all 256 flag combinations; UDP (DNS, VXLAN, ...);
//! ICMP and ICMPv6 of every common type; SCTP, IGMP, PIM, VRRP, GRE, ESP,
//! AH; broadcast and multicast addresses; every length from tiny to 1514;
//! packets cut short at every layer (captured length below the wire
//! length) and garbage. Each packet's index is its timestamp's seconds
//! minus [`BASE_SECONDS`], so a filtered copy says which packets matched.
//!
//! The addresses are data in a file, never sent anywhere; they include
//! the field notes' examples (10.0.0.1, 220.181.57.216, ...) so that those
//! filters match something.

use netdiag_tests::rng::Rng;

/// Seconds of packet 0's timestamp.
pub const BASE_SECONDS: u32 = 1_000_000;

pub const V4: &[[u8; 4]] = &[
    [1, 1, 1, 1],
    [1, 2, 3, 4],
    [1, 2, 3, 200],
    [10, 0, 0, 1],
    [10, 0, 0, 3],
    [10, 0, 0, 7],
    [10, 0, 0, 9],
    [10, 0, 2, 4],
    [10, 5, 2, 3],
    [10, 1, 0, 1],
    [192, 168, 0, 2],
    [220, 181, 57, 216],
    [198, 51, 100, 1],
    [198, 51, 100, 2],
    [203, 0, 113, 5],
    [224, 0, 0, 1],
    [239, 1, 2, 3],
    [255, 255, 255, 255],
    [0, 0, 0, 0],
    [127, 0, 0, 1],
    [127, 0, 0, 0],
    [169, 254, 0, 0],
    [169, 254, 1, 1],
];

pub const V6: &[&str] = &[
    "fd42::1",
    "fd42::2",
    "fd43::1",
    "fd42:0:0:1::5",
    "::1",
    "fe80::1",
    "ff02::1",
    "ff02::1:ff00:1",
    "2001:db8::1",
    "::",
];

pub const MACS: &[[u8; 6]] = &[
    [0x00, 0x11, 0x22, 0x33, 0x44, 0x55],
    [0x02, 0x00, 0x00, 0x00, 0x00, 0x01],
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01],
    [0x33, 0x33, 0x00, 0x00, 0x00, 0x01],
    [0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe],
    [0x01, 0x02, 0x03, 0x04, 0x05, 0x06],
    [0x01, 0x80, 0xc2, 0x00, 0x00, 0x00],
];

pub const PORTS: &[u16] = &[
    0, 20, 21, 22, 23, 25, 53, 67, 80, 110, 123, 143, 443, 993, 1023, 1024, 1025, 2000, 3389, 5353,
    8080, 8472, 50000, 65535,
];

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        acc += u32::from(word);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

pub fn ether(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A VLAN tag and what follows it: TCI, then the inner EtherType.
pub fn vlan_payload(tci: u16, inner_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(4 + payload.len());
    p.extend_from_slice(&tci.to_be_bytes());
    p.extend_from_slice(&inner_type.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

pub struct Ip4 {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub proto: u8,
    pub ttl: u8,
    pub id: u16,
    /// Flags and fragment offset (in 8-byte units), as on the wire.
    pub frag: u16,
    pub options: Vec<u8>,
    /// Overrides the header length nibble (for broken headers).
    pub ihl: Option<u8>,
    pub tos: u8,
}

impl Ip4 {
    pub fn new(src: [u8; 4], dst: [u8; 4], proto: u8) -> Ip4 {
        Ip4 {
            src,
            dst,
            proto,
            ttl: 64,
            id: 0x1234,
            frag: 0x4000,
            options: Vec::new(),
            ihl: None,
            tos: 0,
        }
    }

    pub fn build(&self, payload: &[u8]) -> Vec<u8> {
        let mut opts = self.options.clone();
        while !opts.len().is_multiple_of(4) {
            opts.push(0);
        }
        let hlen = 20 + opts.len();
        let ihl = self.ihl.unwrap_or((hlen / 4) as u8);
        let total = (hlen + payload.len()) as u16;
        let mut h = vec![0x40 | (ihl & 0xf), self.tos];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&self.id.to_be_bytes());
        h.extend_from_slice(&self.frag.to_be_bytes());
        h.push(self.ttl);
        h.push(self.proto);
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&self.src);
        h.extend_from_slice(&self.dst);
        h.extend_from_slice(&opts);
        let c = fold(sum16(&h, 0));
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }
}

pub fn v6(text: &str) -> [u8; 16] {
    text.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

fn random_v6(rng: &mut Rng) -> [u8; 16] {
    v6(V6[rng.below(V6.len() as u64) as usize])
}

pub fn ip6(src: [u8; 16], dst: [u8; 16], next: u8, hop: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.push(next);
    h.push(hop);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// An IPv6 extension header (hop-by-hop, routing, destination options)
/// of 8 bytes, then `rest`.
pub fn ext_header(next: u8, rest: &[u8]) -> Vec<u8> {
    let mut h = vec![next, 0, 1, 4, 0, 0, 0, 0];
    h.extend_from_slice(rest);
    h
}

/// An IPv6 fragment header: `offset` in 8-byte units, `more`.
pub fn frag_header(next: u8, offset: u16, more: bool, rest: &[u8]) -> Vec<u8> {
    let off = (offset << 3) | u16::from(more);
    let mut h = vec![next, 0];
    h.extend_from_slice(&off.to_be_bytes());
    h.extend_from_slice(&0xdead_beefu32.to_be_bytes());
    h.extend_from_slice(rest);
    h
}

/// Transport checksums over an IPv4 or IPv6 pseudo-header.
pub fn l4_checksum(src: &[u8], dst: &[u8], proto: u8, segment: &[u8]) -> u16 {
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(src);
    pseudo.extend_from_slice(dst);
    if src.len() == 4 {
        pseudo.push(0);
        pseudo.push(proto);
        pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    } else {
        pseudo.extend_from_slice(&(segment.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, proto]);
    }
    fold(sum16(segment, sum16(&pseudo, 0)))
}

pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Vec<u8>,
    pub urgent: u16,
}

impl Tcp {
    pub fn new(sport: u16, dport: u16, flags: u8) -> Tcp {
        Tcp {
            sport,
            dport,
            seq: 1000,
            ack: 2000,
            flags,
            window: 64240,
            options: Vec::new(),
            urgent: 0,
        }
    }

    pub fn build(&self, src: &[u8], dst: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut opts = self.options.clone();
        while !opts.len().is_multiple_of(4) {
            opts.push(1);
        }
        let off = ((20 + opts.len()) / 4) as u8;
        let mut s = Vec::new();
        s.extend_from_slice(&self.sport.to_be_bytes());
        s.extend_from_slice(&self.dport.to_be_bytes());
        s.extend_from_slice(&self.seq.to_be_bytes());
        s.extend_from_slice(&self.ack.to_be_bytes());
        s.push(off << 4);
        s.push(self.flags);
        s.extend_from_slice(&self.window.to_be_bytes());
        s.extend_from_slice(&[0, 0]);
        s.extend_from_slice(&self.urgent.to_be_bytes());
        s.extend_from_slice(&opts);
        s.extend_from_slice(payload);
        let c = l4_checksum(src, dst, 6, &s);
        s[16..18].copy_from_slice(&c.to_be_bytes());
        s
    }
}

pub fn udp(src: &[u8], dst: &[u8], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(payload);
    let c = l4_checksum(src, dst, 17, &s);
    s[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    s
}

pub fn icmp(kind: u8, code: u8, rest: &[u8]) -> Vec<u8> {
    let mut s = vec![kind, code, 0, 0];
    s.extend_from_slice(rest);
    let c = fold(sum16(&s, 0));
    s[2..4].copy_from_slice(&c.to_be_bytes());
    s
}

pub fn icmp6(src: &[u8], dst: &[u8], kind: u8, code: u8, rest: &[u8]) -> Vec<u8> {
    let mut s = vec![kind, code, 0, 0];
    s.extend_from_slice(rest);
    let c = l4_checksum(src, dst, 58, &s);
    s[2..4].copy_from_slice(&c.to_be_bytes());
    s
}

pub fn sctp(sport: u16, dport: u16, rest: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 0]);
    s.extend_from_slice(rest);
    s
}

pub fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut s = vec![0, 1, 8, 0, 6, 4];
    s.extend_from_slice(&op.to_be_bytes());
    s.extend_from_slice(&sha);
    s.extend_from_slice(&spa);
    s.extend_from_slice(&tha);
    s.extend_from_slice(&tpa);
    s
}

/// A minimal DNS query for `name` (A record).
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

/// One frame of the corpus: the bytes captured and the length on the wire.
pub struct Frame {
    pub data: Vec<u8>,
    pub wire_len: u32,
}

impl Frame {
    fn whole(data: Vec<u8>) -> Frame {
        let wire_len = data.len() as u32;
        Frame { data, wire_len }
    }
}

/// A random IPv4 or IPv6 transport payload (TCP, UDP, SCTP, ICMP) wrapped
/// in its network header; returns (ethertype, network packet).
fn random_l3(rng: &mut Rng) -> (u16, Vec<u8>) {
    let is_v6 = rng.chance(35);
    let payload_len = match rng.below(6) {
        0 => 0,
        1 => rng.below(8) as usize,
        2 => rng.below(64) as usize,
        3 => rng.below(400) as usize,
        4 => 1400 + rng.below(60) as usize,
        _ => rng.below(200) as usize,
    };
    let payload = rng.bytes(payload_len);
    let sport = *rng.pick(PORTS);
    let dport = if rng.chance(20) {
        rng.next_u64() as u16
    } else {
        *rng.pick(PORTS)
    };
    let kind = rng.below(10);
    if is_v6 {
        let src = random_v6(rng);
        let dst = random_v6(rng);
        let (next, l4) = match kind {
            0..=3 => {
                let mut t = Tcp::new(sport, dport, rng.next_u64() as u8);
                if rng.chance(30) {
                    t.options = vec![2, 4, 5, 0xb4, 4, 2, 1, 3, 3, 7];
                }
                (6, t.build(&src, &dst, &payload))
            }
            4..=6 => (17, udp(&src, &dst, sport, dport, &payload)),
            7 => (132, sctp(sport, dport, &payload)),
            8 => {
                let kinds = [1, 2, 3, 4, 128, 129, 130, 133, 134, 135, 136, 137, 143];
                let k = *rng.pick(&kinds);
                (58, icmp6(&src, &dst, k, rng.below(3) as u8, &payload))
            }
            _ => (
                *rng.pick(&[0, 4, 41, 47, 50, 51, 59, 89, 103, 112, 255]),
                payload.clone(),
            ),
        };
        // Extension headers in front of some of them.
        let packet = match rng.below(8) {
            0 => (0, ext_header(next, &l4)),
            1 => (43, ext_header(next, &l4)),
            2 => (60, ext_header(next, &l4)),
            3 => (44, frag_header(next, 0, true, &l4)),
            4 => (
                44,
                frag_header(next, 1 + rng.below(100) as u16, rng.chance(50), &l4),
            ),
            5 => (0, ext_header(44, &frag_header(next, 0, false, &l4))),
            _ => (next, l4),
        };
        let hop = *rng.pick(&[1, 64, 255]);
        (0x86dd, ip6(src, dst, packet.0, hop, &packet.1))
    } else {
        let src = *rng.pick(V4);
        let dst = *rng.pick(V4);
        let (proto, l4) = match kind {
            0..=3 => {
                let mut t = Tcp::new(sport, dport, rng.next_u64() as u8);
                if rng.chance(30) {
                    t.options = vec![2, 4, 5, 0xb4, 1, 1, 4, 2];
                }
                (6, t.build(&src, &dst, &payload))
            }
            4..=6 => (17, udp(&src, &dst, sport, dport, &payload)),
            7 => (132, sctp(sport, dport, &payload)),
            8 => (1, icmp(rng.below(20) as u8, rng.below(6) as u8, &payload)),
            _ => (
                *rng.pick(&[2, 4, 9, 41, 47, 50, 51, 89, 103, 112, 255]),
                payload.clone(),
            ),
        };
        let mut ip = Ip4::new(src, dst, proto);
        ip.ttl = *rng.pick(&[1, 2, 4, 5, 64, 128, 255]);
        if rng.chance(15) {
            ip.options = vec![1, 1, 7, 7, 4, 0, 0, 0, 0, 0]; // NOPs, record route
        }
        match rng.below(10) {
            0 => ip.frag = 0x2000,                               // first fragment, MF
            1 => ip.frag = 0x2000 | (1 + rng.below(200) as u16), // middle
            2 => ip.frag = 1 + rng.below(200) as u16,            // last
            3 => ip.frag = 0,                                    // DF clear
            _ => {}
        }
        (0x0800, ip.build(&l4))
    }
}

/// Builds the whole corpus (Ethernet frames).
pub fn build() -> Vec<Frame> {
    let mut rng = Rng::new(0x5eed_cafe_f00d);
    let mut frames = Vec::new();
    let mac = |rng: &mut Rng| *rng.pick(MACS);

    // Every TCP flag combination, IPv4 and IPv6, plain and with options.
    for flags in 0..=255u8 {
        for variant in 0..4 {
            let sport = *rng.pick(PORTS);
            let dport = *rng.pick(PORTS);
            let mut t = Tcp::new(sport, dport, flags);
            t.seq = rng.next_u64() as u32;
            if variant % 2 == 1 {
                t.options = vec![2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2];
            }
            if flags & 0x20 != 0 {
                t.urgent = 7;
            }
            let payload_len = rng.below(40) as usize;
            let payload = rng.bytes(payload_len);
            let (ethertype, packet) = if variant < 2 {
                let src = *rng.pick(V4);
                let dst = *rng.pick(V4);
                (
                    0x0800,
                    Ip4::new(src, dst, 6).build(&t.build(&src, &dst, &payload)),
                )
            } else {
                let src = random_v6(&mut rng);
                let dst = random_v6(&mut rng);
                (0x86dd, ip6(src, dst, 6, 64, &t.build(&src, &dst, &payload)))
            };
            frames.push(Frame::whole(ether(
                mac(&mut rng),
                mac(&mut rng),
                ethertype,
                &packet,
            )));
        }
    }

    // Random transport traffic over IPv4 and IPv6.
    for _ in 0..2200 {
        let (ethertype, packet) = random_l3(&mut rng);
        frames.push(Frame::whole(ether(
            mac(&mut rng),
            mac(&mut rng),
            ethertype,
            &packet,
        )));
    }

    // DNS queries and VXLAN, the field notes' ports.
    for i in 0..60u16 {
        let src = *rng.pick(V4);
        let dst = *rng.pick(V4);
        let (sport, dport, payload) = if i % 3 == 0 {
            (50000 + i, 8472, rng.bytes(50))
        } else {
            (40000 + i, 53, dns_query(i, "web.default.svc.cluster.local"))
        };
        let packet = Ip4::new(src, dst, 17).build(&udp(&src, &dst, sport, dport, &payload));
        frames.push(Frame::whole(ether(
            mac(&mut rng),
            mac(&mut rng),
            0x0800,
            &packet,
        )));
    }

    // ICMP: every type 0..=40 with a few codes; ICMPv6 likewise.
    for kind in 0..=40u8 {
        for code in 0..3u8 {
            let src = *rng.pick(V4);
            let dst = *rng.pick(V4);
            let packet = Ip4::new(src, dst, 1).build(&icmp(kind, code, &rng.bytes(8)));
            frames.push(Frame::whole(ether(
                mac(&mut rng),
                mac(&mut rng),
                0x0800,
                &packet,
            )));
        }
    }
    for kind in (0..=5u8).chain(127..=155) {
        for code in 0..2u8 {
            let src = random_v6(&mut rng);
            let dst = random_v6(&mut rng);
            let packet = ip6(
                src,
                dst,
                58,
                255,
                &icmp6(&src, &dst, kind, code, &rng.bytes(20)),
            );
            frames.push(Frame::whole(ether(
                mac(&mut rng),
                mac(&mut rng),
                0x86dd,
                &packet,
            )));
        }
    }

    // ARP and RARP.
    for _ in 0..200 {
        let op = *rng.pick(&[1, 2, 3, 4, 9]);
        let ethertype = if rng.chance(20) { 0x8035 } else { 0x0806 };
        let body = arp(
            op,
            mac(&mut rng),
            *rng.pick(V4),
            mac(&mut rng),
            *rng.pick(V4),
        );
        let dst = if op == 1 { [0xff; 6] } else { mac(&mut rng) };
        let mut frame = ether(dst, mac(&mut rng), ethertype, &body);
        if rng.chance(50) {
            frame.resize(60, 0); // Ethernet padding
        }
        frames.push(Frame::whole(frame));
    }

    // VLAN-tagged frames, single and stacked, with every TPID.
    for _ in 0..700 {
        let (inner_type, inner) = match rng.below(5) {
            0 => (
                0x0806,
                arp(1, mac(&mut rng), *rng.pick(V4), [0; 6], *rng.pick(V4)),
            ),
            _ => random_l3(&mut rng),
        };
        let tpid = *rng.pick(&[0x8100, 0x8100, 0x88a8, 0x9100]);
        let vid = *rng.pick(&[0u16, 1, 5, 5, 100, 100, 200, 4095]);
        let tci = vid | (rng.below(8) as u16) << 13;
        let payload = if rng.chance(25) {
            let inner_vid = *rng.pick(&[5u16, 100, 300]);
            vlan_payload(tci, 0x8100, &vlan_payload(inner_vid, inner_type, &inner))
        } else {
            vlan_payload(tci, inner_type, &inner)
        };
        frames.push(Frame::whole(ether(
            mac(&mut rng),
            mac(&mut rng),
            tpid,
            &payload,
        )));
    }

    // 802.3 frames with LLC: STP, SNAP (IP, AppleTalk, AARP, IPX), IPX,
    // ISO, NetBEUI, raw 802.3 IPX, unknown SAPs.
    for _ in 0..150 {
        let llc: Vec<u8> = match rng.below(9) {
            0 => [vec![0x42, 0x42, 0x03], rng.bytes(35)].concat(),
            1 => [vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00], rng.bytes(30)].concat(),
            2 => [
                vec![0xaa, 0xaa, 0x03, 0x08, 0x00, 0x07, 0x80, 0x9b],
                rng.bytes(30),
            ]
            .concat(),
            3 => [vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x80, 0xf3], rng.bytes(30)].concat(),
            4 => [vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x81, 0x37], rng.bytes(30)].concat(),
            5 => [vec![0xe0, 0xe0, 0x03], rng.bytes(30)].concat(),
            6 => [vec![0xfe, 0xfe, 0x03], rng.bytes(30)].concat(),
            7 => [vec![0xf0, 0xf0, 0x03], rng.bytes(30)].concat(),
            _ => [vec![0xff, 0xff], rng.bytes(30)].concat(),
        };
        let len = llc.len() as u16;
        frames.push(Frame::whole(ether(mac(&mut rng), mac(&mut rng), len, &llc)));
    }
    for _ in 0..20 {
        let llc = [vec![0x06, 0x06, 0x03], rng.bytes(24)].concat();
        frames.push(Frame::whole(ether(mac(&mut rng), mac(&mut rng), 27, &llc)));
    }

    // Other EtherTypes: DECnet, LAT, SCA, MOP, AppleTalk, AARP, IPX,
    // LLDP, loopback, and nonsense.
    for _ in 0..120 {
        let ethertype = *rng.pick(&[
            0x6001, 0x6002, 0x6003, 0x6004, 0x6007, 0x809b, 0x80f3, 0x8137, 0x88cc, 0x9000, 0x05dc,
            0x05dd, 0xffff, 0x0000, 0x0801,
        ]);
        let len = rng.below(80) as usize;
        frames.push(Frame::whole(ether(
            mac(&mut rng),
            mac(&mut rng),
            ethertype,
            &rng.bytes(len),
        )));
    }

    // Broken IPv4: header lengths below 5, wrong version, lying lengths.
    for _ in 0..80 {
        let src = *rng.pick(V4);
        let dst = *rng.pick(V4);
        let mut ip = Ip4::new(src, dst, *rng.pick(&[6, 17, 1]));
        ip.ihl = Some(rng.below(16) as u8);
        let t = Tcp::new(*rng.pick(PORTS), *rng.pick(PORTS), 0x12);
        let mut packet = ip.build(&t.build(&src, &dst, &[]));
        if rng.chance(30) {
            packet[0] = 0x60 | (packet[0] & 0xf);
        }
        frames.push(Frame::whole(ether(
            mac(&mut rng),
            mac(&mut rng),
            0x0800,
            &packet,
        )));
    }

    // Garbage of every small length.
    for n in 0..100 {
        frames.push(Frame::whole(rng.bytes(n)));
    }

    // Copies cut short: the capture kept fewer bytes than were on the wire.
    let whole = frames.len();
    for _ in 0..1100 {
        let i = rng.below(whole as u64) as usize;
        let original = &frames[i];
        if original.data.is_empty() {
            continue;
        }
        let keep = match rng.below(4) {
            0 => rng.below(15) as usize,
            1 => 14 + rng.below(40) as usize,
            2 => 34 + rng.below(40) as usize,
            _ => rng.below(original.data.len() as u64) as usize,
        }
        .min(original.data.len().saturating_sub(1));
        let wire_len = original.wire_len;
        let data = original.data[..keep].to_vec();
        frames.push(Frame { data, wire_len });
    }
    frames
}

/// The same frames behind a Linux cooked (SLL) header, as `-i any` sees
/// them: packet type, ARPHRD_ETHER, the source MAC, the protocol (802.3
/// frames become LINUX_SLL_P_802_2 or _802_3 with the LLC payload).
pub fn to_sll(frames: &[Frame]) -> Vec<Frame> {
    let mut rng = Rng::new(0x511);
    frames
        .iter()
        .filter(|f| f.data.len() >= 14)
        .map(|f| {
            let d = &f.data;
            let ethertype = u16::from_be_bytes([d[12], d[13]]);
            let payload = &d[14..];
            let protocol = if ethertype <= 1500 {
                if payload.starts_with(&[0xff, 0xff]) {
                    1
                } else {
                    4
                }
            } else {
                ethertype
            };
            let pkttype: u16 = if d[0] == 0xff {
                1
            } else if d[0] & 1 == 1 {
                2
            } else {
                *rng.pick(&[0, 0, 3, 4])
            };
            let mut out = Vec::with_capacity(16 + payload.len());
            out.extend_from_slice(&pkttype.to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&6u16.to_be_bytes());
            out.extend_from_slice(&d[6..12]);
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&protocol.to_be_bytes());
            out.extend_from_slice(payload);
            Frame {
                data: out,
                wire_len: f.wire_len + 2,
            }
        })
        .collect()
}

/// A pcap file (microseconds, little-endian) of `frames`; packet i has
/// timestamp `BASE_SECONDS + i` seconds.
pub fn pcap(frames: &[Frame], linktype: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&linktype.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(BASE_SECONDS + i as u32).to_le_bytes());
        out.extend_from_slice(&((i as u32 * 7919) % 1_000_000).to_le_bytes());
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&f.wire_len.max(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&f.data);
    }
    out
}

/// The packet indexes in a pcap file written from the corpus (by either
/// tool), in file order.
pub fn indexes(pcap: &[u8]) -> Result<Vec<u32>, String> {
    if pcap.len() < 24 {
        return Err(format!("{} bytes: no pcap header", pcap.len()));
    }
    let magic = u32::from_le_bytes(pcap[0..4].try_into().unwrap());
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        m => return Err(format!("bad magic {m:#x}")),
    };
    let word = |b: &[u8]| {
        let a: [u8; 4] = b.try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut at = 24;
    let mut out = Vec::new();
    while at < pcap.len() {
        if at + 16 > pcap.len() {
            return Err("truncated record header".into());
        }
        let secs = word(&pcap[at..at + 4]);
        let incl = word(&pcap[at + 8..at + 12]) as usize;
        at += 16 + incl;
        if at > pcap.len() {
            return Err("truncated record".into());
        }
        out.push(secs.wrapping_sub(BASE_SECONDS));
    }
    Ok(out)
}
