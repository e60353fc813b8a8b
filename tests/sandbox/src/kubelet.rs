//! The kubelet: starts ephemeral containers the API server accepted, and
//! reports container states to the pod's status *late*, as a real kubelet
//! does.
//!
//! Timing, as measured on real clusters (see issue 7): the kubelet sees a
//! PATCHed ephemeral container almost at once and writes a status showing
//! it `waiting: ContainerCreating`; the runtime starts it ~0.15 s later
//! (plus `slowStartSeconds`), and from that moment attach works; but the
//! status only says `running` after the next PLEG relist, which happens on
//! a 1 s tick. Exits are reported the same way. Image pull failures are
//! reported at once (`ErrImagePull`), then as `ImagePullBackOff` while the
//! kubelet backs off (10 s, doubling, capped at 300 s) between retries,
//! each step with the kubelet's events and messages.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1 as core;
use serde_json::{Value, json};

use crate::cluster::{Cluster, ImageMode};
use crate::runtime::{self, Container, Launch, Program, State};
use crate::spec;
use crate::store::{Kind, now_rfc3339};

/// containerd's default capability set for a container.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// The period of the kubelet's PLEG relist: how late states are reported.
pub const RELIST_PERIOD: Duration = Duration::from_secs(1);

/// How long after a pull failure the status turns to ImagePullBackOff.
const BACKOFF_REPORT_DELAY: f64 = 2.0;

/// The environment every container starts with.
pub fn base_env(pod: &str) -> Vec<(String, String)> {
    vec![
        (
            "PATH".to_owned(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        ),
        ("HOSTNAME".to_owned(), pod.to_owned()),
    ]
}

/// Runs the relist loop until the process ends.
pub async fn relist_loop(cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(RELIST_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        sync_all(&cluster);
    }
}

/// Writes every pod's status from the runtime's current state.
pub fn sync_all(cluster: &Cluster) {
    for (namespace, name) in cluster.pods.keys() {
        sync_pod(cluster, namespace, name);
    }
}

/// Writes one pod's status from the runtime's current state (no write, no
/// event, when nothing changed).
pub fn sync_pod(cluster: &Cluster, namespace: &str, name: &str) {
    let Some(info) = cluster.pod_info(namespace, name) else {
        return;
    };
    let containers = cluster.containers.of_pod(namespace, name);
    let now = now_rfc3339();
    let uptime = cluster.uptime();
    let _ = cluster
        .store
        .update::<()>(Kind::Pod, namespace, name, |pod| {
            let spec: core::PodSpec =
                serde_json::from_value(pod["spec"].clone()).unwrap_or_default();
            let old: core::PodStatus =
                serde_json::from_value(pod["status"].clone()).unwrap_or_default();
            let status = pod_status(info, &spec, &containers, &old, &now, uptime);
            pod["status"] = serde_json::to_value(status).expect("a PodStatus serializes");
            Ok(())
        });
}

fn pod_status(
    info: &crate::cluster::PodInfo,
    spec: &core::PodSpec,
    containers: &[Arc<Container>],
    old: &core::PodStatus,
    now: &str,
    uptime: f64,
) -> core::PodStatus {
    let find = |name: &str| containers.iter().find(|c| c.name == name);
    let regular: Vec<core::ContainerStatus> = spec
        .containers
        .iter()
        .filter_map(|c| find(&c.name).map(|rt| container_status(rt, uptime)))
        .collect();
    let ephemeral: Vec<core::ContainerStatus> = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .filter_map(|c| find(&c.name).map(|rt| container_status(rt, uptime)))
        .collect();
    let pending = info.spec.phase == spec::Phase::Pending;
    let unready: Vec<&str> = regular
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let all_ready = unready.is_empty();
    let condition = |type_: &str, ok: bool| {
        let status = if ok { "True" } else { "False" };
        let previous = old
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone());
        let not_ready = !ok && matches!(type_, "Ready" | "ContainersReady");
        core::PodCondition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            last_transition_time: previous.or_else(|| Some(time(now))),
            last_probe_time: None,
            reason: not_ready.then(|| "ContainersNotReady".to_owned()),
            message: not_ready
                .then(|| format!("containers with unready status: [{}]", unready.join(" "))),
            observed_generation: None,
        }
    };
    let phase = if pending {
        "Pending"
    } else if regular.iter().all(|s| {
        s.state
            .as_ref()
            .is_some_and(|st| st.terminated.as_ref().is_some_and(|t| t.exit_code == 0))
    }) {
        "Succeeded"
    } else {
        "Running"
    };
    let start_time = old.start_time.clone().or_else(|| Some(time(now)));
    let mut ips = vec![core::PodIP {
        ip: info.ipv4.to_string(),
    }];
    if let Some(v6) = info.ipv6 {
        ips.push(core::PodIP { ip: v6.to_string() });
    }
    core::PodStatus {
        phase: Some(phase.to_owned()),
        conditions: Some(vec![
            condition("PodReadyToStartContainers", true),
            condition("Initialized", true),
            condition("Ready", all_ready && !pending),
            condition("ContainersReady", all_ready && !pending),
            condition("PodScheduled", true),
        ]),
        host_ip: Some(crate::netns::NODE_IPV4.to_string()),
        host_ips: Some(vec![core::HostIP {
            ip: crate::netns::NODE_IPV4.to_string(),
        }]),
        pod_ip: Some(info.ipv4.to_string()),
        pod_ips: Some(ips),
        start_time,
        container_statuses: Some(regular),
        ephemeral_container_statuses: (!ephemeral.is_empty()).then_some(ephemeral),
        qos_class: Some("BestEffort".to_owned()),
        ..Default::default()
    }
}

