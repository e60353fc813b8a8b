//! The sandbox's input: the pods file (YAML) that declares the cluster.
//!
//! ```yaml
//! images:                      # optional; default: every image is the agent image
//!   - ref: "*"                 # the reference a client puts in a container spec ("*": any)
//!     entrypoint: ["/netdiag-agent"]
//!     user: "65532:65532"      # the image's USER
//!     files: {"/netdiag-agent": "@agent"}   # exec mode: in-image path -> host path
//!     podman: localhost/netdiag-agent:test  # podman mode: the local image
//! pods:
//!   - name: web
//!     namespace: default       # default "default"
//!     labels: {app: web}
//!     annotations: {}
//!     owner: {kind: Deployment, name: web}  # or ReplicaSet / StatefulSet / DaemonSet
//!     containers:
//!       - name: app
//!         image: registry.example/web:1.0   # a label only: the command runs on the host
//!         command: [busybox, nc, -lk, -p, "8080"]
//!     phase: Running           # or Pending: no process starts
//!     windows: false           # scheduled on a Windows node
//!     ipv6: false              # also give the pod an fd42::/64 address
//!     faults:
//!       imagePullFailure: true
//!       podSecurity: restricted            # or baseline
//!       rbacDeny: ["patch pods/ephemeralcontainers", "get pods/attach"]
//!       slowStartSeconds: 3
//!       dropAttachAfterBytes: 4096
//! services:
//!   - {name: web, namespace: default, selector: {app: web}, ports: [8080]}
//! clusterDNS: {pod: dns, namespace: default}   # optional: the cluster's DNS server
//! ```
//!
//! Every container sees a kubelet-written /etc/resolv.conf (dnsPolicy
//! ClusterFirst: `search NS.svc.cluster.local svc.cluster.local
//! cluster.local`, `options ndots:5`, and the `clusterDNS` pod's address as
//! the nameserver; with none declared, no nameserver line, so resolvers ask
//! the pod's own loopback) and a Kubernetes-managed /etc/hosts naming the
//! pod. Nothing in a pod ever reads the machine's own resolver settings.
//!
//! Pod i of the list (from 0) gets the address 198.51.100.(10 + i), and
//! fd42::(10 + i) with `ipv6: true`, so a file can name its pods' addresses
//! (a DNS server's records, for instance).
//!
//! The file may also be a bare list of pods. Everything here is validated
//! up front ([`Sandbox::load`]) so a typo fails the start, not a test later.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The whole pods file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sandbox {
    #[serde(default)]
    pub images: Vec<Image>,
    #[serde(default)]
    pub pods: Vec<Pod>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default, rename = "clusterDNS")]
    pub cluster_dns: Option<ClusterDns>,
}

/// The pod whose address every pod's resolv.conf names: the sandbox's
/// CoreDNS (a DNS server the pods file runs, dnsmasq for instance).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterDns {
    pub pod: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
}

/// What the container runtime knows about an image reference.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// The reference as a client writes it, or `*` for any reference.
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(default = "default_entrypoint")]
    pub entrypoint: Vec<String>,
    /// `UID[:GID]`, the image's `USER`.
    #[serde(default = "default_user")]
    pub user: String,
    /// Exec mode: the image's files, path inside the image -> path on the
    /// host (`@agent` stands for the `--agent` binary).
    #[serde(default = "default_files")]
    pub files: BTreeMap<String, String>,
    /// Podman mode: the local image to run.
    #[serde(default)]
    pub podman: Option<String>,
}

fn default_entrypoint() -> Vec<String> {
    vec!["/netdiag-agent".to_owned()]
}

fn default_user() -> String {
    "65532:65532".to_owned()
}

fn default_files() -> BTreeMap<String, String> {
    BTreeMap::from([("/netdiag-agent".to_owned(), "@agent".to_owned())])
}

impl Image {
    /// The image every reference resolves to when the file declares none:
    /// the agent image as `Dockerfile.debug` builds it.
    pub fn default_agent() -> Image {
        Image {
            reference: "*".to_owned(),
            entrypoint: default_entrypoint(),
            user: default_user(),
            files: default_files(),
            podman: None,
        }
    }

    /// `(uid, gid)` from `user`.
    pub fn uid_gid(&self) -> (u32, u32) {
        parse_user(&self.user).unwrap_or((0, 0))
    }
}

