//! `netdiag-sandbox`: a sandbox Kubernetes API server for testing
//! `kubectl netdiag` (and for trying it) on a machine with no cluster.
//!
//! It speaks the real Kubernetes HTTP API (HTTPS, bearer token) for exactly
//! what the plugin and kubectl use with it: discovery, pods get/list/watch
//! (with Table printing), the workloads and services a TARGET names,
//! `PATCH pods/NAME/ephemeralcontainers`, SelfSubjectAccessReview,
//! `pods/NAME/attach` over WebSocket (v5 and v4 channel protocols),
//! `pods/NAME/log` and events. Its pods are real: each is a network
//! namespace with an address from 198.51.100.0/24 and real processes, and
//! an ephemeral container really runs (the agent, entered into the pod's
//! namespaces, or a podman container of the agent image).
//!
//! ```text
//! netdiag-sandbox --pods pods.yaml --dir DIR [--agent PATH]
//!                 [--image-mode exec|podman] [--podman-image IMAGE]
//!                 [--attach-protocols v5,v4|v4]
//! ```
//!
//! It writes `DIR/kubeconfig` (context `sandbox`), prints one line
//! `ready DIR/kubeconfig` on stdout, and serves until SIGTERM, SIGINT, or
//! the end of its stdin (when stdin is a pipe or a terminal); then it kills
//! every process and deletes every namespace it made.
//!
//! Module map: [`spec`] (the pods file), [`cluster`] (objects, network,
//! start-up), [`store`] (resourceVersions, watch history), [`api`]
//! (routing, RBAC, get/list/watch), [`admission`] (the ephemeral containers
//! PATCH: patch, validation, Pod Security), [`kubelet`] (late status,
//! events, starting containers), [`runtime`] (processes, logs, attach
//! fan-out), [`attach`] and [`logs`] (the streaming endpoints).
//!
//! It shares no code with the plugin beyond the k8s-openapi types: every
//! behaviour here is derived from kube-apiserver's and the kubelet's.

mod admission;
mod api;
mod attach;
mod cluster;
mod discovery;
mod etc;
mod http;
mod kubelet;
mod logs;
mod netns;
mod patch;
mod protobuf;
mod runtime;
mod selector;
mod spdy;
mod spec;
mod status;
mod store;
mod table;
mod tls;

use std::convert::Infallible;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::cluster::{AttachProtocols, Config, ImageMode};

#[derive(Parser)]
#[command(
    name = "netdiag-sandbox",
    about = "A sandbox Kubernetes API server whose pods are real network namespaces",
    version
)]
struct Args {
    /// The pods file (YAML): pods, images, services and faults.
    #[arg(long, value_name = "FILE")]
    pods: PathBuf,
    /// Where to write the kubeconfig and the CA certificate.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The static agent binary (exec mode: what `@agent` in an image stands for).
    #[arg(long, value_name = "PATH")]
    agent: Option<PathBuf>,
    /// How ephemeral containers run: the agent entered into the pod's
    /// namespaces (exec), or a podman container of the agent image.
    #[arg(long, value_enum, default_value = "exec")]
    image_mode: Mode,
    /// Podman mode: the local image for images that do not name one.
    #[arg(long, value_name = "IMAGE")]
    podman_image: Option<String>,
    /// The attach subprotocols the server speaks: `v5,v4` (1.30 and later)
    /// or `v4` (before 1.30).
    #[arg(long, default_value = "v5,v4", value_name = "LIST")]
    attach_protocols: String,
    /// Also serve the same API without TLS on another loopback port (named
    /// in DIR/sandbox.json), for tests that speak raw HTTP and WebSocket.
    /// The token is still required.
    #[arg(long)]
    plain_http: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Exec,
    Podman,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("starting the runtime: {e}")),
    };
    let code = runtime.block_on(run(args));
    // Containers' background readers may still be parked; don't wait.
    runtime.shutdown_background();
    code
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "netdiag-sandbox: {message}");
    ExitCode::FAILURE
}