fn time(rfc3339: &str) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        rfc3339.parse().unwrap_or_else(|_| crate::store::now()),
    )
}

/// Whether a failed pull is in its back-off period (reported as
/// ImagePullBackOff) rather than just failed (ErrImagePull).
fn in_backoff(failed_at: f64, uptime: f64) -> bool {
    uptime - failed_at >= BACKOFF_REPORT_DELAY
}

fn container_status(c: &Container, uptime: f64) -> core::ContainerStatus {
    let mut status = core::ContainerStatus {
        name: c.name.clone(),
        image: runtime::normalize_image(&c.image),
        image_id: String::new(),
        last_state: Some(core::ContainerState::default()),
        restart_count: 0,
        ready: false,
        ..Default::default()
    };
    let waiting = |reason: &str, message: Option<String>| core::ContainerState {
        waiting: Some(core::ContainerStateWaiting {
            reason: Some(reason.to_owned()),
            message,
        }),
        ..Default::default()
    };
    status.state = Some(match c.state() {
        State::Creating => waiting("ContainerCreating", None),
        State::ConfigError { message } => waiting("CreateContainerConfigError", Some(message)),
        State::PullFailed {
            message, failed_at, ..
        } => {
            if in_backoff(failed_at, uptime) {
                waiting(
                    "ImagePullBackOff",
                    Some(format!(
                        "Back-off pulling image {:?}: ErrImagePull: {message}",
                        c.image
                    )),
                )
            } else {
                waiting("ErrImagePull", Some(message))
            }
        }
        State::Running { started } => {
            status.image_id = c.image_id.clone();
            status.container_id = Some(format!("containerd://{}", c.id));
            status.ready = !c.ephemeral;
            if !c.ephemeral {
                status.started = Some(true);
            }
            core::ContainerState {
                running: Some(core::ContainerStateRunning {
                    started_at: Some(time(&started)),
                }),
                ..Default::default()
            }
        }
        State::Exited {
            code,
            reason,
            message,
            started,
            finished,
        } => {
            status.image_id = c.image_id.clone();
            status.container_id = Some(format!("containerd://{}", c.id));
            if !c.ephemeral {
                status.started = Some(false);
            }
            core::ContainerState {
                terminated: Some(core::ContainerStateTerminated {
                    exit_code: code,
                    reason: Some(reason),
                    message,
                    started_at: Some(time(&started)),
                    finished_at: Some(time(&finished)),
                    container_id: Some(format!("containerd://{}", c.id)),
                    signal: None,
                }),
                ..Default::default()
            }
        }
    });
    if c.ephemeral {
        status.started = None;
    }
    status
}

