//! The sandbox cluster for end-to-end tests: a `netdiag-sandbox` process
//! (the `tests/sandbox` crate) serving the Kubernetes API over HTTPS, whose
//! pods are real network namespaces with real processes, torn down when the
//! [`Sandbox`] drops.
//!
//! ```no_run
//! use netdiag_tests::sandbox::{Sandbox, SandboxOptions, AttachProtocols};
//!
//! let sandbox = Sandbox::start(
//!     "pods:\n\
//!      - name: web\n\
//!        labels: {app: web}\n\
//!        owner: {kind: Deployment, name: web}\n\
//!        containers:\n\
//!        - {name: app, command: [busybox, nc, -ll, -p, '8080', -e, /bin/cat]}\n",
//! );
//! // Real kubectl (or the plugin) against it:
//! let out = sandbox.kubectl().args(["get", "pod", "web", "-o", "yaml"]).output().unwrap();
//! // The plugin: put `kubectl-netdiag` on PATH and pass `sandbox.env()`.
//! let env = sandbox.env(); // KUBECONFIG, KUBECACHEDIR
//! // Oracles: the pod's namespace (`ip netns pids`, `nsenter --net=`).
//! let netns = sandbox.pod_netns("web");
//! // An old (before 1.30) server: attach speaks v4 at most.
//! let old = Sandbox::start_with("...", &SandboxOptions {
//!     attach_protocols: AttachProtocols::V4Only,
//!     ..SandboxOptions::default()
//! });
//! # drop((out, env, netns, old));
//! ```
//!
//! The pods file format is documented in `tests/sandbox/src/spec.rs`
//! (pods, owners, services, images, and the faults `imagePullFailure`,
//! `podSecurity`, `rbacDeny`, `slowStartSeconds`, `dropAttachAfterBytes`,
//! plus `phase: Pending` and `windows: true`).
//!
//! By default ephemeral containers run in exec mode: the debug agent
//! ([`crate::agent::agent_bin`]) entered into the pod's namespaces, as any
//! image (`*`) resolves to the agent image. [`ImageMode::Podman`] runs them
//! as podman containers of a local image (e.g. [`crate::podman::agent_image`]).
//!
//! For protocol-level tests, [`Sandbox::http`] and [`Sandbox::websocket`]
//! speak raw HTTP/1.1 and WebSocket (a client written here, independent of
//! the server's libraries) to a plain-HTTP loopback port that serves the
//! same API as the HTTPS one (token still required).

mod raw;

pub use raw::{HttpResponse, WatchStream, WsClient, WsEvent};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use crate::TempDir;
use crate::process;

/// How long start-up may take (namespaces, processes; the machine may be
/// busy compiling).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Which server generation the sandbox plays for attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachProtocols {
    /// Kubernetes 1.30+: `v5.channel.k8s.io` through the API server's
    /// stream translator, `v4.channel.k8s.io` from the kubelet.
    #[default]
    V5AndV4,
    /// Before 1.30: `v4.channel.k8s.io` at most.
    V4Only,
}

/// How ephemeral containers run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ImageMode {
    /// The agent binary entered into the pod's namespaces (fast).
    #[default]
    Exec,
    /// `podman run` of this local image (built from `Dockerfile.debug`).
    Podman(String),
}

#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    pub attach_protocols: AttachProtocols,
    pub image_mode: ImageMode,
    /// The agent binary for exec mode; default [`crate::agent::agent_bin`].
    pub agent: Option<PathBuf>,
}

/// A running sandbox cluster; stopped (every process killed, every
/// namespace deleted) on drop.
pub struct Sandbox {
    child: Child,
    /// Held open: the sandbox stops when it closes (also if this process
    /// dies without unwinding).
    stdin: Option<ChildStdin>,
    dir: TempDir,
    kubeconfig: PathBuf,
    description: serde_json::Value,
}

impl Sandbox {
    /// Starts a sandbox with `pods_yaml` (v5+v4 attach, exec mode). Panics
    /// if it does not come up.
    pub fn start(pods_yaml: &str) -> Sandbox {
        Sandbox::start_with(pods_yaml, &SandboxOptions::default())
    }

    pub fn start_with(pods_yaml: &str, options: &SandboxOptions) -> Sandbox {
        let dir = TempDir::new("sandbox");
        let pods = dir.path().join("pods.yaml");
        std::fs::write(&pods, pods_yaml).expect("writing the pods file");
        let agent = options
            .agent
            .clone()
            .unwrap_or_else(crate::agent::agent_bin);
        let mut cmd = Command::new(sandbox_bin());
        cmd.arg("--pods")
            .arg(&pods)
            .arg("--dir")
            .arg(dir.path())
            .arg("--agent")
            .arg(&agent)
            .arg("--plain-http")
            .arg("--attach-protocols")
            .arg(match options.attach_protocols {
                AttachProtocols::V5AndV4 => "v5,v4",
                AttachProtocols::V4Only => "v4",
            });
        if let ImageMode::Podman(image) = &options.image_mode {
            cmd.args(["--image-mode", "podman", "--podman-image", image]);
        }
        let stderr = std::fs::File::create(dir.path().join("sandbox.stderr"))
            .expect("creating the sandbox's stderr file");
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut sandbox = Sandbox {
            child,
            stdin,
            kubeconfig: dir.path().join("kubeconfig"),
            dir,
            description: serde_json::Value::Null,
        };
        let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        if !line.starts_with("ready ") {
            panic!(
                "the sandbox did not start (said {line:?}); its stderr:\n{}",
                sandbox.stderr()
            );
        }
        let description = std::fs::read(sandbox.dir.path().join("sandbox.json"))
            .expect("the sandbox writes sandbox.json before it is ready");
        sandbox.description = serde_json::from_slice(&description).expect("sandbox.json is JSON");
        sandbox
    }

