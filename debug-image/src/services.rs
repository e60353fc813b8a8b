//! Service names from /etc/services, for the tools that name ports (`nc`'s
//! `[tcp/http]`, `ss` without `-n`) or take them by name. The classic tools
//! ask libc's getservbyport/getservbyname; a static binary has no NSS, so
//! the file is read directly, with libc's rule that the first entry wins.
//!
//! A distroless image usually has no /etc/services: then ports have no
//! names (`[tcp/*]`, numbers in `ss`) and a port given by name is an
//! error, which is also what the classic tools do on such a system.

use std::sync::OnceLock;

/// `(name, port, proto)` in file order: the first entry wins, as in libc.
fn entries() -> &'static [(String, u16, String)] {
    static ENTRIES: OnceLock<Vec<(String, u16, String)>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
        parse(&text)
    })
}

fn parse(text: &str) -> Vec<(String, u16, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((port, proto)) = port_proto.split_once('/') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        out.push((name.to_owned(), port, proto.to_owned()));
        // Aliases name the same port.
        for alias in fields {
            out.push((alias.to_owned(), port, proto.to_owned()));
        }
    }
    out
}

/// The official name of `port` for `proto` ("tcp"/"udp"), if listed.
pub fn name_by_port(port: u16, proto: &str) -> Option<&'static str> {
    entries()
        .iter()
        .find(|(_, p, pr)| *p == port && pr == proto)
        .map(|(n, _, _)| n.as_str())
}

/// The port a service name (or alias) stands for.
pub fn port_by_name(name: &str, proto: &str) -> Option<u16> {
    entries()
        .iter()
        .find(|(n, _, pr)| n == name && pr == proto)
        .map(|(_, p, _)| *p)
}

/// The lowest port a service name (or alias) stands for, whatever the
/// protocol.
pub fn port_by_name_any_proto(name: &str) -> Option<u16> {
    entries()
        .iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, p, _)| *p)
        .min()
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_names_ports_and_aliases() {
        let e = parse(
            "# comment\nhttp\t\t80/tcp\t\twww\t# WorldWideWeb HTTP\nhttp-alt 8080/tcp webcache\n\
             domain 53/udp\nbroken\nbad 99999/tcp\n",
        );
        assert_eq!(
            e,
            vec![
                ("http".into(), 80, "tcp".into()),
                ("www".into(), 80, "tcp".into()),
                ("http-alt".into(), 8080, "tcp".into()),
                ("webcache".into(), 8080, "tcp".into()),
                ("domain".into(), 53, "udp".into()),
            ]
        );
    }
}
