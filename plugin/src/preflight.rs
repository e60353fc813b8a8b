//! Before touching the pod: may we do everything the session needs?
//!
//! Four SelfSubjectAccessReviews, asked together. The built-in admin and
//! edit roles do not grant `pods/ephemeralcontainers`, so users hit this
//! constantly; the answer names what is missing and prints a Role that
//! grants exactly what netdiag needs, ready for `kubectl apply -f -`.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};

use crate::error::{PluginError, api_message};

/// (verb, resource, subresource) the session uses. Attach over WebSocket
/// is a GET: servers 1.30–1.34 authorize it as `get pods/attach`, 1.35+
/// check `create` as well, so both are needed.
const NEEDED: [(&str, &str, &str); 5] = [
    ("get", "pods", ""),
    ("patch", "pods", "ephemeralcontainers"),
    ("create", "pods", "attach"),
    ("get", "pods", "attach"),
    ("get", "pods", "log"),
];

pub async fn check(client: &Client, namespace: &str) -> Result<(), PluginError> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let reviews = NEEDED.iter().map(|(verb, resource, sub)| {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_owned()),
                    verb: Some((*verb).to_owned()),
                    resource: Some((*resource).to_owned()),
                    subresource: (!sub.is_empty()).then(|| (*sub).to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api = api.clone();
        async move { api.create(&PostParams::default(), &review).await }
    });
    let answers = futures_util::future::join_all(reviews).await;
    let mut missing = Vec::new();
    for ((verb, resource, sub), answer) in NEEDED.iter().zip(answers) {
        let review = answer.map_err(|e| {
            PluginError::new(format!(
                "cannot check permissions (SelfSubjectAccessReview): {}",
                api_message(&e)
            ))
        })?;
        let allowed = review.status.map(|s| s.allowed).unwrap_or(false);
        if !allowed {
            let what = if sub.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}/{sub}")
            };
            missing.push(format!("{verb} {what}"));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(PluginError::new(format!(
        "missing permissions in namespace \"{namespace}\": {}; ask an admin to apply this Role and bind it to you:",
        missing.join(", ")
    ))
    .with_detail(role_manifest(namespace)))
}

/// The smallest Role that lets a user run netdiag in `namespace`.
pub fn role_manifest(namespace: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: netdiag
  namespace: {namespace}
rules:
- apiGroups: [\"\"]
  resources: [\"pods\"]
  verbs: [\"get\", \"list\", \"watch\"]
- apiGroups: [\"\"]
  resources: [\"pods/ephemeralcontainers\"]
  verbs: [\"patch\"]
- apiGroups: [\"\"]
  resources: [\"pods/attach\"]
  verbs: [\"create\", \"get\"]
- apiGroups: [\"\"]
  resources: [\"pods/log\"]
  verbs: [\"get\"]
---
# kubectl -n {namespace} create rolebinding netdiag --role=netdiag --user=YOU"
    )
}
