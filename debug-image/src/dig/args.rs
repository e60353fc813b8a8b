//! `dig`'s command line, parsed the way bind's dig reads it: `@server`,
//! dash options, `+query-options` (unique prefixes accepted, `+no` negates),
//! and bare words that are a type, a class, or the name.
//!
//! Hand-written rather than clap: dig's grammar (`@`, `+norec`, a type
//! recognised by its spelling anywhere on the line) has no clap shape, and
//! SREs type it from memory. Only validation happens here; files and
//! sockets come later.

use std::ffi::OsString;
use std::net::IpAddr;

use netdiag_wire::OutputFormat;

use crate::cli::{self, Failure};
use crate::dns::{Family, Libc, types};

/// Which sections and comment lines to print (`+[no]all` and friends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections {
    pub cmd: bool,
    pub comments: bool,
    pub question: bool,
    pub answer: bool,
    pub authority: bool,
    pub additional: bool,
    pub stats: bool,
}

impl Sections {
    fn all(on: bool) -> Sections {
        Sections {
            cmd: on,
            comments: on,
            question: on,
            answer: on,
            authority: on,
            additional: on,
            stats: on,
        }
    }
}

/// Everything the command line asked for.
#[derive(Clone, Debug)]
pub struct DigArgs {
    /// The words after the tool name, for the `; <<>> ... <<>>` banner.
    pub command_line: String,
    pub server: Option<String>,
    pub port: u16,
    pub family: Family,
    pub name: Option<String>,
    pub qtype: Option<u16>,
    pub qclass: u16,
    pub reverse: Option<IpAddr>,
    /// `+tcp`/`+notcp` if given; dig uses TCP for ANY unless told.
    pub tcp: Option<bool>,
    pub short: bool,
    pub recurse: bool,
    pub search: bool,
    pub show_search: bool,
    pub ndots: Option<u32>,
    pub timeout_secs: u32,
    pub tries: u32,
    pub bufsize: Option<u16>,
    pub edns: bool,
    pub adflag: bool,
    pub cdflag: bool,
    /// `+ignore`: do not retry a truncated answer over TCP.
    pub ignore_tc: bool,
    pub sections: Sections,
    pub output: OutputFormat,
    /// `--explain`: run `resolve` on the name instead.
    pub explain: bool,
    pub libc: Libc,
    /// Warnings to print to stderr, as dig does ("extra type option").
    pub warnings: Vec<String>,
}

impl Default for DigArgs {
    fn default() -> DigArgs {
        DigArgs {
            command_line: String::new(),
            server: None,
            port: 53,
            family: Family::Any,
            name: None,
            qtype: None,
            qclass: 1,
            reverse: None,
            tcp: None,
            short: false,
            recurse: true,
            search: false,
            show_search: false,
            ndots: None,
            timeout_secs: 5,
            tries: 3,
            bufsize: None,
            edns: true,
            adflag: true,
            cdflag: false,
            ignore_tc: false,
            sections: Sections::all(true),
            output: OutputFormat::Text,
            explain: false,
            libc: Libc::Glibc,
            warnings: Vec::new(),
        }
    }
}

pub const USAGE: &str = "\
Usage:  dig [@server] [-p port] [-4|-6] [-x addr] [-t type] [-c class] [-q name]
            [name] [type] [class] [+query-option...] [-o json] [--explain [--libc glibc|musl]]

Where:  name   is the name to look up (default: the root zone, type NS)
        type   is any record type by name (A, AAAA, MX, SRV, TXT, ...) or TYPEnnn
        server is an address (or a name resolved like the pod would);
               default: the nameservers of /etc/resolv.conf

Query options (+no... turns an option off; unique prefixes work, e.g. +norec):
        +tcp / +vc          use TCP
        +short              print only the answer data
        +[no]recurse        recursion desired flag (default on)
        +[no]search         use resolv.conf's search list (default off)
        +showsearch         print each search step
        +ndots=N            dots needed to skip the search list (default: resolv.conf)
        +timeout=N          seconds to wait for an answer (default 5)
        +tries=N / +retry=N UDP attempts per server (default 3 / retries 2)
        +bufsize=N          EDNS UDP payload size (also turns EDNS on)
        +[no]edns           EDNS(0) (default on)
        +[no]adflag +[no]cdflag +[no]ignore
        +[no]all +[no]cmd +[no]comments +[no]question +[no]answer
        +[no]authority +[no]additional +[no]stats
Other:
        -o json             one JSON document instead of dig's text
        --explain           replay the pod's stub resolver for name (same as 'resolve NAME')

Exit status: 0 answered (whatever the rcode), 1 bad input, 9 no server answered.
";