    /// The kubeconfig (context `sandbox`, namespace `default`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// What a kubectl or plugin run against this sandbox needs in its
    /// environment: `KUBECONFIG`, and `KUBECACHEDIR` so kubectl's discovery
    /// cache stays in the sandbox's directory.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "KUBECONFIG".to_owned(),
                self.kubeconfig.display().to_string(),
            ),
            (
                "KUBECACHEDIR".to_owned(),
                self.dir.path().join("cache").display().to_string(),
            ),
        ]
    }

    /// `kubectl` with [`env`](Self::env) set.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.envs(self.env());
        cmd
    }

    /// Runs `kubectl args...` (stdin from /dev/null) and returns its output,
    /// whatever the exit status.
    pub fn kubectl_output(&self, args: &[&str]) -> std::process::Output {
        process::output(self.kubectl().args(args), process::DEFAULT_TIMEOUT)
    }

    /// `https://127.0.0.1:PORT`.
    pub fn server(&self) -> &str {
        self.description["server"].as_str().unwrap_or("")
    }

    /// The bearer token the kubeconfig carries.
    pub fn token(&self) -> &str {
        self.description["token"].as_str().unwrap_or("")
    }

    /// `/run/netns/NAME` of a pod in namespace `default`.
    pub fn pod_netns(&self, pod: &str) -> PathBuf {
        self.pod_netns_in("default", pod)
    }

    pub fn pod_netns_in(&self, namespace: &str, pod: &str) -> PathBuf {
        let key = format!("{namespace}/{pod}");
        PathBuf::from(
            self.description["pods"][&key]["netns"]
                .as_str()
                .unwrap_or_else(|| panic!("no pod {key} in this sandbox")),
        )
    }

    /// A pod's IPv4 address.
    pub fn pod_ip(&self, pod: &str) -> String {
        self.pod_ip_in("default", pod)
    }

    /// The IPv4 address of pod `namespace/pod`.
    pub fn pod_ip_in(&self, namespace: &str, pod: &str) -> String {
        let key = format!("{namespace}/{pod}");
        self.description["pods"][&key]["ip"]
            .as_str()
            .unwrap_or_else(|| panic!("no pod {key} in this sandbox"))
            .to_owned()
    }

    /// What the sandbox wrote on stderr (its diagnostics).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sandbox.stderr")).unwrap_or_default()
    }

    fn plain_addr(&self) -> String {
        self.description["plainHttp"]
            .as_str()
            .expect("the harness starts the sandbox with --plain-http")
            .to_owned()
    }

    /// One raw HTTP/1.1 request (with the token) to the plain port.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> HttpResponse {
        raw::request(
            &self.plain_addr(),
            self.token(),
            method,
            path,
            &[],
            content_type,
            body,
        )
    }

    /// A request without credentials.
    pub fn http_unauthenticated(&self, method: &str, path: &str) -> HttpResponse {
        raw::request(&self.plain_addr(), "", method, path, &[], None, b"")
    }

    /// Like [`http`](Self::http) with extra request headers.
    pub fn http_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: &[u8],
    ) -> HttpResponse {
        raw::request(
            &self.plain_addr(),
            self.token(),
            method,
            path,
            headers,
            content_type,
            body,
        )
    }

    /// A GET whose chunked body is read line by line (a watch).
    pub fn watch(&self, path: &str) -> WatchStream {
        raw::watch(&self.plain_addr(), self.token(), path)
    }

    /// Opens a WebSocket on `path` offering `protocols`; the server's
    /// non-101 answer is the error.
    pub fn websocket(&self, path: &str, protocols: &[&str]) -> Result<WsClient, HttpResponse> {
        raw::websocket(&self.plain_addr(), self.token(), path, protocols)
    }

    /// Stops the sandbox now and returns its exit status (drop does this
    /// quietly).
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.shutdown()
            .unwrap_or_else(|| panic!("the sandbox did not stop; stderr:\n{}", self.stderr()))
    }

    fn shutdown(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        self.stdin.take();
        for _ in 0..500 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The `netdiag-sandbox` executable, built by cargo once per test process
/// (like the agent in [`crate::agent`]).
pub fn sandbox_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(crate::workspace_root()).args([
            "build",
            "-p",
            "netdiag-sandbox",
            "--message-format=json-render-diagnostics",
        ]);
        let out = process::checked(&mut cmd, Duration::from_secs(25 * 60));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| {
                m["reason"] == "compiler-artifact" && m["target"]["name"] == "netdiag-sandbox"
            })
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| panic!("{cmd:?} reported no netdiag-sandbox executable"))
    })
    .clone()
}
