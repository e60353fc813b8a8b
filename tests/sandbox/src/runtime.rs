//! The container runtime: real processes standing in for containers.
//!
//! A [`Container`] is what containerd keeps for one container: its state,
//! its log (everything it wrote, timestamped, as the CRI log file holds it),
//! the attach sessions currently listening, and its stdin pipe. Attach works
//! like containerd's: a session only sees output written after it attached
//! (earlier output is in the log only), a slow session slows the container
//! (back-pressure, never loss), and when the attached client's stdin ends
//! and the container is `stdinOnce`, the container's stdin is closed.
//!
//! Processes are started two ways ([`Launch`]):
//! - exec: the program (a host binary) is entered into the pod's network
//!   namespace with `nsenter`, into the target container's PID namespace or
//!   a new one, gets its own /proc, and drops to the container's user and
//!   capabilities with `setpriv`;
//! - podman: `podman run` of a local image with `--network ns:` and
//!   `--pid ns:`, `--user`, `--cap-drop ALL --cap-add ...`.
//!
//! Every process is started in its own process group so that killing the
//! container kills all of it, and with `setpriv --pdeathsig KILL` at the
//! root of the chain so that a sandbox that dies takes its containers along.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, Command};
use tokio::sync::{mpsc, watch};

use crate::etc::PodEtc;
use crate::store::{now_rfc3339, now_rfc3339_nanos};

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A piece of container output on its way to an attach session.
#[derive(Debug, Clone)]
pub struct OutChunk {
    pub stream: Stream,
    pub data: Bytes,
}

/// The container's state as the runtime knows it, the moment it changes.
/// The kubelet reports it to the API later ([`crate::kubelet`]).
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Known to the kubelet, not started yet (pulling, creating, slow start,
    /// or its pod is Pending).
    Creating,
    /// Not startable as configured (the kubelet's
    /// `CreateContainerConfigError`); never retried here.
    ConfigError {
        message: String,
    },
    /// The image could not be pulled; `attempts` pulls have failed, the
    /// last at `failed_at` (seconds since the sandbox started).
    PullFailed {
        message: String,
        attempts: u32,
        failed_at: f64,
    },
    Running {
        started: String,
    },
    Exited {
        code: i32,
        reason: String,
        message: Option<String>,
        started: String,
        finished: String,
    },
}

/// One log record: when, and what (a chunk as it was read; the CRI log
/// interleaves stdout and stderr).
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub time: String,
    pub data: Bytes,
}

/// Everything a container wrote; followers wait on `changed`.
#[derive(Debug)]
pub struct Log {
    entries: Mutex<Vec<LogEntry>>,
    /// (number of entries, whether the container's output has ended)
    changed: watch::Sender<(usize, bool)>,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            entries: Mutex::new(Vec::new()),
            changed: watch::channel((0, false)).0,
        }
    }
}

impl Log {
    fn append(&self, data: Bytes) {
        let mut entries = lock(&self.entries);
        entries.push(LogEntry {
            time: now_rfc3339_nanos(),
            data,
        });
        let n = entries.len();
        drop(entries);
        self.changed.send_modify(|c| c.0 = n);
    }

    fn close(&self) {
        self.changed.send_modify(|c| c.1 = true);
    }

    /// Entries from `from` on.
    pub fn entries_from(&self, from: usize) -> Vec<LogEntry> {
        let entries = lock(&self.entries);
        entries.get(from..).map(<[_]>::to_vec).unwrap_or_default()
    }

    pub fn subscribe(&self) -> watch::Receiver<(usize, bool)> {
        self.changed.subscribe()
    }
}

/// How to kill a started container.
#[derive(Debug, Clone)]
enum Killer {
    ProcessGroup(i32),
    Podman(String),
}

/// Attach sessions listening to a container, and whether its output ended.
#[derive(Default)]
struct Listeners {
    sessions: Vec<mpsc::Sender<OutChunk>>,
    ended: bool,
}

