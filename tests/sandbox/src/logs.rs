//! `GET pods/NAME/log`: a container's output as plain text, as the kubelet
//! serves it from the CRI log (stdout and stderr interleaved), with
//! `follow`, `timestamps`, `tailLines` and `limitBytes`.
//!
//! Whether logs exist is decided from the pod's *reported* status, as the
//! kubelet's `validateContainerLogStatus` does: a container the status
//! still shows waiting answers 400 `container "X" in pod "P" is waiting to
//! start: REASON`, even if its process already runs.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::api::{Query, Target};
use crate::cluster::Cluster;
use crate::http::{self as resp, Response};
use crate::runtime::{Container, LogEntry};
use crate::status::Status;
use crate::store::Kind;

pub fn handle(cluster: &Arc<Cluster>, target: &Target, query: &Query) -> Response {
    let namespace = target.namespace.clone().unwrap_or_default();
    let pod_name = target.name.clone().unwrap_or_default();
    let Some(pod) = cluster.store.get(Kind::Pod, &namespace, &pod_name) else {
        return resp::status(&Status::not_found("pods", "", &pod_name));
    };
    let name =
        match crate::attach::resolve_container(&pod, query.get("container").map(String::as_str)) {
            Ok(n) => n,
            Err(s) => return resp::status(&s),
        };
    let previous = matches!(
        query.get("previous").map(String::as_str),
        Some("true" | "1")
    );
    if let Err(message) = validate_status(&pod, &name, previous) {
        return resp::status(&Status::bad_request(message));
    }
    let Some(container) = cluster.containers.get(&namespace, &pod_name, &name) else {
        return resp::status(&Status::bad_request(format!(
            "container {name:?} in pod {pod_name:?} is not available"
        )));
    };
    let options = Options {
        follow: matches!(query.get("follow").map(String::as_str), Some("true" | "1")),
        timestamps: matches!(
            query.get("timestamps").map(String::as_str),
            Some("true" | "1")
        ),
        tail_lines: query.get("tailLines").and_then(|v| v.parse().ok()),
        limit_bytes: query.get("limitBytes").and_then(|v| v.parse().ok()),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(stream_log(container, options, tx));
    resp::stream("text/plain", rx)
}

struct Options {
    follow: bool,
    timestamps: bool,
    tail_lines: Option<usize>,
    limit_bytes: Option<usize>,
}

/// The kubelet's `validateContainerLogStatus`, on the reported status.
fn validate_status(pod: &Value, name: &str, previous: bool) -> Result<(), String> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
    let status = [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .flat_map(|f| pod["status"][f].as_array().cloned().unwrap_or_default())
    .find(|s| s["name"] == name);
    let Some(status) = status else {
        return Err(format!(
            "container {name:?} in pod {pod_name:?} is not available"
        ));
    };
    let state = &status["state"];
    let last_terminated = &status["lastState"]["terminated"];
    if previous {
        if last_terminated["containerID"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            return Err(format!(
                "previous terminated container {name:?} in pod {pod_name:?} not found"
            ));
        }
        return Ok(());
    }
    if state["running"].is_object() || state["terminated"].is_object() {
        return Ok(());
    }
    if let Some(reason) = state["waiting"]["reason"].as_str() {
        return Err(match reason {
            "ErrImagePull" => format!(
                "container {name:?} in pod {pod_name:?} is waiting to start: image can't be pulled"
            ),
            "ImagePullBackOff" => format!(
                "container {name:?} in pod {pod_name:?} is waiting to start: trying and failing to pull image"
            ),
            other => format!("container {name:?} in pod {pod_name:?} is waiting to start: {other}"),
        });
    }
    Err(format!(
        "container {name:?} in pod {pod_name:?} is waiting to start - no logs yet"
    ))
}

/// Renders entries as the kubelet's log reader does: line by line with an
/// RFC 3339 timestamp when asked.
fn render(entries: &[LogEntry], timestamps: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        if !timestamps {
            out.extend_from_slice(&e.data);
            continue;
        }
        for line in e.data.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(e.time.as_bytes());
            out.push(b' ');
            out.extend_from_slice(line);
        }
    }
    out
}

fn tail(bytes: Vec<u8>, lines: usize) -> Vec<u8> {
    if lines == 0 {
        return Vec::new();
    }
    // The last `lines` lines; a final line without newline counts.
    let mut count = 0;
    let end = if bytes.last() == Some(&b'\n') {
        bytes.len() - 1
    } else {
        bytes.len()
    };
    for i in (0..end).rev() {
        if bytes[i] == b'\n' {
            count += 1;
            if count == lines {
                return bytes[i + 1..].to_vec();
            }
        }
    }
    bytes
}

async fn stream_log(container: Arc<Container>, options: Options, tx: mpsc::Sender<Bytes>) {
    let mut changes = container.log.subscribe();
    let mut next = 0;
    let mut remaining = options.limit_bytes.unwrap_or(usize::MAX);
    let mut first = true;
    loop {
        let (_, ended) = *changes.borrow_and_update();
        let entries = container.log.entries_from(next);
        next += entries.len();
        let mut chunk = render(&entries, options.timestamps);
        if first {
            if let Some(lines) = options.tail_lines {
                chunk = tail(chunk, lines);
            }
            first = false;
        }
        if chunk.len() > remaining {
            chunk.truncate(remaining);
        }
        remaining -= chunk.len();
        if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
            return;
        }
        if !options.follow || ended || remaining == 0 {
            return;
        }
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            () = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn waiting_containers_have_no_logs_yet() {
        let pod = json!({"metadata": {"name": "web"}, "status": {"ephemeralContainerStatuses": [
            {"name": "dbg", "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}},
            {"name": "bad", "state": {"waiting": {"reason": "ImagePullBackOff"}}, "lastState": {}},
        ]}});
        assert_eq!(
            validate_status(&pod, "dbg", false).unwrap_err(),
            "container \"dbg\" in pod \"web\" is waiting to start: ContainerCreating"
        );
        assert_eq!(
            validate_status(&pod, "bad", false).unwrap_err(),
            "container \"bad\" in pod \"web\" is waiting to start: trying and failing to pull image"
        );
        assert!(validate_status(&pod, "nope", false).is_err());
    }

    #[test]
    fn tails_lines() {
        assert_eq!(tail(b"a\nb\nc\n".to_vec(), 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc".to_vec(), 1), b"c");
        assert_eq!(tail(b"a\n".to_vec(), 5), b"a\n");
    }
}