/// Query options: (name, takes a value). Abbreviations must be unique.
const PLUS_OPTIONS: &[(&str, bool)] = &[
    ("additional", false),
    ("adflag", false),
    ("all", false),
    ("answer", false),
    ("authority", false),
    ("bufsize", true),
    ("cdflag", false),
    ("cmd", false),
    ("comments", false),
    ("cookie", false),
    ("edns", true),
    ("fail", false),
    ("ignore", false),
    ("ndots", true),
    ("question", false),
    ("recurse", false),
    ("retry", true),
    ("search", false),
    ("short", false),
    ("showsearch", false),
    ("stats", false),
    ("tcp", false),
    ("timeout", true),
    ("tries", true),
    ("vc", false),
];

/// Options bind's dig has that this one does not implement.
const UNSUPPORTED_PLUS: &[&str] = &[
    "aaflag",
    "aaonly",
    "badcookie",
    "besteffort",
    "class",
    "crypto",
    "defname",
    "dns64prefix",
    "dnssec",
    "domain",
    "expandaaaa",
    "expire",
    "header-only",
    "https",
    "http-plain",
    "identify",
    "idnin",
    "idnout",
    "keepalive",
    "keepopen",
    "mapped",
    "multiline",
    "nsid",
    "nssearch",
    "onesoa",
    "opcode",
    "padding",
    "qid",
    "qr",
    "raflag",
    "rdflag",
    "rrcomments",
    "sigchase",
    "split",
    "subnet",
    "tls",
    "tls-ca",
    "tls-certfile",
    "tls-hostname",
    "tls-keyfile",
    "topdown",
    "trace",
    "ttlid",
    "ttlunits",
    "unexpected",
    "unknownformat",
    "yaml",
    "zflag",
];

fn bad(text: impl Into<String>) -> Failure {
    Failure::msg(text)
}

/// Parses `args` (position 0 is the tool name).
pub fn parse(args: Vec<OsString>) -> Result<DigArgs, Failure> {
    let args = cli::rewrite_output_flag(args);
    let mut words = Vec::with_capacity(args.len());
    for a in args.into_iter().skip(1) {
        match a.into_string() {
            Ok(s) => words.push(s),
            Err(a) => {
                return Err(bad(format!(
                    "argument {:?} is not valid UTF-8; names and options are text",
                    a.to_string_lossy()
                )));
            }
        }
    }
    let mut d = DigArgs {
        command_line: words.join(" "),
        ..DigArgs::default()
    };
    let mut i = 0;
    // The value of `-p 53` / `-p53`.
    let value = |i: &mut usize, flag: &str, attached: &str| -> Result<String, Failure> {
        if !attached.is_empty() {
            return Ok(attached.to_owned());
        }
        *i += 1;
        words
            .get(*i)
            .cloned()
            .ok_or_else(|| bad(format!("option {flag} needs a value; see 'dig --help'")))
    };
    while i < words.len() {
        let word = words[i].clone();
        if let Some(server) = word.strip_prefix('@') {
            if server.is_empty() {
                return Err(bad("'@' needs a server address, e.g. @198.51.100.53"));
            }
            d.server = Some(server.to_owned());
        } else if let Some(opt) = word.strip_prefix('+') {
            plus_option(&mut d, opt)?;
        } else if let Some(long) = word.strip_prefix("--") {
            match long {
                "help" => return Err(say(USAGE)),
                "version" => return Err(say(&version())),
                "explain" => d.explain = true,
                "output=json" => d.output = OutputFormat::Json,
                "output=text" => d.output = OutputFormat::Text,
                _ if long.starts_with("output") => {
                    return Err(bad(format!(
                        "unknown output format in --{long}; expected -o json or -o text"
                    )));
                }
                "libc" | "libc=glibc" | "libc=musl" => {
                    let v = match long.split_once('=') {
                        Some((_, v)) => v.to_owned(),
                        None => value(&mut i, "--libc", "")?,
                    };
                    d.libc = parse_libc(&v)?;
                }
                _ if long.starts_with("libc=") => {
                    d.libc = parse_libc(&long["libc=".len()..])?;
                }
                _ => {
                    return Err(bad(format!("unknown option --{long}; see 'dig --help'")));
                }
            }
        } else if word.len() >= 2 && word.starts_with('-') {
            let flag = &word[..2];
            let attached = &word[2..];
            match flag {
                "-h" => return Err(say(USAGE)),
                "-v" => return Err(say(&version())),
                "-4" | "-6" if !attached.is_empty() => {
                    return Err(bad(format!("invalid option {word}; see 'dig --help'")));
                }
                "-4" => d.family = Family::V4,
                "-6" => d.family = Family::V6,
                "-p" => {
                    let v = value(&mut i, "-p", attached)?;
                    d.port =
                        v.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                            bad(format!("invalid port \"{v}\"; expected 1-65535"))
                        })?;
                }
                "-x" => {
                    let v = value(&mut i, "-x", attached)?;
                    let addr = crate::dns::numeric(&v).ok_or_else(|| {
                        bad(format!("-x needs an IPv4 or IPv6 address, got \"{v}\""))
                    })?;
                    d.reverse = Some(addr);
                    if d.qtype.is_none() {
                        d.qtype = Some(12);
                    }
                }
                "-t" => {
                    let v = value(&mut i, "-t", attached)?;
                    d.qtype = Some(parse_qtype(&v)?);
                }
                "-c" => {
                    let v = value(&mut i, "-c", attached)?;
                    d.qclass = types::parse_class(&v).ok_or_else(|| {
                        bad(format!(
                            "unknown class \"{v}\"; expected IN, CH, HS or CLASSnnn"
                        ))
                    })?;
                }
                "-q" => {
                    let v = value(&mut i, "-q", attached)?;
                    set_name(&mut d, v)?;
                }
                "-b" | "-f" | "-k" | "-y" | "-m" | "-r" | "-u" | "-i" => {
                    return Err(bad(format!(
                        "option {flag} is not supported by this dig; see 'dig --help'"
                    )));
                }
                _ => {
                    return Err(bad(format!("invalid option {word}; see 'dig --help'")));
                }
            }
        } else if let Some(t) = types::parse_type(&word) {
            if matches!(t, 251 | 252) {
                return Err(bad(format!(
                    "zone transfers ({}) are not supported; ask for a record type",
                    word.to_uppercase()
                )));
            }
            if d.qtype.is_some() && d.reverse.is_none() {
                d.warnings.push(";; Warning, extra type option".to_owned());
            }
            d.qtype = Some(t);
        } else if let Some(c) = types::parse_class(&word) {
            d.qclass = c;
        } else {
            set_name(&mut d, word)?;
        }
        i += 1;
    }
    if d.explain && d.name.is_none() {
        return Err(bad(
            "--explain needs a name, e.g. 'dig --explain web.default'",
        ));
    }
    Ok(d)
}

