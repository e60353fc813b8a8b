//! `nc`'s command line: the flags as typed (clap), then the [`Plan`] they
//! mean, checked before any socket is opened.
//!
//! The flags are OpenBSD netcat's (Debian's `netcat-openbsd`), with its
//! rules: `-k` needs `-l`, `-z` and `-l` exclude each other, a port is a
//! number, a service name from /etc/services, or (connecting only) a range
//! `lo-hi`. Errors keep netcat's words ("port number too large: 70000") and
//! add what to do. Two deliberate differences from netcat: a reversed range
//! (`90-80`) is an error rather than silently swapped, and `-l` takes no
//! host (use `-s ADDR`), so a mistyped client command cannot turn into a
//! listener.

use std::ffi::OsString;
use std::time::Duration;

use clap::{ArgAction, Parser};

use super::resolve::Family;
use crate::cli::{self, Failure};

/// `nc`: OpenBSD-netcat compatible TCP/UDP connect, listen and port scan.
#[derive(Parser, Debug)]
#[command(
    name = "nc",
    version,
    about = "Arbitrary TCP and UDP connections and listens, like OpenBSD netcat",
    override_usage = "nc [-46klNnuvz] [-p source_port] [-s source] [-w timeout] destination port|lo-hi\n       \
        nc -l [-46kNnuv] [-s address] [-p] port",
    after_help = "Connect mode copies stdin to the connection and the connection to stdout, \
        byte for byte. With -z each port of a range is tried (many at once) and reported in order.\n\
        Exit status: 0 when a connection succeeded, 1 otherwise."
)]
pub struct NcArgs {
    /// Use IPv4 only
    #[arg(short = '4')]
    pub ipv4: bool,
    /// Use IPv6 only
    #[arg(short = '6', conflicts_with = "ipv4")]
    pub ipv6: bool,
    /// Keep listening for another connection after the current one ends (with -l)
    #[arg(short = 'k')]
    pub keep: bool,
    /// Listen for an incoming connection instead of connecting
    #[arg(short = 'l')]
    pub listen: bool,
    /// Shut down the network socket for writing after EOF on stdin
    #[arg(short = 'N')]
    pub shutdown_on_eof: bool,
    /// Numeric only: no name lookups, no service names
    #[arg(short = 'n')]
    pub numeric: bool,
    /// Local source port for connections (or the port to listen on with -l)
    #[arg(short = 'p', value_name = "PORT")]
    pub source_port: Option<String>,
    /// Local source address (or the address to listen on with -l)
    #[arg(short = 's', value_name = "ADDR")]
    pub source_addr: Option<String>,
    /// UDP instead of TCP
    #[arg(short = 'u')]
    pub udp: bool,
    /// Verbose: report each connection's success or failure on stderr
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
    /// Timeout for connects, and for how long a connection may stand still (seconds)
    #[arg(short = 'w', value_name = "SECS")]
    pub timeout: Option<String>,
    /// Zero-I/O mode: only report whether ports accept connections (scanning)
    #[arg(short = 'z')]
    pub scan: bool,
    /// destination and port (port, service name or range lo-hi); with -l only the port
    #[arg(value_name = "ARGS", num_args = 0..)]
    pub positionals: Vec<String>,
}

/// Transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// The name netcat prints: `(tcp)`, `[udp/*]`.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// What to do, fully checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub mode: Mode,
    pub proto: Proto,
    pub family: Family,
    pub verbose: bool,
    pub numeric: bool,
    /// `-N`: shut down the socket's write side on stdin EOF.
    pub shutdown_on_eof: bool,
    /// `-w`: connect timeout, and the idle limit once stdin has ended.
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Connect to each port of `ports` in turn (`-z`: only test them).
    Connect {
        host: String,
        ports: Vec<u16>,
        scan: bool,
        source_addr: Option<String>,
        source_port: Option<u16>,
    },
    /// Listen on `port` (`-k`: accept again after each connection).
    Listen {
        addr: Option<String>,
        port: u16,
        keep: bool,
    },
}

pub fn parse(args: Vec<OsString>) -> Result<Plan, Failure> {
    let args: NcArgs = cli::parse("nc", args)?;
    interpret(args).map_err(Failure::Message)
}

