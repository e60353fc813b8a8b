//! The sandbox cluster: the pods file turned into API objects (pods, their
//! owners, services, namespaces, nodes), real namespaces and processes
//! behind the pods, and the shared state every request handler reads.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{Value, json};

use crate::etc::{self, PodEtc};
use crate::netns::{NODE_IPV4, Netns, Node};
use crate::runtime::{self, Container, Containers};
use crate::spec::{self, Denial, OwnerKind, PodSecurityLevel};
use crate::store::{Kind, Store, now_rfc3339};

/// The node every Linux pod runs on.
pub const NODE_NAME: &str = "sandbox-node";
/// The node `windows: true` pods run on.
pub const WINDOWS_NODE_NAME: &str = "sandbox-windows-node";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageMode {
    Exec,
    Podman,
}

/// Which server generation the sandbox plays, for attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachProtocols {
    /// 1.30+: a WebSocket offering `v5.channel.k8s.io` is served by the API
    /// server's stream translator; others go to the kubelet (v4 and older).
    V5AndV4,
    /// Before 1.30: the kubelet serves every WebSocket, v4 at most.
    V4Only,
}

pub struct Config {
    pub agent: Option<PathBuf>,
    pub image_mode: ImageMode,
    pub podman_image: Option<String>,
    pub protocols: AttachProtocols,
    pub token: String,
    /// The sandbox's state directory (kubeconfig, the pods' files).
    pub dir: PathBuf,
}

impl Config {
    /// The `/version` the sandbox reports: a server of the generation whose
    /// attach behaviour it plays.
    pub fn git_version(&self) -> (&'static str, &'static str) {
        match self.protocols {
            AttachProtocols::V5AndV4 => ("32", "v1.32.4"),
            AttachProtocols::V4Only => ("29", "v1.29.14"),
        }
    }
}

/// What the sandbox knows about one declared pod beyond its API object.
pub struct PodInfo {
    pub spec: spec::Pod,
    pub netns: String,
    pub ipv4: Ipv4Addr,
    pub ipv6: Option<Ipv6Addr>,
    pub node: &'static str,
    pub denials: Vec<Denial>,
    /// Its /etc/resolv.conf and /etc/hosts, as every container sees them.
    pub etc: PodEtc,
}

pub struct Cluster {
    pub config: Config,
    pub store: Store,
    pub containers: Containers,
    pub pods: BTreeMap<(String, String), PodInfo>,
    pub images: Vec<spec::Image>,
    pub started: Instant,
}

/// The network objects, owned apart from the cluster so teardown can
/// delete them after every process is gone.
pub struct Network {
    pub node: Node,
    pub pods: Vec<Netns>,
}

impl Cluster {
    /// Seconds since the sandbox started (a monotonic clock for backoffs).
    pub fn uptime(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn pod_info(&self, namespace: &str, name: &str) -> Option<&PodInfo> {
        self.pods.get(&(namespace.to_owned(), name.to_owned()))
    }

    /// Resolves an image reference the way the sandbox's "registry" does.
    pub fn image(&self, reference: &str) -> Option<&spec::Image> {
        self.images
            .iter()
            .find(|i| i.reference == reference)
            .or_else(|| self.images.iter().find(|i| i.reference == "*"))
    }

    /// Typed view of a stored pod.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<core::Pod> {
        let value = self.store.get(Kind::Pod, namespace, name)?;
        serde_json::from_value(value).ok()
    }
}