/// One container of one pod.
pub struct Container {
    pub name: String,
    pub ephemeral: bool,
    /// The runtime's id (64 hex digits, as containerd's).
    pub id: String,
    pub image: String,
    pub image_id: String,
    pub stdin_open: bool,
    pub stdin_once: bool,
    state: Mutex<State>,
    pub log: Log,
    listeners: tokio::sync::Mutex<Listeners>,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    /// The container's first process as the host sees it (for joining its
    /// PID namespace).
    init_pid: Mutex<Option<u32>>,
    killer: Mutex<Option<Killer>>,
    open_streams: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Container {
    pub fn new(
        name: &str,
        ephemeral: bool,
        image: &str,
        stdin_open: bool,
        stdin_once: bool,
    ) -> Container {
        let id = crate::tls::random_hex(32).unwrap_or_else(|_| "0".repeat(64));
        let digest = crate::tls::random_hex(32).unwrap_or_else(|_| "0".repeat(64));
        let image_id = match image.split_once('@') {
            Some(_) => normalize_image(image),
            None => format!(
                "{}@sha256:{digest}",
                normalize_image(image)
                    .rsplit_once(':')
                    .map_or(image, |(repo, _tag)| repo)
            ),
        };
        Container {
            name: name.to_owned(),
            ephemeral,
            id,
            image: image.to_owned(),
            image_id,
            stdin_open,
            stdin_once,
            state: Mutex::new(State::Creating),
            log: Log::default(),
            listeners: tokio::sync::Mutex::new(Listeners::default()),
            stdin: tokio::sync::Mutex::new(None),
            init_pid: Mutex::new(None),
            killer: Mutex::new(None),
            open_streams: AtomicUsize::new(0),
        }
    }

    pub fn state(&self) -> State {
        lock(&self.state).clone()
    }

    pub fn set_state(&self, state: State) {
        *lock(&self.state) = state;
    }

    pub fn is_running(&self) -> bool {
        matches!(*lock(&self.state), State::Running { .. })
    }

    pub fn init_pid(&self) -> Option<u32> {
        *lock(&self.init_pid)
    }

    /// Registers an attach session: from now on it receives every chunk of
    /// output, until the output ends (the channel closes) or it goes away.
    /// `None` when the container is not running (or its output has ended).
    pub async fn attach(&self, depth: usize) -> Option<mpsc::Receiver<OutChunk>> {
        let mut listeners = self.listeners.lock().await;
        if listeners.ended || !self.is_running() {
            return None;
        }
        let (tx, rx) = mpsc::channel(depth);
        listeners.sessions.push(tx);
        Some(rx)
    }

    /// Writes to the container's stdin; false once it is closed.
    pub async fn write_stdin(&self, data: &[u8]) -> bool {
        let mut stdin = self.stdin.lock().await;
        let Some(pipe) = stdin.as_mut() else {
            return false;
        };
        if pipe.write_all(data).await.is_err() || pipe.flush().await.is_err() {
            *stdin = None;
            return false;
        }
        true
    }

    /// Closes the container's stdin: the process reads end of file.
    pub async fn close_stdin(&self) {
        self.stdin.lock().await.take();
    }

    /// Kills the container's processes (quietly; they may be gone).
    pub async fn kill(&self) {
        let killer = lock(&self.killer).clone();
        match killer {
            Some(Killer::ProcessGroup(pgid)) => {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Some(Killer::Podman(name)) => {
                let _ = podman_command()
                    .args(["rm", "-f", "-t", "0", &name])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .await;
            }
            None => {}
        }
    }

    async fn deliver(&self, stream: Stream, data: Bytes) {
        self.log.append(data.clone());
        let mut listeners = self.listeners.lock().await;
        let mut i = 0;
        while i < listeners.sessions.len() {
            let chunk = OutChunk {
                stream,
                data: data.clone(),
            };
            // Waiting here is the back-pressure a slow client exerts on the
            // container, as with containerd's attach.
            if listeners.sessions[i].send(chunk).await.is_err() {
                listeners.sessions.remove(i);
            } else {
                i += 1;
            }
        }
    }

    async fn stream_closed(&self) {
        if self.open_streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut listeners = self.listeners.lock().await;
            listeners.ended = true;
            listeners.sessions.clear();
            drop(listeners);
            self.log.close();
        }
    }
}

/// Everything needed to start one container's process.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: Program,
    pub env: Vec<(String, String)>,
    pub uid: u32,
    pub gid: u32,
    /// Capabilities the process keeps (kernel names without `CAP_`,
    /// uppercase), when not privileged.
    pub capabilities: Vec<String>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    /// `/run/netns/NAME` of the pod.
    pub netns: String,
    /// The pod's resolv.conf and hosts, mounted over /etc's.
    pub etc: PodEtc,
    /// Join the PID namespace of this process; `None`: a new one.
    pub target_pid: Option<u32>,
    pub stdin: bool,
    pub tty: bool,
}

