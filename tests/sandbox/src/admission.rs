//! `PATCH pods/NAME/ephemeralcontainers`: the update path of kube-apiserver
//! for that subresource, step by step as the real one runs it:
//!
//! 1. apply the patch (strategic merge, JSON merge or JSON patch) to the
//!    stored pod;
//! 2. keep only the change to `spec.ephemeralContainers`
//!    (`dropNonEphemeralContainerUpdates`) and apply defaults;
//! 3. validate (`ValidatePodEphemeralContainersUpdate`: 422 Invalid with one
//!    cause per field error);
//! 4. admission: Pod Security for pods that declare the fault (403 with
//!    the `violates PodSecurity "LEVEL:latest": ...` message of
//!    `pod-security-admission`);
//! 5. store (new resourceVersion, MODIFIED event) and answer 200 with the
//!    pod; the kubelet then starts the new containers.

use std::sync::Arc;

use k8s_openapi::api::core::v1 as core;
use serde_json::Value;

use crate::api::Target;
use crate::cluster::{Cluster, default_pull_policy};
use crate::http::{self as resp, Response};
use crate::spec::PodSecurityLevel;
use crate::status::{FieldError, FieldErrorKind, Status};
use crate::store::Kind;

pub fn patch_ephemeral(
    cluster: &Arc<Cluster>,
    target: &Target,
    content_type: &str,
    body: &[u8],
) -> Response {
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = target.name.clone().unwrap_or_default();
    let Some(stored) = cluster.store.get(Kind::Pod, &namespace, &name) else {
        return resp::status(&Status::not_found("pods", "", &name));
    };
    let media = content_type.split(';').next().unwrap_or("").trim();
    let patch: Value = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => return resp::status(&Status::bad_request(format!("error decoding patch: {e}"))),
    };
    let patched = match media {
        "application/strategic-merge-patch+json" => crate::patch::strategic_merge(&stored, &patch),
        "application/merge-patch+json" => Ok(crate::patch::json_merge(&stored, &patch)),
        "application/json-patch+json" => crate::patch::json_patch(&stored, &patch),
        other => return resp::status(&Status::unsupported_media_type(other)),
    };
    let patched = match patched {
        Ok(p) => p,
        Err(e) => return resp::status(&Status::bad_request(e)),
    };
    let old: core::Pod = match serde_json::from_value(stored.clone()) {
        Ok(p) => p,
        Err(e) => return resp::status(&Status::internal(&e.to_string())),
    };
    let patched: core::Pod = match serde_json::from_value(patched) {
        Ok(p) => p,
        Err(e) => {
            let err = FieldError::new(FieldErrorKind::Invalid, "patch", None, &e.to_string());
            return resp::status(&Status::invalid("Pod", "", &name, &[err]));
        }
    };

    // Only ephemeral containers change through this subresource.
    let mut new = old.clone();
    let old_spec = old.spec.clone().unwrap_or_default();
    let mut new_spec = old_spec.clone();
    new_spec.ephemeral_containers = patched
        .spec
        .and_then(|s| s.ephemeral_containers)
        .map(|list| list.into_iter().map(default_ephemeral).collect());
    new.spec = Some(new_spec.clone());

    let errors = validate(&new_spec, &old_spec);
    if !errors.is_empty() {
        return resp::status(&Status::invalid("Pod", "", &name, &errors));
    }
    if let Some(level) = cluster
        .pod_info(&namespace, &name)
        .and_then(|i| i.spec.faults.pod_security)
    {
        let violations = pod_security(level, &new_spec);
        if !violations.is_empty() {
            let detail = format!(
                "violates PodSecurity \"{}:latest\": {}",
                level.name(),
                violations.join(", ")
            );
            return resp::status(&Status::forbidden("pods", "", &name, &detail));
        }
    }

    let ephemeral_json = serde_json::to_value(&new_spec.ephemeral_containers).expect("serializes");
    let updated = cluster
        .store
        .update::<()>(Kind::Pod, &namespace, &name, |pod| {
            pod["spec"]["ephemeralContainers"] = ephemeral_json;
            Ok(())
        })
        .ok()
        .flatten();
    let Some(updated) = updated else {
        return resp::status(&Status::not_found("pods", "", &name));
    };
    {
        let known: Vec<&str> = old_spec
            .ephemeral_containers
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        for ec in new_spec.ephemeral_containers.iter().flatten() {
            if !known.contains(&ec.name.as_str()) {
                crate::kubelet::ephemeral_added(cluster, &namespace, &name, ec.clone());
            }
        }
    }
    resp::json_value(200, &updated)
}

