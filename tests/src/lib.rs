//! The test harness shared by every end-to-end suite: throwaway network
//! namespaces, veth pairs between them, guarded background processes, the
//! built agent, and locally built container images.
//!
//! Everything a test creates is owned by a guard whose `Drop` removes it, so
//! cleanup happens even when the test panics, and every name carries the test
//! process's pid and a counter ([`unique_name`]), so the tests of one `cargo
//! test` run (threads of one process) and of other developers' runs on the
//! same machine never collide.
//!
//! - [`require_root`]: the gate every privileged test starts with.
//! - [`netns::Netns`]: a namespace with `lo` up; run, spawn or [`enter`] in it.
//! - [`netns::veth_pair`]: a cable between two namespaces, with addresses.
//! - [`process::ChildGuard`]: a background process killed on drop, with its
//!   output captured to files (reading it never blocks the process).
//! - [`agent::agent_bin`] / [`agent::agent_static_bin`]: the agent executable,
//!   built once per test process by cargo.
//! - [`podman`]: images built `FROM scratch` and containers joined to a test
//!   namespace the way a pod's containers are.
//!
//! Rules the harness enforces for the tests built on it: namespaces have no
//! default route, so traffic cannot leave them; podman is only ever given
//! `--network none|ns:...|container:...`, never its default bridge.
//!
//! ```no_run
//! use netdiag_tests::{netns, require_root};
//!
//! if !require_root("two_namespaces_talk") {
//!     return;
//! }
//! let server = netns::Netns::new("srv");
//! let client = netns::Netns::new("cli");
//! netns::veth_pair(&server, &["198.51.100.1/24"], &client, &["198.51.100.2/24"]);
//! let listener = server.spawn("nc", &["-l", "-k", "198.51.100.1", "8080"]);
//! client.run("ping", &["-n", "-c", "1", "-W", "2", "198.51.100.1"]);
//! # drop(listener);
//! ```
//!
//! [`enter`]: netns::Netns::enter

pub mod agent;
pub mod netns;
pub mod podman;
pub mod process;
pub mod rng;
pub mod sandbox;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// True when the tests run as root (needed for namespaces and podman).
///
/// Otherwise the test cannot run: under CI (`CI=true`) that is a failure, so
/// a misconfigured runner cannot pass by skipping everything; on a
/// developer's machine the test says loudly that it skipped and returns false.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if running_in_ci() {
        panic!("{test} needs root (network namespaces, podman) and CI=true forbids skipping it");
    }
    // Straight to the stderr handle, not eprintln!: libtest captures the
    // print macros of passing tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs root (network namespaces, podman); run the tests as root to include it"
    );
    false
}

/// Whether we run under CI, where skipping a test is a failure.
pub fn running_in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true" | "1"))
}

/// A name no other live object of this or any other test process has:
/// `nd-{tag}-{pid}-{counter}`. Used for namespaces, containers, images and
/// temporary files. `tag` says which test made it, for whoever finds a
/// leftover; keep it short, lowercase, `[a-z0-9-]`.
pub fn unique_name(tag: &str) -> String {
    format!("nd-{tag}-{}-{}", std::process::id(), next_serial())
}

/// A process-wide counter: part of every unique name.
pub(crate) fn next_serial() -> u64 {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// The workspace root (holds `Cargo.toml`, `Dockerfile.debug`).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
}

/// The `shared/` directory that sits beside the repository (`<repo>/../shared`):
/// podman settings, the DNS test zone.
pub fn shared_dir() -> PathBuf {
    workspace_root().join("..").join("shared")
}

/// A scratch directory, removed with its contents on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/nd-{tag}-{pid}-{n}`.
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique_name(tag));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("creating temporary directory {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
