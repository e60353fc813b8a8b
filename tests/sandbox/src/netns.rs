//! The sandbox's network: one "node" namespace holding a bridge, and one
//! namespace per pod whose `eth0` is a veth plugged into that bridge, so the
//! pods of one sandbox reach each other and nothing else.
//!
//! Addresses come from 198.51.100.0/24 (the node's bridge is .1, pods from
//! .10 up) and, for pods that ask, fd42::/64. No namespace has a default
//! route, so no packet can leave. Namespace names follow the test harness's
//! `nd-{tag}-{pid}-{n}` scheme, so a sandbox killed without cleanup has its
//! namespaces swept by the next test run.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// Names this sandbox gives out: `nd-{tag}-{pid}-{n}`.
pub fn unique_name(tag: &str) -> String {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    format!(
        "nd-{tag}-{}-{}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    )
}

/// A named network namespace, deleted (with every process still inside
/// killed first) by [`Netns::delete`] or on drop.
pub struct Netns {
    name: String,
    deleted: bool,
}

impl Netns {
    pub fn create(tag: &str) -> Result<Netns, String> {
        let name = unique_name(tag);
        ip(&["netns", "add", &name])?;
        let ns = Netns {
            name,
            deleted: false,
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`, for `nsenter --net=` and podman's `--network ns:`.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Pids of every process in this namespace.
    pub fn pids(&self) -> Vec<i32> {
        let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .stderr(Stdio::null())
            .output()
        else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Kills what runs inside, then deletes the namespace. Quiet: runs at
    /// teardown, where nothing may stop the rest of the cleanup.
    pub fn delete(&mut self) {
        if self.deleted {
            return;
        }
        self.deleted = true;
        let me = std::process::id() as i32;
        for pid in self.pids() {
            if pid != me {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.delete();
    }
}

/// The node: a namespace with bridge `br0` holding 198.51.100.1/24 and
/// fd42::1/64.
pub struct Node {
    pub ns: Netns,
    next_port: u64,
}

/// The node's address on the bridge (a pod's hostIP).
pub const NODE_IPV4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

impl Node {
    pub fn create() -> Result<Node, String> {
        let ns = Netns::create("sbxnode")?;
        ns.ip(&["link", "add", "br0", "type", "bridge"])?;
        ns.ip(&["addr", "add", "198.51.100.1/24", "dev", "br0"])?;
        ns.ip(&["addr", "add", "fd42::1/64", "dev", "br0", "nodad"])?;
        ns.ip(&["link", "set", "br0", "up"])?;
        Ok(Node { ns, next_port: 0 })
    }

    /// Creates a pod namespace wired to the bridge: `eth0` inside with
    /// `ipv4/24` (and `ipv6/64`), its peer `vethN` on `br0`.
    pub fn add_pod(&mut self, ipv4: Ipv4Addr, ipv6: Option<Ipv6Addr>) -> Result<Netns, String> {
        let pod = Netns::create("sbxpod")?;
        let port = format!("veth{}", self.next_port);
        self.next_port += 1;
        // Both ends are created directly in their namespaces: nothing ever
        // appears in the machine's own.
        ip(&[
            "link",
            "add",
            "eth0",
            "netns",
            pod.name(),
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            self.ns.name(),
        ])?;
        self.ns.ip(&["link", "set", &port, "master", "br0"])?;
        self.ns.ip(&["link", "set", &port, "up"])?;
        pod.ip(&["addr", "add", &format!("{ipv4}/24"), "dev", "eth0"])?;
        if let Some(v6) = ipv6 {
            pod.ip(&["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"])?;
        }
        pod.ip(&["link", "set", "eth0", "up"])?;
        Ok(pod)
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
