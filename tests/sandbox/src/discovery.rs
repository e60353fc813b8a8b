//! Discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/GROUP[/VERSION]`
//! in the legacy (unaggregated) form.
//!
//! kubectl 1.32 first asks `/api` and `/apis` for aggregated discovery
//! (`Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,...,
//! application/json`) and, when the response's Content-Type is plain
//! `application/json`, falls back to the legacy documents, as it does with
//! servers before 1.26. The fidelity test pins that kubectl works this way.

use serde_json::{Value, json};

use crate::cluster::Config;
use crate::store::Kind;

pub fn version(config: &Config) -> Value {
    let (minor, git_version) = config.git_version();
    json!({
        "major": "1",
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
    })
}

fn group(name: &str) -> Value {
    let gv = format!("{name}/v1");
    json!({
        "name": name,
        "versions": [{"groupVersion": gv, "version": "v1"}],
        "preferredVersion": {"groupVersion": gv, "version": "v1"},
    })
}

pub const GROUPS: [&str; 2] = ["apps", "authorization.k8s.io"];

pub fn api_group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": GROUPS.iter().map(|g| group(g)).collect::<Vec<_>>(),
    })
}

pub fn api_group(name: &str) -> Option<Value> {
    GROUPS.contains(&name).then(|| {
        let mut g = group(name);
        g["kind"] = json!("APIGroup");
        g["apiVersion"] = json!("v1");
        g
    })
}

const RW: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource(kind: Kind) -> Value {
    let mut r = json!({
        "name": kind.plural(),
        "singularName": kind.singular(),
        "namespaced": kind.namespaced(),
        "kind": kind.name(),
        "verbs": RW,
        "shortNames": kind.short_names(),
    });
    if matches!(
        kind,
        Kind::Pod
            | Kind::Service
            | Kind::Deployment
            | Kind::ReplicaSet
            | Kind::StatefulSet
            | Kind::DaemonSet
    ) {
        r["categories"] = json!(["all"]);
    }
    r
}

fn subresource(name: &str, kind: &str, verbs: &[&str]) -> Value {
    json!({"name": name, "singularName": "", "namespaced": true, "kind": kind, "verbs": verbs})
}

/// `/api/v1` or `/apis/GROUP/v1`.
pub fn resource_list(group: &str) -> Option<Value> {
    let (group_version, resources) = match group {
        "" => (
            "v1",
            vec![
                resource(Kind::Event),
                resource(Kind::Namespace),
                resource(Kind::Node),
                resource(Kind::Pod),
                subresource("pods/attach", "PodAttachOptions", &["create", "get"]),
                subresource(
                    "pods/ephemeralcontainers",
                    "Pod",
                    &["get", "patch", "update"],
                ),
                subresource("pods/log", "Pod", &["get"]),
                subresource("pods/status", "Pod", &["get", "patch", "update"]),
                resource(Kind::Service),
            ],
        ),
        "apps" => (
            "apps/v1",
            vec![
                resource(Kind::DaemonSet),
                resource(Kind::Deployment),
                resource(Kind::ReplicaSet),
                resource(Kind::StatefulSet),
            ],
        ),
        "authorization.k8s.io" => (
            "authorization.k8s.io/v1",
            vec![json!({
                "name": "selfsubjectaccessreviews",
                "singularName": "selfsubjectaccessreview",
                "namespaced": false,
                "kind": "SelfSubjectAccessReview",
                "verbs": ["create"],
            })],
        ),
        _ => return None,
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}
