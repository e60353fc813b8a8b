//! `GET pods/NAME/attach`: the WebSocket channel protocol of kube-apiserver
//! and the kubelet.
//!
//! Two server generations, chosen by `--attach-protocols`:
//! - `v5,v4` (1.30+): a client that offers `v5.channel.k8s.io` is answered
//!   by the API server's stream translator (`apiserver/pkg/util/proxy/
//!   streamtranslator.go`): the upgrade always succeeds, and a failure to
//!   reach the container afterwards (not running yet, or any more) arrives
//!   as a `Failure` Status on channel 3, `Internal error occurred: unable to
//!   upgrade connection: container X not found in pod P_NS`. Other clients
//!   go to the kubelet as below.
//! - `v4` (before 1.30): the kubelet serves the WebSocket itself
//!   (`kubelet/cri/streaming/remotecommand/websocket.go`), with
//!   `v4.channel.k8s.io`, `channel.k8s.io` and their base64 variants. A
//!   container that is not running is refused before the upgrade: HTTP 500,
//!   plain text `container X not found in pod P_NS` (`findContainer` only
//!   sees running containers). A client offering only unknown protocols
//!   gets x/net/websocket's bare 403.
//!
//! Channels: 0 stdin, 1 stdout, 2 stderr, 3 status (a metav1.Status in JSON
//! from v4 on; the bare error text before), 4 resize. Every message is one
//! channel byte then data. The server first sends an empty message on the
//! lowest output channel it serves. v5 adds the client's CLOSE signal
//! `[255, channel]`: stdin alone ends, output continues. Under v4 the only
//! way to end stdin is to close the connection, which ends everything:
//! output the container writes afterwards is lost. When the container's
//! output ends, the server writes the Success status, sends a close frame
//! and waits briefly for the client's.
//!
//! Faults: `dropAttachAfterBytes: N` cuts the TCP connection (no close
//! frame, no status) after N bytes of stdout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, frame::coding::CloseCode};

use crate::api::{Query, Target};
use crate::cluster::{AttachProtocols, Cluster};
use crate::http::{self as resp, Response};
use crate::runtime::{Container, OutChunk, Stream};
use crate::status::{self, Status};
use crate::store::Kind;

const V5: &str = "v5.channel.k8s.io";
/// What the kubelet's WebSocket server speaks, strongest first.
const KUBELET_PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];

/// The signal byte of v5's CLOSE message.
const STREAM_CLOSE: u8 = 255;

/// How long the server waits for the client's close frame after its own.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
struct Options {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    V5,
    V4,
    /// `channel.k8s.io` and the unnamed protocol: status is bare text.
    V1,
}

#[derive(Debug, Clone, Copy)]
struct Framing {
    protocol: Protocol,
    base64: bool,
}

fn truthy(query: &Query, key: &str) -> bool {
    matches!(
        query.get(key).map(String::as_str),
        Some("true" | "1" | "True")
    )
}

