//! Adding the agent to the pod: one ephemeral container, patched into
//! `pods/ephemeralcontainers` with a strategic merge patch as kubectl does.
//!
//! The container's command is the tool and its arguments as a list (never
//! a shell string), its stdin stays open for the attach protocol, and its
//! securityContext asks for exactly what the tool's profile needs.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use k8s_openapi::api::core::v1::{
    Capabilities, EnvVar, EphemeralContainer, Pod, SeccompProfile, SecurityContext,
};
use kube::api::{Api, Patch, PatchParams};
use netdiag_wire::frame;

use crate::error::{PluginError, api_code, api_message};
use crate::target::Target;
use crate::tools::{self, Profile};

/// The agent's path inside its image (Dockerfile.debug).
const AGENT_PATH: &str = "/netdiag-agent";

pub struct Injection<'a> {
    pub image: &'a str,
    pub pull_policy: &'a str,
    pub profile: Profile,
    pub tool: &'a str,
    pub tool_args: &'a [String],
}

/// `netdiag-` and five random lowercase letters and digits.
pub fn container_name() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    let mut bits = h.finish();
    let mut name = String::from("netdiag-");
    for _ in 0..5 {
        name.push(ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char);
        bits /= ALPHABET.len() as u64;
    }
    name
}

pub fn container(name: &str, target: &Target, inj: &Injection) -> EphemeralContainer {
    let mut command = vec![AGENT_PATH.to_owned(), inj.tool.to_owned()];
    command.extend(inj.tool_args.iter().cloned());
    EphemeralContainer {
        name: name.to_owned(),
        image: Some(inj.image.to_owned()),
        image_pull_policy: Some(inj.pull_policy.to_owned()),
        command: Some(command),
        env: Some(vec![EnvVar {
            name: frame::PROTOCOL_ENV.to_owned(),
            value: Some(frame::PROTOCOL_VERSION.to_owned()),
            value_from: None,
        }]),
        stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        target_container_name: Some(target.container.clone()),
        security_context: Some(security_context(inj.profile)),
        termination_message_policy: Some("File".to_owned()),
        ..Default::default()
    }
}

/// The securityContext of a profile. `restricted` satisfies Pod Security
/// "restricted": non-root, no capabilities, no escalation, seccomp.
pub fn security_context(profile: Profile) -> SecurityContext {
    let add: Vec<String> = profile
        .capabilities()
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    let (uid, non_root) = if profile.runs_as_root() {
        (0, false)
    } else {
        (65532, true)
    };
    SecurityContext {
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        run_as_non_root: Some(non_root),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            add: (!add.is_empty()).then_some(add),
            drop: Some(vec!["ALL".to_owned()]),
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

/// Patches the container into the pod; returns the pod as the server
/// answered (its resourceVersion starts the watch).
pub async fn inject(
    api: &Api<Pod>,
    target: &Target,
    container: &EphemeralContainer,
    profile: Profile,
    tool: &str,
) -> Result<Pod, PluginError> {
    let patch = serde_json::json!({ "spec": { "ephemeralContainers": [container] } });
    api.patch_ephemeral_containers(
        &target.name,
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .map_err(|e| explain_rejection(&e, target, profile, tool))
}

fn explain_rejection(
    e: &kube::Error,
    target: &Target,
    profile: Profile,
    tool: &str,
) -> PluginError {
    let msg = api_message(e);
    let ns = &target.namespace;
    if msg.contains("PodSecurity") {
        let needs = match profile {
            Profile::Restricted => "nothing beyond \"restricted\"".to_owned(),
            p => format!("{} as root (profile {p})", p.capabilities().join(" + ")),
        };
        let fine: Vec<&str> = tools::TOOLS
            .iter()
            .map(|t| t.name)
            .filter(|t| tools::profile_for(t, &[]) == Profile::Restricted)
            .collect();
        return PluginError::new(format!(
            "Pod Security admission in namespace \"{ns}\" rejected the agent: {msg} — {tool} needs {needs}; \
             these tools run under \"restricted\": {} (ss without -p)",
            fine.join(", ")
        ));
    }
    match api_code(e) {
        Some(404) => PluginError::new(format!(
            "the cluster has no ephemeral containers API for pod \"{}\" (Kubernetes 1.25 or later is needed): {msg}",
            target.name
        )),
        Some(403) => PluginError::new(format!(
            "not allowed to add an ephemeral container to pod \"{}\" in namespace \"{ns}\": {msg}",
            target.name
        )),
        _ => PluginError::new(format!(
            "cannot add the agent to pod \"{}\": {msg}",
            target.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_and_vary() {
        let a = container_name();
        assert!(a.starts_with("netdiag-") && a.len() == 13, "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        let names: std::collections::HashSet<String> = (0..50).map(|_| container_name()).collect();
        assert!(names.len() > 45);
    }

    #[test]
    fn restricted_profile_is_pod_security_restricted() {
        let sc = security_context(Profile::Restricted);
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.run_as_user, Some(65532));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        let caps = sc.capabilities.unwrap();
        assert_eq!(caps.drop.unwrap(), ["ALL"]);
        assert!(caps.add.is_none());
        assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let net = security_context(Profile::NetAdmin);
        assert_eq!(net.capabilities.unwrap().add.unwrap(), ["NET_RAW"]);
        assert_eq!(net.run_as_user, Some(0));
    }
}
