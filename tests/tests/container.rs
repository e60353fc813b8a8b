//! The debug image in a pod-shaped setup: `Dockerfile.debug` built with
//! podman, a target container serving on 198.51.100.1:8080 inside a test
//! namespace, and the agent container joined to it the way `kubectl netdiag`
//! joins a pod (`--network container:T --pid container:T`).
//!
//! The target is busybox httpd in a `FROM scratch` image, like a distroless
//! application: nothing in it but the server. What the agent reports is
//! checked against iproute2's `ss` run in the same namespace.

use std::time::Duration;

use netdiag_tests::agent::agent_static_bin;
use netdiag_tests::netns::{Netns, Veth, veth_pair};
use netdiag_tests::podman::{self, Container, Image};
use netdiag_tests::process::wait_until;
use netdiag_tests::require_root;

/// Where the target container listens.
const TARGET_LISTENER: &str = "198.51.100.1:8080";

/// A "pod": a target container in its own namespace, cabled to a peer
/// namespace. Fields drop in order: container, image, then namespaces.
struct Pod {
    target: Container,
    _target_image: Image,
    _veth: Veth,
    _peer: Netns,
    net: Netns,
}

impl Pod {
    /// Starts busybox httpd on 198.51.100.1:8080, waits until it listens and
    /// checks the peer namespace reaches it over the veth.
    fn start() -> Pod {
        let net = Netns::new("pod");
        let peer = Netns::new("peer");
        let veth = veth_pair(&net, &["198.51.100.1/24"], &peer, &["198.51.100.2/24"]);
        let image = podman::busybox_image();
        let network = format!("ns:{}", net.path().display());
        let target = Container::start(
            "target",
            &["--network", &network],
            &image,
            &["httpd", "-f", "-p", TARGET_LISTENER, "-h", "/"],
        );
        wait_until(
            "the target's httpd to listen",
            Duration::from_secs(10),
            || listeners(&net).iter().any(|l| l == TARGET_LISTENER),
        );
        // Served on the pod's interface, as a Service would reach it.
        peer.enter(|| std::net::TcpStream::connect(TARGET_LISTENER))
            .unwrap_or_else(|e| {
                panic!("peer cannot connect to the target at {TARGET_LISTENER}: {e}")
            });
        Pod {
            target,
            _target_image: image,
            _veth: veth,
            _peer: peer,
            net,
        }
    }

    /// Runs the agent image joined to the target's network and pid
    /// namespaces, as an ephemeral debug container would be.
    fn run_agent(&self, agent: &Image, args: &[&str]) -> std::process::Output {
        let joined = format!("container:{}", self.target.name());
        podman::run(
            "agent",
            &["--network", &joined, "--pid", &joined],
            agent,
            args,
        )
    }
}

/// Local `address:port` of every TCP listener in `ns`, per iproute2's ss.
fn listeners(ns: &Netns) -> Vec<String> {
    let out = ns.run("ss", &["-Htln"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn agent_image_is_scratch_nonroot_and_small() {
    if !require_root("agent_image_is_scratch_nonroot_and_small") {
        return;
    }
    let agent = podman::agent_image();
    assert_eq!(agent.inspect("{{.Config.User}}"), "65532:65532");
    assert_eq!(
        agent.inspect("{{json .Config.Entrypoint}}"),
        r#"["/netdiag-agent"]"#
    );
    // Nothing but the agent: the image is the binary plus a few KiB of
    // metadata (a stray file or a base image would show here).
    let binary = std::fs::metadata(agent_static_bin()).unwrap().len();
    let size = agent.size();
    eprintln!("agent image: {size} bytes, of which the static agent is {binary}");
    assert!(
        size >= binary && size - binary < 64 << 10,
        "image is {size} bytes for a {binary}-byte agent: something else is in it"
    );
    assert!(
        size < 8 << 20,
        "image is {size} bytes; it should stay a few MiB"
    );
}

#[test]
fn agent_image_runs_in_a_pod_without_a_libc() {
    if !require_root("agent_image_runs_in_a_pod_without_a_libc") {
        return;
    }
    let pod = Pod::start();
    let agent = podman::agent_image();
    // FROM scratch: this only runs if the binary is fully static.
    let out = pod.run_agent(&agent, &["--version"]);
    assert!(
        out.status.success(),
        "agent --version failed: {}",
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout),
        format!("netdiag-agent {}\n", env!("CARGO_PKG_VERSION"))
    );

    let out = pod.run_agent(&agent, &["--help"]);
    assert!(
        out.status.success(),
        "agent --help failed: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("ss "),
        "tool list missing from --help:\n{}",
        text(&out.stdout)
    );

    let out = pod.run_agent(&agent, &["no-such-tool"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "unknown tool must exit 1 through podman"
    );
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "one error line: {}",
        text(&out.stderr)
    );
}

#[test]
fn agent_ss_in_the_pod_sees_the_target_listener() {
    if !require_root("agent_ss_in_the_pod_sees_the_target_listener") {
        return;
    }
    let pod = Pod::start();
    let agent = podman::agent_image();
    let out = pod.run_agent(&agent, &["ss", "-tln"]);
    let shown = text(&out.stdout);
    assert!(
        out.status.success(),
        "agent ss -tln failed: {}{shown}",
        text(&out.stderr)
    );
    let expected = listeners(&pod.net);
    assert!(
        expected.iter().any(|l| l == TARGET_LISTENER),
        "oracle lost the listener: {expected:?}"
    );
    for listener in &expected {
        assert!(
            shown.split_whitespace().any(|field| field == listener),
            "agent ss -tln lacks {listener} (iproute2 ss lists {expected:?}):\n{shown}"
        );
    }
}
