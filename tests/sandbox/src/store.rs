//! The object store: what etcd plus the watch cache are to kube-apiserver.
//!
//! Objects are kept as JSON (the wire form) keyed by kind, namespace and
//! name. Every write takes the next resourceVersion from one counter, stamps
//! it into `metadata.resourceVersion`, and appends a watch event to a
//! history that is never trimmed (a sandbox lives for one test), so a watch
//! may start from any resourceVersion a client saw. A write that changes
//! nothing is not a write: no new resourceVersion, no event (the kubelet's
//! status sync relies on that, as the real one does).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

/// The kinds the sandbox serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Pod,
    Event,
    Service,
    Node,
    Namespace,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Pod,
        Kind::Event,
        Kind::Service,
        Kind::Node,
        Kind::Namespace,
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::StatefulSet,
        Kind::DaemonSet,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Event => "Event",
            Kind::Service => "Service",
            Kind::Node => "Node",
            Kind::Namespace => "Namespace",
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Event => "events",
            Kind::Service => "services",
            Kind::Node => "nodes",
            Kind::Namespace => "namespaces",
            Kind::Deployment => "deployments",
            Kind::ReplicaSet => "replicasets",
            Kind::StatefulSet => "statefulsets",
            Kind::DaemonSet => "daemonsets",
        }
    }

    pub fn singular(self) -> String {
        self.name().to_ascii_lowercase()
    }

    /// The API group ("" for the core group).
    pub fn group(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet | Kind::DaemonSet => "apps",
            _ => "",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self.group() {
            "" => "v1",
            _ => "apps/v1",
        }
    }

    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::Node | Kind::Namespace)
    }

    pub fn short_names(self) -> &'static [&'static str] {
        match self {
            Kind::Pod => &["po"],
            Kind::Event => &["ev"],
            Kind::Service => &["svc"],
            Kind::Node => &["no"],
            Kind::Namespace => &["ns"],
            Kind::Deployment => &["deploy"],
            Kind::ReplicaSet => &["rs"],
            Kind::StatefulSet => &["sts"],
            Kind::DaemonSet => &["ds"],
        }
    }

    pub fn from_plural(group: &str, plural: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.group() == group && k.plural() == plural)
    }
}

/// One change, as a watch delivers it.
#[derive(Debug)]
pub struct WatchEvent {
    pub rv: u64,
    pub kind: Kind,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub event_type: &'static str,
    pub object: Value,
}

type Key = (Kind, String, String);

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: Vec<Arc<WatchEvent>>,
}

pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<WatchEvent>>,
}

