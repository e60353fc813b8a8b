//! Recognises a Wireshark display filter given where a capture filter is
//! expected, explains the difference, and translates it when it can.
//!
//! `(tcp.flags.reset eq 1) and (tcp.flags.ack eq 0)` is a display filter:
//! it names fields that Wireshark's dissectors decode. tcpdump (and this
//! tool) take pcap-filter capture filters, which the kernel runs on raw
//! bytes: `tcp[tcpflags] & tcp-rst != 0 and tcp[tcpflags] & tcp-ack == 0`.
//! libpcap only says "syntax error"; an SRE deserves the translation.

/// Wireshark's protocol prefixes that start display-filter field names.
const FIELD_PROTOCOLS: &[&str] = &[
    "eth", "ip", "ipv6", "tcp", "udp", "icmp", "icmpv6", "arp", "dns", "http", "http2", "tls",
    "ssl", "frame", "sctp", "vlan", "sll", "data", "dhcp", "ntp", "quic", "gre", "vxlan",
];

/// Display-filter comparison words.
const OPERATOR_WORDS: &[&str] = &[
    "eq", "ne", "gt", "lt", "ge", "le", "contains", "matches", "in", "any_eq", "all_ne",
];

/// If `text` looks like a display filter, the one-line explanation (with a
/// translation when every part has a capture-filter equivalent).
pub fn diagnose(text: &str) -> Option<String> {
    let words = words(text);
    let field = words.iter().find(|w| is_field(w))?;
    let _ = field;
    let translated = Translator {
        words: &words,
        at: 0,
    }
    .translate();
    let advice = match translated {
        Some(t) => format!("as a capture filter that is: {t}"),
        None => "write it in pcap-filter syntax instead (see 'man pcap-filter'), e.g. \
                 'tcp[tcpflags] & tcp-rst != 0' for tcp.flags.reset == 1"
            .to_owned(),
    };
    Some(format!(
        "\"{}\" is a Wireshark display filter, not a capture filter: display filters name decoded \
         fields (tcp.flags.reset), capture filters test packet bytes in the kernel; {advice}",
        text.trim()
    ))
}

fn is_field(w: &str) -> bool {
    let Some((proto, rest)) = w.split_once('.') else {
        return false;
    };
    FIELD_PROTOCOLS.contains(&proto)
        && !rest.is_empty()
        && rest.split('.').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        })
        && rest.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Splits into words, parentheses and operators.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            out.push(std::mem::take(cur));
        }
    };
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        if matches!(two.as_str(), "==" | "!=" | ">=" | "<=" | "&&" | "||") {
            flush(&mut cur, &mut out);
            out.push(two);
            i += 2;
            continue;
        }
        if c.is_whitespace() {
            flush(&mut cur, &mut out);
        } else if matches!(c, '(' | ')' | '!' | '<' | '>') {
            flush(&mut cur, &mut out);
            out.push(c.to_string());
        } else {
            cur.push(c);
        }
        i += 1;
    }
    flush(&mut cur, &mut out);
    out
}

struct Translator<'w> {
    words: &'w [String],
    at: usize,
}

impl Translator<'_> {
    fn peek(&self) -> Option<&str> {
        self.words.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> Option<&str> {
        let w = self.words.get(self.at)?;
        self.at += 1;
        Some(w.as_str())
    }

    fn translate(mut self) -> Option<String> {
        let e = self.expr()?;
        (self.at == self.words.len()).then_some(e)
    }

    fn expr(&mut self) -> Option<String> {
        let mut out = self.term()?;
        while let Some(op) = self.peek() {
            let joined = match op {
                "and" | "&&" => "and",
                "or" | "||" => "or",
                _ => break,
            };
            self.at += 1;
            let rhs = self.term()?;
            out = format!("{out} {joined} {rhs}");
        }
        Some(out)
    }

    fn term(&mut self) -> Option<String> {
        match self.peek()? {
            "not" | "!" => {
                self.at += 1;
                let t = self.term()?;
                Some(format!("not {t}"))
            }
            "(" => {
                self.at += 1;
                let e = self.expr()?;
                if self.next()? != ")" {
                    return None;
                }
                Some(format!("({e})"))
            }
            _ => {
                let field = self.next()?.to_owned();
                let op = match self.peek() {
                    Some(
                        o @ ("eq" | "==" | "ne" | "!=" | "gt" | ">" | "lt" | "<" | "ge" | ">="
                        | "le" | "<="),
                    ) => {
                        let o = o.to_owned();
                        self.at += 1;
                        Some(o)
                    }
                    Some(w) if OPERATOR_WORDS.contains(&w) => return None,
                    _ => None,
                };
                match op {
                    Some(op) => {
                        let value = self.next()?.to_owned();
                        comparison(&field, &op, &value)
                    }
                    None => bare(&field),
                }
            }
        }
    }
}