/// Builds the cluster: network, API objects, and the pods' processes.
pub async fn build(config: Config, file: spec::Sandbox) -> Result<(Arc<Cluster>, Network), String> {
    let mut node = Node::create()?;
    let mut netns = Vec::new();
    let mut pods = BTreeMap::new();
    // Pod i gets 198.51.100.(10 + i): the cluster DNS pod's address is
    // known before any pod's resolv.conf is written.
    let pod_ipv4 = |i: usize| Ipv4Addr::new(198, 51, 100, 10 + i as u8);
    let nameserver = file.cluster_dns.as_ref().and_then(|dns| {
        file.pods
            .iter()
            .position(|p| p.name == dns.pod && p.namespace == dns.namespace)
            .map(pod_ipv4)
    });
    for (i, p) in file.pods.iter().enumerate() {
        let host = 10 + i as u8;
        let ipv4 = pod_ipv4(i);
        let ipv6 = p
            .ipv6
            .then(|| Ipv6Addr::new(0xfd42, 0, 0, 0, 0, 0, 0, u16::from(host)));
        let ns = node.add_pod(ipv4, ipv6)?;
        let denials = p
            .faults
            .rbac_deny
            .iter()
            .map(|d| Denial::parse(d))
            .collect::<Result<_, _>>()?;
        let etc = etc::write(
            &config.dir,
            &p.namespace,
            &p.name,
            &etc::resolv_conf(&p.namespace, nameserver),
            &etc::hosts(&p.name, ipv4, ipv6),
        )?;
        pods.insert(
            (p.namespace.clone(), p.name.clone()),
            PodInfo {
                spec: p.clone(),
                netns: ns.path(),
                ipv4,
                ipv6,
                node: if p.windows {
                    WINDOWS_NODE_NAME
                } else {
                    NODE_NAME
                },
                denials,
                etc,
            },
        );
        netns.push(ns);
    }
    let mut images = file.images.clone();
    if images.is_empty() {
        images.push(spec::Image::default_agent());
    }
    if let Some(local) = &config.podman_image {
        for image in &mut images {
            if image.podman.is_none() {
                image.podman = Some(local.clone());
            }
        }
    }
    let cluster = Arc::new(Cluster {
        config,
        store: Store::new(),
        containers: Containers::default(),
        pods,
        images,
        started: Instant::now(),
    });
    create_objects(&cluster, &file);
    for info in cluster.pods.values() {
        start_pod(&cluster, info).await?;
    }
    // The first status report happens before anyone can look.
    crate::kubelet::sync_all(&cluster);
    Ok((cluster, Network { node, pods: netns }))
}

/// Starts every container of a Running pod.
async fn start_pod(cluster: &Arc<Cluster>, info: &PodInfo) -> Result<(), String> {
    let restricted = info.spec.faults.pod_security.is_some();
    for c in &info.spec.containers {
        let container = Arc::new(Container::new(&c.name, false, &c.image, false, false));
        cluster
            .containers
            .add(&info.spec.namespace, &info.spec.name, container.clone());
        if info.spec.phase == spec::Phase::Pending {
            continue;
        }
        let launch = runtime::Launch {
            program: runtime::Program::Exec(c.command.clone()),
            env: crate::kubelet::base_env(&info.spec.name),
            // A pod under Pod Security runs as the non-root user its spec
            // declares; others as root with the runtime's default set.
            uid: if restricted { 65532 } else { 0 },
            gid: if restricted { 65532 } else { 0 },
            capabilities: if restricted {
                Vec::new()
            } else {
                crate::kubelet::DEFAULT_CAPABILITIES
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            },
            privileged: false,
            no_new_privileges: restricted,
            netns: info.netns.clone(),
            etc: info.etc.clone(),
            target_pid: None,
            stdin: false,
            tty: false,
        };
        let exit = runtime::start(&container, &launch)
            .await
            .map_err(|e| format!("pod {} container {}: {e}", info.spec.name, c.name))?;
        let started = now_rfc3339();
        container.set_state(runtime::State::Running {
            started: started.clone(),
        });
        let watched = container.clone();
        tokio::spawn(async move {
            if let Ok(exit) = exit.await {
                let reason = if exit.code == 0 { "Completed" } else { "Error" };
                watched.set_state(runtime::exited_now(exit.code, reason, None, started));
            }
        });
    }
    Ok(())
}