#[derive(Debug, Clone)]
pub enum Program {
    /// A host executable and its arguments (argv[0] included).
    Exec(Vec<String>),
    /// A podman image; `entrypoint` replaces the image's when set.
    Podman {
        image: String,
        entrypoint: Option<Vec<String>>,
        args: Vec<String>,
        name: String,
    },
}

/// How a started process ended.
pub struct Exit {
    pub code: i32,
    pub stderr_tail: String,
}

/// Starts `launch` for `container`: wires its output into the log and
/// attach sessions, its stdin into [`Container::write_stdin`], and returns
/// a handle that resolves when the process ends. For podman, returns only
/// once podman reports the container running (or gave up).
pub async fn start(
    container: &Arc<Container>,
    launch: &Launch,
) -> Result<tokio::task::JoinHandle<Exit>, String> {
    let mut cmd = match &launch.program {
        Program::Exec(argv) => exec_command(launch, argv),
        Program::Podman {
            image,
            entrypoint,
            args,
            name,
        } => podman_run_command(launch, image, entrypoint.as_deref(), args, name),
    };
    cmd.stdin(if launch.stdin {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting {:?}: {e}", launch.program))?;
    let pid = child.id().unwrap_or(0);
    *lock(&container.killer) = Some(match &launch.program {
        Program::Exec(_) => Killer::ProcessGroup(pid as i32),
        Program::Podman { name, .. } => Killer::Podman(name.clone()),
    });
    *container.stdin.lock().await = child.stdin.take();

    container.open_streams.store(2, Ordering::Release);
    let stderr_tail = Arc::new(Mutex::new(Vec::<u8>::new()));
    for (stream, reader) in [
        (
            Stream::Stdout,
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ),
        (
            // A TTY merges stderr into stdout, as the terminal does.
            if launch.tty {
                Stream::Stdout
            } else {
                Stream::Stderr
            },
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ),
    ] {
        let container = container.clone();
        let tail = stderr_tail.clone();
        tokio::spawn(async move {
            if let Some(mut reader) = reader {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream == Stream::Stderr {
                                let mut t = lock(&tail);
                                t.extend_from_slice(&buf[..n]);
                                let excess = t.len().saturating_sub(4096);
                                t.drain(..excess);
                            }
                            container
                                .deliver(stream, Bytes::copy_from_slice(&buf[..n]))
                                .await;
                        }
                    }
                }
            }
            container.stream_closed().await;
        });
    }

    if let Program::Podman { name, .. } = &launch.program {
        // podman run returns before or after the container starts; the
        // container counts as running once podman says so.
        wait_podman_running(name, &mut child).await;
    } else if launch.target_pid.is_none() {
        // The first process of the container is unshare's child (pid 1 of
        // the new PID namespace); remember it for later --target.
        *lock(&container.init_pid) = first_child(pid).await;
    }

    let handle = tokio::spawn(async move {
        let status = child.wait().await;
        let code = match status {
            Ok(s) => s.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                128 + s.signal().unwrap_or(9)
            }),
            Err(_) => 255,
        };
        let tail = String::from_utf8_lossy(&lock(&stderr_tail)).into_owned();
        Exit {
            code,
            stderr_tail: tail,
        }
    });
    Ok(handle)
}

