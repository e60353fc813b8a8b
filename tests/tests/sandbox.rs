//! The sandbox cluster (`tests/sandbox`) against the real thing.
//!
//! Fidelity first: the real `kubectl` (1.32) must work against it for what
//! it shares with the plugin (get, logs, debug with attach over WebSocket,
//! with stdin), with both server generations (v5 through the stream
//! translator, v4 from the kubelet). Then the wire details a client depends
//! on, checked with a raw HTTP/WebSocket client: Status bodies, watch
//! framing and resourceVersions, the late kubelet status, the attach
//! channels (first empty frame, status channel, v5 CLOSE, v4 close-all,
//! the not-found refusal of each generation), and every fault.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netdiag_tests::process::{self, wait_until};
use netdiag_tests::require_root;
use netdiag_tests::sandbox::{
    AttachProtocols, ImageMode, Sandbox, SandboxOptions, WsClient, WsEvent,
};
use serde_json::{Value, json};

/// A Deployment-owned pod listening on 8080, a Service, and a `busybox`
/// image (the host's busybox) besides the default agent image.
const PODS: &str = r#"
images:
  - ref: "*"
  - ref: busybox
    entrypoint: [/bin/busybox]
    user: "0:0"
    files: {/bin/busybox: /bin/busybox}
pods:
  - name: web
    labels: {app: web}
    owner: {kind: Deployment, name: web}
    containers:
      - name: app
        image: registry.example/web:1.0
        command: [busybox, sh, -c, "echo app started; exec busybox nc -ll -p 8080 -e /bin/cat"]
        ports: [8080]
services:
  - {name: web, selector: {app: web}, ports: [8080]}
"#;

const V5: &str = "v5.channel.k8s.io";
const V4: &str = "v4.channel.k8s.io";
const PODS_PATH: &str = "/api/v1/namespaces/default/pods";
const SUCCESS: &[u8] = br#"{"metadata":{},"status":"Success"}"#;

fn v4_only() -> SandboxOptions {
    SandboxOptions {
        attach_protocols: AttachProtocols::V4Only,
        ..SandboxOptions::default()
    }
}

/// Waits until the pod's app listens on 8080 (iproute2's ss in its netns).
fn wait_for_listener(sandbox: &Sandbox, pod: &str) {
    let netns = sandbox.pod_netns(pod);
    wait_until("the app to listen on 8080", Duration::from_secs(10), || {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .args(["ss", "-Htln"])
            .output()
            .expect("running ss");
        String::from_utf8_lossy(&out.stdout).contains(":8080")
    });
}

fn patch_ephemeral(
    sandbox: &Sandbox,
    pod: &str,
    container: Value,
) -> netdiag_tests::sandbox::HttpResponse {
    sandbox.http(
        "PATCH",
        &format!("{PODS_PATH}/{pod}/ephemeralcontainers"),
        Some("application/strategic-merge-patch+json"),
        json!({"spec": {"ephemeralContainers": [container]}})
            .to_string()
            .as_bytes(),
    )
}

