//! Server-side printing: the `meta.k8s.io/v1` Table kube-apiserver returns
//! when a client asks for `as=Table` (what `kubectl get` shows), with the
//! columns and cell logic of `pkg/printers/internalversion/printers.go` for
//! pods and the usual columns for the other kinds.

use serde_json::{Value, json};

use crate::store::Kind;

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p = part.replace(' ', "");
        p.contains("as=Table") && p.contains("g=meta.k8s.io")
    })
}

fn column(name: &str, type_: &str, format: &str, description: &str, priority: i32) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

fn columns(kind: Kind) -> Vec<Value> {
    let name = column("Name", "string", "name", NAME_DESCRIPTION, 0);
    let age = column("Age", "string", "", AGE_DESCRIPTION, 0);
    match kind {
        Kind::Pod => vec![
            name,
            column(
                "Ready",
                "string",
                "",
                "The aggregate readiness state of this pod for accepting traffic.",
                0,
            ),
            column(
                "Status",
                "string",
                "",
                "The aggregate status of the containers in this pod.",
                0,
            ),
            column(
                "Restarts",
                "string",
                "",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                0,
            ),
            age,
            column(
                "IP",
                "string",
                "",
                "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
                1,
            ),
            column(
                "Node",
                "string",
                "",
                "NodeName is a request to schedule this pod onto a specific node.",
                1,
            ),
            column(
                "Nominated Node",
                "string",
                "",
                "nominatedNodeName is set only when this pod preempts other pods on the node.",
                1,
            ),
            column(
                "Readiness Gates",
                "string",
                "",
                "If specified, all readiness gates will be evaluated for pod readiness.",
                1,
            ),
        ],
        Kind::Deployment => vec![
            name,
            column(
                "Ready",
                "string",
                "",
                "Number of the pod with ready state",
                0,
            ),
            column(
                "Up-to-date",
                "integer",
                "",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                0,
            ),
            column(
                "Available",
                "integer",
                "",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                0,
            ),
            age,
        ],
        Kind::ReplicaSet => vec![
            name,
            column(
                "Desired",
                "integer",
                "",
                "Replicas is the number of desired pods.",
                0,
            ),
            column(
                "Current",
                "integer",
                "",
                "Replicas is the most recently observed number of replicas.",
                0,
            ),
            column(
                "Ready",
                "integer",
                "",
                "The number of ready replicas for this replica set.",
                0,
            ),
            age,
        ],
        Kind::Service => vec![
            name,
            column(
                "Type",
                "string",
                "",
                "type determines how the Service is exposed.",
                0,
            ),
            column(
                "Cluster-IP",
                "string",
                "",
                "clusterIP is the IP address of the service.",
                0,
            ),
            column(
                "External-IP",
                "string",
                "",
                "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
                0,
            ),
            column(
                "Port(s)",
                "string",
                "",
                "The list of ports that are exposed by this service.",
                0,
            ),
            age,
        ],
        Kind::Event => vec![
            column(
                "Last Seen",
                "string",
                "",
                "The last time the event was seen.",
                0,
            ),
            column(
                "Type",
                "string",
                "",
                "Type of this event (Normal, Warning).",
                0,
            ),
            column(
                "Reason",
                "string",
                "",
                "This should be a short, machine understandable string.",
                0,
            ),
            column("Object", "string", "", "The object this Event is about.", 0),
            column(
                "Message",
                "string",
                "",
                "A human-readable description of the status of this operation.",
                0,
            ),
        ],
        Kind::Node => vec![
            name,
            column("Status", "string", "", "The status of the node", 0),
            column("Roles", "string", "", "The roles of the node", 0),
            age,
            column(
                "Version",
                "string",
                "",
                "Kubelet Version reported by the node.",
                0,
            ),
        ],
        Kind::Namespace => vec![
            name,
            column("Status", "string", "", "The status of the namespace", 0),
            age,
        ],
        _ => vec![name, age],
    }
}

/// `duration.HumanDuration` of apimachinery.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn age(timestamp: &Value) -> String {
    let Some(ts) = timestamp.as_str() else {
        return "<unknown>".to_owned();
    };
    match ts.parse::<k8s_openapi::jiff::Timestamp>() {
        Ok(t) => {
            let secs = crate::store::now().as_second() - t.as_second();
            human_duration(secs)
        }
        Err(_) => "<unknown>".to_owned(),
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_owned()
}

