//! The printer against lines tcpdump 4.99.3 printed for real traffic
//! (captured in a namespace pair: ARP, ICMP, ICMPv6, TCP, UDP, DNS over UDP
//! and TCP), frame bytes as tcpdump -xx showed them.

use super::*;
use crate::tcpdump::args::{PrintOptions, TimeFormat};

/// (frame in hex, the line `tcpdump -nn -t` printed)
const CASES: &[(&str, &str)] = &[
    (
        "ffffffffffff2620232cda51080600010800060400012620232cda51c6336402000000000000c6336401",
        "ARP, Request who-has 198.51.100.1 tell 198.51.100.2, length 28",
    ),
    (
        "2620232cda51f239a8da4ceb08060001080006040002f239a8da4cebc63364012620232cda51c6336402",
        "ARP, Reply 198.51.100.1 is-at f2:39:a8:da:4c:eb, length 28",
    ),
    (
        "f239a8da4ceb2620232cda51080045000054e2644000400103dac6336402c633640108004cb141a000017e9e046b000000001cd10b0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
        "IP 198.51.100.2 > 198.51.100.1: ICMP echo request, id 16800, seq 1, length 64",
    ),
    (
        "f239a8da4ceb2620232cda5186dd600634d500403a40fd420000000000000000000000000002fd4200000000000000000000000000018000e8a941a100027f9e046b0000000015d3020000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
        "IP6 fd42::2 > fd42::1: ICMP6, echo request, id 16801, seq 2, length 64",
    ),
    (
        "f239a8da4ceb2620232cda5108004500003c761d400040067034c6336402c6336401db501f40fafbb96a00000000a002faf054990000020405b40402080a8c2cd56c000000000103030a",
        "IP 198.51.100.2.56144 > 198.51.100.1.8000: Flags [S], seq 4210801002, win 64240, options [mss 1460,sackOK,TS val 2351748460 ecr 0,nop,wscale 10], length 0",
    ),
    (
        "2620232cda51f239a8da4ceb08004500003c000040004006e651c6336401c63364021f40db505eb9be5bfafbb96ba012fe8854990000020405b40402080a2c85294c8c2cd56c0103030a",
        "IP 198.51.100.1.8000 > 198.51.100.2.56144: Flags [S.], seq 1589231195, ack 4210801003, win 65160, options [mss 1460,sackOK,TS val 746924364 ecr 2351748460,nop,wscale 10], length 0",
    ),
    (
        "f239a8da4ceb2620232cda51080045000034761e40004006703bc6336402c6336401db501f40fafbb96b5eb9be5c8010003f549100000101080a8c2cd56c2c85294c",
        "IP 198.51.100.2.56144 > 198.51.100.1.8000: Flags [.], ack 1, win 63, options [nop,nop,TS val 2351748460 ecr 746924364], length 0",
    ),
    (
        "f239a8da4ceb2620232cda5108004500003a761f400040067034c6336402c6336401db501f40fafbb96b5eb9be5c8018003f549700000101080a8c2cd56c2c85294c68656c6c6f0a",
        "IP 198.51.100.2.56144 > 198.51.100.1.8000: Flags [P.], seq 1:7, ack 1, win 63, options [nop,nop,TS val 2351748460 ecr 746924364], length 6",
    ),
    (
        "f239a8da4ceb2620232cda510800450000347620400040067039c6336402c6336401db501f40fafbb9715eb9be5c8011003f549100000101080a8c2cd56c2c85294c",
        "IP 198.51.100.2.56144 > 198.51.100.1.8000: Flags [F.], seq 7, ack 1, win 63, options [nop,nop,TS val 2351748460 ecr 746924364], length 0",
    ),
    (
        "2620232cda51f239a8da4ceb86dd6003d00c00140640fd420000000000000000000000000001fd4200000000000000000000000000021f40a12600000000ca6e8c6950140000faa20000",
        "IP6 fd42::1.8000 > fd42::2.41254: Flags [R.], seq 0, ack 3396242537, win 0, length 0",
    ),
    (
        "f239a8da4ceb2620232cda5108004500002129ce40004011bc93c6336402c63364019b17270f000d5489646174610a",
        "IP 198.51.100.2.39703 > 198.51.100.1.9999: UDP, length 5",
    ),
    (
        "2620232cda51f239a8da4ceb080045c0003d911900004001947cc6336401c63364020303037d000000004500002129ce40004011bc93c6336402c63364019b17270f000d5489646174610a",
        "IP 198.51.100.1 > 198.51.100.2: ICMP 198.51.100.1 udp port 9999 unreachable, length 41",
    ),
    (
        "f239a8da4ceb2620232cda5186dd6002f6de000e1140fd420000000000000000000000000002fd420000000000000000000000000001d8e6270f000efaa764617461360a",
        "IP6 fd42::2.55526 > fd42::1.9999: UDP, length 6",
    ),
    (
        "2620232cda51f239a8da4ceb86dd6007e865003e3a40fd420000000000000000000000000001fd420000000000000000000000000002010497c9000000006002f6de000e1140fd420000000000000000000000000002fd420000000000000000000000000001d8e6270f000efaa764617461360a",
        "IP6 fd42::1 > fd42::2: ICMP6, destination unreachable, unreachable port, fd42::1 udp port 9999, length 62",
    ),
    (
        "f239a8da4ceb2620232cda5108004500004d019f000040112497c6336402c6336401aed00035003954b58e1a01200001000000000001037765620474657374000001000100002904d000000000000c000a0008f3f1cfde484165db",
        "IP 198.51.100.2.44752 > 198.51.100.1.53: 36378+ [1au] A? web.test. (49)",
    ),
    (
        "2620232cda51f239a8da4ceb080045000051440a40004011a227c6336401c63364020035aed0003d54b98e1a858000010001000000010377656204746573740000010001c00c00010001000000000004cb00710a00002904d0000000000000",
        "IP 198.51.100.1.53 > 198.51.100.2.44752: 36378* 1/0/1 A 203.0.113.10 (53)",
    ),
    (
        "f239a8da4ceb2620232cda5108004500004f06b7000040111f7dc6336402c63364018b2b0035003b54b7f83f0120000100000000000105616c696173047465737400001c000100002904d000000000000c000a0008834f3a830ec677db",
        "IP 198.51.100.2.35627 > 198.51.100.1.53: 63551+ [1au] AAAA? alias.test. (51)",
    ),
    (
        "2620232cda51f239a8da4ceb080045000046440f40004011a22dc6336401c63364020035d07a003254aea00081850001000000000001026e780474657374000001000100002904d0000000000006000f0002000e",
        "IP 198.51.100.1.53 > 198.51.100.2.53370: 40960 Refused 0/0/1 (42)",
    ),
    (
        "f239a8da4ceb2620232cda5108004500003c95f0400040065061c6336402c6336401862700351a53241700000000a002fc9454990000020404c40402080a37ada1a8000000000103030a",
        "IP 198.51.100.2.34343 > 198.51.100.1.53: Flags [S], seq 441656343, win 64660, options [mss 1220,sackOK,TS val 934125992 ecr 0,nop,wscale 10], length 0",
    ),
    (
        "2620232cda51f239a8da4ceb08004500003c000040004006e651c6336401c633640200358627c02534d81a532418a012fe8854990000020405b40402080ad712eef837ada1a80103030a",
        "IP 198.51.100.1.53 > 198.51.100.2.34343: Flags [S.], seq 3223663832, ack 441656344, win 65160, options [mss 1460,sackOK,TS val 3608342264 ecr 934125992,nop,wscale 10], length 0",
    ),
    (
        "2620232cda51f239a8da4ceb080045000034dcce40004006098bc6336401c633640200358627c02534d91a53244b80100040549100000101080ad712eef837ada1a8",
        "IP 198.51.100.1.53 > 198.51.100.2.34343: Flags [.], ack 52, win 64, options [nop,nop,TS val 3608342264 ecr 934125992], length 0",
    ),
    (
        "f239a8da4ceb2620232cda5108004500003495f3400040065066c6336402c6336401862700351a53244bc025351080100040549100000101080a37ada1a8d712eef8",
        "IP 198.51.100.2.34343 > 198.51.100.1.53: Flags [.], ack 56, win 64, options [nop,nop,TS val 934125992 ecr 3608342264], length 0",
    ),
    (
        "2620232cda51f239a8da4ceb080045000068441340004011a207c6336401c6336402003587a4005454d095a3858000010001000000010231300331313301300332303307696e2d61646472046172706100000c0001c00c000c000100000000000a0377656204746573740000002904d0000000000000",
        "IP 198.51.100.1.53 > 198.51.100.2.34724: 38307* 1/0/1 PTR web.test. (76)",
    ),
    (
        "2620232cda51f239a8da4ceb080045000028000040004006e665c6336401c63364021f41e29a00000000f0c37d4750140000eb7e0000",
        "IP 198.51.100.1.8001 > 198.51.100.2.58010: Flags [R.], seq 0, ack 4039343431, win 0, length 0",
    ),
    (
        "333300000002f239a8da4ceb86dd6000000000103afffe80000000000000f039a8fffeda4cebff0200000000000000000000000000028500af2e000000000101f239a8da4ceb",
        "IP6 fe80::f039:a8ff:feda:4ceb > ff02::2: ICMP6, router solicitation, length 16",
    ),
    (
        "3333000000022620232cda5186dd6000000000103afffe80000000000000242023fffe2cda51ff020000000000000000000000000002850037f20000000001012620232cda51",
        "IP6 fe80::2420:23ff:fe2c:da51 > ff02::2: ICMP6, router solicitation, length 16",
    ),
];

fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn options(link_header: bool, verbose: u8, hex: u8) -> PrintOptions {
    PrintOptions {
        link_header,
        verbose,
        hex,
        ascii_with_hex: false,
        ascii: false,
        time: TimeFormat::None,
    }
}

fn print_one(pr: &mut Printer, frame: &[u8]) -> String {
    let packet = Frame {
        ts: Duration::from_secs(1),
        orig_len: frame.len() as u32,
        data: frame,
    };
    let mut out = Vec::new();
    pr.print(&packet, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn lines_equal_tcpdumps() {
    // One printer for all: TCP sequence numbers are relative to the
    // conversation's first packet, so order matters.
    let mut pr = Printer::new(options(false, 0, 0), LinkType::Ethernet);
    for (hex, want) in CASES {
        let got = print_one(&mut pr, &bytes(hex));
        assert_eq!(got.trim_end_matches('\n'), *want);
    }
}

#[test]
fn link_header_and_hex() {
    let mut pr = Printer::new(options(true, 0, 1), LinkType::Ethernet);
    let got = print_one(&mut pr, &bytes(CASES[1].0));
    assert_eq!(
        got,
        "f2:39:a8:da:4c:eb > 26:20:23:2c:da:51, ethertype ARP (0x0806), length 42: \
         Reply 198.51.100.1 is-at f2:39:a8:da:4c:eb, length 28\
         \n\t0x0000:  0001 0800 0604 0002 f239 a8da 4ceb c633\
         \n\t0x0010:  6401 2620 232c da51 c633 6402\n"
    );
}

/// Frames cut anywhere print something and never panic.
#[test]
fn truncated_frames_do_not_panic() {
    for verbose in [0, 1, 2] {
        let mut pr = Printer::new(options(verbose == 2, verbose, 2), LinkType::Ethernet);
        for (hex, _) in CASES {
            let frame = bytes(hex);
            for cut in 0..frame.len() {
                let line = print_one(&mut pr, &frame[..cut]);
                assert!(line.ends_with('\n'));
            }
        }
    }
}

/// A bounded randomized test of the printer: the frames above mutated
/// (bytes flipped, cut, extended), frames of random bytes behind plausible
/// headers, for every output option and both link types. Nothing may
/// panic, and every packet prints exactly one line plus its dumps.
#[test]
fn printer_never_panics_on_mutated_frames() {
    let started = std::time::Instant::now();
    let mut rng = crate::test_rng::Rng::new(0x2545_f491_4f6c_dd1d);
    let mut next = move || rng.next();
    let frames: Vec<Vec<u8>> = CASES.iter().map(|(h, _)| bytes(h)).collect();
    let mut printers: Vec<Printer> = Vec::new();
    for link in [LinkType::Ethernet, LinkType::LinuxSll] {
        for (e, v, hex) in [(false, 0, 0), (true, 1, 1), (false, 2, 2), (true, 0, 0)] {
            let mut o = options(e, v, hex);
            o.ascii_with_hex = v == 1;
            o.ascii = v == 2;
            o.time = TimeFormat::DateTime;
            printers.push(Printer::new(o, link));
        }
    }
    for case in 0..30_000u32 {
        if started.elapsed() > std::time::Duration::from_secs(30) {
            break;
        }
        let mut f = frames[(next() as usize) % frames.len()].clone();
        match case % 4 {
            0 => {
                for _ in 0..1 + next() % 8 {
                    let i = (next() as usize) % f.len();
                    f[i] = next() as u8;
                }
            }
            1 => f.truncate((next() as usize) % (f.len() + 1)),
            2 => {
                let keep = 14 + (next() as usize) % 40;
                f.truncate(keep.min(f.len()));
                f.extend((0..next() % 200).map(|_| next() as u8));
            }
            _ => {
                let i = 12 + (next() as usize) % 30;
                if i < f.len() {
                    f[i] = next() as u8;
                }
            }
        }
        let pr = &mut printers[case as usize % 8];
        let line = print_one(pr, &f);
        assert!(line.ends_with('\n'));
    }
}
