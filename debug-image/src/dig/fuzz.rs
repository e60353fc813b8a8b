//! Fuzzing the response path: hostile replies must never crash the parser,
//! the question check, the address extraction or dig's printers.
//!
//! cargo-fuzz needs a nightly compiler, which the build machines lack, so
//! this is a bounded, deterministic mutation test inside `cargo test`: a
//! small xorshift PRNG mutates real replies captured from knot
//! (`dns/testdata/knot-replies.txt`: every record type of the test zone,
//! NXDOMAIN, REFUSED with EDE, ANY, a truncated answer) in ways that hit
//! DNS parsers' weak spots (bit flips, random bytes, truncation, junk
//! appended, section counts, compression pointers aimed anywhere, label
//! lengths) and feeds each result through everything that reads replies.
//! 20 000 cases run in a few seconds; a failing case prints its seed and
//! bytes. The end-to-end suite adds a hostile UDP server that answers the
//! real `dig` and `resolve` with such replies.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use hickory_proto::rr::Name;

use super::args::DigArgs;
use super::{Answer, Plan, Server, render};
use crate::dns::transport::Transport;
use crate::dns::wire::{Query, QuerySpec, Reply, raw_opt};
use crate::test_rng::Rng;

/// The captured replies: (query name, type, bytes).
pub fn corpus() -> Vec<(String, u16, Vec<u8>)> {
    include_str!("../dns/testdata/knot-replies.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next().expect("name").to_owned();
            let qtype = f.next().expect("type").parse().expect("type number");
            let hex = f.next().expect("hex");
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            (name, qtype, bytes)
        })
        .collect()
}

/// One mutation of `bytes`, chosen by `rng`.
pub fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = bytes.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                bytes[i] = rng.byte();
            }
            2 => bytes.truncate(rng.below(len + 1)),
            3 => {
                let extra = rng.below(64);
                for _ in 0..extra {
                    bytes.push(rng.byte());
                }
            }
            // Section counts: huge, zero or random.
            4 if len >= 12 => {
                let at = 4 + 2 * rng.below(4);
                let v: u16 = match rng.below(3) {
                    0 => 0xffff,
                    1 => 0,
                    _ => rng.next() as u16,
                };
                bytes[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            // A compression pointer aimed anywhere (loops, forward, past the end).
            5 if len >= 14 => {
                let i = 12 + rng.below(len - 13);
                let target = rng.below(len + 16) as u16;
                bytes[i] = 0xc0 | ((target >> 8) as u8 & 0x3f);
                bytes[i + 1] = target as u8;
            }
            // A label length byte out of range.
            6 if len > 12 => {
                let i = 12 + rng.below(len - 12);
                bytes[i] = 0x40 + rng.byte() % 0x80;
            }
            // Splice: repeat a slice of the message.
            7 if len > 16 => {
                let start = rng.below(len);
                let end = (start + rng.below(64)).min(len);
                let chunk = bytes[start..end].to_vec();
                let at = rng.below(bytes.len() + 1);
                bytes.splice(at..at, chunk);
            }
            _ => {
                // Flip the header flags and rcode.
                if len >= 4 {
                    bytes[2] = rng.byte();
                    bytes[3] = rng.byte();
                }
            }
        }
    }
}

/// Everything that reads a reply, on one reply.
pub fn exercise(name: &str, qtype: u16, bytes: &[u8]) -> usize {
    let qname = Name::from_ascii(name).expect("corpus names are valid");
    let query = Query::build(&QuerySpec::stub(qname.clone(), qtype.into())).expect("query");
    let _ = raw_opt(bytes);
    let Some(reply) = Reply::parse(bytes) else {
        return 0;
    };
    let _ = reply.answers(&query);
    let _ = reply.rcode();
    let _ = reply.addresses(&qname);
    let plan = Plan {
        servers: vec![Server {
            addr: SocketAddr::from(([198, 51, 100, 53], 53)),
            label: "198.51.100.53".to_owned(),
        }],
        from_command_line: true,
        names: vec![qname.clone()],
        qtype,
        qclass: 1,
    };
    let answer = Answer {
        reply,
        server: plan.servers[0].clone(),
        transport: Transport::Udp,
        rtt: Duration::from_millis(1),
        when: SystemTime::UNIX_EPOCH,
    };
    let mut out = Vec::new();
    for short in [false, true] {
        let d = DigArgs {
            short,
            ..DigArgs::default()
        };
        render::print(&d, &plan, &qname, &answer, &mut out).expect("writing to a Vec");
    }
    render::json(
        &DigArgs::default(),
        &plan,
        &qname,
        Some(&answer),
        &[],
        &mut out,
    )
    .expect("writing to a Vec");
    out.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_replies_print_like_dig() {
        let corpus = corpus();
        assert!(corpus.len() >= 15);
        for (name, qtype, bytes) in &corpus {
            let reply = Reply::parse(bytes).expect("captured replies have a header");
            assert!(
                reply.message.is_ok(),
                "{name} {qtype}: {:?}",
                reply.message.err()
            );
            assert!(exercise(name, *qtype, bytes) > 0);
        }
    }

    #[test]
    fn twenty_thousand_hostile_replies_do_not_crash_anything() {
        let corpus = corpus();
        let mut rng = Rng::new(0x6e65_7464_6961_6721);
        let started = std::time::Instant::now();
        let mut decoded = 0;
        for case in 0..20_000u32 {
            let (name, qtype, original) = &corpus[rng.below(corpus.len())];
            let mut bytes = original.clone();
            mutate(&mut rng, &mut bytes);
            let result = std::panic::catch_unwind(|| exercise(name, *qtype, &bytes));
            match result {
                Ok(n) => decoded += usize::from(n > 0),
                Err(_) => panic!(
                    "case {case}: a mutated reply to {name} type {qtype} crashed the response path; bytes: {}",
                    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
                ),
            }
        }
        // The mutations must not all be rejected at the header: most
        // cases have to reach the printers for the test to mean anything.
        assert!(
            decoded > 10_000,
            "only {decoded} cases reached the printers"
        );
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}
