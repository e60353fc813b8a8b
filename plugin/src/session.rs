//! One `kubectl netdiag` run, top to bottom: resolve the target → check
//! permissions → inject the agent → wait for it (watching for failures) →
//! stream its output → exit with the tool's code.
//!
//! Start-up latency matters (a user is waiting): attach is tried right
//! after the PATCH and retried while the kubelet has not created the
//! container yet (`500 container ... not found`), instead of waiting for
//! the pod status to say Running, which lags by about a second. The agent
//! runs nothing until our start frame, so no output is lost either way.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::Client;
use kube::api::{Api, AttachParams, LogParams, WatchEvent, WatchParams};
use tokio::sync::watch;

use crate::args::Args;
use crate::error::{PluginError, api_code, api_message};
use crate::inject::{self, Injection};
use crate::progress::{Progress, trace};
use crate::stream;
use crate::{cluster, preflight, target, tools};

/// The agent image of this release; `--image` / NETDIAG_IMAGE override it.
/// Release builds set NETDIAG_DEFAULT_IMAGE to the image pinned by digest.
pub const DEFAULT_IMAGE: &str = match option_env!("NETDIAG_DEFAULT_IMAGE") {
    Some(image) => image,
    None => concat!("ghcr.io/netdiag/netdiag-agent:v", env!("CARGO_PKG_VERSION")),
};

/// How often to retry attach while the container is being created.
const ATTACH_RETRY: Duration = Duration::from_millis(50);

pub async fn run(args: Args) -> Result<u8, PluginError> {
    trace("start");
    let cluster = cluster::connect(
        args.kubeconfig.as_deref(),
        args.context.as_deref(),
        args.request_timeout,
    )
    .await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or(cluster.default_namespace.clone());
    let client = cluster.client;

    let target =
        target::resolve(&client, &namespace, &args.target, args.container.as_deref()).await?;
    trace("target resolved");
    preflight::check(&client, &namespace).await?;
    trace("permissions checked");

    let profile = args
        .profile
        .unwrap_or_else(|| tools::profile_for(&args.tool, &args.tool_args));
    let image = args
        .image
        .clone()
        .unwrap_or_else(|| DEFAULT_IMAGE.to_owned());
    let name = inject::container_name();
    let spec = inject::container(
        &name,
        &target,
        &Injection {
            image: &image,
            pull_policy: &args.image_pull_policy,
            profile,
            tool: &args.tool,
            tool_args: &args.tool_args,
        },
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let progress = Progress::new();
    progress.phase(&format!("adding {name} to pod {}", target.name));
    let patched = inject::inject(&pods, &target, &spec, profile, &args.tool).await?;
    trace("patched");
    progress.phase("patched; waiting for the kubelet to start the agent");

    let started = Instant::now();
    let (state_tx, state_rx) = watch::channel(AgentState::Waiting(String::new()));
    let watcher = tokio::spawn(watch_container(
        pods.clone(),
        target.name.clone(),
        name.clone(),
        patched
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default(),
        state_tx,
    ));

    let tool = tools::find(&args.tool).expect("checked when parsing");
    let mut input = tool.reads_stdin.then(stream::read_stdin);
    let result = loop {
        let attached = attach_early(
            &pods,
            &target.name,
            &name,
            &image,
            &progress,
            state_rx.clone(),
            args.timeout,
            started,
        )
        .await;
        progress.finish();
        match attached {
            Ok(Attached::Live(process)) => {
                trace("attached");
                let start_by = tokio::time::Instant::from_std(started + args.timeout);
                let ended = stream::run(process, input.as_mut(), start_by).await;
                match ended {
                    Ok(stream::End::Exit(code)) => break Ok(code),
                    // Let in too early: the tool never started, try again.
                    Ok(stream::End::NotStarted) if started.elapsed() < args.timeout => {
                        tokio::time::sleep(ATTACH_RETRY).await
                    }
                    Ok(stream::End::NotStarted) => {
                        break Err(PluginError::new(format!(
                            "the agent did not start within {}s; raise --timeout, or check the node with 'kubectl describe pod {}'",
                            args.timeout.as_secs(),
                            target.name
                        )));
                    }
                    Err(e) => break Err(e),
                }
            }
            Ok(Attached::AlreadyExited(code)) => {
                break print_logs(&pods, &target.name, &name, code).await;
            }
            Err(e) => break Err(e),
        }
    };
    watcher.abort();
    result
}

/// What the kubelet reports about our container.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentState {
    /// Not started yet; the kubelet's reason (ContainerCreating, ...).
    Waiting(String),
    Running,
    Terminated(i32),
    /// A failure the kubelet reported; the text is the user's message.
    Failed(String),
}

