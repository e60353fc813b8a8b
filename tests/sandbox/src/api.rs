//! The API server's request handling: authentication, routing, RBAC, and
//! the read endpoints (get, list with Table printing, watch).
//!
//! Requests are decoded the way kube-apiserver's RequestInfo resolver does
//! (`/api/v1/namespaces/N/pods/P/SUBRESOURCE`, `/apis/GROUP/v1/...`); the
//! verb for authorization comes from the method (GET single: `get`, GET
//! collection: `list`, `watch=1`: `watch`, PATCH: `patch`, POST: `create`).
//! WebSocket attach is a GET, so it needs `get pods/attach`, as on real
//! servers from 1.30 to 1.34.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::cluster::Cluster;
use crate::http::{self as resp, Response};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::Status;
use crate::store::Kind;
use crate::table;
use crate::tls::USER;

/// Largest request body accepted (a PATCH or an access review).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// A request's target, as RequestInfo decodes it.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub group: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Query parameters, decoded (last value wins, as Go's `Get` is first, but
/// clients never repeat these).
pub type Query = BTreeMap<String, String>;

pub fn parse_query(query: Option<&str>) -> Query {
    let mut out = Query::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Handles one request (the WebSocket upgrade of attach included).
pub async fn handle(cluster: Arc<Cluster>, req: http::Request<Incoming>) -> Response {
    if !authenticated(&cluster, &req) {
        return resp::status(&Status::unauthorized());
    }
    let path = req.uri().path().to_owned();
    let query = parse_query(req.uri().query());
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();

    // Discovery.
    match segments.as_slice() {
        ["version"] => return resp::json_value(200, &crate::discovery::version(&cluster.config)),
        ["api"] => return resp::json_value(200, &crate::discovery::api_versions()),
        ["apis"] => return resp::json_value(200, &crate::discovery::api_group_list()),
        ["api", "v1"] => {
            return resp::json_value(200, &crate::discovery::resource_list("").expect("core"));
        }
        ["apis", group] => {
            return match crate::discovery::api_group(group) {
                Some(g) => resp::json_value(200, &g),
                None => resp::page_not_found(),
            };
        }
        ["apis", group, "v1"] => {
            return match crate::discovery::resource_list(group) {
                Some(l) => resp::json_value(200, &l),
                None => resp::page_not_found(),
            };
        }
        _ => {}
    }

    let (group, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, "v1", rest @ ..] if crate::discovery::GROUPS.contains(group) => {
            (*group, rest)
        }
        _ => return resp::page_not_found(),
    };
    let Some(target) = decode_target(group, rest) else {
        return resp::status(&Status::no_such_resource());
    };

    if group == "authorization.k8s.io" {
        return match (target.resource.as_str(), &method) {
            ("selfsubjectaccessreviews", &Method::POST) if target.name.is_none() => {
                let protobuf = req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/vnd.kubernetes.protobuf"));
                match read_body(req).await {
                    Ok(body) => self_subject_access_review(&cluster, &body, protobuf),
                    Err(r) => r,
                }
            }
            ("selfsubjectaccessreviews", _) => resp::status(&Status::method_not_supported(
                "selfsubjectaccessreviews",
                group,
                method.as_str(),
            )),
            _ => resp::status(&Status::no_such_resource()),
        };
    }

    let Some(kind) = Kind::from_plural(group, &target.resource) else {
        return resp::status(&Status::no_such_resource());
    };

    match (kind, target.subresource.as_deref(), &method) {
        (Kind::Pod, Some("ephemeralcontainers"), &Method::PATCH) => {
            if let Some(r) = authorize(&cluster, "patch", &target) {
                return r;
            }
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            match read_body(req).await {
                Ok(body) => {
                    crate::admission::patch_ephemeral(&cluster, &target, &content_type, &body)
                }
                Err(r) => r,
            }
        }
        (Kind::Pod, Some("ephemeralcontainers" | "status"), &Method::GET)
        | (_, None, &Method::GET) => get_or_list(&cluster, kind, &target, &query, &req),
        (Kind::Pod, Some("attach"), &Method::GET | &Method::POST) => {
            let verb = if method == Method::GET {
                "get"
            } else {
                "create"
            };
            if let Some(r) = authorize(&cluster, verb, &target) {
                return r;
            }
            crate::attach::handle(cluster, target, query, req).await
        }
        (Kind::Pod, Some("log"), &Method::GET) => {
            if let Some(r) = authorize(&cluster, "get", &target) {
                return r;
            }
            crate::logs::handle(&cluster, &target, &query)
        }
        (_, Some(_), _)
            if !matches!(
                target.subresource.as_deref(),
                Some("ephemeralcontainers" | "status" | "attach" | "log")
            ) =>
        {
            resp::status(&Status::no_such_resource())
        }
        _ => resp::status(&Status::method_not_supported(
            &match &target.subresource {
                Some(sub) => format!("{}/{sub}", kind.plural()),
                None => kind.plural().to_owned(),
            },
            group,
            method.as_str(),
        )),
    }
}

