//! The pcap-filter language compiled to classic BPF, with libpcap 1.10's
//! semantics, written for the agent because no trustworthy pure-Rust
//! compiler exists.
//!
//! Stages, each with its own types and printer (`--debug-filter` shows
//! them all), in the order libpcap splits the work:
//!
//! 1. [`lexer`]: text → [`lexer::Token`]s (libpcap's `scanner.l`);
//! 2. [`parser`]: tokens → [`ast::Expr`], with qualifier inheritance
//!    resolved (`grammar.y`);
//! 3. [`codegen`]: tree → [`cfg::Cfg`], a graph of basic blocks, for a
//!    [`LinkType`] (`gencode.c`);
//! 4. [`optimize`]: the graph simplified as libpcap's optimizer does, which
//!    decides the verdict on truncated packets and detects filters that
//!    reject everything (`optimize.c`);
//! 5. [`cfg::Cfg::linearize`]: the graph laid out as a [`bpf::Program`],
//!    with long jumps where needed; [`bpf`] also disassembles (`-d`) and
//!    interprets (`-r`, tests).
//!
//! ```ignore
//! let target = Target::offline(LinkType::Ethernet, 262144, &numeric_only);
//! let program = compile("tcp port 443 and host 198.51.100.1", &target)?;
//! assert!(program.insns.len() < 40);
//! ```
//!
//! Correctness is established against libpcap itself: the end-to-end
//! suite runs a corpus of expressions over a corpus of packets through
//! both and requires the same packets to match (`tests/tests/tcpdump.rs`).

pub mod ast;
pub mod bpf;
pub mod cfg;
mod codegen;
#[cfg(test)]
mod fuzz;
pub mod lexer;
mod names;
mod optimize;
mod parser;
mod wireshark;

use std::net::IpAddr;

use bpf::Program;
use lexer::Span;

/// The link-layer header the filter is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// DLT_EN10MB: Ethernet, 14-byte header (and VLAN tags in the frame).
    Ethernet,
    /// DLT_LINUX_SLL: Linux "cooked" header of 16 bytes, for `-i any`.
    LinuxSll,
}

impl LinkType {
    /// The pcap LINKTYPE value.
    pub fn linktype(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::LinuxSll => 113,
        }
    }

    pub fn from_linktype(v: u32) -> Option<LinkType> {
        match v {
            1 => Some(LinkType::Ethernet),
            113 => Some(LinkType::LinuxSll),
            _ => None,
        }
    }

    /// tcpdump's words for it (`link-type EN10MB (Ethernet)`).
    pub fn describe(self) -> &'static str {
        match self {
            LinkType::Ethernet => "EN10MB (Ethernet)",
            LinkType::LinuxSll => "LINUX_SLL (Linux cooked v1)",
        }
    }
}

/// Resolves host names used in a filter: every address of the name, of
/// both families (libpcap asks getaddrinfo for `PF_UNSPEC` whatever the
/// qualifier, then keeps or refuses addresses by the qualifier).
pub type Resolver<'a> = dyn Fn(&str) -> Result<Vec<IpAddr>, String> + 'a;

/// A resolver that knows no names (for tests): filters must use addresses.
#[cfg(test)]
pub fn numeric_only(name: &str) -> Result<Vec<IpAddr>, String> {
    Err(format!(
        "unknown host '{name}' (host names are not resolved here; give an address)"
    ))
}

/// What the program will run on.
pub struct Target<'a> {
    pub link: LinkType,
    /// A live capture on Linux, where the kernel has moved the outer VLAN
    /// tag into the packet's metadata (libpcap's
    /// BPF_SPECIAL_VLAN_HANDLING): `vlan` tests the metadata first.
    pub vlan_metadata: bool,
    /// Reading a savefile: there is no packet type to read, so `inbound`
    /// and `outbound` are errors on Ethernet.
    pub savefile: bool,
    /// What the program returns for a match (bytes to keep).
    pub snaplen: u32,
    /// The interface's IPv4 netmask for `ip broadcast` (`None`: unknown).
    pub netmask: Option<u32>,
    pub resolve: &'a Resolver<'a>,
}

#[cfg(test)]
impl<'a> Target<'a> {
    /// Reading a savefile, as `tcpdump -r` compiles (netmask 0).
    pub fn offline(link: LinkType, snaplen: u32, resolve: &'a Resolver<'a>) -> Target<'a> {
        Target {
            link,
            vlan_metadata: false,
            savefile: true,
            snaplen,
            netmask: Some(0),
            resolve,
        }
    }
}

/// A compile error: the message, and where in the text it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    pub span: Option<Span>,
    pub message: String,
}

impl FilterError {
    pub fn at(span: Span, message: impl Into<String>) -> FilterError {
        FilterError {
            span: Some(span),
            message: message.into(),
        }
    }

    pub fn whole(message: impl Into<String>) -> FilterError {
        FilterError {
            span: None,
            message: message.into(),
        }
    }

    /// The message with its position: `syntax error at "eq" (column 17)`.
    pub fn one_line(&self, text: &str) -> String {
        match self.span {
            Some(s) if !text.is_empty() => {
                let column = text[..s.start.min(text.len())].chars().count() + 1;
                format!("{} (column {column} of the filter)", self.message)
            }
            _ => self.message.clone(),
        }
    }