fn get_pod(sandbox: &Sandbox, pod: &str) -> Value {
    let r = sandbox.http("GET", &format!("{PODS_PATH}/{pod}"), None, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The reported status of an ephemeral container, if any.
fn ephemeral_status(sandbox: &Sandbox, pod: &str, name: &str) -> Option<Value> {
    get_pod(sandbox, pod)["status"]["ephemeralContainerStatuses"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

fn attach_path(pod: &str, container: &str, stdin: bool) -> String {
    format!("{PODS_PATH}/{pod}/attach?container={container}&stdin={stdin}&stdout=true&stderr=true")
}

/// Attaches as a plugin does right after the PATCH: retries while the
/// server says the container is not there yet (500 from the kubelet, or
/// the translator's Failure status). Returns the session, past its first
/// (empty) stdout frame, and how long it took.
fn attach_when_running(
    sandbox: &Sandbox,
    pod: &str,
    container: &str,
    protocols: &[&str],
) -> (WsClient, Duration) {
    let start = Instant::now();
    let not_found = format!("container {container} not found in pod {pod}_default");
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "attach never succeeded"
        );
        match sandbox.websocket(&attach_path(pod, container, true), protocols) {
            Err(r) => {
                assert_eq!((r.status, r.text()), (500, not_found.clone()));
            }
            Ok(mut ws) => {
                assert_eq!(ws.recv(Duration::from_secs(5)), WsEvent::Binary(vec![1]));
                if ws.protocol() == Some(V5) {
                    match ws.recv(Duration::from_millis(300)) {
                        WsEvent::Timeout => return (ws, start.elapsed()),
                        WsEvent::Binary(m) if m[0] == 3 => {
                            let status: Value = serde_json::from_slice(&m[1..]).unwrap();
                            assert!(
                                status["message"].as_str().unwrap().contains(&not_found),
                                "{status}"
                            );
                            assert_eq!(ws.recv(Duration::from_secs(5)), WsEvent::Close(Some(1000)));
                        }
                        other => panic!("unexpected first message {other:?}"),
                    }
                } else {
                    return (ws, start.elapsed());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Collects stdout (channel 1) until `want` has been seen.
fn read_stdout_until(ws: &mut WsClient, want: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.windows(want.len()).any(|w| w == want) {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.recv(left) {
            WsEvent::Binary(m) if m.first() == Some(&1) => out.extend_from_slice(&m[1..]),
            other => panic!(
                "waiting for {:?} on stdout, got {other:?} after {:?}",
                String::from_utf8_lossy(want),
                String::from_utf8_lossy(&out)
            ),
        }
    }
    out
}

fn wait_terminated(sandbox: &Sandbox, pod: &str, name: &str) -> Value {
    let mut terminated = Value::Null;
    wait_until(
        "the container to be reported terminated",
        Duration::from_secs(10),
        || {
            terminated = ephemeral_status(sandbox, pod, name)
                .map(|s| s["state"]["terminated"].clone())
                .unwrap_or(Value::Null);
            terminated.is_object()
        },
    );
    terminated
}

fn cat_container(name: &str) -> Value {
    json!({"name": name, "image": "busybox", "command": ["/bin/busybox", "cat"],
           "stdin": true, "stdinOnce": true, "targetContainerName": "app"})
}

// ---------------------------------------------------------------- kubectl

/// `kubectl debug web --image=busybox --target=app -i -- head -n 1` fed
/// `line`; returns what kubectl printed (minus its "Targeting container"
/// notice) and its stderr.
fn kubectl_debug_with_stdin(sandbox: &Sandbox, line: &str) -> (String, String) {
    use std::io::{BufRead, BufReader, Read};
    let child = sandbox
        .kubectl()
        .args([
            "debug",
            "web",
            "--image=busybox",
            "--target=app",
            "-i",
            "--container=reader",
            "--",
            "/bin/busybox",
            "head",
            "-n",
            "1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting kubectl debug");
    let mut guard = process::ChildGuard::adopt("kubectl debug", child);
    let mut stdin = guard.child_mut().stdin.take().unwrap();
    stdin.write_all(line.as_bytes()).unwrap();
    let stdout = guard.child_mut().stdout.take().unwrap();
    let mut stderr_pipe = guard.child_mut().stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let mut printed = String::new();
    let mut reader = BufReader::new(stdout);
    loop {
        let mut l = String::new();
        if reader.read_line(&mut l).unwrap_or(0) == 0 {
            break;
        }
        if l.starts_with("Targeting container") {
            continue;
        }
        printed.push_str(&l);
        if printed.ends_with(line) {
            drop(stdin);
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
            printed.push_str(&rest);
            break;
        }
    }
    let status = guard
        .wait_timeout(Duration::from_secs(30))
        .expect("kubectl debug finished");
    let stderr = stderr_reader.join().unwrap();
    assert!(
        status.success(),
        "kubectl debug failed ({status}): {stderr}"
    );
    (printed, stderr)
}

fn kubectl_fidelity(options: &SandboxOptions) {
    let sandbox = Sandbox::start_with(PODS, options);
    wait_for_listener(&sandbox, "web");

    let out = sandbox.kubectl_output(&["get", "pods"]);
    process::assert_success("kubectl get pods", &out);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[..4], ["web", "1/1", "Running", "0"], "{table}");

    let out = sandbox.kubectl_output(&["get", "pod", "web", "-o", "json"]);
    process::assert_success("kubectl get pod -o json", &out);
    let pod: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pod["status"]["podIP"], sandbox.pod_ip("web").as_str());
    assert_eq!(pod["status"]["phase"], "Running");
    assert!(pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"].is_string());
    let out = sandbox.kubectl_output(&["get", "pod", "web", "-o", "yaml"]);
    process::assert_success("kubectl get pod -o yaml", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: ReplicaSet"));

    let out = sandbox.kubectl_output(&["get", "pod", "nope"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error from server (NotFound): pods \"nope\" not found"
    );

    let out = sandbox.kubectl_output(&["get", "deploy,svc", "-o", "name"]);
    process::assert_success("kubectl get deploy,svc", &out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "deployment.apps/web\nservice/web\n"
    );

    let out = sandbox.kubectl_output(&["logs", "web"]);
    process::assert_success("kubectl logs", &out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "app started\n");

    // kubectl debug -i: PATCH, wait for Running, attach over WebSocket
    // with stdin; the container reads a line and exits. Stdin stays open
    // until the answer is back, as with a user at a terminal: over v4,
    // kubectl's end of stdin closes the whole stream.
    let (stdout, stderr) = kubectl_debug_with_stdin(&sandbox, "hello through attach\n");
    assert_eq!(stdout, "hello through attach\n", "stderr: {stderr}");
    assert!(
        !stderr.contains("falling back to streaming logs"),
        "kubectl could not attach: {stderr}"
    );
    let terminated = wait_terminated(&sandbox, "web", "reader");
    assert_eq!(
        (
            terminated["exitCode"].as_i64(),
            terminated["reason"].as_str()
        ),
        (Some(0), Some("Completed"))
    );
    let out = sandbox.kubectl_output(&["logs", "web", "-c", "reader"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello through attach\n"
    );

    // The agent in the pod's network namespace sees the app's listener.
    let out = sandbox.kubectl_output(&[
        "debug",
        "web",
        "--image=ghcr.io/netdiag/agent:dev",
        "--target=app",
        "-i",
        "--container=ss",
        "--",
        "/netdiag-agent",
        "ss",
        "-tln",
    ]);
    process::assert_success("kubectl debug ... ss -tln", &out);
    // Bare kubectl debug attaches only once the status says Running: a
    // command as quick as ss may have printed everything by then (the race
    // the plugin's start frame closes), so its output is read from the
    // logs when the attach saw none.
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !text.contains(":8080") {
        wait_terminated(&sandbox, "web", "ss");
        let logs = sandbox.kubectl_output(&["logs", "web", "-c", "ss"]);
        text = String::from_utf8_lossy(&logs.stdout).into_owned();
    }
    assert!(
        text.contains("0.0.0.0:8080") || text.contains("*:8080"),
        "ss output: {text}"
    );
}

#[test]
fn kubectl_works_against_a_v5_sandbox() {
    if !require_root("kubectl_works_against_a_v5_sandbox") {
        return;
    }
    kubectl_fidelity(&SandboxOptions::default());
}

#[test]
fn kubectl_works_against_a_v4_only_sandbox() {
    if !require_root("kubectl_works_against_a_v4_only_sandbox") {
        return;
    }
    kubectl_fidelity(&v4_only());
}

// --------------------------------------------------------- API responses

#[test]
fn api_answers_with_kube_apiserver_shapes() {
    if !require_root("api_answers_with_kube_apiserver_shapes") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    let r = sandbox.http("GET", &format!("{PODS_PATH}/nope"), None, b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.text(),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"pods"},"code":404}"#
    );
    let r = sandbox.http(
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/nope",
        None,
        b"",
    );
    assert_eq!(r.json()["message"], "deployments.apps \"nope\" not found");

    let resources = sandbox.http("GET", "/api/v1", None, b"").json();
    let names: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for want in [
        "pods",
        "pods/attach",
        "pods/ephemeralcontainers",
        "pods/log",
        "events",
        "services",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }

    // The deployment leads to its pods by selector, as kubectl exec resolves deploy/NAME.
    let deploy = sandbox
        .http(
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/web",
            None,
            b"",
        )
        .json();
    let selector = deploy["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    let label_selector: Vec<String> = selector
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect();
    let list = sandbox
        .http(
            "GET",
            &format!("{PODS_PATH}?labelSelector={}", label_selector.join(",")),
            None,
            b"",
        )
        .json();
    assert_eq!(list["kind"], "PodList");
    assert_eq!(list["items"][0]["metadata"]["name"], "web");
    assert!(
        list["items"][0].get("kind").is_none(),
        "list items carry no kind"
    );
    let svc = sandbox
        .http("GET", "/api/v1/namespaces/default/services/web", None, b"")
        .json();
    assert_eq!(svc["spec"]["selector"], json!({"app": "web"}));

    let bad = sandbox.http(
        "GET",
        &format!("{PODS_PATH}?fieldSelector=spec.containers%3Dx"),
        None,
        b"",
    );
    assert_eq!(
        (bad.status, bad.json()["message"].as_str().unwrap()),
        (400, "field label not supported: spec.containers")
    );

    let unauthorized = sandbox.http_unauthenticated("GET", PODS_PATH);
    assert_eq!(unauthorized.status, 401);
    assert_eq!(
        unauthorized.text(),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
    );
}

#[test]
fn ephemeral_patches_are_validated_like_the_real_server() {
    if !require_root("ephemeral_patches_are_validated_like_the_real_server") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    let dup = patch_ephemeral(&sandbox, "web", json!({"name": "app", "image": "busybox"}));
    assert_eq!(dup.status, 422);
    assert_eq!(
        dup.text(),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Pod \"web\" is invalid: spec.ephemeralContainers[0].name: Duplicate value: \"app\"","reason":"Invalid","details":{"name":"web","kind":"Pod","causes":[{"reason":"FieldValueDuplicate","message":"Duplicate value: \"app\"","field":"spec.ephemeralContainers[0].name"}]},"code":422}"#
    );
    let target = patch_ephemeral(
        &sandbox,
        "web",
        json!({"name": "dbg", "image": "busybox", "targetContainerName": "nope"}),
    );
    assert_eq!(target.status, 422);
    assert_eq!(
        target.json()["message"],
        "Pod \"web\" is invalid: spec.ephemeralContainers[0].targetContainerName: Not found: \"nope\""
    );

    let ok = patch_ephemeral(
        &sandbox,
        "web",
        json!({"name": "dbg", "image": "busybox", "command": ["/bin/busybox", "true"]}),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let ec = &ok.json()["spec"]["ephemeralContainers"][0];
    // Defaults applied by the API server.
    assert_eq!(ec["imagePullPolicy"], "Always");
    assert_eq!(ec["terminationMessagePolicy"], "File");
    assert_eq!(ec["terminationMessagePath"], "/dev/termination-log");

    let changed = patch_ephemeral(
        &sandbox,
        "web",
        json!({"name": "dbg", "image": "busybox:2"}),
    );
    assert_eq!(changed.status, 422);
    assert!(
        changed.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("Pod \"web\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"dbg\" may not be changed\n"),
        "{}",
        changed.text()
    );
    let removed = sandbox.http(
        "PATCH",
        &format!("{PODS_PATH}/web/ephemeralcontainers"),
        Some("application/merge-patch+json"),
        br#"{"spec":{"ephemeralContainers":[]}}"#,
    );
    assert_eq!(
        removed.json()["message"],
        "Pod \"web\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"dbg\" may not be removed\n"
    );
    let json_patch = sandbox.http(
        "PATCH",
        &format!("{PODS_PATH}/web/ephemeralcontainers"),
        Some("application/json-patch+json"),
        json!([{"op": "add", "path": "/spec/ephemeralContainers/-",
                "value": {"name": "dbg2", "image": "busybox:1.36", "command": ["/bin/busybox", "true"]}}])
        .to_string()
        .as_bytes(),
    );
    assert_eq!(json_patch.status, 200, "{}", json_patch.text());
    assert_eq!(
        json_patch.json()["spec"]["ephemeralContainers"][1]["imagePullPolicy"],
        "IfNotPresent"
    );
    let media = sandbox.http(
        "PATCH",
        &format!("{PODS_PATH}/web/ephemeralcontainers"),
        Some("text/plain"),
        b"{}",
    );
    assert_eq!(media.status, 415);
}

#[test]
fn watch_streams_the_late_kubelet_status() {
    if !require_root("watch_streams_the_late_kubelet_status") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    let rv = get_pod(&sandbox, "web")["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut watch = sandbox.watch(&format!(
        "{PODS_PATH}?watch=1&fieldSelector=metadata.name%3Dweb&resourceVersion={rv}"
    ));
    assert_eq!(watch.status, 200);
    let patched_at = Instant::now();
    let r = patch_ephemeral(
        &sandbox,
        "web",
        json!({"name": "sleeper", "image": "busybox", "command": ["/bin/busybox", "sleep", "1.5"]}),
    );
    assert_eq!(r.status, 200);

    let mut last_rv: u64 = rv.parse().unwrap();
    let mut seen = Vec::new();
    let mut running_at = None;
    while let Some(line) = watch.next_line(Duration::from_secs(10)) {
        let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(event["type"], "MODIFIED");
        assert_eq!(event["object"]["kind"], "Pod");
        let event_rv: u64 = event["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(event_rv > last_rv, "resourceVersions increase");
        last_rv = event_rv;
        let state = event["object"]["status"]["ephemeralContainerStatuses"][0]["state"].clone();
        let label = if state.is_null() {
            "spec-only".to_owned()
        } else if let Some(w) = state["waiting"]["reason"].as_str() {
            w.to_owned()
        } else if state["running"].is_object() {
            running_at.get_or_insert(patched_at.elapsed());
            "running".to_owned()
        } else {
            format!("terminated:{}", state["terminated"]["exitCode"])
        };
        if seen.last() != Some(&label) {
            seen.push(label.clone());
        }
        if label.starts_with("terminated") {
            break;
        }
    }
    assert_eq!(
        seen,
        ["spec-only", "ContainerCreating", "running", "terminated:0"]
    );
    // Started ~0.15 s after the PATCH, reported at the next 1 s relist.
    let running_at = running_at.unwrap();
    assert!(
        running_at >= Duration::from_millis(150) && running_at < Duration::from_millis(2500),
        "{running_at:?}"
    );
}

// ----------------------------------------------------------------- attach

#[test]
fn attach_v5_echoes_stdin_and_closes_it_alone() {
    if !require_root("attach_v5_echoes_stdin_and_closes_it_alone") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    let r = patch_ephemeral(&sandbox, "web", cat_container("cat"));
    assert_eq!(r.status, 200);
    let (mut ws, _) = attach_when_running(&sandbox, "web", "cat", &[V5, V4]);
    assert_eq!(ws.protocol(), Some(V5));
    ws.send(0, b"ping\n");
    assert_eq!(read_stdout_until(&mut ws, b"ping\n"), b"ping\n");
    // Binary-safe both ways: 1 MiB of every byte value, 16 KiB at a time.
    let data: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut echoed = Vec::new();
    for chunk in data.chunks(16 * 1024) {
        ws.send(0, chunk);
        let want = echoed.len() + chunk.len();
        while echoed.len() < want {
            match ws.recv(Duration::from_secs(10)) {
                WsEvent::Binary(m) if m[0] == 1 => echoed.extend_from_slice(&m[1..]),
                other => panic!("echo stalled at {} bytes: {other:?}", echoed.len()),
            }
        }
    }
    assert!(echoed == data, "the echo differs from what was sent");
    ws.send(255, &[0]);
    // stdin closed alone: cat sees EOF, exits, the stream reports success.
    assert_eq!(
        ws.recv(Duration::from_secs(10)),
        WsEvent::Binary([&[3u8][..], SUCCESS].concat())
    );
    assert_eq!(ws.recv(Duration::from_secs(5)), WsEvent::Close(Some(1000)));
    let terminated = wait_terminated(&sandbox, "web", "cat");
    assert_eq!(terminated["exitCode"], 0);
}

#[test]
fn attach_v4_has_no_half_close_and_closing_ends_stdin() {
    if !require_root("attach_v4_has_no_half_close_and_closing_ends_stdin") {
        return;
    }
    let sandbox = Sandbox::start_with(PODS, &v4_only());
    let r = patch_ephemeral(&sandbox, "web", cat_container("cat"));
    assert_eq!(r.status, 200);
    // A pre-1.30 server speaks no v5: a v5-only client is refused outright.
    let (mut ws, _) = attach_when_running(&sandbox, "web", "cat", &[V5, V4]);
    assert_eq!(ws.protocol(), Some(V4));
    let refused = sandbox
        .websocket(&attach_path("web", "cat", true), &[V5])
        .err()
        .unwrap();
    assert_eq!((refused.status, refused.body.len()), (403, 0));

    ws.send(0, b"one\n");
    read_stdout_until(&mut ws, b"one\n");
    // 255 means nothing in v4: stdin stays open.
    ws.send(255, &[0]);
    ws.send(0, b"two\n");
    read_stdout_until(&mut ws, b"two\n");
    // Closing the connection is the only way to end stdin, and it ends all.
    ws.send_close();
    let terminated = wait_terminated(&sandbox, "web", "cat");
    assert_eq!(terminated["exitCode"], 0);
}

#[test]
fn attach_before_the_container_runs_is_refused_per_generation() {
    if !require_root("attach_before_the_container_runs_is_refused_per_generation") {
        return;
    }
    let pods = PODS.replace(
        "    labels: {app: web}\n",
        "    labels: {app: web}\n    faults: {slowStartSeconds: 1.5}\n",
    );
    for options in [SandboxOptions::default(), v4_only()] {
        let sandbox = Sandbox::start_with(&pods, &options);
        let r = patch_ephemeral(&sandbox, "web", cat_container("slow"));
        assert_eq!(r.status, 200);
        let patched = Instant::now();
        let not_found = "container slow not found in pod web_default";
        // The kubelet's plain-text 500 (v4 clients, and every client of an
        // old server).
        let r = sandbox
            .websocket(&attach_path("web", "slow", true), &[V4])
            .err()
            .unwrap();
        assert_eq!(r.status, 500);
        assert_eq!(r.text(), not_found);
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        if options.attach_protocols == AttachProtocols::V5AndV4 {
            // The translator upgrades first and reports on channel 3.
            let mut ws = sandbox
                .websocket(&attach_path("web", "slow", true), &[V5, V4])
                .unwrap();
            assert_eq!(ws.protocol(), Some(V5));
            assert_eq!(ws.recv(Duration::from_secs(5)), WsEvent::Binary(vec![1]));
            let WsEvent::Binary(m) = ws.recv(Duration::from_secs(5)) else {
                panic!("no status")
            };
            assert_eq!(m[0], 3);
            assert_eq!(
                String::from_utf8_lossy(&m[1..]),
                format!(
                    r#"{{"metadata":{{}},"status":"Failure","message":"Internal error occurred: unable to upgrade connection: {not_found}","reason":"InternalError","details":{{"causes":[{{"message":"unable to upgrade connection: {not_found}"}}]}},"code":500}}"#
                )
            );
            assert_eq!(ws.recv(Duration::from_secs(5)), WsEvent::Close(Some(1000)));
        }
        let (_ws, took) = attach_when_running(&sandbox, "web", "slow", &[V5, V4]);
        assert!(
            patched.elapsed() >= Duration::from_millis(1500),
            "attached after {took:?}"
        );
    }
}

#[test]
fn dropped_attach_connection_cuts_after_n_bytes() {
    if !require_root("dropped_attach_connection_cuts_after_n_bytes") {
        return;
    }
    let pods = PODS.replace(
        "    labels: {app: web}\n",
        "    labels: {app: web}\n    faults: {dropAttachAfterBytes: 10}\n",
    );
    let sandbox = Sandbox::start(&pods);
    assert_eq!(
        patch_ephemeral(&sandbox, "web", cat_container("cat")).status,
        200
    );
    let (mut ws, _) = attach_when_running(&sandbox, "web", "cat", &[V5, V4]);
    ws.send(0, b"0123456789abcdefghij\n");
    let mut got = Vec::new();
    loop {
        match ws.recv(Duration::from_secs(10)) {
            WsEvent::Binary(m) if m[0] == 1 => got.extend_from_slice(&m[1..]),
            WsEvent::Eof => break,
            other => panic!("expected stdout then a dead connection, got {other:?}"),
        }
    }
    assert_eq!(got, b"0123456789");
}

// ----------------------------------------------------------------- faults

#[test]
fn image_pull_failure_reports_the_kubelets_states_and_events() {
    if !require_root("image_pull_failure_reports_the_kubelets_states_and_events") {
        return;
    }
    let pods = PODS.replace(
        "    labels: {app: web}\n",
        "    labels: {app: web}\n    faults: {imagePullFailure: true}\n",
    );
    let sandbox = Sandbox::start(&pods);
    let image = "ghcr.io/netdiag/agent:dev";
    assert_eq!(
        patch_ephemeral(
            &sandbox,
            "web",
            json!({"name": "dbg", "image": image, "stdin": true})
        )
        .status,
        200
    );
    let message = "rpc error: code = NotFound desc = failed to pull and unpack image \"ghcr.io/netdiag/agent:dev\": \
                   failed to resolve reference \"ghcr.io/netdiag/agent:dev\": ghcr.io/netdiag/agent:dev: not found";
    let mut waiting = Value::Null;
    wait_until("ErrImagePull", Duration::from_secs(5), || {
        waiting = ephemeral_status(&sandbox, "web", "dbg")
            .map(|s| s["state"]["waiting"].clone())
            .unwrap_or_default();
        waiting["reason"] == "ErrImagePull"
    });
    assert_eq!(waiting["message"], message);
    wait_until("ImagePullBackOff", Duration::from_secs(5), || {
        waiting = ephemeral_status(&sandbox, "web", "dbg")
            .map(|s| s["state"]["waiting"].clone())
            .unwrap_or_default();
        waiting["reason"] == "ImagePullBackOff"
    });
    assert_eq!(
        waiting["message"],
        format!("Back-off pulling image \"{image}\": ErrImagePull: {message}")
    );
    let events = sandbox
        .http(
            "GET",
            "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dweb",
            None,
            b"",
        )
        .json();
    let reasons: Vec<(String, String)> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&(
            "Failed".into(),
            format!("Failed to pull image \"{image}\": {message}")
        )),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&(
            "BackOff".into(),
            format!("Back-off pulling image \"{image}\"")
        )),
        "{reasons:?}"
    );
    let logs = sandbox.http(
        "GET",
        &format!("{PODS_PATH}/web/log?container=dbg"),
        None,
        b"",
    );
    assert_eq!(logs.status, 400);
    assert_eq!(
        logs.json()["message"],
        "container \"dbg\" in pod \"web\" is waiting to start: trying and failing to pull image"
    );
}

#[test]
fn pod_security_rejects_privileges_with_the_real_403() {
    if !require_root("pod_security_rejects_privileges_with_the_real_403") {
        return;
    }
    let pods = PODS.replace(
        "    labels: {app: web}\n",
        "    labels: {app: web}\n    faults: {podSecurity: restricted}\n",
    );
    let sandbox = Sandbox::start(&pods);
    let r = patch_ephemeral(
        &sandbox,
        "web",
        json!({"name": "tcpdump", "image": "busybox", "targetContainerName": "app",
               "securityContext": {"runAsUser": 0, "capabilities": {"add": ["NET_RAW"]}}}),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text(),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"web\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"tcpdump\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"tcpdump\" must set securityContext.capabilities.drop=[\"ALL\"]; container \"tcpdump\" must not include \"NET_RAW\" in securityContext.capabilities.add), runAsUser=0 (container \"tcpdump\" must not set runAsUser=0)","reason":"Forbidden","details":{"name":"web","kind":"pods"},"code":403}"#
    );
    // Least privilege passes and runs as the non-root user.
    let r = patch_ephemeral(
        &sandbox,
        "web",
        json!({"name": "whoami", "image": "busybox", "command": ["/bin/busybox", "id", "-u"],
               "securityContext": {"runAsUser": 65532, "runAsNonRoot": true, "allowPrivilegeEscalation": false,
                                   "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    wait_terminated(&sandbox, "web", "whoami");
    let logs = sandbox.http(
        "GET",
        &format!("{PODS_PATH}/web/log?container=whoami"),
        None,
        b"",
    );
    assert_eq!(logs.text(), "65532\n");
}

#[test]
fn rbac_denial_shows_in_access_reviews_and_real_calls() {
    if !require_root("rbac_denial_shows_in_access_reviews_and_real_calls") {
        return;
    }
    let pods = PODS.replace(
        "    labels: {app: web}\n",
        "    labels: {app: web}\n    faults: {rbacDeny: [\"patch pods/ephemeralcontainers\", \"get pods/attach\"]}\n",
    );
    let sandbox = Sandbox::start(&pods);
    let review = |verb: &str, resource: &str, subresource: &str| -> Value {
        let r = sandbox.http(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            Some("application/json"),
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                   "spec": {"resourceAttributes": {"namespace": "default", "verb": verb,
                            "resource": resource, "subresource": subresource}}})
            .to_string()
            .as_bytes(),
        );
        assert_eq!(r.status, 201);
        r.json()["status"].clone()
    };
    assert_eq!(
        review("patch", "pods", "ephemeralcontainers"),
        json!({"allowed": false})
    );
    assert_eq!(review("get", "pods", "attach")["allowed"], false);
    assert_eq!(review("create", "pods", "attach")["allowed"], true);
    assert_eq!(review("get", "pods", "")["allowed"], true);

    let r = patch_ephemeral(&sandbox, "web", json!({"name": "dbg", "image": "busybox"}));
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text(),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"web\" is forbidden: User \"sandbox-user\" cannot patch resource \"pods/ephemeralcontainers\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"name":"web","kind":"pods"},"code":403}"#
    );
    let r = sandbox
        .websocket(&attach_path("web", "app", false), &[V5, V4])
        .err()
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["message"],
        "pods \"web\" is forbidden: User \"sandbox-user\" cannot get resource \"pods/attach\" in API group \"\" in the namespace \"default\""
    );
}

#[test]
fn windows_and_pending_pods_look_like_theirs() {
    if !require_root("windows_and_pending_pods_look_like_theirs") {
        return;
    }
    let sandbox = Sandbox::start(
        "pods:\n\
         - name: win\n  windows: true\n  containers: [{name: app, command: [sleep, '1000']}]\n\
         - name: stuck\n  phase: Pending\n  containers: [{name: app, command: [sleep, '1000']}]\n",
    );
    let win = get_pod(&sandbox, "win");
    assert_eq!(win["spec"]["os"]["name"], "windows");
    let node = sandbox
        .http(
            "GET",
            &format!(
                "/api/v1/nodes/{}",
                win["spec"]["nodeName"].as_str().unwrap()
            ),
            None,
            b"",
        )
        .json();
    assert_eq!(node["metadata"]["labels"]["kubernetes.io/os"], "windows");
    assert_eq!(node["status"]["nodeInfo"]["operatingSystem"], "windows");

    let stuck = get_pod(&sandbox, "stuck");
    assert_eq!(stuck["status"]["phase"], "Pending");
    assert_eq!(
        stuck["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ContainerCreating"
    );
    assert_eq!(
        patch_ephemeral(
            &sandbox,
            "stuck",
            json!({"name": "dbg", "image": "busybox"})
        )
        .status,
        200
    );
    std::thread::sleep(Duration::from_millis(1500));
    let status = ephemeral_status(&sandbox, "stuck", "dbg").unwrap();
    assert_eq!(status["state"]["waiting"]["reason"], "ContainerCreating");
}

#[test]
fn teardown_leaves_no_namespace_or_process() {
    if !require_root("teardown_leaves_no_namespace_or_process") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    let netns = sandbox.pod_netns("web");
    assert_eq!(
        patch_ephemeral(&sandbox, "web", cat_container("cat")).status,
        200
    );
    let (_ws, _) = attach_when_running(&sandbox, "web", "cat", &[V5]);
    let name = netns.file_name().unwrap().to_string_lossy().into_owned();
    let pids = |name: &str| -> String {
        String::from_utf8_lossy(
            &Command::new("ip")
                .args(["netns", "pids", name])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    let before: Vec<String> = pids(&name).split_whitespace().map(str::to_owned).collect();
    assert!(
        before.len() >= 2,
        "the app and the ephemeral container run in the pod: {before:?}"
    );
    let status = sandbox.stop();
    assert!(status.success(), "{status}");
    assert!(!netns.exists(), "{} still exists", netns.display());
    for pid in before {
        wait_until(
            &format!("process {pid} of the pod to end"),
            Duration::from_secs(5),
            || !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        );
    }
}

#[test]
fn podman_mode_runs_the_agent_image_in_the_pod() {
    if !require_root("podman_mode_runs_the_agent_image_in_the_pod") {
        return;
    }
    let image = netdiag_tests::podman::agent_image();
    let sandbox = Sandbox::start_with(
        PODS,
        &SandboxOptions {
            image_mode: ImageMode::Podman(image.tag().to_owned()),
            ..SandboxOptions::default()
        },
    );
    wait_for_listener(&sandbox, "web");
    let r = patch_ephemeral(
        &sandbox,
        "web",
        json!({"name": "ss", "image": "ghcr.io/netdiag/agent:dev", "targetContainerName": "app",
               "command": ["/netdiag-agent", "ss", "-Htln"],
               "securityContext": {"runAsUser": 65532, "runAsNonRoot": true, "allowPrivilegeEscalation": false,
                                   "capabilities": {"drop": ["ALL"]}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let terminated = wait_terminated(&sandbox, "web", "ss");
    assert_eq!(terminated["exitCode"], 0, "{terminated}");
    let logs = sandbox.http(
        "GET",
        &format!("{PODS_PATH}/web/log?container=ss"),
        None,
        b"",
    );
    let text = logs.text();
    assert!(
        text.contains("0.0.0.0:8080") || text.contains("*:8080"),
        "ss in the image saw: {text}"
    );
    sees_the_kubelets_resolv_conf_and_hosts(&sandbox);
}

/// What `resolve -o json web` says in an ephemeral container of pod web:
/// the kubelet's resolv.conf (ClusterFirst in namespace default, no
/// cluster DNS declared: no nameserver) and its hosts file naming the pod.
fn sees_the_kubelets_resolv_conf_and_hosts(sandbox: &Sandbox) {
    let r = patch_ephemeral(
        sandbox,
        "web",
        json!({"name": "resolve", "image": "ghcr.io/netdiag/agent:dev",
               "command": ["/netdiag-agent", "resolve", "-o", "json", "web"],
               "securityContext": {"runAsUser": 65532, "runAsNonRoot": true, "allowPrivilegeEscalation": false,
                                   "capabilities": {"drop": ["ALL"]}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let terminated = wait_terminated(sandbox, "web", "resolve");
    assert_eq!(terminated["exitCode"], 0, "{terminated}");
    let logs = sandbox.http(
        "GET",
        &format!("{PODS_PATH}/web/log?container=resolve"),
        None,
        b"",
    );
    let report: Value = serde_json::from_str(&logs.text()).expect("resolve's JSON");
    let conf = &report["environment"]["conf"];
    assert_eq!(
        conf["search"],
        json!([
            "default.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local"
        ]),
        "{conf}"
    );
    assert_eq!(conf["ndots"], 5, "{conf}");
    assert_eq!(conf["nameserver_defaulted"], true, "{conf}");
    let found = &report["lookup"]["resolution"];
    assert_eq!(found["source"], "files", "{found}");
    assert_eq!(
        found["addresses"],
        json!([sandbox.pod_ip("web")]),
        "{found}"
    );
}

#[test]
fn containers_see_the_kubelets_resolv_conf_and_hosts() {
    if !require_root("containers_see_the_kubelets_resolv_conf_and_hosts") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    wait_for_listener(&sandbox, "web");
    sees_the_kubelets_resolv_conf_and_hosts(&sandbox);
    // The machine's own files are untouched.
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert!(!host.contains("svc.cluster.local"), "{host}");
}

#[test]
fn pods_reach_each_other_and_nothing_else() {
    if !require_root("pods_reach_each_other_and_nothing_else") {
        return;
    }
    let sandbox = Sandbox::start(&PODS.replace(
        "services:",
        "  - name: client\n    containers: [{name: app, command: [sleep, '1000']}]\nservices:",
    ));
    wait_for_listener(&sandbox, "web");
    let client = sandbox.pod_netns("client");
    // Over the node's bridge to the web pod's address; the app echoes.
    let web = format!("{}:8080", sandbox.pod_ip("web"));
    let ns_file = std::fs::File::open(&client).unwrap();
    let echoed = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader};
        nix::sched::setns(&ns_file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let mut stream = std::net::TcpStream::connect(&web).expect("connecting to the web pod");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(b"across the bridge\n").unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        line
    })
    .join()
    .unwrap();
    assert_eq!(echoed, "across the bridge\n");
    // No default route: nothing can leave the sandbox.
    let routes = Command::new("nsenter")
        .arg(format!("--net={}", client.display()))
        .args(["ip", "route", "show", "default"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&routes.stdout), "");
}

#[test]
fn security_context_and_target_shape_the_process() {
    if !require_root("security_context_and_target_shape_the_process") {
        return;
    }
    let sandbox = Sandbox::start(PODS);
    wait_for_listener(&sandbox, "web");
    let run = |name: &str, command: &[&str], extra: Value| -> String {
        let mut container = json!({"name": name, "image": "busybox", "command": command});
        container
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = patch_ephemeral(&sandbox, "web", container);
        assert_eq!(r.status, 200, "{}", r.text());
        let terminated = wait_terminated(&sandbox, "web", name);
        assert_eq!(terminated["exitCode"], 0, "{terminated}");
        sandbox
            .http(
                "GET",
                &format!("{PODS_PATH}/web/log?container={name}"),
                None,
                b"",
            )
            .text()
    };
    let caps = |log: &str| -> String {
        log.lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .unwrap_or_else(|| panic!("no CapEff in {log}"))
            .trim()
            .to_owned()
    };
    let status = ["/bin/busybox", "grep", "Cap", "/proc/self/status"];
    // containerd's default set for root.
    assert_eq!(
        caps(&run("default", &status, json!({}))),
        "00000000a80425fb"
    );
    let net_raw = json!({"securityContext": {"runAsUser": 0,
                         "capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]}}});
    assert_eq!(caps(&run("netraw", &status, net_raw)), "0000000000002000");
    // Non-root gets no effective capabilities (no ambient ones), like runc.
    let user =
        json!({"securityContext": {"runAsUser": 65532, "capabilities": {"add": ["NET_RAW"]}}});
    assert_eq!(caps(&run("user", &status, user)), "0000000000000000");

    // With a target the container shares the app's PID namespace.
    let ps = ["/bin/busybox", "ps"];
    let shared = run("ps-target", &ps, json!({"targetContainerName": "app"}));
    assert!(shared.contains("nc -ll -p 8080"), "{shared}");
    let alone = run("ps-alone", &ps, json!({}));
    assert!(!alone.contains("nc -ll"), "{alone}");
}

#[test]
fn closing_stdin_stops_the_sandbox() {
    if !require_root("closing_stdin_stops_the_sandbox") {
        return;
    }
    use std::io::{BufRead, BufReader};
    let dir = netdiag_tests::TempDir::new("sbxstdin");
    std::fs::write(dir.path().join("pods.yaml"), PODS).unwrap();
    let child = Command::new(netdiag_tests::sandbox::sandbox_bin())
        .arg("--pods")
        .arg(dir.path().join("pods.yaml"))
        .arg("--dir")
        .arg(dir.path())
        .arg("--agent")
        .arg(netdiag_tests::agent::agent_bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the sandbox");
    let mut guard = process::ChildGuard::adopt("sandbox", child);
    let mut line = String::new();
    BufReader::new(guard.child_mut().stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready "), "{line:?}");
    let description: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sandbox.json")).unwrap()).unwrap();
    let netns = description["pods"]["default/web"]["netns"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(std::path::Path::new(&netns).exists());
    drop(guard.child_mut().stdin.take());
    let status = guard
        .wait_timeout(Duration::from_secs(10))
        .expect("the sandbox stops when its stdin closes");
    assert!(status.success(), "{status}");
    assert!(
        !std::path::Path::new(&netns).exists(),
        "{netns} left behind"
    );
}