/// A watch's starting point: the events after `from` it missed, and the
/// stream of everything later, taken atomically so none falls in between.
pub struct Subscription {
    pub backlog: Vec<Arc<WatchEvent>>,
    pub live: broadcast::Receiver<Arc<WatchEvent>>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Store {
        let (events, _) = broadcast::channel(4096);
        Store {
            inner: Mutex::new(Inner {
                // Real clusters never start at 0; some clients treat "0" specially.
                rv: 1000,
                objects: BTreeMap::new(),
                history: Vec::new(),
            }),
            events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is a sandbox bug; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a new object, filling uid, creationTimestamp and
    /// resourceVersion. Replaces an object of the same name (only the
    /// sandbox itself creates objects).
    pub fn create(&self, kind: Kind, mut object: Value) -> Value {
        let mut inner = self.lock();
        inner.rv += 1;
        let rv = inner.rv;
        let meta = &mut object["metadata"];
        if meta.get("uid").is_none() {
            meta["uid"] = Value::String(new_uid());
        }
        if meta.get("creationTimestamp").is_none() {
            meta["creationTimestamp"] = Value::String(now_rfc3339());
        }
        meta["resourceVersion"] = Value::String(rv.to_string());
        let key = key_of(kind, &object);
        inner.objects.insert(key, object.clone());
        self.publish(&mut inner, kind, "ADDED", object.clone());
        object
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(kind, namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Every object of `kind` (in `namespace`, or all), by name, with the
    /// resourceVersion the list is consistent with.
    pub fn list(&self, kind: Kind, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|((k, ns, _), _)| *k == kind && namespace.is_none_or(|want| want == ns))
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Applies `change` to a copy of the object and stores the result if it
    /// differs, with a new resourceVersion and a MODIFIED event. `Ok(None)`
    /// when the object does not exist.
    pub fn update<E>(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value) -> Result<(), E>,
    ) -> Result<Option<Value>, E> {
        let mut inner = self.lock();
        let key = (kind, namespace.to_owned(), name.to_owned());
        let Some(current) = inner.objects.get(&key) else {
            return Ok(None);
        };
        let mut next = current.clone();
        change(&mut next)?;
        // resourceVersion is the store's to set; compare without it.
        next["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        if next == *current {
            return Ok(Some(next));
        }
        inner.rv += 1;
        next["metadata"]["resourceVersion"] = Value::String(inner.rv.to_string());
        inner.objects.insert(key, next.clone());
        self.publish(&mut inner, kind, "MODIFIED", next.clone());
        Ok(Some(next))
    }

    /// Starts a watch on `kind` after resourceVersion `from`.
    pub fn subscribe(&self, kind: Kind, from: u64) -> Subscription {
        let inner = self.lock();
        let live = self.events.subscribe();
        let start = inner.history.partition_point(|e| e.rv <= from);
        let backlog = inner.history[start..]
            .iter()
            .filter(|e| e.kind == kind)
            .cloned()
            .collect();
        Subscription { backlog, live }
    }

    /// Like [`subscribe`](Self::subscribe) from now, plus the current
    /// objects: what a watch without a resourceVersion starts with.
    pub fn snapshot_and_subscribe(&self, kind: Kind) -> (Vec<Value>, u64, Subscription) {
        let inner = self.lock();
        let live = self.events.subscribe();
        let items = inner
            .objects
            .iter()
            .filter(|((k, _, _), _)| *k == kind)
            .map(|(_, v)| v.clone())
            .collect();
        (
            items,
            inner.rv,
            Subscription {
                backlog: Vec::new(),
                live,
            },
        )
    }

    fn publish(&self, inner: &mut Inner, kind: Kind, event_type: &'static str, object: Value) {
        let event = Arc::new(WatchEvent {
            rv: inner.rv,
            kind,
            event_type,
            object,
        });
        inner.history.push(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }
}

fn key_of(kind: Kind, object: &Value) -> Key {
    let meta = &object["metadata"];
    (
        kind,
        meta["namespace"].as_str().unwrap_or("").to_owned(),
        meta["name"].as_str().unwrap_or("").to_owned(),
    )
}

/// The current time (jiff's `now` needs its std feature, which k8s-openapi
/// leaves off).
pub fn now() -> k8s_openapi::jiff::Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    k8s_openapi::jiff::Timestamp::new(since.as_secs() as i64, since.subsec_nanos() as i32)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

/// Now, as Kubernetes writes timestamps (RFC 3339, seconds, UTC).
pub fn now_rfc3339() -> String {
    now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now with microseconds (MicroTime, the format of log timestamps' date part).
pub fn now_rfc3339_nanos() -> String {
    now().strftime("%Y-%m-%dT%H:%M:%S.%fZ").to_string()
}

/// A random UUID (version 4 layout) for metadata.uid.
pub fn new_uid() -> String {
    let hex = crate::tls::random_hex(16).unwrap_or_else(|_| "0".repeat(32));
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}})
    }

    #[test]
    fn writes_bump_resource_version_and_noop_updates_do_not() {
        let store = Store::new();
        let a = store.create(Kind::Pod, pod("a"));
        let rv_a: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let same = store
            .update::<()>(Kind::Pod, "default", "a", |_| Ok(()))
            .unwrap()
            .unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );
        let changed = store
            .update::<()>(Kind::Pod, "default", "a", |p| {
                p["metadata"]["labels"] = json!({"x": "y"});
                Ok(())
            })
            .unwrap()
            .unwrap();
        let rv_b: u64 = changed["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(rv_b, rv_a + 1);
        let sub = store.subscribe(Kind::Pod, rv_a);
        assert_eq!(sub.backlog.len(), 1);
        assert_eq!(sub.backlog[0].event_type, "MODIFIED");
        assert!(
            store
                .update::<()>(Kind::Pod, "default", "nope", |_| Ok(()))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn uids_look_like_uuids() {
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(uid.matches('-').count(), 4);
    }
}
