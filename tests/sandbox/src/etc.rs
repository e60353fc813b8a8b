//! The files the kubelet writes for each pod and mounts into every one of
//! its containers, ephemeral ones included: /etc/resolv.conf and
//! /etc/hosts.
//!
//! They matter here because DNS is what `dig` and `resolve` diagnose: a pod
//! resolves through the search list and `ndots:5` of its resolv.conf, which
//! the kubelet writes for dnsPolicy ClusterFirst (the default), and a pod's
//! hosts file names the pod. Both are copied from what kubelet 1.32 writes
//! (`pkg/kubelet/network/dns` and the kubelet's managed hosts file); the
//! cluster domain is the default `cluster.local`. Without them, a process
//! entered into a pod's network namespace would read the machine's own
//! resolver settings, which a pod never sees.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// The cluster domain kubelets are configured with by default.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Where one pod's files are on the host.
#[derive(Debug, Clone)]
pub struct PodEtc {
    pub resolv_conf: PathBuf,
    pub hosts: PathBuf,
}

/// resolv.conf for dnsPolicy ClusterFirst in `namespace`. The kubelet
/// writes the search line first, then the nameserver, then the options.
pub fn resolv_conf(namespace: &str, nameserver: Option<Ipv4Addr>) -> String {
    let mut text =
        format!("search {namespace}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\n");
    if let Some(ip) = nameserver {
        text.push_str(&format!("nameserver {ip}\n"));
    }
    text.push_str("options ndots:5\n");
    text
}

/// The kubelet's managed hosts file for a pod (hostNetwork false).
pub fn hosts(pod: &str, ipv4: Ipv4Addr, ipv6: Option<Ipv6Addr>) -> String {
    let mut text = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    text.push_str(&format!("{ipv4}\t{pod}\n"));
    if let Some(ip) = ipv6 {
        text.push_str(&format!("{ip}\t{pod}\n"));
    }
    text
}

/// Writes a pod's files under `dir` (`DIR/pods/NAMESPACE_POD/`).
pub fn write(
    dir: &Path,
    namespace: &str,
    pod: &str,
    resolv: &str,
    hosts: &str,
) -> Result<PodEtc, String> {
    let pod_dir = dir.join("pods").join(format!("{namespace}_{pod}"));
    std::fs::create_dir_all(&pod_dir)
        .map_err(|e| format!("creating {}: {e}", pod_dir.display()))?;
    let etc = PodEtc {
        resolv_conf: pod_dir.join("resolv.conf"),
        hosts: pod_dir.join("hosts"),
    };
    for (path, text) in [(&etc.resolv_conf, resolv), (&etc.hosts, hosts)] {
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(etc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_first_resolv_conf() {
        assert_eq!(
            resolv_conf("shop", Some(Ipv4Addr::new(198, 51, 100, 53))),
            "search shop.svc.cluster.local svc.cluster.local cluster.local\n\
             nameserver 198.51.100.53\n\
             options ndots:5\n"
        );
        assert!(!resolv_conf("default", None).contains("nameserver"));
    }

    #[test]
    fn hosts_names_the_pod() {
        let text = hosts("web", Ipv4Addr::new(198, 51, 100, 10), None);
        assert!(text.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(text.ends_with("198.51.100.10\tweb\n"));
    }
}