fn bare(field: &str) -> Option<String> {
    Some(match field {
        "tcp" | "udp" | "icmp" | "arp" | "ip" | "sctp" | "vlan" => field.to_owned(),
        "ipv6" => "ip6".to_owned(),
        "icmpv6" => "icmp6".to_owned(),
        "dns" => "port 53".to_owned(),
        f => {
            let flag = f.strip_prefix("tcp.flags.")?;
            format!("tcp[tcpflags] & {} != 0", tcp_flag(flag)?)
        }
    })
}

fn tcp_flag(name: &str) -> Option<&'static str> {
    Some(match name {
        "syn" => "tcp-syn",
        "ack" => "tcp-ack",
        "fin" => "tcp-fin",
        "reset" => "tcp-rst",
        "push" => "tcp-push",
        "urg" => "tcp-urg",
        "ece" => "tcp-ece",
        "cwr" => "tcp-cwr",
        _ => return None,
    })
}

fn comparison(field: &str, op: &str, value: &str) -> Option<String> {
    let rel = match op {
        "eq" | "==" => "==",
        "ne" | "!=" => "!=",
        "gt" | ">" => ">",
        "lt" | "<" => "<",
        "ge" | ">=" => ">=",
        "le" | "<=" => "<=",
        _ => return None,
    };
    let negate = |s: String| {
        if rel == "!=" {
            Some(format!("not {s}"))
        } else if rel == "==" {
            Some(s)
        } else {
            None
        }
    };
    if let Some(flag) = field.strip_prefix("tcp.flags.") {
        let flag = tcp_flag(flag)?;
        let set = match (rel, value) {
            ("==", "1" | "true" | "True") | ("!=", "0" | "false" | "False") => true,
            ("==", "0" | "false" | "False") | ("!=", "1" | "true" | "True") => false,
            _ => return None,
        };
        return Some(format!(
            "tcp[tcpflags] & {flag} {} 0",
            if set { "!=" } else { "==" }
        ));
    }
    match field {
        "frame.len" => Some(format!("len {rel} {value}")),
        "ip.addr" | "ipv6.addr" => negate(format!("host {value}")),
        "ip.src" | "ipv6.src" => negate(format!("src host {value}")),
        "ip.dst" | "ipv6.dst" => negate(format!("dst host {value}")),
        "eth.addr" => negate(format!("ether host {value}")),
        "eth.src" => negate(format!("ether src {value}")),
        "eth.dst" => negate(format!("ether dst {value}")),
        "ip.proto" => negate(format!("ip proto {value}")),
        "vlan.id" => negate(format!("vlan {value}")),
        "tcp.port" | "udp.port" | "sctp.port" => {
            negate(format!("{} port {value}", &field[..field.find('.')?]))
        }
        "tcp.srcport" | "udp.srcport" | "sctp.srcport" => {
            negate(format!("{} src port {value}", &field[..field.find('.')?]))
        }
        "tcp.dstport" | "udp.dstport" | "sctp.dstport" => {
            negate(format!("{} dst port {value}", &field[..field.find('.')?]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_notes_example_is_explained_and_translated() {
        let d = diagnose("(tcp.flags.reset eq 1) and (tcp.flags.ack eq 0)").unwrap();
        assert!(d.contains("Wireshark display filter"), "{d}");
        assert!(
            d.ends_with("(tcp[tcpflags] & tcp-rst != 0) and (tcp[tcpflags] & tcp-ack == 0)"),
            "{d}"
        );
        assert!(!d.contains('\n'));
    }

    #[test]
    fn common_display_filters() {
        let t = |s: &str| diagnose(s).unwrap();
        assert!(t("ip.addr == 198.51.100.1").ends_with("host 198.51.100.1"));
        assert!(
            t("tcp.port == 443 && !ip.src == 198.51.100.2")
                .ends_with("tcp port 443 and not src host 198.51.100.2")
        );
        assert!(t("http.request.method == \"GET\"").contains("pcap-filter syntax"));
        assert!(t("frame.len > 1000").ends_with("len > 1000"));
    }

    #[test]
    fn capture_filters_are_not_display_filters() {
        assert_eq!(diagnose("tcp port 80 and host 198.51.100.1"), None);
        assert_eq!(diagnose("host web.default.svc.cluster.local"), None);
        assert_eq!(diagnose("tcp[tcpflags] & tcp-syn != 0"), None);
    }
}