/// Mounts `$1` over /etc/resolv.conf and `$2` over /etc/hosts, then runs
/// the rest of its arguments. (/etc/resolv.conf may be a symlink: the mount
/// lands on its target, inside this mount namespace only.)
const ETC_MOUNTS: &str = "mount --bind \"$1\" /etc/resolv.conf && \
                          mount --bind \"$2\" /etc/hosts && shift 2 && exec \"$@\"";

/// `setpriv --pdeathsig KILL -- nsenter --net=NS [--pid=...] -- unshare ...
/// -- sh (the pod's /etc files) -- setpriv <user and capabilities> --
/// PROGRAM ARGS`.
fn exec_command(launch: &Launch, argv: &[String]) -> Command {
    let mut cmd = Command::new("/usr/bin/setpriv");
    cmd.args(["--pdeathsig", "KILL", "--", "/usr/bin/nsenter"])
        .arg(format!("--net={}", launch.netns));
    match launch.target_pid {
        Some(pid) => {
            // nsenter forks into the target's PID namespace; the container
            // gets its own mount namespace with a /proc of that namespace.
            cmd.arg(format!("--pid=/proc/{pid}/ns/pid")).args([
                "--",
                "/usr/bin/unshare",
                "--mount-proc",
            ]);
        }
        None => {
            cmd.args([
                "--",
                "/usr/bin/unshare",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
            ]);
        }
    }
    // In the container's own mount namespace (unshare made it, with private
    // propagation): the pod's files over the machine's, as the kubelet's
    // bind mounts do.
    cmd.args(["--", "/bin/sh", "-c", ETC_MOUNTS, "etc-mounts"])
        .arg(&launch.etc.resolv_conf)
        .arg(&launch.etc.hosts);
    cmd.arg("/usr/bin/setpriv");
    if launch.uid != 0 || launch.gid != 0 {
        cmd.arg(format!("--reuid={}", launch.uid))
            .arg(format!("--regid={}", launch.gid));
    }
    cmd.arg("--clear-groups");
    if launch.no_new_privileges {
        cmd.arg("--no-new-privs");
    }
    if !launch.privileged {
        let mut set = String::from("-all");
        for cap in &launch.capabilities {
            set.push_str(",+");
            set.push_str(&cap.to_ascii_lowercase());
        }
        cmd.arg("--inh-caps=-all")
            .arg(format!("--bounding-set={set}"));
    }
    cmd.arg("--").args(argv);
    cmd.env_clear().envs(launch.env.iter().map(|(k, v)| (k, v)));
    cmd.current_dir("/");
    cmd
}

/// `podman run` for an ephemeral container of a sandbox pod.
fn podman_run_command(
    launch: &Launch,
    image: &str,
    entrypoint: Option<&[String]>,
    args: &[String],
    name: &str,
) -> Command {
    let mut cmd = podman_command();
    cmd.args(["run", "--rm", "--name", name, "--log-driver", "none"]);
    if launch.stdin {
        cmd.arg("-i");
    }
    if launch.tty {
        cmd.arg("-t");
    }
    cmd.arg("--network").arg(format!("ns:{}", launch.netns));
    cmd.arg("--no-hosts")
        .arg("--volume")
        .arg(format!(
            "{}:/etc/resolv.conf:ro",
            launch.etc.resolv_conf.display()
        ))
        .arg("--volume")
        .arg(format!("{}:/etc/hosts:ro", launch.etc.hosts.display()));
    if let Some(pid) = launch.target_pid {
        cmd.arg("--pid").arg(format!("ns:/proc/{pid}/ns/pid"));
    }
    cmd.arg("--user")
        .arg(format!("{}:{}", launch.uid, launch.gid));
    if launch.privileged {
        cmd.arg("--privileged");
    } else {
        cmd.args(["--cap-drop", "all"]);
        if !launch.capabilities.is_empty() {
            cmd.arg("--cap-add").arg(launch.capabilities.join(","));
        }
    }
    if launch.no_new_privileges {
        cmd.args(["--security-opt", "no-new-privileges"]);
    }
    for (k, v) in &launch.env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    if let Some(ep) = entrypoint {
        cmd.arg("--entrypoint")
            .arg(serde_json::to_string(ep).expect("strings serialize"));
    }
    cmd.arg(image).args(args);
    cmd
}