/// The cells of `printPod`.
fn pod_cells(pod: &Value) -> Vec<Value> {
    let status = &pod["status"];
    let statuses = status["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let mut reason = status["phase"].as_str().unwrap_or("").to_owned();
    if let Some(r) = status["reason"].as_str() {
        reason = r.to_owned();
    }
    let mut ready = 0;
    let mut restarts = 0;
    let mut has_running = false;
    for c in statuses.iter().rev() {
        restarts += c["restartCount"].as_i64().unwrap_or(0);
        let state = &c["state"];
        if let Some(w) = state["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            reason = w.to_owned();
        } else if let Some(t) = state["terminated"].as_object() {
            match t
                .get("reason")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
            {
                Some(r) => reason = r.to_owned(),
                None => {
                    let signal = t.get("signal").and_then(Value::as_i64).unwrap_or(0);
                    reason = if signal != 0 {
                        format!("Signal:{signal}")
                    } else {
                        format!(
                            "ExitCode:{}",
                            t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                        )
                    };
                }
            }
        } else if c["ready"] == true && state["running"].is_object() {
            has_running = true;
            ready += 1;
        }
    }
    if reason == "Completed" && has_running {
        let pod_ready = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        reason = if pod_ready { "Running" } else { "NotReady" }.to_owned();
    }
    if pod["metadata"]["deletionTimestamp"].is_string() {
        reason = "Terminating".to_owned();
    }
    let ip = status["podIP"].as_str().unwrap_or("<none>");
    let node = pod["spec"]["nodeName"].as_str().unwrap_or("<none>");
    vec![
        json!(s(&pod["metadata"]["name"])),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts.to_string()),
        json!(age(&pod["metadata"]["creationTimestamp"])),
        json!(ip),
        json!(node),
        json!("<none>"),
        json!("<none>"),
    ]
}

fn cells(kind: Kind, obj: &Value) -> Vec<Value> {
    let name = json!(s(&obj["metadata"]["name"]));
    let created = age(&obj["metadata"]["creationTimestamp"]);
    match kind {
        Kind::Pod => pod_cells(obj),
        Kind::Deployment => {
            let st = &obj["status"];
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    st["readyReplicas"].as_i64().unwrap_or(0),
                    obj["spec"]["replicas"].as_i64().unwrap_or(0)
                )),
                json!(st["updatedReplicas"].as_i64().unwrap_or(0)),
                json!(st["availableReplicas"].as_i64().unwrap_or(0)),
                json!(created),
            ]
        }
        Kind::ReplicaSet => vec![
            name,
            json!(obj["spec"]["replicas"].as_i64().unwrap_or(0)),
            json!(obj["status"]["replicas"].as_i64().unwrap_or(0)),
            json!(obj["status"]["readyReplicas"].as_i64().unwrap_or(0)),
            json!(created),
        ],
        Kind::Service => {
            let ports: Vec<String> = obj["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", p["port"], s(&p["protocol"])))
                .collect();
            vec![
                name,
                json!(s(&obj["spec"]["type"])),
                json!(s(&obj["spec"]["clusterIP"])),
                json!("<none>"),
                json!(if ports.is_empty() {
                    "<none>".to_owned()
                } else {
                    ports.join(",")
                }),
                json!(created),
            ]
        }
        Kind::Event => {
            let involved = &obj["involvedObject"];
            vec![
                json!(age(&obj["lastTimestamp"])),
                json!(s(&obj["type"])),
                json!(s(&obj["reason"])),
                json!(format!(
                    "{}/{}",
                    s(&involved["kind"]).to_ascii_lowercase(),
                    s(&involved["name"])
                )),
                json!(s(&obj["message"])),
            ]
        }
        Kind::Node => vec![
            name,
            json!("Ready"),
            json!("<none>"),
            json!(created),
            json!(s(&obj["status"]["nodeInfo"]["kubeletVersion"])),
        ],
        Kind::Namespace => vec![name, json!(s(&obj["status"]["phase"])), json!(created)],
        _ => vec![name, json!(created)],
    }
}

/// The Table for `objects`; `include` is the includeObject parameter
/// (`None`, `Metadata` (the default) or `Object`).
pub fn table(kind: Kind, objects: &[Value], resource_version: u64, include: &str) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let object = match include {
                "None" => Value::Null,
                "Object" => {
                    let mut o = o.clone();
                    o["apiVersion"] = json!(kind.api_version());
                    o["kind"] = json!(kind.name());
                    o
                }
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"],
                }),
            };
            let mut row = json!({"cells": cells(kind, o)});
            if !object.is_null() {
                row["object"] = object;
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": columns(kind),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(50 * 3600), "2d2h");
    }

    #[test]
    fn pod_status_column_prefers_waiting_reasons() {
        let pod = json!({
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ]},
        });
        let c = pod_cells(&pod);
        assert_eq!(c[1], "1/2");
        assert_eq!(c[2], "CrashLoopBackOff");
        assert_eq!(c[3], "2");
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