    /// The filter and a caret line under the offending text.
    pub fn caret(&self, text: &str) -> Option<String> {
        let s = self.span?;
        if text.contains('\n') || text.is_empty() {
            return None;
        }
        let start = text[..s.start.min(text.len())].chars().count();
        let width = text[s.start.min(text.len())..s.end.min(text.len())]
            .chars()
            .count()
            .max(1);
        Some(format!(
            "  {text}\n  {}{}",
            " ".repeat(start),
            "^".repeat(width)
        ))
    }
}

/// The intermediate forms, for `--debug-filter`.
pub struct Stages {
    pub tokens: String,
    pub tree: String,
    pub blocks: String,
    pub optimized: String,
}

/// Compiles `text` for `target`.
#[cfg(test)]
pub fn compile(text: &str, target: &Target<'_>) -> Result<Program, FilterError> {
    compile_stages(text, target).map(|(p, _)| p)
}

/// Compiles and keeps every stage's printout.
pub fn compile_stages(text: &str, target: &Target<'_>) -> Result<(Program, Stages), FilterError> {
    let explain = |e: FilterError| match wireshark::diagnose(text) {
        Some(d) => FilterError::whole(d),
        None => e,
    };
    let tokens = lexer::lex(text).map_err(explain)?;
    let tree = parser::parse(&tokens, text.len()).map_err(explain)?;
    let mut graph = codegen::generate(tree.as_ref(), target)?;
    let blocks = graph.to_string();
    optimize::optimize(&mut graph).map_err(|e| FilterError::whole(e.message()))?;
    let program = graph.linearize();
    if program.insns.len() > bpf::MAX_INSNS {
        return Err(FilterError::whole(format!(
            "the filter compiles to {} BPF instructions and the kernel accepts at most {}; make it shorter",
            program.insns.len(),
            bpf::MAX_INSNS
        )));
    }
    program
        .validate()
        .map_err(|e| FilterError::whole(format!("internal error: invalid program: {e}")))?;
    let stages = Stages {
        tokens: lexer::dump(&tokens),
        tree: tree
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_else(|| "<empty: every packet>".into()),
        blocks,
        optimized: graph.to_string(),
    };
    Ok((program, stages))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(text: &str) -> Result<Program, FilterError> {
        compile(
            text,
            &Target::offline(LinkType::Ethernet, 262144, &numeric_only),
        )
    }

    #[test]
    fn matches_libpcap_for_simple_filters() {
        // tcpdump -d 'ip' and 'tcp port 80' (libpcap 1.10.3), verbatim.
        assert_eq!(
            eth("ip").unwrap().disassemble(),
            "(000) ldh      [12]\n(001) jeq      #0x800           jt 2\tjf 3\n(002) ret      #262144\n(003) ret      #0\n"
        );
        let p = eth("ip6 and tcp port 443").unwrap();
        assert!(p.insns.len() <= 12, "{}", p.disassemble());
    }

    #[test]
    fn rejects_like_libpcap() {
        for (text, want) in [
            ("ip and arp", "expression rejects all packets"),
            ("tcp and udp", "expression rejects all packets"),
            ("port 80 and not port 80", "expression rejects all packets"),
            ("1 = 2", "expression rejects all packets"),
            (
                "src 1.1.1.1 and dst 2.2.2.2 and 3.3.3.3",
                "expression rejects all packets",
            ),
            ("net 1.2.3.4/24", "non-network bits set in \"1.2.3.4/24\""),
            ("ip[0] / (1 - 1) = 1", "division by zero"),
            ("ip[0] / 0 = 1", "division by zero"),
            ("ip[0] << 32 = 1", "shift by more than 31 bits"),
            ("tcp[0:3] = 1", "data size must be 1, 2, or 4"),
            ("vlan 4096", "VLAN tag 4096 greater than maximum 4095"),
            ("port 70000", "illegal port number 70000 > 65535"),
            ("udp port http", "port 'http' is tcp"),
        ] {
            let e = eth(text).unwrap_err();
            assert_eq!(e.message, want, "{text}");
        }
        assert!(eth("less 10 and greater 20").is_ok());
        assert!(eth("ether[100] = 1 or 1 = 1").unwrap().insns.len() == 1);
    }

    #[test]
    fn errors_point_at_the_token() {
        let text = "host 198.51.100.1 and tcp prot 80";
        let e = eth(text).unwrap_err();
        assert_eq!(&text[e.span.unwrap().start..e.span.unwrap().end], "prot");
        let line = e.one_line(text);
        assert_eq!(
            line,
            "syntax error at \"prot\": \"prot\" is not a keyword; did you mean \"port\"? (column 27 of the filter)"
        );
        assert_eq!(
            e.caret(text).unwrap().lines().nth(1).unwrap(),
            format!("  {}^^^^", " ".repeat(26))
        );
        let e = eth("tcp port 80 and hots").unwrap_err();
        assert_eq!(e.message, "unknown port 'hots'");
        // The word before the failing token can be the misspelt one.
        let e = eth("tcp port 80 and hots 1.2.3.4").unwrap_err();
        assert!(
            e.message
                .ends_with("\"hots\" is not a keyword; did you mean \"host\"?"),
            "{}",
            e.message
        );
    }

    #[test]
    fn display_filters_are_recognised() {
        let e = eth("(tcp.flags.reset eq 1) and (tcp.flags.ack eq 0)").unwrap_err();
        assert!(
            e.message.contains("Wireshark display filter"),
            "{}",
            e.message
        );
    }
}
