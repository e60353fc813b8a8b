//! TARGET → one running pod and the container to share namespaces with.
//!
//! `NAME` is a pod; `deploy/`, `sts/`, `ds/`, `rs/` and `svc/` select the
//! pods behind the object the way `kubectl exec` picks one: the most
//! available first (ready, running, longest ready).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Client;
use kube::api::{Api, ListParams};

use crate::error::{PluginError, api_code, api_message};

pub struct Target {
    pub name: String,
    pub namespace: String,
    /// The container whose process namespace the agent joins.
    pub container: String,
}

pub async fn resolve(
    client: &Client,
    namespace: &str,
    target: &str,
    container: Option<&str>,
) -> Result<Target, PluginError> {
    let pod = match target.split_once('/') {
        None => get_pod(client, namespace, target).await?,
        Some((kind, name)) => {
            let selector = selector_of(client, namespace, kind, name).await?;
            pick_pod(client, namespace, &format!("{kind}/{name}"), &selector).await?
        }
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    check_runnable(&pod, &name, namespace)?;
    let container = choose_container(&pod, &name, container)?;
    Ok(Target {
        name,
        namespace: namespace.to_owned(),
        container,
    })
}

async fn get_pod(client: &Client, namespace: &str, name: &str) -> Result<Pod, PluginError> {
    Api::<Pod>::namespaced(client.clone(), namespace).get(name).await.map_err(|e| match api_code(&e) {
        Some(404) => PluginError::new(format!(
            "pod \"{name}\" not found in namespace \"{namespace}\"; check the name or pass -n NAMESPACE"
        )),
        Some(403) => PluginError::new(format!(
            "not allowed to get pod \"{name}\" in namespace \"{namespace}\": {}",
            api_message(&e)
        )),
        _ => PluginError::new(format!("cannot get pod \"{name}\": {}", api_message(&e))),
    })
}

/// The label selector (as `k=v,...`) of a workload or service.
async fn selector_of(
    client: &Client,
    ns: &str,
    kind: &str,
    name: &str,
) -> Result<String, PluginError> {
    let not_found = |what: &str, e: kube::Error| match api_code(&e) {
        Some(404) => PluginError::new(format!("{what} \"{name}\" not found in namespace \"{ns}\"")),
        _ => PluginError::new(format!("cannot get {what} \"{name}\": {}", api_message(&e))),
    };
    let selector: Option<LabelSelector> = match kind {
        "deploy" | "deployment" | "deployments" => {
            Api::<Deployment>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .map_err(|e| not_found("deployment", e))?
                .spec
                .map(|s| s.selector)
        }
        "sts" | "statefulset" | "statefulsets" => {
            Api::<StatefulSet>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .map_err(|e| not_found("statefulset", e))?
                .spec
                .map(|s| s.selector)
        }
        "ds" | "daemonset" | "daemonsets" => Api::<DaemonSet>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .map_err(|e| not_found("daemonset", e))?
            .spec
            .map(|s| s.selector),
        "rs" | "replicaset" | "replicasets" => Api::<ReplicaSet>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .map_err(|e| not_found("replicaset", e))?
            .spec
            .map(|s| s.selector),
        "svc" | "service" | "services" => {
            let svc = Api::<Service>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .map_err(|e| not_found("service", e))?;
            let labels = svc.spec.and_then(|s| s.selector).unwrap_or_default();
            if labels.is_empty() {
                return Err(PluginError::new(format!(
                    "service \"{name}\" has no selector, so no pods behind it; name a pod instead"
                )));
            }
            Some(LabelSelector {
                match_labels: Some(labels),
                match_expressions: None,
            })
        }
        "po" | "pod" | "pods" => return Ok(format!("metadata.name={name}")),
        other => {
            return Err(PluginError::new(format!(
                "unknown target kind \"{other}\"; use a pod name or deploy/, sts/, ds/, rs/, svc/NAME"
            )));
        }
    };
    let selector = selector.unwrap_or_default();
    let text = label_selector_string(&selector);
    if text.is_empty() {
        return Err(PluginError::new(format!(
            "{kind}/{name} has an empty selector; name a pod instead"
        )));
    }
    Ok(text)
}

/// Renders a LabelSelector in the `?labelSelector=` syntax.
pub fn label_selector_string(s: &LabelSelector) -> String {
    let mut parts: Vec<String> = s
        .match_labels
        .as_ref()
        .unwrap_or(&BTreeMap::new())
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in s.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            _ => continue,
        });
    }
    parts.join(",")
}

async fn pick_pod(
    client: &Client,
    ns: &str,
    what: &str,
    selector: &str,
) -> Result<Pod, PluginError> {
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let params = if let Some(name) = selector.strip_prefix("metadata.name=") {
        ListParams::default().fields(&format!("metadata.name={name}"))
    } else {
        ListParams::default().labels(selector)
    };
    let mut pods = api
        .list(&params)
        .await
        .map_err(|e| {
            PluginError::new(format!(
                "cannot list the pods of {what}: {}",
                api_message(&e)
            ))
        })?
        .items;
    if pods.is_empty() {
        return Err(PluginError::new(format!(
            "{what} has no pods in namespace \"{ns}\""
        )));
    }
    pods.sort_by_key(|p| std::cmp::Reverse(availability(p)));
    Ok(pods.remove(0))
}

/// Higher is more available: ready, then running, then longer ready.
fn availability(pod: &Pod) -> (bool, bool, i64) {
    let status = pod.status.as_ref();
    let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
    let ready_since = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
        .map(|c| {
            c.last_transition_time
                .as_ref()
                .map_or(0, |t| -t.0.as_second())
        });
    (
        ready_since.is_some(),
        running,
        ready_since.unwrap_or(i64::MIN),
    )
}

fn check_runnable(pod: &Pod, name: &str, ns: &str) -> Result<(), PluginError> {
    let spec = pod.spec.as_ref();
    let windows = spec.and_then(|s| s.os.as_ref()).map(|o| o.name.as_str()) == Some("windows")
        || spec
            .and_then(|s| s.node_selector.as_ref())
            .and_then(|n| n.get("kubernetes.io/os"))
            .map(String::as_str)
            == Some("windows");
    if windows {
        return Err(PluginError::new(format!(
            "pod \"{name}\" runs on a Windows node; the netdiag agent is a Linux binary and cannot run there"
        )));
    }
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".into());
    if phase != "Running" {
        return Err(PluginError::new(format!(
            "pod \"{name}\" in namespace \"{ns}\" is {phase}, not Running; netdiag joins a running pod's network namespace"
        )));
    }
    Ok(())
}

fn choose_container(pod: &Pod, name: &str, wanted: Option<&str>) -> Result<String, PluginError> {
    let containers: Vec<&str> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
        .map(String::as_str);
    let choice = wanted.or(annotated).or(containers.first().copied());
    match choice {
        Some(c) if containers.contains(&c) => Ok(c.to_owned()),
        Some(c) => Err(PluginError::new(format!(
            "container \"{c}\" not found in pod \"{name}\"; its containers are: {}",
            containers.join(", ")
        ))),
        None => Err(PluginError::new(format!(
            "pod \"{name}\" has no containers"
        ))),
    }
}
