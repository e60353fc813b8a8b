//! `kubectl netdiag` end to end: the real kubectl's plugin dispatch, the
//! plugin, a sandbox API server speaking the Kubernetes wire protocol, pods
//! that are real network namespaces, and the real agent in them.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use netdiag_tests::agent::plugin_bin;
use netdiag_tests::process;
use netdiag_tests::require_root;
use netdiag_tests::sandbox::{AttachProtocols, Sandbox, SandboxOptions};

/// Two pods: `web` (a listener on 8080, behind deploy/web and svc/web) and
/// `db` (a listener on 5432).
const PODS: &str = r#"
pods:
  - name: web
    labels: {app: web}
    owner: {kind: Deployment, name: web}
    containers:
      - name: app
        image: registry.example/web:1.0
        command: [busybox, nc, -ll, -p, "8080", -e, /bin/cat]
  - name: db
    labels: {app: db}
    containers:
      - name: postgres
        image: registry.example/db:1.0
        command: [busybox, nc, -ll, -p, "5432", -e, /bin/cat]
services:
  - {name: web, namespace: default, selector: {app: web}, ports: [8080]}
"#;

/// `kubectl netdiag ARGS` through kubectl's plugin dispatch.
fn kubectl_netdiag(sandbox: &Sandbox, args: &[&str]) -> Output {
    let mut cmd = netdiag_command(sandbox, args);
    process::output(&mut cmd, Duration::from_secs(60))
}