async fn run(args: Args) -> ExitCode {
    let protocols = match args.attach_protocols.replace(' ', "").as_str() {
        "v5,v4" | "v4,v5" => AttachProtocols::V5AndV4,
        "v4" => AttachProtocols::V4Only,
        other => {
            return fail(&format!(
                "--attach-protocols {other:?} is not supported; use v5,v4 or v4"
            ));
        }
    };
    let file = match spec::Sandbox::load(&args.pods) {
        Ok(f) => f,
        Err(e) => return fail(&format!("{e}; fix the pods file")),
    };
    let image_mode = match args.image_mode {
        Mode::Exec => ImageMode::Exec,
        Mode::Podman => ImageMode::Podman,
    };
    if let Err(e) = preflight(&args, &file, image_mode).await {
        return fail(&e);
    }
    if !nix::unistd::geteuid().is_root() {
        return fail("must run as root (it creates network namespaces); run it with sudo");
    }
    let creds = match tls::Credentials::generate() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => return fail(&format!("listening on 127.0.0.1: {e}")),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return fail(&format!("listening on 127.0.0.1: {e}")),
    };
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        return fail(&format!("creating {}: {e}", args.dir.display()));
    }
    let config = Config {
        agent: args.agent.clone(),
        image_mode,
        podman_image: args.podman_image.clone(),
        protocols,
        token: creds.token.clone(),
        dir: args.dir.clone(),
    };
    let (cluster, network) = match cluster::build(config, file).await {
        Ok(c) => c,
        Err(e) => return fail(&format!("building the sandbox: {e}")),
    };
    let kubeconfig = match creds.write_kubeconfig(&args.dir, addr) {
        Ok(k) => k,
        Err(e) => {
            cluster::teardown(&cluster, network).await;
            return fail(&e);
        }
    };

    let plain = if args.plain_http {
        match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => Some(l),
            Err(e) => {
                cluster::teardown(&cluster, network).await;
                return fail(&format!("listening on 127.0.0.1: {e}"));
            }
        }
    } else {
        None
    };
    let plain_addr = plain.as_ref().and_then(|l| l.local_addr().ok());
    if let Err(e) = write_description(&args.dir, &cluster, addr, plain_addr, &creds.token) {
        cluster::teardown(&cluster, network).await;
        return fail(&e);
    }

    tokio::spawn(kubelet::relist_loop(cluster.clone()));
    tokio::spawn(serve(
        listener,
        Some(TlsAcceptor::from(creds.server_config.clone())),
        cluster.clone(),
    ));
    if let Some(plain) = plain {
        tokio::spawn(serve(plain, None, cluster.clone()));
    }

    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "ready {}", kubeconfig.display());
    let _ = stdout.flush();

    wait_for_shutdown().await;
    cluster::teardown(&cluster, network).await;
    ExitCode::SUCCESS
}

/// Checks that can fail before anything is created.
async fn preflight(args: &Args, file: &spec::Sandbox, mode: ImageMode) -> Result<(), String> {
    match mode {
        ImageMode::Exec => {
            let needs_agent = file.images.is_empty()
                || file
                    .images
                    .iter()
                    .any(|i| i.files.values().any(|v| v == "@agent"));
            match &args.agent {
                Some(a) if !a.is_file() => {
                    return Err(format!("--agent {}: no such file", a.display()));
                }
                None if needs_agent => {
                    return Err(
                        "exec mode runs the agent binary; pass --agent PATH (or declare images without @agent)"
                            .to_owned(),
                    );
                }
                _ => {}
            }
        }
        ImageMode::Podman => {
            let mut images: Vec<String> = file
                .images
                .iter()
                .filter_map(|i| i.podman.clone())
                .collect();
            images.extend(args.podman_image.clone());
            if images.is_empty() {
                return Err(
                    "podman mode needs a local image; pass --podman-image IMAGE (built from Dockerfile.debug)"
                        .to_owned(),
                );
            }
            for image in images {
                let ok = runtime::podman_command()
                    .args(["image", "exists", &image])
                    .status()
                    .await
                    .map(|s| s.success())
                    .unwrap_or(false);
                if !ok {
                    return Err(format!(
                        "podman image {image} does not exist; build it from Dockerfile.debug first"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `DIR/sandbox.json`: where the sandbox serves, its token, and each pod's
/// network namespace and address, for tests and their oracles.
fn write_description(
    dir: &std::path::Path,
    cluster: &cluster::Cluster,
    addr: std::net::SocketAddr,
    plain: Option<std::net::SocketAddr>,
    token: &str,
) -> Result<(), String> {
    let pods: serde_json::Map<String, serde_json::Value> = cluster
        .pods
        .iter()
        .map(|((ns, name), info)| {
            (
                format!("{ns}/{name}"),
                serde_json::json!({
                    "netns": info.netns,
                    "ip": info.ipv4.to_string(),
                    "ipv6": info.ipv6.map(|a| a.to_string()),
                }),
            )
        })
        .collect();
    let description = serde_json::json!({
        "server": format!("https://{addr}"),
        "plainHttp": plain.map(|a| a.to_string()),
        "token": token,
        "pods": pods,
    });
    let path = dir.join("sandbox.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&description).expect("JSON serializes"),
    )
    .map_err(|e| format!("writing {}: {e}", path.display()))
}

async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, cluster: Arc<cluster::Cluster>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let cluster = cluster.clone();
                async move { Ok::<_, Infallible>(api::handle(cluster, req).await) }
            });
            let builder = hyper::server::conn::http1::Builder::new();
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                }
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(tcp), service)
                        .with_upgrades()
                        .await;
                }
            }
        });
    }
}

/// SIGTERM, SIGINT, or the end of stdin when stdin is a pipe, socket or
/// terminal (not /dev/null: a sandbox started in the background keeps
/// running until signalled).
async fn wait_for_shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    let watch_stdin = stdin_is_a_channel();
    let stdin_closed = async {
        if !watch_stdin {
            return std::future::pending::<()>().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        () = stdin_closed => {}
    }
}

fn stdin_is_a_channel() -> bool {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata("/proc/self/fd/0") else {
        return false;
    };
    let t = meta.file_type();
    t.is_fifo() || t.is_socket() || std::io::IsTerminal::is_terminal(&std::io::stdin())
}