fn version() -> String {
    format!("dig (netdiag-agent {})\n", env!("CARGO_PKG_VERSION"))
}

/// Prints `--help`/`--version` text; a closed stdout is not a panic.
fn say(text: &str) -> Failure {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => Failure::Exit(0),
        Err(e) => Failure::from(e),
    }
}

fn parse_libc(v: &str) -> Result<Libc, Failure> {
    match v {
        "glibc" | "gnu" => Ok(Libc::Glibc),
        "musl" => Ok(Libc::Musl),
        other => Err(bad(format!(
            "unknown C library \"{other}\"; expected glibc or musl"
        ))),
    }
}

fn set_name(d: &mut DigArgs, name: String) -> Result<(), Failure> {
    if let Some(first) = &d.name {
        return Err(bad(format!(
            "one name per run: got \"{first}\" and \"{name}\" (an unknown record type is taken as a name; types are A, MX, TXT, ... or TYPEnnn)"
        )));
    }
    d.name = Some(name);
    Ok(())
}

fn parse_qtype(v: &str) -> Result<u16, Failure> {
    match types::parse_type(v) {
        Some(251 | 252) => Err(bad(format!(
            "zone transfers ({v}) are not supported; ask for a record type"
        ))),
        Some(t) => Ok(t),
        None => Err(bad(format!(
            "unknown record type \"{v}\"; use a name (A, AAAA, MX, SRV, TXT, ...) or TYPEnnn"
        ))),
    }
}