fn interpret(a: NcArgs) -> Result<Plan, String> {
    if a.keep && !a.listen {
        return Err("must use -l with -k; -k keeps a listener accepting".into());
    }
    if a.listen && a.scan {
        return Err("cannot use -z and -l; -z tests remote ports, -l listens".into());
    }
    let proto = if a.udp { Proto::Udp } else { Proto::Tcp };
    let family = match (a.ipv4, a.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    let timeout = a.timeout.as_deref().map(parse_timeout).transpose()?;
    let source_port = a
        .source_port
        .as_deref()
        .map(|p| parse_port(p, proto))
        .transpose()?;

    let mode = if a.listen {
        let port = match (a.positionals.as_slice(), source_port) {
            ([], Some(p)) => p,
            ([], None) => return Err("missing port number; listen with 'nc -l PORT'".into()),
            ([port], None) => parse_single_port(port, proto)?,
            ([port], Some(p)) => {
                let q = parse_single_port(port, proto)?;
                if p != q {
                    return Err(format!(
                        "two listening ports given ({p} with -p, {q} as argument); give the port once"
                    ));
                }
                p
            }
            ([host, _, ..], _) => {
                return Err(format!(
                    "-l listens on a local port and takes no destination (got \"{host}\"); \
                     choose the listening address with -s ADDR, e.g. 'nc -l -s {host} PORT'"
                ));
            }
        };
        Mode::Listen {
            addr: a.source_addr,
            port,
            keep: a.keep,
        }
    } else {
        let (host, port_arg) = match a.positionals.as_slice() {
            [] => {
                return Err(
                    "missing destination and port; usage: nc [-46lNnuvz] [-p port] [-s addr] [-w secs] host port|lo-hi"
                        .into(),
                );
            }
            [_] => return Err("missing port number; usage: nc host port|lo-hi".into()),
            [host, port] => (host.clone(), port.as_str()),
            [_, _, extra, ..] => {
                return Err(format!(
                    "unexpected argument \"{extra}\"; give one destination and one port or range lo-hi"
                ));
            }
        };
        Mode::Connect {
            host,
            ports: parse_ports(port_arg, proto)?,
            scan: a.scan,
            source_addr: a.source_addr,
            source_port,
        }
    };
    Ok(Plan {
        mode,
        proto,
        family,
        verbose: a.verbose > 0,
        numeric: a.numeric,
        shutdown_on_eof: a.shutdown_on_eof,
        timeout,
    })
}

/// `-w SECS`: whole seconds as in netcat, or a decimal (`0.5`).
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("timeout invalid: {s}; give seconds, e.g. -w 5"))?;
    if !(secs > 0.0 && secs <= 86_400.0 * 365.0) {
        return Err(format!(
            "timeout invalid: {s}; give seconds above 0, e.g. -w 5"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A port argument: one port or service name, or a range `lo-hi`.
pub fn parse_ports(s: &str, proto: Proto) -> Result<Vec<u16>, String> {
    if let Some((lo, hi)) = s.split_once('-')
        && s.starts_with(|c: char| c.is_ascii_digit())
    {
        let lo = port_number(lo)?;
        let hi = port_number(hi)?;
        if lo > hi {
            return Err(format!(
                "port range not valid: {s}; write the lower port first, e.g. {hi}-{lo}"
            ));
        }
        return Ok((lo..=hi).collect());
    }
    Ok(vec![parse_port(s, proto)?])
}

/// Where only one port makes sense (listening).
fn parse_single_port(s: &str, proto: Proto) -> Result<u16, String> {
    if s.contains('-') && s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "port range not valid here: {s}; -l listens on one port"
        ));
    }
    parse_port(s, proto)
}

/// One port: a number 1-65535, or a service name from /etc/services.
pub fn parse_port(s: &str, proto: Proto) -> Result<u16, String> {
    if s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
        return port_number(s);
    }
    crate::services::port_by_name(s, proto.name()).ok_or_else(|| {
        format!(
            "port number invalid: {s}; give a port number 1-65535, a range lo-hi, \
             or a service name listed in /etc/services"
        )
    })
}

