//! Container images and containers for the tests, with podman (no daemon).
//!
//! A pod is modelled the way Kubernetes builds one: a target container runs
//! in a test namespace (`--network ns:/run/netns/NAME`), and the debug
//! container joins it (`--network container:T --pid container:T`), exactly
//! what `kubectl debug --target` / an ephemeral container gets.
//!
//! No registry is reachable, so every image is built locally `FROM scratch`
//! ([`agent_image`] from `Dockerfile.debug`, [`busybox_image`] as a stand-in
//! application). Images and containers get unique names and are removed by
//! their guards' `Drop`. Every container must be given `--network` with
//! `none`, `ns:...` or `container:...`; [`Container::start`] and [`run`]
//! refuse anything else, because podman's default bridge network would
//! put addresses on the machine and NAT traffic out of it.
//!
//! podman reads `CONTAINERS_CONF` (runc instead of crun, ulimits root may
//! set here); [`podman`] points it at `<repo>/../shared/podman/containers.conf`
//! unless the environment already chose one.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::TempDir;
use crate::process::{self, DEFAULT_TIMEOUT};

/// A `podman` command with `CONTAINERS_CONF` set.
pub fn podman() -> Command {
    let mut cmd = Command::new("podman");
    if std::env::var_os("CONTAINERS_CONF").is_none() {
        let conf = crate::shared_dir().join("podman").join("containers.conf");
        if let Ok(conf) = conf.canonicalize() {
            cmd.env("CONTAINERS_CONF", conf);
        }
    }
    cmd
}

/// A locally built image, removed (`podman rmi -f`) on drop.
pub struct Image {
    tag: String,
}

impl Image {
    /// `podman build -f dockerfile -t localhost/nd-{tag}-...:test [extra...] context`.
    pub fn build(tag: &str, dockerfile: &Path, context: &Path, extra: &[&str]) -> Image {
        let image = Image {
            tag: format!("localhost/{}:test", crate::unique_name(tag)),
        };
        // --layers=false: with layer caching, a multi-stage build leaves its
        // intermediate stages behind as untagged images that rmi keeps.
        process::checked(
            podman()
                .args(["build", "--quiet", "--layers=false", "-f"])
                .arg(dockerfile)
                .args(["-t", &image.tag])
                .args(extra)
                .arg(context),
            DEFAULT_TIMEOUT,
        );
        image
    }

    /// The full reference, e.g. `localhost/nd-agent-123-4:test`.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// `podman image inspect --format TEMPLATE`, trimmed.
    pub fn inspect(&self, template: &str) -> String {
        let out = process::checked(
            podman().args(["image", "inspect", "--format", template, &self.tag]),
            DEFAULT_TIMEOUT,
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The image's size in bytes, as podman reports it.
    pub fn size(&self) -> u64 {
        let size = self.inspect("{{.Size}}");
        size.parse()
            .unwrap_or_else(|_| panic!("podman reported size {size:?} for {}", self.tag))
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = podman()
            .args(["rmi", "-f", &self.tag])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The debug image as `Dockerfile.debug`'s default build makes it: the
/// static agent from [`agent_static_bin`](crate::agent::agent_static_bin),
/// staged alone in a build context.
pub fn agent_image() -> Image {
    let context = TempDir::new("agent-ctx");
    let staged = context.path().join("netdiag-agent");
    std::fs::copy(crate::agent::agent_static_bin(), &staged)
        .unwrap_or_else(|e| panic!("staging the agent in {}: {e}", staged.display()));
    Image::build(
        "agent",
        &crate::workspace_root().join("Dockerfile.debug"),
        context.path(),
        &[],
    )
}

/// A stand-in application image: `FROM scratch` with Debian's static
/// busybox (package busybox-static) as `/bin/busybox` and its entrypoint,
/// so the command is an applet: `httpd -f -p 198.51.100.1:8080`.
pub fn busybox_image() -> Image {
    let context = TempDir::new("busybox-ctx");
    std::fs::copy("/bin/busybox", context.path().join("busybox"))
        .unwrap_or_else(|e| panic!("copying /bin/busybox (install busybox-static): {e}"));
    let dockerfile = context.path().join("Dockerfile");
    std::fs::write(
        &dockerfile,
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n",
    )
    .expect("writing the busybox Dockerfile");
    Image::build("busybox", &dockerfile, context.path(), &[])
}

/// A named container, removed (`podman rm -f`) on drop.
pub struct Container {
    name: String,
}

impl Container {
    /// `podman run -d --name nd-{tag}-... options... image command...`.
    /// `options` must include the network (see the module doc). Returns once
    /// podman has started it; waiting for the application is up to the test.
    pub fn start(tag: &str, options: &[&str], image: &Image, command: &[&str]) -> Container {
        check_network(options);
        let container = Container {
            name: crate::unique_name(tag),
        };
        process::checked(
            podman()
                .args(["run", "-d", "--name", &container.name])
                .args(options)
                .arg(image.tag())
                .args(command),
            DEFAULT_TIMEOUT,
        );
        container
    }

    /// The container's name, for `--network container:NAME`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the container printed so far (stdout and stderr merged).
    pub fn logs(&self) -> String {
        let out = process::output(podman().args(["logs", &self.name]), DEFAULT_TIMEOUT);
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman()
            .args(["rm", "-f", "-t", "0", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs a container in the foreground to completion and returns its output
/// and exit status (podman passes the container's code through). Like
/// [`Container::start`] it must be given a network; it is removed afterwards
/// even if the test fails meanwhile.
pub fn run(tag: &str, options: &[&str], image: &Image, command: &[&str]) -> Output {
    check_network(options);
    let guard = Container {
        name: crate::unique_name(tag),
    };
    let out = process::output(
        podman()
            .args(["run", "--rm", "--name", &guard.name])
            .args(options)
            .arg(image.tag())
            .args(command),
        DEFAULT_TIMEOUT,
    );
    drop(guard);
    out
}

/// Panics unless `options` choose a network that keeps the container off
/// the machine's own: `none`, `ns:PATH` or `container:NAME`.
fn check_network(options: &[&str]) {
    let value = options.iter().enumerate().find_map(|(i, o)| {
        if *o == "--network" || *o == "--net" {
            options.get(i + 1).copied()
        } else {
            o.strip_prefix("--network=")
                .or_else(|| o.strip_prefix("--net="))
        }
    });
    match value {
        Some(v) if v == "none" || v.starts_with("ns:") || v.starts_with("container:") => {}
        other => panic!(
            "containers in tests need --network none|ns:PATH|container:NAME, got {other:?}: \
             podman's default bridge network would reach outside the machine"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::check_network;

    #[test]
    fn accepts_only_contained_networks() {
        check_network(&["--network", "ns:/run/netns/x"]);
        check_network(&["--pid", "container:t", "--network=container:t"]);
        check_network(&["--net", "none"]);
        for bad in [
            &["--network", "bridge"][..],
            &["--network=host"],
            &["--pid", "host"],
            &[],
        ] {
            assert!(
                std::panic::catch_unwind(|| check_network(bad)).is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