fn parse_user(user: &str) -> Option<(u32, u32)> {
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid: u32 = uid.parse().ok()?;
    let gid = match gid {
        Some(g) => g.parse().ok()?,
        None => uid,
    };
    Some((uid, gid))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pod {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub owner: Option<Owner>,
    pub containers: Vec<Container>,
    #[serde(default)]
    pub phase: Phase,
    #[serde(default)]
    pub windows: bool,
    #[serde(default)]
    pub ipv6: bool,
    #[serde(default)]
    pub faults: Faults,
}

fn default_namespace() -> String {
    "default".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub kind: OwnerKind,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum OwnerKind {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    pub name: String,
    #[serde(default = "default_app_image")]
    pub image: String,
    pub command: Vec<String>,
    #[serde(default)]
    pub ports: Vec<u16>,
}

fn default_app_image() -> String {
    "registry.example/app:1.0".to_owned()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Phase {
    #[default]
    Running,
    Pending,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Faults {
    #[serde(default)]
    pub image_pull_failure: bool,
    #[serde(default)]
    pub pod_security: Option<PodSecurityLevel>,
    #[serde(default)]
    pub rbac_deny: Vec<String>,
    #[serde(default)]
    pub slow_start_seconds: f64,
    #[serde(default)]
    pub drop_attach_after_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurityLevel {
    Baseline,
    Restricted,
}

impl PodSecurityLevel {
    pub fn name(self) -> &'static str {
        match self {
            PodSecurityLevel::Baseline => "baseline",
            PodSecurityLevel::Restricted => "restricted",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub selector: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Vec<u16>,
}

/// One `rbacDeny` entry: `VERB RESOURCE[/SUBRESOURCE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub verb: String,
    pub resource: String,
    pub subresource: String,
}

impl Denial {
    pub fn parse(entry: &str) -> Result<Denial, String> {
        let mut words = entry.split_whitespace();
        let (Some(verb), Some(target), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!(
                "rbacDeny entry {entry:?} is not of the form \"VERB RESOURCE[/SUBRESOURCE]\""
            ));
        };
        let (resource, subresource) = target.split_once('/').unwrap_or((target, ""));
        Ok(Denial {
            verb: verb.to_owned(),
            resource: resource.to_owned(),
            subresource: subresource.to_owned(),
        })
    }
}

impl Sandbox {
    /// Reads and checks the pods file.
    pub fn load(path: &Path) -> Result<Sandbox, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Sandbox::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Sandbox, String> {
        // Two shapes: the full file, or a bare list of pods. Decided on the
        // document's shape so that errors name the real problem.
        let value: serde_norway::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        let sandbox = if value.is_sequence() {
            Sandbox {
                pods: serde_norway::from_value(value).map_err(|e| e.to_string())?,
                ..Sandbox::default()
            }
        } else {
            serde_norway::from_value(value).map_err(|e| e.to_string())?
        };
        sandbox.check()?;
        Ok(sandbox)
    }

    fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for pod in &self.pods {
            check_name(&pod.name)?;
            check_name(&pod.namespace)?;
            if !seen.insert((pod.namespace.clone(), pod.name.clone())) {
                return Err(format!("pod {}/{} declared twice", pod.namespace, pod.name));
            }
            if pod.containers.is_empty() {
                return Err(format!("pod {} has no containers", pod.name));
            }
            let mut names = std::collections::BTreeSet::new();
            for c in &pod.containers {
                check_name(&c.name)?;
                if !names.insert(&c.name) {
                    return Err(format!(
                        "pod {}: container {} declared twice",
                        pod.name, c.name
                    ));
                }
                if c.command.is_empty() {
                    return Err(format!(
                        "pod {} container {}: empty command",
                        pod.name, c.name
                    ));
                }
            }
            for entry in &pod.faults.rbac_deny {
                Denial::parse(entry)?;
            }
            if !(0.0..=600.0).contains(&pod.faults.slow_start_seconds) {
                return Err(format!("pod {}: slowStartSeconds out of range", pod.name));
            }
        }
        if self.pods.len() > 200 {
            return Err("at most 200 pods (addresses come from 198.51.100.0/24)".to_owned());
        }
        for image in &self.images {
            if parse_user(&image.user).is_none() {
                return Err(format!(
                    "image {}: user {:?} is not UID[:GID]",
                    image.reference, image.user
                ));
            }
        }
        for svc in &self.services {
            check_name(&svc.name)?;
        }
        if let Some(dns) = &self.cluster_dns
            && !seen.contains(&(dns.namespace.clone(), dns.pod.clone()))
        {
            return Err(format!(
                "clusterDNS names pod {}/{}, which is not declared",
                dns.namespace, dns.pod
            ));
        }
        Ok(())
    }
}

/// Object names as Kubernetes allows them for pods and containers (RFC
/// 1123 labels), which also keeps them safe in paths and process names.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name (lowercase RFC 1123 label)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_shapes_and_defaults() {
        let s = Sandbox::parse(
            "- name: web\n  containers:\n    - {name: app, command: [sleep, '100']}\n",
        )
        .unwrap();
        assert_eq!(s.pods[0].namespace, "default");
        assert_eq!(s.pods[0].phase, Phase::Running);
        let s = Sandbox::parse(
            "pods:\n  - name: web\n    faults: {rbacDeny: ['get pods/attach'], slowStartSeconds: 2}\n    containers:\n      - {name: app, command: [sleep, '100']}\nimages:\n  - ref: '*'\n",
        )
        .unwrap();
        assert_eq!(s.pods[0].faults.slow_start_seconds, 2.0);
        assert_eq!(s.images[0].uid_gid(), (65532, 65532));
        assert_eq!(s.images[0].files["/netdiag-agent"], "@agent");
    }

    #[test]
    fn rejects_typos_and_bad_entries() {
        assert!(Sandbox::parse("- name: web\n  containerz: []\n").is_err());
        assert!(Sandbox::parse("- name: Web\n  containers: [{name: a, command: [x]}]\n").is_err());
        assert!(
            Sandbox::parse(
                "- name: web\n  faults: {rbacDeny: [attach]}\n  containers: [{name: a, command: [x]}]\n"
            )
            .is_err()
        );
    }

    #[test]
    fn cluster_dns_must_name_a_declared_pod() {
        let pods = "pods:\n  - name: dns\n    containers: [{name: a, command: [x]}]\n";
        let ok = Sandbox::parse(&format!("{pods}clusterDNS: {{pod: dns}}\n")).unwrap();
        assert_eq!(ok.cluster_dns.unwrap().namespace, "default");
        let err = Sandbox::parse(&format!("{pods}clusterDNS: {{pod: coredns}}\n")).unwrap_err();
        assert!(err.contains("default/coredns"), "{err}");
    }

    #[test]
    fn denial_entries() {
        assert_eq!(
            Denial::parse("patch pods/ephemeralcontainers").unwrap(),
            Denial {
                verb: "patch".into(),
                resource: "pods".into(),
                subresource: "ephemeralcontainers".into()
            }
        );
        assert_eq!(Denial::parse("list pods").unwrap().subresource, "");
    }
}