pub async fn handle(
    cluster: Arc<Cluster>,
    target: Target,
    query: Query,
    req: http::Request<Incoming>,
) -> Response {
    let namespace = target.namespace.clone().unwrap_or_default();
    let pod_name = target.name.clone().unwrap_or_default();
    let Some(pod) = cluster.store.get(Kind::Pod, &namespace, &pod_name) else {
        return resp::status(&Status::not_found("pods", "", &pod_name));
    };
    let container_name = match resolve_container(&pod, query.get("container").map(String::as_str)) {
        Ok(c) => c,
        Err(s) => return resp::status(&s),
    };
    let opts = Options {
        stdin: truthy(&query, "stdin"),
        stdout: truthy(&query, "stdout"),
        stderr: truthy(&query, "stderr"),
    };
    if !(opts.stdin || opts.stdout || opts.stderr) {
        return resp::status(&Status::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    let pod_full_name = format!("{pod_name}_{namespace}");
    let not_found = format!("container {container_name} not found in pod {pod_full_name}");
    let container = cluster
        .containers
        .get(&namespace, &pod_name, &container_name)
        .filter(|c| c.is_running());

    let is_websocket = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_websocket {
        let upgrade = req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if upgrade.is_empty() {
            return resp::status(&Status::bad_request("Upgrade request required"));
        }
        // The kubelet looks for the container before the protocol.
        if container.is_none() {
            return resp::text(500, not_found);
        }
        if !upgrade.contains("spdy/3.1") {
            return resp::text(
                400,
                "unable to upgrade: missing upgrade headers in request\n",
            );
        }
        return spdy_upgrade(
            req,
            opts,
            container.expect("checked above"),
            drop_after(&cluster, &namespace, &pod_name),
        )
        .await;
    }
    let offered: Vec<String> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let translator =
        cluster.config.protocols == AttachProtocols::V5AndV4 && offered.iter().any(|p| p == V5);

    let (protocol_name, framing) = if translator {
        (
            Some(V5.to_owned()),
            Framing {
                protocol: Protocol::V5,
                base64: false,
            },
        )
    } else {
        if container.is_none() {
            return resp::text(500, not_found);
        }
        match negotiate(&offered) {
            Some(found) => found,
            None => {
                let mut r = resp::text(403, "");
                r.headers_mut().remove(header::CONTENT_TYPE);
                r.headers_mut().remove("x-content-type-options");
                return r;
            }
        }
    };

    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return resp::status(&Status::bad_request("missing Sec-WebSocket-Key"));
    };
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    if !version_ok {
        return resp::status(&Status::bad_request("unsupported Sec-WebSocket-Version"));
    }

    // Subscribe before the upgrade answer goes out, so no output written
    // after the client's attach succeeded can be missed.
    let output = match &container {
        Some(c) => c.attach(16).await,
        None => None,
    };
    let container = if output.is_some() { container } else { None };
    let drop_after = drop_after(&cluster, &namespace, &pod_name);

    let mut response = http::Response::new(resp::full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(p) = protocol_name.as_deref()
        && let Ok(v) = HeaderValue::from_str(p)
    {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }

    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let session = Session {
            framing,
            opts,
            container,
            drop_after,
        };
        match output {
            Some(output) => session.run(ws, output).await,
            None => {
                // Only the translator gets here: the upgrade happened, the
                // kubelet could not find the container.
                let failure =
                    Status::internal(&format!("unable to upgrade connection: {not_found}"));
                session.refuse(ws, &failure).await;
            }
        }
    });
    response
}

fn drop_after(cluster: &Cluster, namespace: &str, pod: &str) -> Option<u64> {
    cluster
        .pod_info(namespace, pod)
        .and_then(|i| i.spec.faults.drop_attach_after_bytes)
}

/// The SPDY/3.1 upgrade of the kubelet (see [`crate::spdy`]).
async fn spdy_upgrade(
    req: http::Request<Incoming>,
    opts: Options,
    container: Arc<Container>,
    drop_after: Option<u64>,
) -> Response {
    let offered: Vec<String> = req
        .headers()
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return resp::text(
            400,
            "unable to upgrade: X-Stream-Protocol-Version is required\n",
        );
    }
    let Some(protocol) = crate::spdy::negotiate(&offered) else {
        return crate::spdy::refusal(&offered);
    };
    let Some(output) = container.attach(16).await else {
        return resp::text(500, format!("container {} is not running", container.name));
    };
    let mut response = http::Response::new(resp::full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    headers.insert(
        "x-stream-protocol-version",
        HeaderValue::from_static(protocol),
    );
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let session = crate::spdy::Session {
            protocol,
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
            container,
            drop_after,
        };
        session.run(upgraded, output).await;
    });
    response
}

/// The first protocol the client offers that the kubelet speaks (client
/// order wins, as in wsstream's handshake); no header means "".
fn negotiate(offered: &[String]) -> Option<(Option<String>, Framing)> {
    if offered.is_empty() {
        return Some((
            None,
            Framing {
                protocol: Protocol::V1,
                base64: false,
            },
        ));
    }
    offered.iter().find_map(|p| {
        KUBELET_PROTOCOLS.contains(&p.as_str()).then(|| {
            (
                Some(p.clone()),
                Framing {
                    protocol: if p.starts_with("v4.") {
                        Protocol::V4
                    } else {
                        Protocol::V1
                    },
                    base64: p.contains("base64"),
                },
            )
        })
    })
}