fn authenticated(cluster: &Cluster, req: &http::Request<Incoming>) -> bool {
    let expected = format!("Bearer {}", cluster.config.token);
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

/// `.../RESOURCE[/NAME[/SUB]]` and `namespaces/NS/RESOURCE[/NAME[/SUB]]`.
fn decode_target(group: &str, rest: &[&str]) -> Option<Target> {
    let owned = |s: &&str| Some((*s).to_owned());
    let mut t = Target {
        group: group.to_owned(),
        ..Target::default()
    };
    match rest {
        ["namespaces", ns, resource, tail @ ..] => {
            t.namespace = owned(ns);
            t.resource = (*resource).to_owned();
            match tail {
                [] => {}
                [name] => t.name = owned(name),
                [name, sub] => {
                    t.name = owned(name);
                    t.subresource = owned(sub);
                }
                _ => return None,
            }
        }
        ["namespaces", name] if group.is_empty() => {
            t.resource = "namespaces".to_owned();
            t.name = owned(name);
        }
        [resource] => t.resource = (*resource).to_owned(),
        [resource, name] => {
            t.resource = (*resource).to_owned();
            t.name = owned(name);
        }
        _ => return None,
    }
    Some(t)
}

async fn read_body(req: http::Request<Incoming>) -> Result<Bytes, Response> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(resp::status(&Status::bad_request(format!(
            "reading the request body: {e}"
        )))),
    }
}

/// RBAC as the pods file's `rbacDeny` shapes it: a denial declared on a pod
/// applies to requests in that pod's namespace naming that pod or no pod.
pub fn denied(cluster: &Cluster, verb: &str, target: &Target) -> bool {
    let Some(namespace) = &target.namespace else {
        return false;
    };
    let sub = target.subresource.as_deref().unwrap_or("");
    cluster.pods.values().any(|info| {
        info.spec.namespace == *namespace
            && target
                .name
                .as_deref()
                .is_none_or(|n| n == info.spec.name || target.resource != "pods")
            && info.denials.iter().any(|d| {
                (d.verb == verb || d.verb == "*")
                    && (d.resource == target.resource || d.resource == "*")
                    && (d.subresource == sub || d.subresource == "*")
            })
    })
}

/// The 403 the authorization filter writes (`responsewriters.Forbidden`),
/// or `None` when the request is allowed.
pub fn authorize(cluster: &Cluster, verb: &str, target: &Target) -> Option<Response> {
    if !denied(cluster, verb, target) {
        return None;
    }
    let mut resource = target.resource.clone();
    if let Some(sub) = &target.subresource {
        resource = format!("{resource}/{sub}");
    }
    let reason = match &target.namespace {
        Some(ns) => format!(
            "User {USER:?} cannot {verb} resource {resource:?} in API group {:?} in the namespace {ns:?}",
            target.group
        ),
        None => format!(
            "User {USER:?} cannot {verb} resource {resource:?} in API group {:?} at the cluster scope",
            target.group
        ),
    };
    Some(resp::status(&Status::forbidden(
        &target.resource,
        &target.group,
        target.name.as_deref().unwrap_or(""),
        &reason,
    )))
}