enum Attached {
    Live(kube::api::AttachedProcess),
    AlreadyExited(i32),
}

/// Attaches as soon as the kubelet lets us, while the watcher reports
/// failures; gives up at the start-up timeout.
#[allow(clippy::too_many_arguments)]
async fn attach_early(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    image: &str,
    progress: &Progress,
    mut state: watch::Receiver<AgentState>,
    timeout: Duration,
    started: Instant,
) -> Result<Attached, PluginError> {
    let params = AttachParams::default()
        .container(container)
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .tty(false);
    loop {
        let current = state.borrow_and_update().clone();
        match current {
            AgentState::Failed(msg) => return Err(PluginError::new(msg)),
            AgentState::Terminated(code) => return Ok(Attached::AlreadyExited(code)),
            AgentState::Waiting(reason) if !reason.is_empty() => {
                progress.phase(&format!("{reason}: {image}"));
            }
            AgentState::Running => progress.phase("started; attaching"),
            AgentState::Waiting(_) => {}
        }
        match pods.attach(pod, &params).await {
            Ok(process) => return Ok(Attached::Live(process)),
            Err(e) if not_created_yet(&e) => {}
            Err(e) if api_code(&e) == Some(403) => {
                return Err(PluginError::new(format!(
                    "not allowed to attach to pod \"{pod}\": {}; netdiag needs create on pods/attach",
                    api_message(&e)
                )));
            }
            Err(e) => {
                return Err(PluginError::new(format!(
                    "cannot attach to the agent in pod \"{pod}\": {}",
                    api_message(&e)
                )));
            }
        }
        if started.elapsed() >= timeout {
            let last = match &*state.borrow() {
                AgentState::Waiting(r) if !r.is_empty() => format!(" (last state: {r})"),
                _ => String::new(),
            };
            return Err(PluginError::new(format!(
                "the agent did not start within {}s{last}; raise --timeout, or check the node with 'kubectl describe pod {pod}'",
                timeout.as_secs()
            )));
        }
        // Wake early if the watcher learns something.
        let _ = tokio::time::timeout(ATTACH_RETRY, state.changed()).await;
    }
}

/// The answers that mean "the container does not exist yet": the kubelet
/// says `container ... not found` (500, plain text) or the API server says
/// the container is not valid/running yet (400).
fn not_created_yet(e: &kube::Error) -> bool {
    let msg = api_message(e);
    matches!(api_code(e), Some(500) | Some(400) | Some(404))
        && (msg.contains("not found")
            || msg.contains("is not valid")
            || msg.contains("waiting to start")
            || msg.contains("ContainerCreating"))
}

/// Watches the pod and publishes our container's state; ends when the
/// state is final or the watch breaks (the attach loop has the timeout).
async fn watch_container(
    pods: Api<Pod>,
    pod: String,
    container: String,
    resource_version: String,
    state: watch::Sender<AgentState>,
) {
    let params = WatchParams::default()
        .fields(&format!("metadata.name={pod}"))
        .timeout(290);
    let mut version = resource_version;
    loop {
        let Ok(stream) = pods.watch(&params, &version).await else {
            return;
        };
        let mut stream = stream.boxed();
        while let Some(event) = stream.next().await {
            let pod_obj = match event {
                Ok(WatchEvent::Added(p)) | Ok(WatchEvent::Modified(p)) => p,
                Ok(WatchEvent::Deleted(_)) => {
                    let _ = state.send(AgentState::Failed(format!(
                        "pod \"{pod}\" was deleted while the agent was starting"
                    )));
                    return;
                }
                Ok(WatchEvent::Bookmark(_)) => continue,
                Ok(WatchEvent::Error(_)) | Err(_) => return,
            };
            if let Some(v) = pod_obj.metadata.resource_version.clone() {
                version = v;
            }
            let status = pod_obj
                .status
                .as_ref()
                .and_then(|s| s.ephemeral_container_statuses.as_ref())
                .and_then(|all| all.iter().find(|c| c.name == container));
            if let Some(s) = status {
                let next = classify(s);
                let done = !matches!(next, AgentState::Waiting(_));
                let _ = state.send(next);
                if done {
                    return;
                }
            }
        }
    }
}

