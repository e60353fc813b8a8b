//! The namespace's interfaces: `-D`'s list in libpcap's order and words,
//! the index of `-i NAME`, and the IPv4 netmask `ip broadcast` needs.

use std::collections::BTreeMap;

use nix::net::if_::InterfaceFlags;

/// One interface as `-D` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub up: bool,
    pub running: bool,
    pub loopback: bool,
    /// Carrier (IFF_LOWER_UP): libpcap's "Connected".
    pub connected: bool,
    /// The first IPv4 netmask, for `ip broadcast`.
    pub netmask: Option<u32>,
}

/// Every interface of this network namespace.
pub fn list() -> Result<Vec<Interface>, String> {
    let addrs =
        nix::ifaddrs::getifaddrs().map_err(|e| format!("listing interfaces (getifaddrs): {e}"))?;
    let mut by_name: BTreeMap<String, Interface> = BTreeMap::new();
    for a in addrs {
        let entry = by_name
            .entry(a.interface_name.clone())
            .or_insert_with(|| Interface {
                name: a.interface_name.clone(),
                index: nix::net::if_::if_nametoindex(a.interface_name.as_str()).unwrap_or(0),
                up: false,
                running: false,
                loopback: false,
                connected: false,
                netmask: None,
            });
        entry.up |= a.flags.contains(InterfaceFlags::IFF_UP);
        entry.running |= a.flags.contains(InterfaceFlags::IFF_RUNNING);
        entry.loopback |= a.flags.contains(InterfaceFlags::IFF_LOOPBACK);
        entry.connected |= a.flags.contains(InterfaceFlags::IFF_LOWER_UP);
        if entry.netmask.is_none()
            && a.address
                .as_ref()
                .and_then(|s| s.as_sockaddr_in())
                .is_some()
            && let Some(mask) = a.netmask.as_ref().and_then(|s| s.as_sockaddr_in())
        {
            entry.netmask = Some(mask.ip().into());
        }
    }
    Ok(by_name.into_values().collect())
}

/// libpcap's `get_figure_of_merit`: lower sorts first.
fn merit(i: &Interface) -> u32 {
    let digits: String = i
        .name
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let mut n = if i.name == "any" {
        0x01ff_ffff
    } else {
        digits
            .parse::<u32>()
            .map_or(0, |d| d.saturating_add(1) & 0x0fff_ffff)
    };
    if !i.running {
        n |= 0x8000_0000;
    }
    if !i.up {
        n |= 0x4000_0000;
    }
    if !i.loopback && i.name != "any" && !i.connected {
        n |= 0x2000_0000;
    }
    if i.loopback {
        n |= 0x1000_0000;
    }
    n
}

/// `tcpdump -D`: numbered lines in libpcap's order.
pub fn describe_all(interfaces: &[Interface]) -> String {
    let mut all: Vec<Interface> = interfaces.to_vec();
    all.push(Interface {
        name: "any".into(),
        index: 0,
        up: true,
        running: true,
        loopback: false,
        connected: true,
        netmask: None,
    });
    all.sort_by_key(|i| (merit(i), i.index));
    let mut out = String::new();
    for (n, i) in all.iter().enumerate() {
        let mut flags = Vec::new();
        if i.up {
            flags.push("Up");
        }
        if i.running {
            flags.push("Running");
        }
        if i.loopback {
            flags.push("Loopback");
        }
        let description = if i.name == "any" {
            " (Pseudo-device that captures on all interfaces)"
        } else {
            ""
        };
        let mut flags = if flags.is_empty() {
            "none".to_owned()
        } else {
            flags.join(", ")
        };
        // Connection status, where it applies (not loopback, not "any").
        if !i.loopback && i.name != "any" {
            flags.push_str(if i.connected {
                ", Connected"
            } else {
                ", Disconnected"
            });
        }
        out.push_str(&format!("{}.{}{description} [{flags}]\n", n + 1, i.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, index: u32, up: bool, lo: bool, connected: bool) -> Interface {
        Interface {
            name: name.into(),
            index,
            up,
            running: up,
            loopback: lo,
            connected,
            netmask: None,
        }
    }

    #[test]
    fn listed_in_libpcaps_order_and_words() {
        let list = vec![
            iface("lo", 1, true, true, true),
            iface("eth0", 2, true, false, true),
            iface("eth1", 3, false, false, false),
        ];
        assert_eq!(
            describe_all(&list),
            "1.eth0 [Up, Running, Connected]\n\
             2.any (Pseudo-device that captures on all interfaces) [Up, Running]\n\
             3.lo [Up, Running, Loopback]\n\
             4.eth1 [none, Disconnected]\n"
        );
    }
}