/// A podman command with `CONTAINERS_CONF` pointing at the shared settings
/// (runc, ulimits) unless the environment chose already.
pub fn podman_command() -> Command {
    let mut cmd = Command::new("podman");
    if std::env::var_os("CONTAINERS_CONF").is_none() {
        let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/podman/containers.conf");
        if let Ok(conf) = conf.canonicalize() {
            cmd.env("CONTAINERS_CONF", conf);
        }
    }
    cmd
}

async fn wait_podman_running(name: &str, child: &mut tokio::process::Child) {
    for _ in 0..600 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let out = podman_command()
            .args(["inspect", "--format", "{{.State.Running}}", name])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .await;
        if let Ok(out) = out
            && String::from_utf8_lossy(&out.stdout).trim() == "true"
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first child of `pid` (unshare's forked child), waiting up to 2 s.
async fn first_child(pid: u32) -> Option<u32> {
    for _ in 0..200 {
        let path = format!("/proc/{pid}/task/{pid}/children");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                if let Some(first) = text.split_whitespace().next() {
                    return first.parse().ok();
                }
            }
            Err(_) => return None,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// The kernel's name for an image reference, as containerd normalizes it:
/// `busybox` -> `docker.io/library/busybox:latest`.
pub fn normalize_image(reference: &str) -> String {
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let first = name.split('/').next().unwrap_or("");
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_domain {
        name.to_owned()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if digest.is_none() && !last.contains(':') {
        full.push_str(":latest");
    }
    match digest {
        Some(d) => format!("{full}@{d}"),
        None => full,
    }
}

/// (namespace, pod name).
type PodKey = (String, String);

/// The runtime's record of every container of every pod.
#[derive(Default)]
pub struct Containers {
    by_pod: Mutex<BTreeMap<PodKey, Vec<Arc<Container>>>>,
}

impl Containers {
    pub fn add(&self, namespace: &str, pod: &str, container: Arc<Container>) {
        lock(&self.by_pod)
            .entry((namespace.to_owned(), pod.to_owned()))
            .or_default()
            .push(container);
    }

    pub fn get(&self, namespace: &str, pod: &str, name: &str) -> Option<Arc<Container>> {
        lock(&self.by_pod)
            .get(&(namespace.to_owned(), pod.to_owned()))?
            .iter()
            .find(|c| c.name == name)
            .cloned()
    }

    pub fn of_pod(&self, namespace: &str, pod: &str) -> Vec<Arc<Container>> {
        lock(&self.by_pod)
            .get(&(namespace.to_owned(), pod.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn all(&self) -> Vec<Arc<Container>> {
        lock(&self.by_pod).values().flatten().cloned().collect()
    }
}

/// The finished time of an exit that happened just now.
pub fn exited_now(code: i32, reason: &str, message: Option<String>, started: String) -> State {
    State::Exited {
        code,
        reason: reason.to_owned(),
        message,
        started,
        finished: now_rfc3339(),
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_image;

    #[test]
    fn normalizes_like_containerd() {
        assert_eq!(
            normalize_image("busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(normalize_image("nope:1"), "docker.io/library/nope:1");
        assert_eq!(normalize_image("me/app"), "docker.io/me/app:latest");
        assert_eq!(
            normalize_image("ghcr.io/netdiag/agent:v1"),
            "ghcr.io/netdiag/agent:v1"
        );
        assert_eq!(
            normalize_image("localhost:5000/a@sha256:00"),
            "localhost:5000/a@sha256:00"
        );
        assert_eq!(normalize_image("localhost/x"), "localhost/x:latest");
    }
}