/// One `+option`, `+nooption` or `+option=value`.
fn plus_option(d: &mut DigArgs, text: &str) -> Result<(), Failure> {
    let (key, val) = match text.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (text, None),
    };
    let (negated, key) = match key.strip_prefix("no") {
        // "+nothing" is not "+no" + "thing" only if "nothing" is an option;
        // none of ours starts with "no", so strip it.
        Some(rest) if !rest.is_empty() => (true, rest),
        _ => (false, key),
    };
    let key_lower = key.to_ascii_lowercase();
    let matches: Vec<&(&str, bool)> = PLUS_OPTIONS
        .iter()
        .filter(|(name, _)| name.starts_with(key_lower.as_str()))
        .collect();
    let exact = PLUS_OPTIONS.iter().find(|(name, _)| *name == key_lower);
    let (name, takes_value) = match (exact, matches.as_slice()) {
        (Some(o), _) => *o,
        (None, [one]) => **one,
        (None, []) => {
            if UNSUPPORTED_PLUS
                .iter()
                .any(|u| u.starts_with(key_lower.as_str()))
            {
                return Err(bad(format!(
                    "query option +{text} is not supported by this dig; see 'dig --help'"
                )));
            }
            return Err(bad(format!(
                "invalid query option +{text}; see 'dig --help'"
            )));
        }
        (None, many) => {
            let names: Vec<&str> = many.iter().map(|(n, _)| *n).collect();
            return Err(bad(format!(
                "ambiguous query option +{text}: could be +{}",
                names.join(", +")
            )));
        }
    };
    let number = |what: &str, max: u32| -> Result<u32, Failure> {
        let v = val.ok_or_else(|| bad(format!("+{name} needs a value, e.g. +{name}={what}")))?;
        let n: u32 = v
            .parse()
            .map_err(|_| bad(format!("invalid value in +{text}; expected a number")))?;
        if n > max {
            return Err(bad(format!("+{name}={n} is out of range (at most {max})")));
        }
        Ok(n)
    };
    if takes_value && negated && name != "edns" {
        return Err(bad(format!("+no{name} takes no value; see 'dig --help'")));
    }
    if !takes_value && val.is_some() {
        return Err(bad(format!("+{name} takes no value")));
    }
    let on = !negated;
    let s = &mut d.sections;
    match name {
        "all" => {
            let short = d.short;
            *s = Sections::all(on);
            d.short = short;
        }
        "answer" => s.answer = on,
        "authority" => s.authority = on,
        "additional" => s.additional = on,
        "question" => s.question = on,
        "cmd" => s.cmd = on,
        "comments" => s.comments = on,
        "stats" => s.stats = on,
        "short" => d.short = on,
        "tcp" | "vc" => d.tcp = Some(on),
        "recurse" => d.recurse = on,
        "search" => d.search = on,
        "showsearch" => {
            d.show_search = on;
            d.search |= on;
        }
        "adflag" => d.adflag = on,
        "cdflag" => d.cdflag = on,
        "ignore" => d.ignore_tc = on,
        "fail" | "cookie" => {}
        "edns" => {
            if negated {
                d.edns = false;
            } else {
                if let Some(v) = val
                    && v != "0"
                {
                    return Err(bad(format!("+edns={v}: only EDNS version 0 is supported")));
                }
                d.edns = true;
            }
        }
        "ndots" => d.ndots = Some(number("1", 255)?),
        "timeout" => d.timeout_secs = number("2", 3600)?.max(1),
        "tries" => d.tries = number("3", 100)?.max(1),
        "retry" => d.tries = number("2", 99)? + 1,
        "bufsize" => d.bufsize = Some(number("1232", 65535)? as u16),
        _ => unreachable!("every entry of PLUS_OPTIONS is handled"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<DigArgs, String> {
        let mut v: Vec<OsString> = vec!["dig".into()];
        v.extend(args.iter().map(OsString::from));
        parse(v).map_err(|e| e.to_string())
    }

    #[test]
    fn typical_lines() {
        let d = p(&[
            "@198.51.100.53",
            "www.netdiag.test",
            "aaaa",
            "+short",
            "+norec",
        ])
        .unwrap();
        assert_eq!(d.server.as_deref(), Some("198.51.100.53"));
        assert_eq!(d.name.as_deref(), Some("www.netdiag.test"));
        assert_eq!(d.qtype, Some(28));
        assert!(d.short && !d.recurse);
        let d = p(&["-p", "5353", "-x", "198.51.100.10", "+tcp", "-o", "json"]).unwrap();
        assert_eq!((d.port, d.qtype, d.tcp), (5353, Some(12), Some(true)));
        assert_eq!(d.output, OutputFormat::Json);
        let d = p(&["mx"]).unwrap();
        assert_eq!((d.name, d.qtype), (None, Some(15)));
        let d = p(&[
            "x.test",
            "TYPE65534",
            "+noall",
            "+answer",
            "+bufsize=512",
            "+noedns",
        ])
        .unwrap();
        assert_eq!(d.qtype, Some(65534));
        assert!(d.sections.answer && !d.sections.question && !d.edns);
        assert_eq!(d.bufsize, Some(512));
        let d = p(&["--explain", "--libc", "musl", "web"]).unwrap();
        assert!(d.explain && d.libc == Libc::Musl);
    }

    #[test]
    fn errors_are_one_line() {
        for bad in [
            &["-t", "BOGUS", "x"][..],
            &["+frobnicate"],
            &["+a"],
            &["+trace", "x"],
            &["-p", "0"],
            &["-x", "not-an-ip"],
            &["a.test", "b.test"],
            &["@"],
            &["+timeout=abc"],
            &["-k", "file"],
            &["x", "AXFR"],
        ] {
            let e = p(bad).unwrap_err();
            assert!(!e.contains('\n'), "{bad:?}: {e}");
        }
        assert!(p(&["+a"]).unwrap_err().contains("ambiguous"));
        assert!(p(&["x", "BOGUS"]).unwrap_err().contains("one name per run"));
    }
}