/// The container an attach addresses, as the API server picks it.
pub fn resolve_container(
    pod: &serde_json::Value,
    requested: Option<&str>,
) -> Result<String, Box<Status>> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    };
    let containers = names("containers");
    let all: Vec<String> = names("initContainers")
        .into_iter()
        .chain(containers.iter().cloned())
        .chain(names("ephemeralContainers"))
        .collect();
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if all.iter().any(|n| n == c) => Ok(c.to_owned()),
        Some(c) => Err(Box::new(Status::bad_request(format!(
            "container {c} is not valid for pod {pod_name}"
        )))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => Err(Box::new(Status::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            all.join(" ")
        )))),
    }
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

#[derive(Clone)]
struct Session {
    framing: Framing,
    opts: Options,
    container: Option<Arc<Container>>,
    drop_after: Option<u64>,
}

impl Session {
    fn frame(&self, channel: u8, data: &[u8]) -> Message {
        if self.framing.base64 {
            let mut text = String::with_capacity(1 + data.len() * 4 / 3 + 4);
            text.push(char::from(b'0' + channel));
            text.push_str(&base64_encode(data));
            Message::Text(text.into())
        } else {
            let mut frame = Vec::with_capacity(data.len() + 1);
            frame.push(channel);
            frame.extend_from_slice(data);
            Message::Binary(Bytes::from(frame))
        }
    }

    /// Decodes a client message into (channel, data).
    fn decode(&self, message: Message) -> Option<(u8, Vec<u8>)> {
        match message {
            Message::Binary(b) if !b.is_empty() => Some((b[0], b[1..].to_vec())),
            Message::Text(t) if self.framing.base64 && !t.is_empty() => {
                let channel = t.as_bytes()[0].wrapping_sub(b'0');
                Some((channel, base64_decode(&t.as_str()[1..])?))
            }
            _ => None,
        }
    }

    /// The empty message on the lowest output channel that announces the
    /// stream is established.
    fn hello(&self) -> Message {
        let channel = if self.opts.stdout {
            1
        } else if self.opts.stderr {
            2
        } else {
            3
        };
        self.frame(channel, &[])
    }

    fn status_message(&self, status: Option<&Status>) -> Option<Message> {
        match (self.framing.protocol, status) {
            (Protocol::V1, None) => None,
            (Protocol::V1, Some(s)) => Some(self.frame(3, s.message().as_bytes())),
            (_, None) => Some(self.frame(3, &status::success_stream_status())),
            (_, Some(s)) => Some(self.frame(3, &status::stream_status(s))),
        }
    }

    async fn refuse(self, mut ws: Ws, failure: &Status) {
        let _ = ws.send(self.hello()).await;
        if let Some(m) = self.status_message(Some(failure)) {
            let _ = ws.send(m).await;
        }
        finish(ws).await;
    }