fn netdiag_command(sandbox: &Sandbox, args: &[&str]) -> Command {
    let plugin = plugin_bin();
    let dir = plugin.parent().expect("the plugin has a directory");
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("kubectl");
    cmd.arg("netdiag")
        .args(args)
        .env("PATH", path)
        .envs(sandbox.env());
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Processes in a pod's network namespace other than its own containers'
/// (the agent and the tool it runs).
fn agent_processes(sandbox: &Sandbox, pod: &str, own: usize) -> usize {
    let netns = sandbox.pod_netns(pod);
    let name = netns.file_name().unwrap().to_str().unwrap().to_owned();
    let out = Command::new("ip")
        .args(["netns", "pids", &name])
        .output()
        .unwrap();
    text(&out.stdout).lines().count().saturating_sub(own)
}

#[test]
fn ss_lists_the_pods_real_listener() {
    if !require_root("ss_lists_the_pods_real_listener") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    let out = kubectl_netdiag(&sandbox, &["web", "ss", "-tln"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("State  Recv-Q Send-Q"), "{stdout}");
    assert!(stdout.contains(":8080"), "{stdout}");
    assert!(
        !stdout.contains(":5432"),
        "db's listener is in another pod: {stdout}"
    );
}

#[test]
fn workload_and_service_targets_pick_a_pod_behind_them() {
    if !require_root("workload_and_service_targets_pick_a_pod_behind_them") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    for target in ["deploy/web", "svc/web"] {
        let out = kubectl_netdiag(&sandbox, &[target, "ss", "-Htln"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{target}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains(":8080"), "{target}");
    }
}

#[test]
fn the_tools_exit_code_and_error_line_come_through() {
    if !require_root("the_tools_exit_code_and_error_line_come_through") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    let out = kubectl_netdiag(&sandbox, &["web", "ss", "state", "sleepy"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("ss: wrong state name \"sleepy\""), "{err}");
}

#[test]
fn json_output_is_passed_to_the_tool() {
    if !require_root("json_output_is_passed_to_the_tool") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    let out = kubectl_netdiag(&sandbox, &["-o", "json", "db", "ss", "-tln"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sockets"][0]["local"]["port"], 5432);
}

#[test]
fn refusals_are_one_clear_line() {
    if !require_root("refusals_are_one_clear_line") {
        return;
    }
    let pods = r#"
pods:
  - {name: pending, containers: [{name: app, image: x, command: [busybox, sleep, "60"]}], phase: Pending}
  - {name: win, containers: [{name: app, image: x, command: [busybox, sleep, "60"]}], windows: true}
  - {name: web, containers: [{name: app, image: x, command: [busybox, nc, -ll, -p, "8080", -e, /bin/cat]}]}
"#;
    let sandbox = Sandbox::start(pods);
    for (args, needle) in [
        (&["pending", "ss"][..], "is Pending, not Running"),
        (&["win", "ss"], "Windows node"),
        (&["nope", "ss"], "pod \"nope\" not found"),
        (
            &["web", "-c", "sidecar", "ss"],
            "container \"sidecar\" not found",
        ),
        (&["deploy/none", "ss"], "deployment \"none\" not found"),
    ] {
        let out = kubectl_netdiag(&sandbox, args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("kubectl-netdiag: ") && err.contains(needle),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn missing_rbac_names_the_permission_and_prints_the_role() {
    if !require_root("missing_rbac_names_the_permission_and_prints_the_role") {
        return;
    }
    let pods = r#"
pods:
  - name: web
    containers: [{name: app, image: x, command: [busybox, nc, -ll, -p, "8080", -e, /bin/cat]}]
    faults: {rbacDeny: ["patch pods/ephemeralcontainers"]}
"#;
    let sandbox = Sandbox::start(pods);
    let out = kubectl_netdiag(&sandbox, &["web", "ss", "-tln"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "missing permissions in namespace \"default\": patch pods/ephemeralcontainers"
        ),
        "{err}"
    );
    assert!(
        err.contains("kind: Role") && err.contains("pods/ephemeralcontainers"),
        "{err}"
    );
}

#[test]
fn image_pull_failure_names_the_image_and_the_way_out() {
    if !require_root("image_pull_failure_names_the_image_and_the_way_out") {
        return;
    }
    let pods = r#"
pods:
  - name: web
    containers: [{name: app, image: x, command: [busybox, nc, -ll, -p, "8080", -e, /bin/cat]}]
    faults: {imagePullFailure: true}
"#;
    let sandbox = Sandbox::start(pods);
    let out = kubectl_netdiag(
        &sandbox,
        &[
            "--timeout",
            "20s",
            "--image",
            "registry.example/agent:nope",
            "web",
            "ss",
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("registry.example/agent:nope") && err.contains("--image"),
        "{err}"
    );
}

#[test]
fn pod_security_rejection_explains_what_the_tool_needs() {
    if !require_root("pod_security_rejection_explains_what_the_tool_needs") {
        return;
    }
    let pods = r#"
pods:
  - name: web
    containers: [{name: app, image: x, command: [busybox, nc, -ll, -p, "8080", -e, /bin/cat]}]
    faults: {podSecurity: restricted}
"#;
    let sandbox = Sandbox::start(pods);
    // ss without -p is admissible under "restricted"...
    let ok = kubectl_netdiag(&sandbox, &["web", "ss", "-tln"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    // ...ss -p needs SYS_PTRACE as root, which "restricted" refuses.
    let out = kubectl_netdiag(&sandbox, &["web", "ss", "-tlnp"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Pod Security") && err.contains("SYS_PTRACE"),
        "{err}"
    );
    assert!(
        err.contains("these tools run under \"restricted\""),
        "{err}"
    );
}

#[test]
fn works_over_the_v4_attach_protocol_too() {
    if !require_root("works_over_the_v4_attach_protocol_too") {
        return;
    }
    let sandbox = Sandbox::start_with(
        PODS,
        &SandboxOptions {
            attach_protocols: AttachProtocols::V4Only,
            ..SandboxOptions::default()
        },
    );
    let out = kubectl_netdiag(&sandbox, &["web", "ss", "-tln"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(":8080"));
}

#[test]
fn help_needs_no_cluster() {
    let plugin = plugin_bin();
    for args in [&["--help"][..], &["ss", "--help"], &["tcpdump", "-h"]] {
        let out = Command::new(&plugin)
            .args(args)
            .env("KUBECONFIG", "/nonexistent")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty());
    }
    let out = Command::new(&plugin)
        .args(["completion", "bash"])
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("kubectl-netdiag"));
}

#[test]
fn nc_reaches_a_peer_pod_and_a_refusal_exits_1() {
    if !require_root("nc_reaches_a_peer_pod_and_a_refusal_exits_1") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    let db = sandbox.pod_ip("db");
    let open = kubectl_netdiag(&sandbox, &["web", "nc", "-vz", &db, "5432"]);
    assert_eq!(open.status.code(), Some(0), "{}", text(&open.stderr));
    assert!(
        text(&open.stderr).contains(&format!("Connection to {db} 5432 port")),
        "{}",
        text(&open.stderr)
    );
    let closed = kubectl_netdiag(&sandbox, &["web", "nc", "-vz", &db, "5433"]);
    assert_eq!(closed.status.code(), Some(1));
    assert!(
        text(&closed.stderr).contains("Connection refused"),
        "{}",
        text(&closed.stderr)
    );
}

#[test]
fn stdin_reaches_the_tool_and_its_end_half_closes() {
    if !require_root("stdin_reaches_the_tool_and_its_end_half_closes") {
        return;
    }
    // db echoes (nc -e /bin/cat): what we send comes back, and our end of
    // input (-N) lets the echo finish.
    let sandbox = Sandbox::start(PODS);
    let db = sandbox.pod_ip("db");
    let mut cmd = netdiag_command(&sandbox, &["web", "nc", "-N", &db, "5432"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut stdin = child.stdin.take().unwrap();
    let sent = payload.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&sent).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), payload.len());
    assert!(out.stdout == payload, "echoed bytes differ");
}

/// Interrupting the plugin (Ctrl-C, SIGTERM) or losing its connection
/// stops the agent in the pod within 5 s.
#[test]
fn interrupting_the_plugin_leaves_nothing_running_in_the_pod() {
    if !require_root("interrupting_the_plugin_leaves_nothing_running_in_the_pod") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    let db = sandbox.pod_ip("db");
    let own = agent_processes(&sandbox, "web", 0);
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        let mut cmd = netdiag_command(
            &sandbox,
            &[
                "web", "paping", &db, "-p", "5432", "-c", "100000", "-i", "100",
            ],
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // Running: the first probe line has arrived.
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("Connected to") {
            line.clear();
            let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
            assert!(n > 0, "output ended before the first probe; stderr: {}", {
                let mut e = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut e).unwrap();
                e
            });
        }
        assert!(
            agent_processes(&sandbox, "web", own) > 0,
            "the agent runs in the pod"
        );
        let stopped = Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.code().is_some(),
            "{signal}: the plugin exits, it is not killed"
        );
        assert!(
            rest.contains("Connection statistics"),
            "{signal}: paping's summary arrives: {rest}"
        );
        let mut gone = false;
        while stopped.elapsed() < Duration::from_secs(5) {
            if agent_processes(&sandbox, "web", own) == 0 {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(gone, "{signal}: the agent still runs in the pod 5 s later");
    }
}

#[test]
fn a_dropped_connection_stops_the_agent_and_says_so() {
    if !require_root("a_dropped_connection_stops_the_agent_and_says_so") {
        return;
    }
    let pods = r#"
pods:
  - name: web
    containers: [{name: app, image: x, command: [busybox, nc, -ll, -p, "8080", -e, /bin/cat]}]
    faults: {dropAttachAfterBytes: 300}
  - name: db
    containers: [{name: postgres, image: x, command: [busybox, nc, -ll, -p, "5432", -e, /bin/cat]}]
"#;
    let sandbox = Sandbox::start(pods);
    let db = sandbox.pod_ip("db");
    let own = agent_processes(&sandbox, "web", 0);
    let out = kubectl_netdiag(
        &sandbox,
        &[
            "web", "paping", &db, "-p", "5432", "-c", "100000", "-i", "50",
        ],
    );
    let dropped = Instant::now();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("connection to the agent was lost"),
        "{}",
        text(&out.stderr)
    );
    let mut gone = false;
    while dropped.elapsed() < Duration::from_secs(5) {
        if agent_processes(&sandbox, "web", own) == 0 {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        gone,
        "the agent still runs in the pod 5 s after the connection dropped"
    );
}

#[test]
fn a_slow_start_is_waited_for_and_a_timeout_ends_clearly() {
    if !require_root("a_slow_start_is_waited_for_and_a_timeout_ends_clearly") {
        return;
    }
    let pods = r#"
pods:
  - name: web
    containers: [{name: app, image: x, command: [busybox, nc, -ll, -p, "8080", -e, /bin/cat]}]
    faults: {slowStartSeconds: 3}
"#;
    let sandbox = Sandbox::start(pods);
    plugin_bin(); // built before the clock starts
    let began = Instant::now();
    let out = kubectl_netdiag(&sandbox, &["--timeout", "1s", "web", "ss", "-Htln"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("did not start within 1s"), "{err}");
    // --timeout is honoured (the default is 60 s): no hang.
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "took {:?}: {err}",
        began.elapsed()
    );
    let out = kubectl_netdiag(&sandbox, &["web", "ss", "-Htln"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(":8080"));
}

#[test]
fn dig_asks_a_dns_server_pod() {
    if !require_root("dig_asks_a_dns_server_pod") {
        return;
    }
    let pods = r#"
pods:
  - name: web
    containers: [{name: app, image: x, command: [busybox, nc, -ll, -p, "8080", -e, /bin/cat]}]
  - name: dns
    containers:
      - name: dnsmasq
        image: x
        command: [dnsmasq, --no-daemon, --conf-file=/dev/null, --no-resolv, --no-hosts,
                  --port=53, --user=root, "--host-record=api.netdiag.test,203.0.113.7"]
"#;
    let sandbox = Sandbox::start(pods);
    let dns = sandbox.pod_ip("dns");
    let server = format!("@{dns}");
    let out = kubectl_netdiag(
        &sandbox,
        &["web", "dig", &server, "api.netdiag.test", "+short"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "203.0.113.7\n");
    // An unknown name: dnsmasq refuses it (no upstream), dig says so.
    let out = kubectl_netdiag(&sandbox, &["web", "dig", &server, "nope.netdiag.test"]);
    assert!(
        text(&out.stdout).contains("status: REFUSED"),
        "{}",
        text(&out.stdout)
    );
}

/// Connects web → db:5432 with `kubectl netdiag web nc -z` until the
/// capture in db ends, and returns how it ended. Each connection is a
/// handshake and a close (5 or more packets): two at most make the 6 the
/// captures here wait for.
fn connect_until_captured(
    sandbox: &Sandbox,
    db: &str,
    capture: &mut process::ChildGuard,
) -> std::process::ExitStatus {
    for _ in 0..5 {
        let out = kubectl_netdiag(sandbox, &["web", "nc", "-z", db, "5432"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        if let Some(status) = capture.wait_timeout(Duration::from_secs(2)) {
            return status;
        }
    }
    panic!("the capture of 6 packets did not end");
}

/// `kubectl netdiag db tcpdump -w -` streams pcap through attach: tshark
/// reads what came out, while the capture's closing lines reach stderr. The
/// traffic is web → db, made by the plugin too.
#[test]
fn tcpdump_streams_pcap_that_tshark_reads() {
    if !require_root("tcpdump_streams_pcap_that_tshark_reads") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    let db = sandbox.pod_ip("db");
    let mut cmd = netdiag_command(
        &sandbox,
        &[
            "db", "tcpdump", "-i", "any", "-c", "6", "-w", "-", "tcp", "port", "5432",
        ],
    );
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut capture =
        process::ChildGuard::adopt("kubectl netdiag db tcpdump", cmd.spawn().unwrap());
    let mut stdout = capture.child_mut().stdout.take().unwrap();
    let pcap = std::thread::spawn(move || {
        let mut pcap = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut pcap).unwrap();
        pcap
    });
    // tcpdump says "listening on any" once its filter is attached.
    let mut stderr = std::io::BufReader::new(capture.child_mut().stderr.take().unwrap());
    let mut listening = String::new();
    while !listening.contains("listening on any") {
        listening.clear();
        let n = std::io::BufRead::read_line(&mut stderr, &mut listening).unwrap();
        assert!(n > 0, "the capture ended before it listened");
    }
    let status = connect_until_captured(&sandbox, &db, &mut capture);
    let mut closing = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut closing).unwrap();
    assert_eq!(status.code(), Some(0), "{closing}");
    assert!(closing.contains("6 packets captured"), "{closing}");

    let dir = netdiag_tests::TempDir::new("pcap");
    let file = dir.path().join("capture.pcap");
    std::fs::write(&file, pcap.join().unwrap()).unwrap();
    let out = Command::new("tshark")
        .args(["-r", file.to_str().unwrap(), "-T", "fields"])
        .args(["-e", "frame.protocols", "-e", "ip.src", "-e", "ip.dst"])
        .args(["-e", "tcp.srcport", "-e", "tcp.dstport"])
        .output()
        .expect("running tshark");
    assert!(out.status.success(), "tshark: {}", text(&out.stderr));
    let rows = text(&out.stdout);
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(rows.len(), 6, "{rows:#?}");
    for row in rows {
        let fields: Vec<&str> = row.split('\t').collect();
        // LINUX_SLL (cooked, -i any), then IPv4 and TCP.
        assert_eq!(fields[0], "sll:ethertype:ip:tcp", "{row}");
        assert!(fields[1..3].contains(&db.as_str()), "{row}");
        assert!(fields[3..5].contains(&"5432"), "{row}");
    }
}

/// Pods resolve through the kubelet's resolv.conf (ClusterFirst: search
/// list, ndots:5, the cluster DNS pod as nameserver): `dig` asks it by
/// default, and `resolve` replays the search list and names the fix.
#[test]
fn resolve_walks_the_pods_search_list_to_the_cluster_dns() {
    if !require_root("resolve_walks_the_pods_search_list_to_the_cluster_dns") {
        return;
    }
    let pods = r#"
pods:
  - name: web
    namespace: shop
    containers: [{name: app, image: x, command: [busybox, nc, -ll, -p, "8080", -e, /bin/cat]}]
  - name: dns
    namespace: kube-system
    containers:
      - name: coredns
        image: x
        command: [dnsmasq, --no-daemon, --conf-file=/dev/null, --no-resolv, --no-hosts,
                  --port=53, --user=root, --local=/cluster.local/,
                  "--host-record=db.shop.svc.cluster.local,198.51.100.20",
                  "--host-record=api.example.com,203.0.113.7,fd42::7"]
clusterDNS: {pod: dns, namespace: kube-system}
"#;
    let sandbox = Sandbox::start(pods);
    let dns = sandbox.pod_ip_in("kube-system", "dns");

    // `db` is a short name: the pod's first search suffix (its namespace's)
    // finds it.
    let out = kubectl_netdiag(
        &sandbox,
        &[
            "-n",
            "shop",
            "web",
            "dig",
            "db.shop.svc.cluster.local",
            "+short",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "198.51.100.20\n");

    let out = kubectl_netdiag(
        &sandbox,
        &[
            "-n",
            "shop",
            "web",
            "resolve",
            "-o",
            "json",
            "api.example.com",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let conf = &report["environment"]["conf"];
    assert_eq!(
        conf["nameservers"],
        serde_json::json!([format!("{dns}:53")])
    );
    assert_eq!(
        conf["search"],
        serde_json::json!([
            "shop.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local"
        ])
    );
    assert_eq!(conf["ndots"], 5);
    let names: Vec<&str> = report["lookup"]["queries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["type"] == "A")
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "api.example.com.shop.svc.cluster.local.",
            "api.example.com.svc.cluster.local.",
            "api.example.com.cluster.local.",
            "api.example.com.",
        ]
    );
    let fix = report["fix"].to_string();
    assert!(fix.contains("api.example.com."), "{fix}");
}

/// stdout and stderr cross the cluster as separate streams; on one
/// terminal they still appear in the tool's order: tcpdump's header, its
/// packets, then its counts.
#[test]
fn stdout_and_stderr_keep_the_tools_order() {
    if !require_root("stdout_and_stderr_keep_the_tools_order") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    let db = sandbox.pod_ip("db");
    let dir = netdiag_tests::TempDir::new("order");
    let path = dir.path().join("terminal");
    let terminal = std::fs::File::create(&path).unwrap();
    let mut cmd = netdiag_command(
        &sandbox,
        &[
            "db", "tcpdump", "-i", "any", "-c", "6", "tcp", "port", "5432",
        ],
    );
    cmd.stdin(Stdio::null())
        .stdout(terminal.try_clone().unwrap())
        .stderr(terminal);
    let mut capture =
        process::ChildGuard::adopt("kubectl netdiag db tcpdump", cmd.spawn().unwrap());
    process::wait_until("tcpdump listening", Duration::from_secs(30), || {
        std::fs::read_to_string(&path).is_ok_and(|t| t.contains("listening on any"))
    });
    let status = connect_until_captured(&sandbox, &db, &mut capture);
    assert_eq!(status.code(), Some(0));
    let shown = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 2 + 6 + 3, "{shown}");
    assert!(lines[1].starts_with("listening on any"), "{shown}");
    for packet in &lines[2..8] {
        assert!(packet.contains(" IP 198.51.100."), "{shown}");
    }
    assert_eq!(
        &lines[8..],
        [
            "6 packets captured",
            "6 packets received by filter",
            "0 packets dropped by kernel"
        ],
        "{shown}"
    );
}
