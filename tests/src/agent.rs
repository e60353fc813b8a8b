//! The executables under test (`netdiag-agent`, `kubectl-netdiag`), built by
//! cargo on first use.
//!
//! The agent is another package of the workspace, so cargo gives this crate
//! no `CARGO_BIN_EXE_` for it; instead the first test that needs it runs
//! `cargo build -p netdiag-agent` (the same cargo that runs the tests) and
//! takes the executable's path from cargo's JSON messages rather than
//! guessing the target directory (`CARGO_TARGET_DIR`, `--target` and profiles
//! all move it). Each build happens once per test process; cargo's own
//! fingerprints make it a no-op when nothing changed.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::process;

/// The package and binary names.
const AGENT: &str = "netdiag-agent";
const PLUGIN: &str = "kubectl-netdiag";

/// The target the static image binary is built for. Naming it explicitly
/// keeps `+crt-static` off build scripts and proc-macros, which must stay
/// dynamic host binaries.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// What makes the glibc build self-contained (a static-pie executable that
/// runs `FROM scratch`).
pub const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static";

/// A cold release build with fat LTO takes minutes on a busy two-core
/// machine, and cargo may first wait for another build's lock.
const BUILD_TIMEOUT: Duration = Duration::from_secs(25 * 60);

/// The debug agent: `cargo build -p netdiag-agent`.
pub fn agent_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_package(AGENT, &[], None)).clone()
}

/// The plugin, `cargo build -p kubectl-netdiag`: put its directory on PATH
/// and `kubectl netdiag ...` finds it through kubectl's plugin dispatch.
pub fn plugin_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_package(PLUGIN, &[], None)).clone()
}

/// The agent as shipped in the image: release profile, statically linked,
/// `RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target
/// x86_64-unknown-linux-gnu -p netdiag-agent`. Dockerfile.debug's default
/// build copies exactly this file.
pub fn agent_static_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        build_package(
            AGENT,
            &["--release", "--target", STATIC_TARGET],
            Some(STATIC_RUSTFLAGS),
        )
    })
    .clone()
}

/// Builds a package's binary with extra cargo `args` (and `rustflags`
/// replacing any inherited ones) and returns the executable cargo reports.
fn build_package(package: &str, args: &[&str], rustflags: Option<&str>) -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(crate::workspace_root())
        .args([
            "build",
            "-p",
            package,
            "--message-format=json-render-diagnostics",
        ])
        .args(args);
    if let Some(flags) = rustflags {
        // CARGO_ENCODED_RUSTFLAGS would win over RUSTFLAGS.
        cmd.env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env("RUSTFLAGS", flags);
    }
    let out = process::checked(&mut cmd, BUILD_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    executable_from_messages(&stdout, package).unwrap_or_else(|| {
        panic!(
            "{cmd:?} reported no executable for {package}; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Finds a binary among cargo's JSON messages, one per line: the
/// `compiler-artifact` whose target has that name.
fn executable_from_messages(messages: &str, binary: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == binary)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_agent_executable_from_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"netdiag_wire","kind":["lib"]},"executable":null}
not json: cargo prints only JSON on stdout, but be lenient
{"reason":"compiler-artifact","target":{"name":"netdiag-agent","kind":["bin"]},"executable":"/t/debug/netdiag-agent"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            executable_from_messages(messages, AGENT),
            Some(PathBuf::from("/t/debug/netdiag-agent"))
        );
        assert_eq!(
            executable_from_messages(r#"{"reason":"build-finished","success":true}"#, AGENT),
            None
        );
    }
}