    /// Serves an attached session: client input on its own task (so a
    /// client that writes while it does not read cannot stall stdin behind
    /// output, as the kubelet's goroutines would not), output here.
    async fn run(self, ws: Ws, mut output: mpsc::Receiver<OutChunk>) {
        let (mut sink, incoming) = ws.split();
        if sink.send(self.hello()).await.is_err() {
            self.end_stdin().await;
            return;
        }
        let reader = self.clone();
        let mut client = tokio::spawn(async move { reader.read_client(incoming).await });
        let mut stdout_sent: u64 = 0;
        loop {
            tokio::select! {
                _ = &mut client => {
                    // The client closed or went away: everything ends with
                    // it (x/net/websocket answers a close frame with its own).
                    let _ = sink.close().await;
                    break;
                }
                chunk = output.recv() => {
                    let Some(chunk) = chunk else {
                        // The container's output ended: report success and close.
                        if let Some(m) = self.status_message(None) {
                            let _ = sink.send(m).await;
                        }
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame {
                                code: CloseCode::Normal,
                                reason: "".into(),
                            })))
                            .await;
                        if tokio::time::timeout(CLOSE_WAIT, &mut client).await.is_err() {
                            client.abort();
                        }
                        break;
                    };
                    let channel = match chunk.stream {
                        Stream::Stdout if self.opts.stdout => 1,
                        Stream::Stderr if self.opts.stderr => 2,
                        _ => continue,
                    };
                    let mut data = chunk.data;
                    let mut cut = false;
                    if channel == 1
                        && let Some(limit) = self.drop_after
                    {
                        let room = limit.saturating_sub(stdout_sent);
                        if (data.len() as u64) >= room {
                            data = data.slice(..room as usize);
                            cut = true;
                        }
                        stdout_sent += data.len() as u64;
                    }
                    if !data.is_empty() && sink.send(self.frame(channel, &data)).await.is_err() {
                        client.abort();
                        break;
                    }
                    if cut {
                        // The fault: the connection just dies, no close frame.
                        client.abort();
                        drop(sink);
                        break;
                    }
                }
            }
        }
        self.end_stdin().await;
    }

    /// What the client sends: stdin, v5's CLOSE, resize; returns when it
    /// closes or disconnects.
    async fn read_client(self, mut incoming: futures_util::stream::SplitStream<Ws>) {
        let mut stdin_done = !self.opts.stdin;
        while let Some(Ok(message)) = incoming.next().await {
            if let Message::Close(_) = message {
                break;
            }
            let Some((channel, data)) = self.decode(message) else {
                continue;
            };
            match channel {
                0 if !stdin_done => {
                    if let Some(c) = &self.container
                        && c.stdin_open
                    {
                        c.write_stdin(&data).await;
                    }
                }
                STREAM_CLOSE
                    if self.framing.protocol == Protocol::V5
                        && data.first() == Some(&0)
                        && !stdin_done =>
                {
                    stdin_done = true;
                    self.end_stdin().await;
                }
                // Resize (4) needs a TTY the sandbox does not allocate.
                _ => {}
            }
        }
        self.end_stdin().await;
    }

    /// The client's stdin ended (CLOSE, or the session): a `stdinOnce`
    /// container's stdin is closed, as containerd's attach does. Closing
    /// twice is harmless.
    async fn end_stdin(&self) {
        if let Some(c) = &self.container
            && self.opts.stdin
            && c.stdin_once
        {
            c.close_stdin().await;
        }
    }
}

/// Sends the close frame and waits (bounded) for the client's.
async fn finish(mut ws: Ws) {
    let _ = ws
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(m)) = ws.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_round_trips() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foo\n", &[0, 255, 1, 254]] {
            assert_eq!(base64_decode(&base64_encode(data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"foo\n"), "Zm9vCg==");
    }

    #[test]
    fn negotiation_follows_client_order() {
        let offered = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (p, f) = negotiate(&offered(&[V5, "v4.channel.k8s.io", "channel.k8s.io"])).unwrap();
        assert_eq!(p.as_deref(), Some("v4.channel.k8s.io"));
        assert_eq!(f.protocol, Protocol::V4);
        let (p, f) = negotiate(&offered(&["base64.channel.k8s.io"])).unwrap();
        assert_eq!(p.as_deref(), Some("base64.channel.k8s.io"));
        assert!(f.base64);
        assert!(negotiate(&offered(&[V5])).is_none());
    }

    #[test]
    fn container_resolution() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {
            "containers": [{"name": "app"}, {"name": "side"}],
            "ephemeralContainers": [{"name": "dbg"}]}});
        assert_eq!(resolve_container(&pod, Some("dbg")).unwrap(), "dbg");
        assert_eq!(
            resolve_container(&pod, None).unwrap_err().message(),
            "a container name must be specified for pod web, choose one of: [app side dbg]"
        );
        assert_eq!(
            resolve_container(&pod, Some("x")).unwrap_err().message(),
            "container x is not valid for pod web"
        );
    }
}