fn self_subject_access_review(cluster: &Cluster, body: &[u8], protobuf: bool) -> Response {
    let decoded = if protobuf {
        crate::protobuf::self_subject_access_review(body)
    } else {
        serde_json::from_slice::<Value>(body).ok()
    };
    let Some(mut review) = decoded else {
        return resp::status(&Status::bad_request(
            "the request body is not a SelfSubjectAccessReview",
        ));
    };
    let spec = review["spec"].clone();
    let allowed = match spec.get("resourceAttributes") {
        Some(attrs) => {
            let get = |k: &str| attrs[k].as_str().unwrap_or("").to_owned();
            let target = Target {
                group: get("group"),
                resource: get("resource"),
                namespace: Some(get("namespace")).filter(|n| !n.is_empty()),
                name: Some(get("name")).filter(|n| !n.is_empty()),
                subresource: Some(get("subresource")).filter(|s| !s.is_empty()),
            };
            !denied(cluster, &get("verb"), &target)
        }
        None => true,
    };
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["metadata"] = json!({"creationTimestamp": null});
    review["status"] = if allowed {
        json!({"allowed": true, "reason": format!(
            "RBAC: allowed by ClusterRoleBinding \"sandbox-admin\" of ClusterRole \"cluster-admin\" to User {USER:?}"
        )})
    } else {
        json!({"allowed": false})
    };
    resp::json_value(201, &review)
}

fn get_or_list(
    cluster: &Arc<Cluster>,
    kind: Kind,
    target: &Target,
    query: &Query,
    req: &http::Request<Incoming>,
) -> Response {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let as_table = table::wants_table(accept);
    let include = query
        .get("includeObject")
        .map_or("Metadata", String::as_str);
    let namespace = if kind.namespaced() {
        target.namespace.as_deref()
    } else {
        None
    };

    if let Some(name) = &target.name {
        if let Some(r) = authorize(cluster, "get", target) {
            return r;
        }
        let Some(object) = cluster.store.get(kind, namespace.unwrap_or(""), name) else {
            return resp::status(&Status::not_found(kind.plural(), kind.group(), name));
        };
        if as_table && target.subresource.is_none() {
            let rv = object["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            return resp::json_value(200, &table::table(kind, &[object], rv, include));
        }
        return resp::json_value(200, &object);
    }

    let watching = matches!(query.get("watch").map(String::as_str), Some("1" | "true"));
    let verb = if watching { "watch" } else { "list" };
    if let Some(r) = authorize(cluster, verb, target) {
        return r;
    }
    let labels = match LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str)) {
        Ok(s) => s,
        Err(e) => return resp::status(&Status::bad_request(e)),
    };
    let fields =
        match FieldSelector::parse(kind, query.get("fieldSelector").map_or("", String::as_str)) {
            Ok(s) => s,
            Err(e) => return resp::status(&Status::bad_request(e)),
        };
    let filter = Filter {
        namespace: namespace.map(str::to_owned),
        labels,
        fields,
    };
    if watching {
        return watch(cluster, kind, filter, query, as_table);
    }
    let (items, rv) = cluster.store.list(kind, namespace);
    let items: Vec<Value> = items.into_iter().filter(|o| filter.matches(o)).collect();
    if as_table {
        return resp::json_value(200, &table::table(kind, &items, rv, include));
    }
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut o| {
            // Items of a list carry no kind or apiVersion of their own.
            if let Some(map) = o.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            o
        })
        .collect();
    resp::json_value(
        200,
        &json!({
            "kind": format!("{}List", kind.name()),
            "apiVersion": kind.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        }),
    )
}