/// Records an event about `pod` (and one of its containers), merging a
/// repeat of the same reason and message into the existing event's count,
/// as the kubelet's event recorder does.
pub fn record_event(
    cluster: &Cluster,
    pod: &core::Pod,
    field_path: Option<String>,
    warning: bool,
    reason: &str,
    message: &str,
) {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let now = now_rfc3339();
    let (events, _) = cluster.store.list(Kind::Event, Some(&namespace));
    let same = events.iter().find(|e| {
        e["involvedObject"]["uid"] == uid.as_str()
            && e["reason"] == reason
            && e["message"] == message
            && e["involvedObject"]["fieldPath"].as_str() == field_path.as_deref()
    });
    if let Some(existing) = same {
        let event_name = existing["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let _ = cluster
            .store
            .update::<()>(Kind::Event, &namespace, &event_name, |e| {
                let count = e["count"].as_u64().unwrap_or(1) + 1;
                e["count"] = json!(count);
                e["lastTimestamp"] = json!(now);
                Ok(())
            });
        return;
    }
    // Named as the event recorder names them: the pod and the time in
    // nanoseconds (hex), so listing by name lists by time.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let suffix = format!("{nanos:x}");
    let mut involved = json!({
        "kind": "Pod",
        "namespace": namespace,
        "name": name,
        "uid": uid,
        "apiVersion": "v1",
        "resourceVersion": pod.metadata.resource_version.clone().unwrap_or_default(),
    });
    if let Some(fp) = field_path {
        involved["fieldPath"] = json!(fp);
    }
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    cluster.store.create(
        Kind::Event,
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": format!("{name}.{suffix}"), "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": {"component": "kubelet", "host": node},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": if warning { "Warning" } else { "Normal" },
            "eventTime": Value::Null,
            "reportingComponent": "kubelet",
            "reportingInstance": node,
        }),
    );
}

/// The kubelet picks up an ephemeral container the API server just added.
pub fn ephemeral_added(
    cluster: &Arc<Cluster>,
    namespace: &str,
    pod: &str,
    spec: core::EphemeralContainer,
) {
    let container = Arc::new(Container::new(
        &spec.name,
        true,
        spec.image.as_deref().unwrap_or(""),
        spec.stdin.unwrap_or(false),
        spec.stdin_once.unwrap_or(false),
    ));
    cluster.containers.add(namespace, pod, container.clone());
    let cluster = cluster.clone();
    let (namespace, pod) = (namespace.to_owned(), pod.to_owned());
    tokio::spawn(async move {
        run_ephemeral(cluster, namespace, pod, spec, container).await;
    });
}