/// netcat's strtonum words: too small, too large, invalid.
fn port_number(s: &str) -> Result<u16, String> {
    match s.parse::<i64>() {
        Ok(n) if n < 1 => Err(format!("port number too small: {s}; ports are 1-65535")),
        Ok(n) if n > 65535 => Err(format!("port number too large: {s}; ports are 1-65535")),
        Ok(n) => Ok(n as u16),
        Err(_) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("port number too large: {s}; ports are 1-65535"))
        }
        Err(_) => Err(format!(
            "port number invalid: {s}; give a port number 1-65535 or a range lo-hi"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let mut full = vec![OsString::from("nc")];
        full.extend(args.iter().map(OsString::from));
        match parse(full) {
            Ok(p) => Ok(p),
            Err(Failure::Message(m)) => Err(m),
            Err(other) => Err(format!("{other}")),
        }
    }

    #[test]
    fn ports_and_ranges() {
        assert_eq!(parse_ports("80", Proto::Tcp), Ok(vec![80]));
        assert_eq!(parse_ports("20-22", Proto::Tcp), Ok(vec![20, 21, 22]));
        assert_eq!(parse_ports("7-7", Proto::Tcp), Ok(vec![7]));
        assert!(
            parse_ports("70000", Proto::Tcp)
                .unwrap_err()
                .starts_with("port number too large: 70000;")
        );
        assert!(
            parse_ports("99999999999999999999", Proto::Tcp)
                .unwrap_err()
                .starts_with("port number too large:")
        );
        assert!(
            parse_ports("0", Proto::Tcp)
                .unwrap_err()
                .starts_with("port number too small: 0;")
        );
        assert!(
            parse_ports("90-80", Proto::Tcp)
                .unwrap_err()
                .starts_with("port range not valid: 90-80;")
        );
        assert!(
            parse_ports("80-abc", Proto::Tcp)
                .unwrap_err()
                .starts_with("port number invalid: abc;")
        );
        assert!(
            parse_ports("1.5", Proto::Tcp)
                .unwrap_err()
                .starts_with("port number invalid: 1.5;")
        );
    }

    #[test]
    fn modes() {
        let p = plan(&["-zv", "-w", "2", "198.51.100.1", "20-21"]).unwrap();
        assert_eq!(
            p.mode,
            Mode::Connect {
                host: "198.51.100.1".into(),
                ports: vec![20, 21],
                scan: true,
                source_addr: None,
                source_port: None
            }
        );
        assert!(p.verbose);
        assert_eq!(p.timeout, Some(Duration::from_secs(2)));

        let p = plan(&["-lk", "8080"]).unwrap();
        assert_eq!(
            p.mode,
            Mode::Listen {
                addr: None,
                port: 8080,
                keep: true
            }
        );
        let p = plan(&["-l", "-p", "8080", "-s", "198.51.100.1"]).unwrap();
        assert_eq!(
            p.mode,
            Mode::Listen {
                addr: Some("198.51.100.1".into()),
                port: 8080,
                keep: false
            }
        );
        let p = plan(&["-u6", "-w0.5", "fd42::1", "53"]).unwrap();
        assert_eq!(p.proto, Proto::Udp);
        assert_eq!(p.family, Family::V6);
        assert_eq!(p.timeout, Some(Duration::from_millis(500)));
    }

    #[test]
    fn bad_input_is_one_line() {
        for (args, start) in [
            (
                &["-l", "198.51.100.1", "80"][..],
                "-l listens on a local port",
            ),
            (&["-k", "h", "80"][..], "must use -l with -k"),
            (&["-lz", "80"][..], "cannot use -z and -l"),
            (&["198.51.100.1"][..], "missing port number"),
            (&[][..], "missing destination and port"),
            (&["-l"][..], "missing port number"),
            (&["-w", "abc", "h", "1"][..], "timeout invalid: abc"),
            (&["-w", "0", "h", "1"][..], "timeout invalid: 0"),
            (
                &["-p", "70000", "h", "1"][..],
                "port number too large: 70000",
            ),
            (&["-l", "80-90"][..], "port range not valid here: 80-90"),
            (&["h", "1", "2"][..], "unexpected argument \"2\""),
            (
                &["-4", "-6", "h", "1"][..],
                "the argument '-4' cannot be used with '-6'",
            ),
        ] {
            let err = plan(args).unwrap_err();
            assert!(err.starts_with(start), "{args:?}: {err}");
            assert!(!err.contains('\n'), "{args:?}: {err}");
        }
    }
}