struct Filter {
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, object: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| object["metadata"]["namespace"] == ns)
            && self.labels.matches(&object["metadata"]["labels"])
            && self.fields.matches(object)
    }
}

/// A watch: newline-delimited `{"type":...,"object":...}` events over a
/// chunked response, until `timeoutSeconds` or the client goes away.
fn watch(
    cluster: &Arc<Cluster>,
    kind: Kind,
    filter: Filter,
    query: &Query,
    as_table: bool,
) -> Response {
    let from = query.get("resourceVersion").cloned().unwrap_or_default();
    let send_initial = query.get("sendInitialEvents").is_some_and(|v| v == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let (initial, initial_rv, mut sub) = if from.is_empty() || from == "0" || send_initial {
        let (items, rv, sub) = cluster.store.snapshot_and_subscribe(kind);
        (items, rv, sub)
    } else {
        let Ok(rv) = from.parse::<u64>() else {
            return resp::status(&Status::bad_request(format!(
                "invalid resource version: {from}"
            )));
        };
        (Vec::new(), rv, cluster.store.subscribe(kind, rv))
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let encode = move |event_type: &str, object: &Value| -> Bytes {
        let object = if as_table {
            let rv = object["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            table::table(kind, std::slice::from_ref(object), rv, "Metadata")
        } else {
            object.clone()
        };
        let mut line = serde_json::to_vec(&json!({"type": event_type, "object": object}))
            .expect("JSON serializes");
        line.push(b'\n');
        Bytes::from(line)
    };
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        for object in initial.iter().filter(|o| filter.matches(o)) {
            if tx.send(encode("ADDED", object)).await.is_err() {
                return;
            }
        }
        if send_initial {
            let bookmark = json!({
                "kind": kind.name(), "apiVersion": kind.api_version(),
                "metadata": {"resourceVersion": initial_rv.to_string(),
                             "annotations": {"k8s.io/initial-events-end": "true"}},
            });
            if tx.send(encode("BOOKMARK", &bookmark)).await.is_err() {
                return;
            }
        }
        let mut last = initial_rv;
        for event in std::mem::take(&mut sub.backlog) {
            last = event.rv;
            if filter.matches(&event.object)
                && tx
                    .send(encode(event.event_type, &event.object))
                    .await
                    .is_err()
            {
                return;
            }
        }
        loop {
            let next = tokio::select! {
                e = sub.live.recv() => e,
                () = tokio::time::sleep_until(deadline) => return,
                () = tx.closed() => return,
            };
            match next {
                Ok(event) => {
                    if event.kind != kind || event.rv <= last {
                        continue;
                    }
                    last = event.rv;
                    if filter.matches(&event.object)
                        && tx
                            .send(encode(event.event_type, &event.object))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
                // A watcher too slow to keep up is closed, as the watch
                // cache does; the client re-lists.
                Err(_) => return,
            }
        }
    });
    resp::stream("application/json", rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries_like_url_values() {
        let q = parse_query(Some(
            "fieldSelector=metadata.name%3Dweb&labelSelector=app+in+%28a%2Cb%29&watch=1",
        ));
        assert_eq!(q["fieldSelector"], "metadata.name=web");
        assert_eq!(q["labelSelector"], "app in (a,b)");
        assert_eq!(q["watch"], "1");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn decodes_targets() {
        let t = decode_target("", &["namespaces", "default", "pods", "web", "attach"]).unwrap();
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.subresource.as_deref(), Some("attach"));
        let t = decode_target("", &["namespaces", "shop"]).unwrap();
        assert_eq!(t.resource, "namespaces");
        assert_eq!(t.name.as_deref(), Some("shop"));
        let t = decode_target("", &["pods"]).unwrap();
        assert!(t.namespace.is_none() && t.name.is_none());
        assert!(decode_target("", &["namespaces", "a", "pods", "b", "c", "d"]).is_none());
    }
}