async fn run_ephemeral(
    cluster: Arc<Cluster>,
    namespace: String,
    pod_name: String,
    spec: core::EphemeralContainer,
    container: Arc<Container>,
) {
    // The kubelet's pod worker syncs right after the update arrives; the
    // status it writes shows the new container waiting.
    tokio::time::sleep(Duration::from_millis(30)).await;
    sync_pod(&cluster, &namespace, &pod_name);
    let Some(info) = cluster.pod_info(&namespace, &pod_name) else {
        return;
    };
    if info.spec.phase == spec::Phase::Pending {
        return;
    }
    let Some(pod) = cluster.pod(&namespace, &pod_name) else {
        return;
    };
    let field_path = Some(format!("spec.ephemeralContainers{{{}}}", spec.name));
    let event = |warning: bool, reason: &str, message: &str| {
        record_event(&cluster, &pod, field_path.clone(), warning, reason, message);
    };
    let image_ref = spec.image.clone().unwrap_or_default();
    let image = cluster.image(&image_ref).cloned();
    let policy = spec
        .image_pull_policy
        .clone()
        .unwrap_or_else(|| crate::cluster::default_pull_policy(&image_ref).to_owned());

    match image {
        Some(image) if !info.spec.faults.image_pull_failure => {
            if policy == "Always" {
                event(false, "Pulling", &format!("Pulling image {image_ref:?}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                event(
                    false,
                    "Pulled",
                    &format!(
                        "Successfully pulled image {image_ref:?} in 101ms (101ms including waiting). Image size: 2097152 bytes."
                    ),
                );
            } else {
                event(
                    false,
                    "Pulled",
                    &format!("Container image {image_ref:?} already present on machine"),
                );
            }
            let delay = 0.1 + info.spec.faults.slow_start_seconds;
            tokio::time::sleep(Duration::from_secs_f64(delay)).await;
            start_ephemeral(&cluster, info, &pod, &spec, &image, &container, &event).await;
        }
        _ => {
            pull_failure_loop(
                &cluster, &namespace, &pod_name, &image_ref, &container, &event,
            )
            .await
        }
    }
}

/// A pull that fails, again and again, with the kubelet's back-off.
async fn pull_failure_loop(
    cluster: &Arc<Cluster>,
    namespace: &str,
    pod: &str,
    image_ref: &str,
    container: &Container,
    event: &impl Fn(bool, &str, &str),
) {
    let full = runtime::normalize_image(image_ref);
    let message = format!(
        "rpc error: code = NotFound desc = failed to pull and unpack image \"{full}\": \
         failed to resolve reference \"{full}\": {full}: not found"
    );
    let mut attempts = 0u32;
    loop {
        event(false, "Pulling", &format!("Pulling image {image_ref:?}"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        attempts += 1;
        container.set_state(State::PullFailed {
            message: message.clone(),
            attempts,
            failed_at: cluster.uptime(),
        });
        event(
            true,
            "Failed",
            &format!("Failed to pull image {image_ref:?}: {message}"),
        );
        event(true, "Failed", "Error: ErrImagePull");
        // The failed sync is written at once.
        sync_pod(cluster, namespace, pod);
        tokio::time::sleep(Duration::from_secs_f64(BACKOFF_REPORT_DELAY)).await;
        event(
            false,
            "BackOff",
            &format!("Back-off pulling image {image_ref:?}"),
        );
        event(true, "Failed", "Error: ImagePullBackOff");
        sync_pod(cluster, namespace, pod);
        let backoff = (10u64 << attempts.saturating_sub(1).min(5)).min(300) as f64;
        tokio::time::sleep(Duration::from_secs_f64(backoff - BACKOFF_REPORT_DELAY)).await;
    }
}

async fn start_ephemeral(
    cluster: &Arc<Cluster>,
    info: &crate::cluster::PodInfo,
    pod: &core::Pod,
    spec: &core::EphemeralContainer,
    image: &spec::Image,
    container: &Arc<Container>,
    event: &impl Fn(bool, &str, &str),
) {
    let launch = match launch_for(cluster, info, pod, spec, image) {
        Ok(l) => l,
        Err(LaunchError::Config(message)) => {
            event(true, "Failed", &format!("Error: {message}"));
            container.set_state(State::ConfigError { message });
            return;
        }
        Err(LaunchError::Start(message)) => {
            start_error(container, event, message);
            return;
        }
    };
    event(
        false,
        "Created",
        &format!("Created container {}", spec.name),
    );
    let exit = match runtime::start(container, &launch).await {
        Ok(exit) => exit,
        Err(message) => {
            start_error(container, event, message);
            return;
        }
    };
    let started = now_rfc3339();
    container.set_state(State::Running {
        started: started.clone(),
    });
    event(
        false,
        "Started",
        &format!("Started container {}", spec.name),
    );
    let Ok(exit) = exit.await else {
        return;
    };
    // podman's own failures (125) before the container ran are start errors.
    if cluster.config.image_mode == ImageMode::Podman && exit.code == 125 {
        let message = exit.stderr_tail.trim().to_owned();
        container.set_state(runtime::exited_now(
            128,
            "StartError",
            Some(message),
            started,
        ));
        return;
    }
    let reason = if exit.code == 0 { "Completed" } else { "Error" };
    container.set_state(runtime::exited_now(exit.code, reason, None, started));
}

fn start_error(container: &Container, event: &impl Fn(bool, &str, &str), message: String) {
    let message = format!(
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: \
         runc create failed: unable to start container process: {message}: unknown"
    );
    event(true, "Failed", &format!("Error: {message}"));
    let now = now_rfc3339();
    container.set_state(runtime::exited_now(128, "StartError", Some(message), now));
}

/// Why a container cannot start: its configuration (reported as waiting,
/// `CreateContainerConfigError`) or the runtime (a `StartError` exit).
enum LaunchError {
    Config(String),
    Start(String),
}

impl From<String> for LaunchError {
    fn from(message: String) -> Self {
        LaunchError::Start(message)
    }
}

/// Resolves what to run and with which identity, as the kubelet and
/// containerd derive it from the container spec and the image.
fn launch_for(
    cluster: &Cluster,
    info: &crate::cluster::PodInfo,
    pod: &core::Pod,
    spec: &core::EphemeralContainer,
    image: &spec::Image,
) -> Result<Launch, LaunchError> {
    let pod_spec = pod.spec.clone().unwrap_or_default();
    let pod_sc = pod_spec.security_context.clone().unwrap_or_default();
    let sc = spec.security_context.clone().unwrap_or_default();
    let (image_uid, image_gid) = image.uid_gid();
    let uid = sc
        .run_as_user
        .or(pod_sc.run_as_user)
        .map_or(image_uid, |u| u as u32);
    let gid = sc.run_as_group.or(pod_sc.run_as_group).map_or(
        if sc.run_as_user.is_some() || pod_sc.run_as_user.is_some() {
            0
        } else {
            image_gid
        },
        |g| g as u32,
    );
    // runAsNonRoot is enforced by the kubelet at start.
    let non_root = sc
        .run_as_non_root
        .or(pod_sc.run_as_non_root)
        .unwrap_or(false);
    if non_root && uid == 0 {
        let message = if sc.run_as_user.or(pod_sc.run_as_user).is_some() {
            format!(
                "container's runAsUser breaks non-root policy (pod: \"{}_{}({})\", container: {})",
                pod.metadata.name.as_deref().unwrap_or(""),
                pod.metadata.namespace.as_deref().unwrap_or(""),
                pod.metadata.uid.as_deref().unwrap_or(""),
                spec.name
            )
        } else {
            format!(
                "container has runAsNonRoot and image will run as root (pod: \"{}_{}({})\", container: {})",
                pod.metadata.name.as_deref().unwrap_or(""),
                pod.metadata.namespace.as_deref().unwrap_or(""),
                pod.metadata.uid.as_deref().unwrap_or(""),
                spec.name
            )
        };
        return Err(LaunchError::Config(message));
    }
    let mut capabilities: Vec<String> =
        DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect();
    if let Some(caps) = &sc.capabilities {
        for drop in caps.drop.iter().flatten() {
            if drop.eq_ignore_ascii_case("ALL") {
                capabilities.clear();
            } else {
                let d = drop.trim_start_matches("CAP_");
                capabilities.retain(|c| !c.eq_ignore_ascii_case(d));
            }
        }
        for add in caps.add.iter().flatten() {
            let a = add.trim_start_matches("CAP_").to_ascii_uppercase();
            if a == "ALL" {
                capabilities = ALL_CAPABILITIES.iter().map(|s| s.to_string()).collect();
            } else if !capabilities.contains(&a) {
                capabilities.push(a);
            }
        }
    }
    let privileged = sc.privileged.unwrap_or(false);
    let no_new_privileges = sc.allow_privilege_escalation == Some(false);

    let mut env = base_env(pod.metadata.name.as_deref().unwrap_or(""));
    for e in spec.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => from
                .field_ref
                .as_ref()
                .map(|f| field_value(pod, info, &f.field_path))
                .unwrap_or_default(),
            _ => String::new(),
        };
        env.retain(|(k, _)| *k != e.name);
        env.push((e.name.clone(), value));
    }

    let target_pid = match spec.target_container_name.as_deref() {
        Some(target) => {
            let Some(t) = cluster.containers.get(
                pod.metadata.namespace.as_deref().unwrap_or(""),
                pod.metadata.name.as_deref().unwrap_or(""),
                target,
            ) else {
                return Err(format!("target container {target:?} not found").into());
            };
            match t.init_pid() {
                Some(pid) if t.is_running() => Some(pid),
                _ => return Err(format!("target container {target:?} is not running").into()),
            }
        }
        None => None,
    };

    let command = spec.command.clone().filter(|c| !c.is_empty());
    let args = spec.args.clone().unwrap_or_default();
    let program = match cluster.config.image_mode {
        ImageMode::Podman => {
            let Some(local) = image.podman.clone() else {
                return Err(format!(
                    "exec: no local podman image for {:?}",
                    spec.image.as_deref().unwrap_or("")
                )
                .into());
            };
            Program::Podman {
                image: local,
                entrypoint: command,
                args,
                name: crate::netns::unique_name("sbxctr"),
            }
        }
        ImageMode::Exec => {
            let mut argv = match command {
                Some(c) => c,
                None => image.entrypoint.clone(),
            };
            if spec.command.as_ref().is_some_and(|c| !c.is_empty()) || !args.is_empty() {
                argv.extend(args);
            }
            if argv.is_empty() {
                return Err("no command specified".to_owned().into());
            }
            let host = resolve_in_image(cluster, image, &argv[0])?;
            argv[0] = host;
            Program::Exec(argv)
        }
    };
    Ok(Launch {
        program,
        env,
        uid,
        gid,
        capabilities,
        privileged,
        no_new_privileges,
        netns: info.netns.clone(),
        etc: info.etc.clone(),
        target_pid,
        stdin: spec.stdin.unwrap_or(false),
        tty: spec.tty.unwrap_or(false),
    })
}

/// Finds `program` in the image's files (`$PATH` lookup for a bare name)
/// and returns the host file standing for it, or runc's error.
fn resolve_in_image(
    cluster: &Cluster,
    image: &spec::Image,
    program: &str,
) -> Result<String, String> {
    let host_of = |path: &str| -> Option<String> {
        let host = image.files.get(path)?;
        if host == "@agent" {
            cluster
                .config
                .agent
                .as_ref()
                .map(|p| p.display().to_string())
        } else {
            Some(host.clone())
        }
    };
    if program.contains('/') {
        return host_of(program).ok_or_else(|| {
            format!("exec: {program:?}: stat {program}: no such file or directory")
        });
    }
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        if let Some(host) = host_of(&format!("{dir}/{program}")) {
            return Ok(host);
        }
    }
    Err(format!(
        "exec: {program:?}: executable file not found in $PATH"
    ))
}

/// `valueFrom.fieldRef` for the fields a container can see.
fn field_value(pod: &core::Pod, info: &crate::cluster::PodInfo, path: &str) -> String {
    match path {
        "metadata.name" => pod.metadata.name.clone().unwrap_or_default(),
        "metadata.namespace" => pod.metadata.namespace.clone().unwrap_or_default(),
        "metadata.uid" => pod.metadata.uid.clone().unwrap_or_default(),
        "spec.nodeName" => info.node.to_owned(),
        "spec.serviceAccountName" => "default".to_owned(),
        "status.podIP" => info.ipv4.to_string(),
        "status.hostIP" => crate::netns::NODE_IPV4.to_string(),
        _ => String::new(),
    }
}

const ALL_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_reported_after_the_delay() {
        assert!(!in_backoff(10.0, 11.0));
        assert!(in_backoff(10.0, 12.5));
    }
}