fn create_objects(cluster: &Cluster, file: &spec::Sandbox) {
    let store = &cluster.store;
    for node in [NODE_NAME, WINDOWS_NODE_NAME] {
        store.create(Kind::Node, node_object(node));
    }
    let mut namespaces: BTreeMap<String, Option<PodSecurityLevel>> = BTreeMap::new();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        namespaces.insert(ns.to_owned(), None);
    }
    for p in &file.pods {
        let level = namespaces.entry(p.namespace.clone()).or_default();
        if let Some(l) = p.faults.pod_security
            && (level.is_none() || l == PodSecurityLevel::Restricted)
        {
            *level = Some(l);
        }
    }
    for svc in &file.services {
        namespaces.entry(svc.namespace.clone()).or_default();
    }
    for (ns, level) in &namespaces {
        let mut labels = json!({"kubernetes.io/metadata.name": ns});
        if let Some(level) = level {
            labels["pod-security.kubernetes.io/enforce"] = json!(level.name());
        }
        store.create(
            Kind::Namespace,
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": labels},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }),
        );
    }

    // Owners first, so the pods can reference their uids.
    let mut owners: BTreeMap<(String, OwnerKind, String), Vec<&spec::Pod>> = BTreeMap::new();
    for p in &file.pods {
        if let Some(o) = &p.owner {
            owners
                .entry((p.namespace.clone(), o.kind, o.name.clone()))
                .or_default()
                .push(p);
        }
    }
    let mut pod_owner: BTreeMap<(String, String), (OwnerReference, Option<String>)> =
        BTreeMap::new();
    for ((ns, kind, name), members) in &owners {
        let selector = common_labels(members);
        let replicas = members.len() as i32;
        match kind {
            OwnerKind::Deployment => {
                let hash = short_hash(&format!("{ns}/{name}"));
                let deploy = store.create(
                    Kind::Deployment,
                    workload("Deployment", ns, name, &selector, replicas, None),
                );
                let rs_name = format!("{name}-{hash}");
                let mut rs_selector = selector.clone();
                rs_selector.insert("pod-template-hash".to_owned(), hash.clone());
                let rs = store.create(
                    Kind::ReplicaSet,
                    workload(
                        "ReplicaSet",
                        ns,
                        &rs_name,
                        &rs_selector,
                        replicas,
                        Some(owner_ref("apps/v1", "Deployment", &deploy)),
                    ),
                );
                for p in members {
                    pod_owner.insert(
                        (ns.clone(), p.name.clone()),
                        (owner_ref("apps/v1", "ReplicaSet", &rs), Some(hash.clone())),
                    );
                }
            }
            other => {
                let (kind_name, store_kind) = match other {
                    OwnerKind::ReplicaSet => ("ReplicaSet", Kind::ReplicaSet),
                    OwnerKind::StatefulSet => ("StatefulSet", Kind::StatefulSet),
                    _ => ("DaemonSet", Kind::DaemonSet),
                };
                let obj = store.create(
                    store_kind,
                    workload(kind_name, ns, name, &selector, replicas, None),
                );
                for p in members {
                    pod_owner.insert(
                        (ns.clone(), p.name.clone()),
                        (owner_ref("apps/v1", kind_name, &obj), None),
                    );
                }
            }
        }
    }

    for (i, svc) in file.services.iter().enumerate() {
        let ports: Vec<Value> = svc
            .ports
            .iter()
            .map(
                |p| json!({"name": format!("p{p}"), "protocol": "TCP", "port": p, "targetPort": p}),
            )
            .collect();
        let cluster_ip = format!("203.0.113.{}", 10 + i);
        store.create(
            Kind::Service,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": svc.name, "namespace": svc.namespace},
                "spec": {
                    "selector": svc.selector,
                    "ports": ports,
                    "clusterIP": cluster_ip,
                    "clusterIPs": [cluster_ip],
                    "type": "ClusterIP",
                    "sessionAffinity": "None",
                    "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack",
                    "internalTrafficPolicy": "Cluster",
                },
                "status": {"loadBalancer": {}},
            }),
        );
    }

    for info in cluster.pods.values() {
        let owner = pod_owner.get(&(info.spec.namespace.clone(), info.spec.name.clone()));
        let pod = pod_object(info, owner);
        store.create(
            Kind::Pod,
            serde_json::to_value(pod).expect("a Pod serializes"),
        );
    }
}

fn node_object(name: &str) -> Value {
    let os = if name == WINDOWS_NODE_NAME {
        "windows"
    } else {
        "linux"
    };
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": os,
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": os,
            "beta.kubernetes.io/arch": "amd64",
        }},
        "spec": {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": NODE_IPV4.to_string()}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
            "nodeInfo": {
                "operatingSystem": os,
                "architecture": "amd64",
                "kubeletVersion": "v1.32.4",
                "containerRuntimeVersion": "containerd://1.7.24",
                "kernelVersion": "6.1.0",
                "osImage": if os == "windows" { "Windows Server 2022 Datacenter" } else { "Debian GNU/Linux 12 (bookworm)" },
                "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": "",
            },
        },
    })
}

/// The labels every member carries (a workload's selector).
fn common_labels(members: &[&spec::Pod]) -> BTreeMap<String, String> {
    let mut common = members[0].labels.clone();
    for p in &members[1..] {
        common.retain(|k, v| p.labels.get(k) == Some(v));
    }
    common
}