/// The API server's defaults for an ephemeral container.
fn default_ephemeral(mut c: core::EphemeralContainer) -> core::EphemeralContainer {
    if c.termination_message_path.is_none() {
        c.termination_message_path = Some("/dev/termination-log".to_owned());
    }
    if c.termination_message_policy.is_none() {
        c.termination_message_policy = Some("File".to_owned());
    }
    if c.image_pull_policy.is_none()
        && let Some(image) = c.image.as_deref().filter(|i| !i.is_empty())
    {
        c.image_pull_policy = Some(default_pull_policy(image).to_owned());
    }
    c
}

const DNS_LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `ValidatePodEphemeralContainersUpdate` for what a client can get wrong.
pub fn validate(new: &core::PodSpec, old: &core::PodSpec) -> Vec<FieldError> {
    use FieldErrorKind::*;
    let mut errors = Vec::new();
    let mut names: Vec<String> = new
        .containers
        .iter()
        .chain(new.init_containers.iter().flatten())
        .map(|c| c.name.clone())
        .collect();
    let others = names.clone();
    for (i, ec) in new.ephemeral_containers.iter().flatten().enumerate() {
        let path = format!("spec.ephemeralContainers[{i}]");
        if ec.name.is_empty() {
            errors.push(FieldError::new(Required, format!("{path}.name"), None, ""));
        } else {
            if ec.name.len() > 63 {
                errors.push(FieldError::new(
                    Invalid,
                    format!("{path}.name"),
                    Some(&ec.name),
                    "must be no more than 63 characters",
                ));
            }
            if !is_dns_label(&ec.name) {
                errors.push(FieldError::new(
                    Invalid,
                    format!("{path}.name"),
                    Some(&ec.name),
                    DNS_LABEL_MESSAGE,
                ));
            }
        }
        if ec.image.as_deref().is_none_or(str::is_empty) {
            errors.push(FieldError::new(Required, format!("{path}.image"), None, ""));
        }
        match ec.image_pull_policy.as_deref() {
            Some("Always" | "IfNotPresent" | "Never") | None => {}
            Some(other) => errors.push(FieldError::new(
                NotSupported,
                format!("{path}.imagePullPolicy"),
                Some(other),
                "supported values: \"Always\", \"IfNotPresent\", \"Never\"",
            )),
        }
        match ec.termination_message_policy.as_deref() {
            Some("File" | "FallbackToLogsOnError") | None => {}
            Some(other) => errors.push(FieldError::new(
                NotSupported,
                format!("{path}.terminationMessagePolicy"),
                Some(other),
                "supported values: \"FallbackToLogsOnError\", \"File\"",
            )),
        }
        if names.contains(&ec.name) {
            errors.push(FieldError::new(
                Duplicate,
                format!("{path}.name"),
                Some(&ec.name),
                "",
            ));
        } else {
            names.push(ec.name.clone());
        }
        if let Some(target) = ec.target_container_name.as_deref()
            && !target.is_empty()
            && !others.iter().any(|n| n == target)
        {
            errors.push(FieldError::new(
                NotFound,
                format!("{path}.targetContainerName"),
                Some(target),
                "",
            ));
        }
        let forbidden = [
            ("ports", ec.ports.as_ref().is_some_and(|p| !p.is_empty())),
            (
                "resources",
                ec.resources.as_ref().is_some_and(|r| {
                    r.limits.as_ref().is_some_and(|l| !l.is_empty())
                        || r.requests.as_ref().is_some_and(|l| !l.is_empty())
                        || r.claims.as_ref().is_some_and(|l| !l.is_empty())
                }),
            ),
            (
                "resizePolicy",
                ec.resize_policy.as_ref().is_some_and(|p| !p.is_empty()),
            ),
            ("livenessProbe", ec.liveness_probe.is_some()),
            ("readinessProbe", ec.readiness_probe.is_some()),
            ("startupProbe", ec.startup_probe.is_some()),
            ("lifecycle", ec.lifecycle.is_some()),
        ];
        for (field, set) in forbidden {
            if set {
                errors.push(FieldError::new(
                    Forbidden,
                    format!("{path}.{field}"),
                    None,
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
    // Existing ephemeral containers may be neither removed nor changed.
    for existing in old.ephemeral_containers.iter().flatten() {
        match new
            .ephemeral_containers
            .iter()
            .flatten()
            .find(|c| c.name == existing.name)
        {
            None => errors.push(FieldError::new(
                Forbidden,
                "spec.ephemeralContainers",
                None,
                &format!(
                    "existing ephemeral containers {:?} may not be removed\n",
                    existing.name
                ),
            )),
            Some(now) if now != existing => errors.push(FieldError::new(
                Forbidden,
                "spec.ephemeralContainers",
                None,
                &format!(
                    "existing ephemeral containers {:?} may not be changed\n{}",
                    existing.name,
                    diff(existing, now)
                ),
            )),
            Some(_) => {}
        }
    }
    errors
}

/// A short `-old +new` rendering of a changed container (the real server
/// prints go-cmp's diff here).
fn diff(old: &core::EphemeralContainer, new: &core::EphemeralContainer) -> String {
    let old = serde_json::to_value(old).unwrap_or_default();
    let new = serde_json::to_value(new).unwrap_or_default();
    let mut lines = vec!["  core.EphemeralContainer{".to_owned()];
    let keys: std::collections::BTreeSet<&String> = old
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .chain(new.as_object().into_iter().flat_map(|m| m.keys()))
        .collect();
    for key in keys {
        let (a, b) = (&old[key.as_str()], &new[key.as_str()]);
        if a != b {
            if !a.is_null() {
                lines.push(format!("- \t{key}: {a},"));
            }
            if !b.is_null() {
                lines.push(format!("+ \t{key}: {b},"));
            }
        }
    }
    lines.push("  }".to_owned());
    lines.join("\n")
}

/// Every container of the pod, as `visitContainers` walks them: init
/// containers, containers, then ephemeral containers (as Container).
fn visit(spec: &core::PodSpec) -> Vec<(String, Option<core::SecurityContext>)> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| (c.name.clone(), c.security_context.clone()))
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| (c.name.clone(), c.security_context.clone())),
        )
        .collect()
}

fn join_quote(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn containers_word(n: usize) -> &'static str {
    if n == 1 { "container" } else { "containers" }
}

/// The Pod Security checks this sandbox enforces, in the evaluator's order
/// (by check id), at `level`; returns `reason (detail)` strings.
pub fn pod_security(level: PodSecurityLevel, spec: &core::PodSpec) -> Vec<String> {
    let restricted = level == PodSecurityLevel::Restricted;
    let containers = visit(spec);
    let pod_sc = spec.security_context.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut push = |reason: &str, detail: String| out.push(format!("{reason} ({detail})"));

    // allowPrivilegeEscalation (restricted)
    if restricted {
        let bad: Vec<String> = containers
            .iter()
            .filter(|(_, sc)| {
                sc.as_ref()
                    .and_then(|s| s.allow_privilege_escalation)
                    .is_none_or(|v| v)
            })
            .map(|(n, _)| n.clone())
            .collect();
        if !bad.is_empty() {
            push(
                "allowPrivilegeEscalation != false",
                format!(
                    "{} {} must set securityContext.allowPrivilegeEscalation=false",
                    containers_word(bad.len()),
                    join_quote(&bad)
                ),
            );
        }
    }

    let caps =
        |sc: &Option<core::SecurityContext>| sc.as_ref().and_then(|s| s.capabilities.clone());
    if !restricted {
        // capabilities_baseline
        const ALLOWED: [&str; 13] = [
            "AUDIT_WRITE",
            "CHOWN",
            "DAC_OVERRIDE",
            "FOWNER",
            "FSETID",
            "KILL",
            "MKNOD",
            "NET_BIND_SERVICE",
            "SETFCAP",
            "SETGID",
            "SETPCAP",
            "SETUID",
            "SYS_CHROOT",
        ];
        let mut bad = Vec::new();
        let mut added = std::collections::BTreeSet::new();
        for (name, sc) in &containers {
            let adds: Vec<String> = caps(sc)
                .and_then(|c| c.add)
                .unwrap_or_default()
                .into_iter()
                .filter(|c| !ALLOWED.contains(&c.as_str()))
                .collect();
            if !adds.is_empty() {
                bad.push(name.clone());
                added.extend(adds);
            }
        }
        if !bad.is_empty() {
            push(
                "non-default capabilities",
                format!(
                    "{} {} must not include {} in securityContext.capabilities.add",
                    containers_word(bad.len()),
                    join_quote(&bad),
                    join_quote(&added.into_iter().collect::<Vec<_>>())
                ),
            );
        }
    } else {
        // capabilities_restricted (overrides the baseline check)
        let mut missing_drop = Vec::new();
        let mut adding = Vec::new();
        let mut forbidden = std::collections::BTreeSet::new();
        for (name, sc) in &containers {
            let Some(c) = caps(sc) else {
                missing_drop.push(name.clone());
                continue;
            };
            if !c.drop.iter().flatten().any(|d| d == "ALL") {
                missing_drop.push(name.clone());
            }
            let bad: Vec<String> = c
                .add
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a != "NET_BIND_SERVICE")
                .collect();
            if !bad.is_empty() {
                adding.push(name.clone());
                forbidden.extend(bad);
            }
        }
        let mut details = Vec::new();
        if !missing_drop.is_empty() {
            details.push(format!(
                "{} {} must set securityContext.capabilities.drop=[\"ALL\"]",
                containers_word(missing_drop.len()),
                join_quote(&missing_drop)
            ));
        }
        if !adding.is_empty() {
            details.push(format!(
                "{} {} must not include {} in securityContext.capabilities.add",
                containers_word(adding.len()),
                join_quote(&adding),
                join_quote(&forbidden.into_iter().collect::<Vec<_>>())
            ));
        }
        if !details.is_empty() {
            push("unrestricted capabilities", details.join("; "));
        }
    }

    // privileged (baseline)
    let privileged: Vec<String> = containers
        .iter()
        .filter(|(_, sc)| sc.as_ref().and_then(|s| s.privileged) == Some(true))
        .map(|(n, _)| n.clone())
        .collect();
    if !privileged.is_empty() {
        push(
            "privileged",
            format!(
                "{} {} must not set securityContext.privileged=true",
                containers_word(privileged.len()),
                join_quote(&privileged)
            ),
        );
    }

    if restricted {
        // runAsNonRoot
        let mut bad_setters = Vec::new();
        let mut pod_non_root = false;
        match pod_sc.run_as_non_root {
            Some(false) => bad_setters.push("pod".to_owned()),
            Some(true) => pod_non_root = true,
            None => {}
        }
        let mut explicit = Vec::new();
        let mut implicit = Vec::new();
        for (name, sc) in &containers {
            match sc.as_ref().and_then(|s| s.run_as_non_root) {
                Some(false) => explicit.push(name.clone()),
                Some(true) => {}
                None if !pod_non_root => implicit.push(name.clone()),
                None => {}
            }
        }
        if !explicit.is_empty() {
            bad_setters.push(format!(
                "{} {}",
                containers_word(explicit.len()),
                join_quote(&explicit)
            ));
        }
        if !bad_setters.is_empty() {
            push(
                "runAsNonRoot != true",
                format!(
                    "{} must not set securityContext.runAsNonRoot=false",
                    bad_setters.join(" and ")
                ),
            );
        } else if !implicit.is_empty() {
            push(
                "runAsNonRoot != true",
                format!(
                    "pod or {} {} must set securityContext.runAsNonRoot=true",
                    containers_word(implicit.len()),
                    join_quote(&implicit)
                ),
            );
        }

        // runAsUser
        let mut bad_setters = Vec::new();
        if pod_sc.run_as_user == Some(0) {
            bad_setters.push("pod".to_owned());
        }
        let root: Vec<String> = containers
            .iter()
            .filter(|(_, sc)| sc.as_ref().and_then(|s| s.run_as_user) == Some(0))
            .map(|(n, _)| n.clone())
            .collect();
        if !root.is_empty() {
            bad_setters.push(format!(
                "{} {}",
                containers_word(root.len()),
                join_quote(&root)
            ));
        }
        if !bad_setters.is_empty() {
            push(
                "runAsUser=0",
                format!("{} must not set runAsUser=0", bad_setters.join(" and ")),
            );
        }
    }

    // seccompProfile (baseline: no Unconfined; restricted: must be set)
    let valid = |t: &str| {
        if restricted {
            t == "RuntimeDefault" || t == "Localhost"
        } else {
            t != "Unconfined"
        }
    };
    let mut bad_setters = Vec::new();
    let mut bad_values = std::collections::BTreeSet::new();
    let mut pod_set = false;
    if let Some(p) = &pod_sc.seccomp_profile {
        if valid(&p.type_) {
            pod_set = true;
        } else {
            bad_setters.push("pod".to_owned());
            bad_values.insert(p.type_.clone());
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for (name, sc) in &containers {
        match sc.as_ref().and_then(|s| s.seccomp_profile.as_ref()) {
            Some(p) if !valid(&p.type_) => {
                explicit.push(name.clone());
                bad_values.insert(p.type_.clone());
            }
            Some(_) => {}
            None if restricted && !pod_set => implicit.push(name.clone()),
            None => {}
        }
    }
    if !explicit.is_empty() {
        bad_setters.push(format!(
            "{} {}",
            containers_word(explicit.len()),
            join_quote(&explicit)
        ));
    }
    if !bad_setters.is_empty() {
        push(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                bad_setters.join(" and "),
                join_quote(&bad_values.into_iter().collect::<Vec<_>>())
            ),
        );
    } else if !implicit.is_empty() {
        push(
            "seccompProfile",
            format!(
                "pod or {} {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_word(implicit.len()),
                join_quote(&implicit)
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restricted_pod(ec: core::EphemeralContainer) -> core::PodSpec {
        core::PodSpec {
            containers: vec![core::Container {
                name: "app".into(),
                security_context: Some(core::SecurityContext {
                    allow_privilege_escalation: Some(false),
                    capabilities: Some(core::Capabilities {
                        drop: Some(vec!["ALL".into()]),
                        add: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            security_context: Some(core::PodSecurityContext {
                run_as_non_root: Some(true),
                seccomp_profile: Some(core::SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    localhost_profile: None,
                }),
                ..Default::default()
            }),
            ephemeral_containers: Some(vec![ec]),
            ..Default::default()
        }
    }

    #[test]
    fn restricted_rejects_root_and_capabilities_with_the_real_words() {
        let ec = core::EphemeralContainer {
            name: "netdiag-x".into(),
            security_context: Some(core::SecurityContext {
                run_as_user: Some(0),
                capabilities: Some(core::Capabilities {
                    add: Some(vec!["NET_RAW".into()]),
                    drop: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            pod_security(PodSecurityLevel::Restricted, &restricted_pod(ec)),
            vec![
                "allowPrivilegeEscalation != false (container \"netdiag-x\" must set securityContext.allowPrivilegeEscalation=false)",
                "unrestricted capabilities (container \"netdiag-x\" must set securityContext.capabilities.drop=[\"ALL\"]; container \"netdiag-x\" must not include \"NET_RAW\" in securityContext.capabilities.add)",
                "runAsUser=0 (container \"netdiag-x\" must not set runAsUser=0)",
            ]
        );
    }

    #[test]
    fn restricted_admits_least_privilege() {
        let ec = core::EphemeralContainer {
            name: "netdiag-x".into(),
            security_context: Some(core::SecurityContext {
                run_as_user: Some(65532),
                run_as_non_root: Some(true),
                allow_privilege_escalation: Some(false),
                capabilities: Some(core::Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    add: None,
                }),
                seccomp_profile: Some(core::SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    localhost_profile: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(pod_security(PodSecurityLevel::Restricted, &restricted_pod(ec.clone())).is_empty());
        let mut tcpdump = ec;
        tcpdump.security_context.as_mut().unwrap().capabilities = Some(core::Capabilities {
            add: Some(vec!["NET_RAW".into()]),
            drop: Some(vec!["ALL".into()]),
        });
        assert_eq!(
            pod_security(PodSecurityLevel::Baseline, &restricted_pod(tcpdump)),
            vec![
                "non-default capabilities (container \"netdiag-x\" must not include \"NET_RAW\" in securityContext.capabilities.add)"
            ]
        );
    }

    #[test]
    fn validation_errors() {
        let base = core::PodSpec {
            containers: vec![core::Container {
                name: "app".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut new = base.clone();
        new.ephemeral_containers = Some(vec![core::EphemeralContainer {
            name: "app".into(),
            image: Some("x".into()),
            target_container_name: Some("nope".into()),
            ports: Some(vec![core::ContainerPort {
                container_port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        }]);
        let errors: Vec<String> = validate(&new, &base)
            .iter()
            .map(FieldError::error)
            .collect();
        assert_eq!(
            errors,
            vec![
                "spec.ephemeralContainers[0].name: Duplicate value: \"app\"",
                "spec.ephemeralContainers[0].targetContainerName: Not found: \"nope\"",
                "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
            ]
        );
        let removed: Vec<String> = validate(&base, &new)
            .iter()
            .map(FieldError::error)
            .collect();
        assert_eq!(
            removed,
            vec![
                "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"app\" may not be removed\n"
            ]
        );
    }
}
