//! What the plugin knows about each agent tool without asking the cluster:
//! its synopsis for `--help`, the privileges it needs, and whether it reads
//! the user's stdin.
//!
//! Least privilege is decided here: a tool gets only the capabilities it
//! needs, so most tools run under Pod Security "restricted".

use std::fmt;

/// The securityContext an ephemeral container runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// uid 65532, no capabilities, no privilege escalation, seccomp
    /// RuntimeDefault: admissible under Pod Security "restricted".
    Restricted,
    /// uid 0 with NET_RAW: packet capture (promiscuous mode through a
    /// packet socket needs no more). Admissible under Pod Security
    /// "baseline", whose default capabilities include NET_RAW.
    NetAdmin,
    /// uid 0 with SYS_PTRACE: reading other processes' file descriptors
    /// (`ss -p`). Needs Pod Security "privileged".
    General,
}

impl Profile {
    pub fn parse(s: &str) -> Result<Profile, String> {
        match s {
            "restricted" => Ok(Profile::Restricted),
            "netadmin" => Ok(Profile::NetAdmin),
            "general" => Ok(Profile::General),
            other => Err(format!(
                "unknown profile \"{other}\"; expected restricted, netadmin or general"
            )),
        }
    }

    /// Capabilities added on top of dropping ALL.
    pub fn capabilities(self) -> &'static [&'static str] {
        match self {
            Profile::Restricted => &[],
            Profile::NetAdmin => &["NET_RAW"],
            Profile::General => &["SYS_PTRACE"],
        }
    }

    pub fn runs_as_root(self) -> bool {
        self != Profile::Restricted
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Restricted => "restricted",
            Profile::NetAdmin => "netadmin",
            Profile::General => "general",
        })
    }
}

pub struct Tool {
    pub name: &'static str,
    pub synopsis: &'static str,
    pub about: &'static str,
    /// Forward the user's stdin to the tool (otherwise it gets none).
    pub reads_stdin: bool,
}

pub const TOOLS: &[Tool] = &[
    Tool {
        name: "ss",
        synopsis: "ss [-tuwxlanpmieosH46] [-A QUERY] [-o json] [state STATE] [FILTER]",
        about: "sockets: listeners, connections, queues, timers, TCP internals",
        reads_stdin: false,
    },
    Tool {
        name: "nstat",
        synopsis: "nstat [-azsnr] [--drops] [-o json] [PATTERN...]",
        about: "protocol counters; --drops shows only loss and overflow counters",
        reads_stdin: false,
    },
    Tool {
        name: "dig",
        synopsis: "dig [@server] [-p port] [-x addr] name [type] [+tcp] [+short] [+search] [-o json]",
        about: "DNS queries, as bind9's dig",
        reads_stdin: false,
    },
    Tool {
        name: "resolve",
        synopsis: "resolve NAME [--libc glibc|musl] [-o json]",
        about: "replay the pod resolver's queries for NAME (search, ndots) with a verdict",
        reads_stdin: false,
    },
    Tool {
        name: "nc",
        synopsis: "nc [-vnzulkN] [-p port] [-s addr] [-w secs] [-4|-6] host port|lo-hi",
        about: "TCP/UDP connect, listen and port scan, as OpenBSD netcat",
        reads_stdin: true,
    },
    Tool {
        name: "paping",
        synopsis: "paping host -p port [-c count] [-t timeout_ms] [-i interval_ms] [-o json]",
        about: "TCP connect ping: loss and latency of a port over time",
        reads_stdin: false,
    },
    Tool {
        name: "tcpdump",
        synopsis: "tcpdump [-i iface|any] [-c count] [-s snaplen] [-nevxXA] [-w -|file] [expression]",
        about: "packet capture filtered in the kernel; -w - streams pcap",
        reads_stdin: false,
    },
];

pub fn find(name: &str) -> Option<&'static Tool> {
    TOOLS.iter().find(|t| t.name == name)
}

/// The privileges a tool invocation needs.
pub fn profile_for(tool: &str, args: &[String]) -> Profile {
    match tool {
        "tcpdump" => Profile::NetAdmin,
        "ss" if shows_processes(args) => Profile::General,
        _ => Profile::Restricted,
    }
}

/// Does an `ss` command line ask for processes (`-p`, `--processes`, or
/// `p` inside a short-flag cluster such as `-tlnp`)?
fn shows_processes(args: &[String]) -> bool {
    args.iter().any(|a| {
        a == "--processes"
            || (a.starts_with('-') && !a.starts_with("--") && a[1..].chars().any(|c| c == 'p'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn least_privilege_per_tool() {
        assert_eq!(profile_for("ss", &args(&["-tln"])), Profile::Restricted);
        assert_eq!(profile_for("ss", &args(&["-tlnp"])), Profile::General);
        assert_eq!(profile_for("ss", &args(&["--processes"])), Profile::General);
        assert_eq!(
            profile_for("tcpdump", &args(&["-i", "any"])),
            Profile::NetAdmin
        );
        assert_eq!(
            profile_for("dig", &args(&["example.test"])),
            Profile::Restricted
        );
        assert_eq!(
            profile_for("nc", &args(&["-vz", "h", "1"])),
            Profile::Restricted
        );
    }
}