fn workload(
    kind: &str,
    namespace: &str,
    name: &str,
    selector: &BTreeMap<String, String>,
    replicas: i32,
    owner: Option<OwnerReference>,
) -> Value {
    let mut meta =
        json!({"name": name, "namespace": namespace, "labels": selector, "generation": 1});
    if let Some(o) = owner {
        meta["ownerReferences"] = json!([o]);
    }
    let mut spec = json!({
        "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": selector}, "spec": {"containers": []}},
    });
    let status = match kind {
        "DaemonSet" => json!({
            "currentNumberScheduled": replicas, "desiredNumberScheduled": replicas,
            "numberReady": replicas, "numberAvailable": replicas, "updatedNumberScheduled": replicas,
            "numberMisscheduled": 0, "observedGeneration": 1,
        }),
        _ => {
            spec["replicas"] = json!(replicas);
            json!({"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                   "updatedReplicas": replicas, "observedGeneration": 1})
        }
    };
    if kind == "StatefulSet" {
        spec["serviceName"] = json!(name);
    }
    json!({"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec, "status": status})
}

fn owner_ref(api_version: &str, kind: &str, owner: &Value) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: owner["metadata"]["name"].as_str().unwrap_or("").to_owned(),
        uid: owner["metadata"]["uid"].as_str().unwrap_or("").to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Ten characters of a stable hash, like a pod-template-hash.
fn short_hash(text: &str) -> String {
    // FNV-1a: stable across runs, no dependency.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

fn pod_object(info: &PodInfo, owner: Option<&(OwnerReference, Option<String>)>) -> core::Pod {
    let p = &info.spec;
    let restricted = p.faults.pod_security.is_some();
    let mut labels = p.labels.clone();
    if let Some((_, Some(hash))) = owner {
        labels.insert("pod-template-hash".to_owned(), hash.clone());
    }
    let containers = p
        .containers
        .iter()
        .map(|c| core::Container {
            name: c.name.clone(),
            image: Some(c.image.clone()),
            command: Some(c.command.clone()),
            ports: (!c.ports.is_empty()).then(|| {
                c.ports
                    .iter()
                    .map(|port| core::ContainerPort {
                        container_port: i32::from(*port),
                        protocol: Some("TCP".to_owned()),
                        ..Default::default()
                    })
                    .collect()
            }),
            resources: Some(core::ResourceRequirements::default()),
            termination_message_path: Some("/dev/termination-log".to_owned()),
            termination_message_policy: Some("File".to_owned()),
            image_pull_policy: Some(default_pull_policy(&c.image).to_owned()),
            security_context: restricted.then(|| core::SecurityContext {
                allow_privilege_escalation: Some(false),
                capabilities: Some(core::Capabilities {
                    drop: Some(vec!["ALL".to_owned()]),
                    add: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let pod_security_context = if restricted {
        core::PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            seccomp_profile: Some(core::SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..Default::default()
        }
    } else {
        core::PodSecurityContext::default()
    };
    let toleration = |key: &str| core::Toleration {
        key: Some(key.to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some("NoExecute".to_owned()),
        toleration_seconds: Some(300),
        value: None,
    };
    core::Pod {
        metadata: ObjectMeta {
            name: Some(p.name.clone()),
            namespace: Some(p.namespace.clone()),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: (!p.annotations.is_empty()).then(|| p.annotations.clone()),
            owner_references: owner.map(|(o, _)| vec![o.clone()]),
            generate_name: owner.and_then(|(o, _)| {
                (o.kind == "ReplicaSet" || o.kind == "DaemonSet").then(|| format!("{}-", o.name))
            }),
            ..Default::default()
        },
        spec: Some(core::PodSpec {
            containers,
            restart_policy: Some("Always".to_owned()),
            termination_grace_period_seconds: Some(30),
            dns_policy: Some("ClusterFirst".to_owned()),
            service_account_name: Some("default".to_owned()),
            service_account: Some("default".to_owned()),
            node_name: Some(info.node.to_owned()),
            security_context: Some(pod_security_context),
            scheduler_name: Some("default-scheduler".to_owned()),
            tolerations: Some(vec![
                toleration("node.kubernetes.io/not-ready"),
                toleration("node.kubernetes.io/unreachable"),
            ]),
            priority: Some(0),
            enable_service_links: Some(true),
            preemption_policy: Some("PreemptLowerPriority".to_owned()),
            os: p.windows.then(|| core::PodOS {
                name: "windows".to_owned(),
            }),
            node_selector: p
                .windows
                .then(|| BTreeMap::from([("kubernetes.io/os".to_owned(), "windows".to_owned())])),
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            phase: Some("Pending".to_owned()),
            qos_class: Some("BestEffort".to_owned()),
            ..Default::default()
        }),
    }
}

/// The API server's default for `imagePullPolicy`: Always for `:latest`
/// or no tag, IfNotPresent otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// Stops every container, then deletes the namespaces.
pub async fn teardown(cluster: &Cluster, mut network: Network) {
    let all = cluster.containers.all();
    for c in &all {
        c.kill().await;
    }
    for ns in &mut network.pods {
        ns.delete();
    }
    network.node.ns.delete();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_defaults() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("busybox:1.36"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/busybox"), "Always");
        assert_eq!(default_pull_policy("a/b@sha256:00"), "IfNotPresent");
    }

    #[test]
    fn hashes_are_stable_and_short() {
        assert_eq!(short_hash("default/web"), short_hash("default/web"));
        assert_eq!(short_hash("default/web").len(), 10);
        assert_ne!(short_hash("default/web"), short_hash("default/api"));
    }
}