/// Maps a container status to what the user must know. The kubelet's
/// failure reasons end the session at once with its message.
pub fn classify(s: &ContainerStatus) -> AgentState {
    let Some(state) = &s.state else {
        return AgentState::Waiting(String::new());
    };
    if let Some(w) = &state.waiting {
        let reason = w.reason.clone().unwrap_or_default();
        let message = w.message.clone().unwrap_or_default();
        return match reason.as_str() {
            "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
                AgentState::Failed(format!(
                    "the node cannot pull the agent image {} ({reason}: {message}); mirror it to a registry the cluster can reach and pass --image (or set NETDIAG_IMAGE)",
                    s.image
                ))
            }
            "CreateContainerError" | "CreateContainerConfigError" | "RunContainerError" => {
                AgentState::Failed(format!(
                    "the kubelet could not start the agent ({reason}): {message}"
                ))
            }
            "ContainerCreating" | "PodInitializing" | "" => {
                AgentState::Waiting("pulling image / creating container".into())
            }
            other => AgentState::Waiting(other.to_owned()),
        };
    }
    if state.running.is_some() {
        return AgentState::Running;
    }
    if let Some(t) = &state.terminated {
        // The runtime never started the process (exit 128 by convention).
        if matches!(
            t.reason.as_deref(),
            Some("StartError" | "ContainerCannotRun")
        ) {
            return AgentState::Failed(format!(
                "the kubelet could not start the agent ({}): {}",
                t.reason.as_deref().unwrap_or_default(),
                t.message.as_deref().unwrap_or("no message")
            ));
        }
        return AgentState::Terminated(t.exit_code);
    }
    AgentState::Waiting(String::new())
}

/// The container finished before we could attach: show what it said.
async fn print_logs(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    code: i32,
) -> Result<u8, PluginError> {
    let params = LogParams {
        container: Some(container.to_owned()),
        ..Default::default()
    };
    let logs = pods.logs(pod, &params).await.map_err(|e| {
        PluginError::new(format!(
            "the agent exited ({code}) before attach and its logs are unreadable: {}",
            api_message(&e)
        ))
    })?;
    eprint!("{logs}");
    Ok(u8::try_from(code).unwrap_or(netdiag_wire::exit::FAILURE))
}

/// `kubectl netdiag version`: what this plugin would run, and whether the
/// cluster (if one is configured) can run it.
pub async fn version(kubeconfig: Option<&str>, context: Option<&str>) -> u8 {
    println!("kubectl-netdiag {}", env!("CARGO_PKG_VERSION"));
    println!("default image: {DEFAULT_IMAGE}");
    let cluster = match cluster::connect(kubeconfig, context, Some(Duration::from_secs(10))).await {
        Ok(c) => c,
        Err(e) => {
            println!("cluster: not checked ({})", e.message);
            return 0;
        }
    };
    let client: Client = cluster.client;
    match client.apiserver_version().await {
        Ok(v) => println!("cluster: Kubernetes {}", v.git_version),
        Err(e) => {
            println!("cluster: unreachable ({})", api_message(&e));
            return 1;
        }
    }
    match client.list_core_api_resources("v1").await {
        Ok(list) => {
            let supported = list
                .resources
                .iter()
                .any(|r| r.name == "pods/ephemeralcontainers");
            println!(
                "ephemeral containers: {}",
                if supported {
                    "supported"
                } else {
                    "NOT supported (Kubernetes 1.25+ needed)"
                }
            );
            if supported { 0 } else { 1 }
        }
        Err(e) => {
            println!("ephemeral containers: unknown ({})", api_message(&e));
            1
        }
    }
}
