//! Release and install: `krew-manifest.yaml` against krew's own rules, the
//! release build (`release/build.sh`) against that manifest, and the agent
//! image it pins actually running in a pod.
//!
//! - krew's rules are those `kubectl krew install` applies before it
//!   downloads anything (krew `internal/index/validation/validate.go`:
//!   apiVersion, kind, a safe name, a one-line shortDescription, a `v`
//!   semver, per platform a uri, a 64-hex sha256, a bin, files with from
//!   and to, a selector on `os`/`arch` only) plus the checks of krew's
//!   `validate-krew-manifest` (every platform matches one os/arch, none
//!   overlap; line lengths) and this project's (the six platforms, LICENSE
//!   installed, the version of this workspace). krew is not packaged
//!   here, so [`krew_violations`] implements them, with tests that each
//!   rule catches what it should.
//! - The release test rebuilds the linux/amd64 archive from this checkout
//!   and requires the bytes the committed manifest's sha256 names: the
//!   script is reproducible (see release/build.sh), so a mismatch means
//!   the sources changed after the manifest was written. The fix is to run
//!   `sudo release/build.sh` and commit `krew-manifest.yaml`.
//! - The image chain: the plugin's default image is
//!   `ghcr.io/netdiag/netdiag-agent@sha256:D`; D is the sha256 of the
//!   image manifest in the OCI layout the script wrote; that manifest's
//!   config is the image podman loads; the sandbox (podman mode) runs it
//!   only under the pinned reference, so a plugin with any other default
//!   fails to pull. `--image` and `NETDIAG_IMAGE` choose a mirror instead.
//!
//! The release build (fat LTO, two cold target directories) takes minutes
//! and needs root (podman), so it happens once, in one test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use netdiag_tests::agent::plugin_bin;
use netdiag_tests::podman::podman;
use netdiag_tests::process::{self, DEFAULT_TIMEOUT};
use netdiag_tests::sandbox::{ImageMode, Sandbox, SandboxOptions};
use netdiag_tests::{TempDir, require_root, unique_name, workspace_root};
use serde::Deserialize;

/// What the issue asks krew to install on, and the krew names of each.
const PLATFORMS: [(&str, &str); 6] = [
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("windows", "amd64"),
    ("windows", "arm64"),
];

/// The checksum release/build.sh writes for an archive it did not build.
const NOT_BUILT: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The image repository the plugin's default image lives in.
const IMAGE_REPOSITORY: &str = "ghcr.io/netdiag/netdiag-agent";

/// A cold release build on a busy two-core machine: two fat-LTO builds.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

// ---------------------------------------------------------------------------
// The manifest as krew reads it (krew `pkg/index/types.go`). Unknown fields
// are refused, which krew does not do: a misspelt `sha256` would otherwise
// read as a missing one and only fail at install time.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Plugin {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    version: String,
    #[serde(default)]
    homepage: String,
    #[serde(default)]
    short_description: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    caveats: String,
    #[serde(default)]
    platforms: Vec<Platform>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Platform {
    selector: Option<Selector>,
    #[serde(default)]
    uri: String,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    bin: String,
    files: Option<Vec<FileOperation>>,
}

/// A Kubernetes LabelSelector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Selector {
    match_labels: Option<BTreeMap<String, String>>,
    match_expressions: Option<Vec<Requirement>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOperation {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

impl Selector {
    /// Does the selector choose the node labels `os=os, arch=arch`?
    /// (`metav1.LabelSelectorAsSelector` + `Matches`; an unknown operator
    /// is an error there, here it matches nothing and is reported apart.)
    fn matches(&self, os: &str, arch: &str) -> bool {
        let label = |key: &str| match key {
            "os" => Some(os),
            "arch" => Some(arch),
            _ => None,
        };
        let labels_match = self
            .match_labels
            .iter()
            .flatten()
            .all(|(k, v)| label(k) == Some(v.as_str()));
        let expressions_match = self.match_expressions.iter().flatten().all(|r| {
            let value = label(&r.key);
            match r.operator.as_str() {
                "In" => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
                "NotIn" => value.is_none_or(|v| r.values.iter().all(|x| x != v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        });
        labels_match && expressions_match
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        let labels = self.match_labels.iter().flatten().map(|(k, _)| k.as_str());
        let expressions = self
            .match_expressions
            .iter()
            .flatten()
            .map(|r| r.key.as_str());
        labels.chain(expressions)
    }
}

/// The <os, arch> pairs krew's validate-krew-manifest knows, which every
/// platform must match one of (krew's own list and ours).
const KREW_OS_ARCH: [(&str, &str); 10] = [
    ("windows", "386"),
    ("windows", "amd64"),
    ("windows", "arm64"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
];

/// Names krew refuses because Windows cannot create such files.
const WINDOWS_RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// krew's semver: a leading `v`, then MAJOR.MINOR.PATCH without leading
/// zeros, optionally `-PRERELEASE` and `+BUILD` of dot-separated
/// `[0-9A-Za-z-]` identifiers (k8s.io/apimachinery `ParseSemantic`).
fn is_krew_semver(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else {
        return false;
    };
    let (rest, build) = match rest.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (rest, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let numeric = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let identifiers = |s: &str| {
        s.split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(identifiers)
        && build.is_none_or(identifiers)
}

/// validate-krew-manifest's line-length rule: no line longer than `max`,
/// unless it is a single word (a URL, an image reference).
fn long_lines(text: &str, max: usize) -> Vec<&str> {
    text.lines()
        .filter(|l| l.len() > max && l.trim().contains(' '))
        .collect()
}

/// Every rule `manifest` breaks, empty if none. `name` is the plugin name
/// krew is asked to install.
fn krew_violations(name: &str, manifest: &Plugin) -> Vec<String> {
    let mut broken = Vec::new();
    let spec = &manifest.spec;

    // krew's ValidatePlugin.
    if manifest.api_version != "krew.googlecontainertools.github.com/v1alpha2" {
        broken.push(format!(
            "apiVersion is {:?}, not krew.googlecontainertools.github.com/v1alpha2",
            manifest.api_version
        ));
    }
    if manifest.kind != "Plugin" {
        broken.push(format!("kind is {:?}, not Plugin", manifest.kind));
    }
    let safe = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !WINDOWS_RESERVED
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name));
    if !safe {
        broken.push(format!("plugin name {name:?} is not allowed by krew"));
    }
    if manifest.metadata.name != name {
        broken.push(format!(
            "metadata.name is {:?}, not {name:?}",
            manifest.metadata.name
        ));
    }
    if spec.short_description.is_empty() {
        broken.push("shortDescription is empty".to_owned());
    }
    if spec.short_description.contains(['\r', '\n']) {
        broken.push("shortDescription has a line break".to_owned());
    }
    if spec.platforms.is_empty() {
        broken.push("no platforms".to_owned());
    }
    if !is_krew_semver(&spec.version) {
        broken.push(format!(
            "version {:?} is not a semantic version with a leading v",
            spec.version
        ));
    }
    for (i, p) in spec.platforms.iter().enumerate() {
        let mut bad = |what: String| broken.push(format!("platforms[{i}]: {what}"));
        if p.uri.is_empty() {
            bad("uri is empty".to_owned());
        }
        let hex = p
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if p.sha256.len() != 64 || !hex {
            bad(format!(
                "sha256 {:?} is not 64 lowercase hex digits",
                p.sha256
            ));
        }
        if p.bin.is_empty() {
            bad("bin is empty".to_owned());
        }
        match &p.files {
            Some(files) if files.is_empty() => bad("files is given but empty".to_owned()),
            Some(files) => {
                for f in files {
                    if f.from.is_empty() || f.to.is_empty() {
                        bad(format!("files entry {f:?} lacks from or to"));
                    }
                }
            }
            None => {}
        }
        match &p.selector {
            None => bad("no selector".to_owned()),
            Some(s) => {
                if s.match_labels.is_none()
                    && s.match_expressions.as_ref().is_none_or(Vec::is_empty)
                {
                    bad("empty selector".to_owned());
                }
                for key in s.keys().filter(|k| *k != "os" && *k != "arch") {
                    bad(format!("selector key {key:?} (only os and arch)"));
                }
                if s.match_labels.as_ref().is_some_and(BTreeMap::is_empty) {
                    bad("matchLabels given but empty".to_owned());
                }
                if s.match_expressions.as_ref().is_some_and(Vec::is_empty) {
                    bad("matchExpressions given but empty".to_owned());
                }
                for r in s.match_expressions.iter().flatten() {
                    if !["In", "NotIn", "Exists", "DoesNotExist"].contains(&r.operator.as_str()) {
                        bad(format!("selector operator {:?}", r.operator));
                    }
                }
            }
        }
    }

    // krew's validate-krew-manifest: each platform is used, none overlap,
    // lines fit (krew warns; a krew-index reviewer asks for the fix).
    for (i, p) in spec.platforms.iter().enumerate() {
        let used = p
            .selector
            .as_ref()
            .is_some_and(|s| KREW_OS_ARCH.iter().any(|(os, arch)| s.matches(os, arch)));
        if !used {
            broken.push(format!(
                "platforms[{i}]: the selector matches no os/arch krew knows"
            ));
        }
    }
    for (os, arch) in KREW_OS_ARCH {
        let matching: Vec<usize> = spec
            .platforms
            .iter()
            .enumerate()
            .filter(|(_, p)| p.selector.as_ref().is_some_and(|s| s.matches(os, arch)))
            .map(|(i, _)| i)
            .collect();
        if matching.len() > 1 {
            broken.push(format!(
                "platforms {matching:?} overlap: all select {os}/{arch}"
            ));
        }
    }
    for (field, text, max) in [
        ("description", &spec.description, 80),
        ("shortDescription", &spec.short_description, 70),
        ("caveats", &spec.caveats, 80),
    ] {
        for line in long_lines(text, max) {
            broken.push(format!("{field} line longer than {max}: {line:?}"));
        }
    }

    // This project's: the six platforms of the issue, each an archive of
    // this version that installs the binary and the LICENSE.
    for (os, arch) in PLATFORMS {
        let n = spec
            .platforms
            .iter()
            .filter(|p| p.selector.as_ref().is_some_and(|s| s.matches(os, arch)))
            .count();
        if n != 1 {
            broken.push(format!("{n} platforms for {os}/{arch}, expected 1"));
        }
    }
    let expected_version = format!("v{}", env!("CARGO_PKG_VERSION"));
    if spec.version != expected_version {
        broken.push(format!(
            "version {:?}, but the workspace is {expected_version}",
            spec.version
        ));
    }
    if !spec.homepage.starts_with("https://") {
        broken.push(format!("homepage {:?} is not an https URL", spec.homepage));
    }
    if spec.description.trim().is_empty() {
        broken.push("description is empty".to_owned());
    }
    for needed in ["pods/ephemeralcontainers", "1.25"] {
        if !spec.caveats.contains(needed) {
            broken.push(format!("caveats do not mention {needed}"));
        }
    }
    for (i, p) in spec.platforms.iter().enumerate() {
        let mut bad = |what: String| broken.push(format!("platforms[{i}]: {what}"));
        if !p.uri.starts_with("https://") {
            bad(format!("uri {:?} is not https", p.uri));
        }
        if !(p.uri.ends_with(".tar.gz") || p.uri.ends_with(".zip")) {
            bad(format!("uri {:?} is not a .tar.gz or .zip", p.uri));
        }
        if !p.uri.contains(&format!("/{expected_version}/")) {
            bad(format!("uri {:?} is not of {expected_version}", p.uri));
        }
        let files = p.files.iter().flatten();
        if !files.clone().any(|f| f.from == "LICENSE") {
            bad("files do not install LICENSE".to_owned());
        }
        if !files.clone().any(|f| f.from == p.bin) {
            bad(format!("files do not install the bin {:?}", p.bin));
        }
        let windows = p
            .selector
            .as_ref()
            .is_some_and(|s| s.matches("windows", "amd64") || s.matches("windows", "arm64"));
        if windows != p.bin.ends_with(".exe") {
            bad(format!("bin {:?}: .exe exactly on Windows", p.bin));
        }
    }
    broken
}

fn parse_manifest(text: &str) -> Plugin {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("krew-manifest.yaml: {e}"))
}

/// The committed manifest's text.
fn committed_manifest() -> String {
    let path = workspace_root().join("krew-manifest.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The platform entry for os/arch.
fn platform<'a>(manifest: &'a Plugin, os: &str, arch: &str) -> &'a Platform {
    manifest
        .spec
        .platforms
        .iter()
        .find(|p| p.selector.as_ref().is_some_and(|s| s.matches(os, arch)))
        .unwrap_or_else(|| panic!("no platform for {os}/{arch}"))
}

/// The agent image named in the manifest (header comment and caveats).
fn manifest_image(text: &str) -> String {
    let refs: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.starts_with(&format!("{IMAGE_REPOSITORY}@sha256:")))
        .collect();
    assert!(!refs.is_empty(), "the manifest names no pinned agent image");
    assert!(
        refs.iter().all(|r| *r == refs[0]),
        "the manifest names different agent images: {refs:?}"
    );
    refs[0].to_owned()
}

#[test]
fn committed_manifest_follows_krews_rules() {
    let text = committed_manifest();
    let manifest = parse_manifest(&text);
    let broken = krew_violations("netdiag", &manifest);
    assert!(
        broken.is_empty(),
        "krew-manifest.yaml:\n  {}",
        broken.join("\n  ")
    );

    // The one archive built here has a real checksum; the others carry
    // the not-built value, and the manifest says so next to each.
    assert_ne!(platform(&manifest, "linux", "amd64").sha256, NOT_BUILT);
    let not_built = manifest
        .spec
        .platforms
        .iter()
        .filter(|p| p.sha256 == NOT_BUILT)
        .count();
    assert_eq!(
        text.matches("NOT BUILT by this run").count(),
        not_built,
        "every all-zero sha256 must be explained by a comment"
    );

    // The default image is pinned by digest, and the same in both places.
    let image = manifest_image(&text);
    let digest = image.rsplit_once("@sha256:").map(|(_, d)| d).unwrap_or("");
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{image}"
    );
    assert!(
        manifest.spec.caveats.contains(&image),
        "caveats lack {image}"
    );
}

// ---------------------------------------------------------------------------
// The rule checker itself: a good manifest passes, each kind of breakage
// is caught.

/// A manifest that passes every rule, with `{PLATFORMS}` to fill in.
const GOOD: &str = r#"
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: netdiag
spec:
  version: vVERSION
  homepage: https://github.com/netdiag/kubectl-netdiag
  shortDescription: Network tools in any pod
  description: |
    Network diagnostics inside any pod.
  caveats: |
    Needs pods/ephemeralcontainers and Kubernetes 1.25 or later.
  platforms:
PLATFORMS"#;

fn good_platform(os: &str, arch: &str) -> String {
    let bin = if os == "windows" {
        "kubectl-netdiag.exe"
    } else {
        "kubectl-netdiag"
    };
    format!(
        "    - selector:
        matchLabels: {{os: {os}, arch: {arch}}}
      uri: https://example.com/vVERSION/kubectl-netdiag_{os}_{arch}.tar.gz
      sha256: {NOT_BUILT}
      bin: {bin}
      files:
        - {{from: {bin}, to: .}}
        - {{from: LICENSE, to: .}}
"
    )
}

fn good_manifest() -> String {
    let platforms: String = PLATFORMS
        .iter()
        .map(|(os, arch)| good_platform(os, arch))
        .collect();
    GOOD.replace("PLATFORMS", &platforms)
        .replace("VERSION", env!("CARGO_PKG_VERSION"))
}

/// The violations of the good manifest after `edit`.
fn violations_after(edit: impl Fn(String) -> String) -> Vec<String> {
    krew_violations("netdiag", &parse_manifest(&edit(good_manifest())))
}

#[track_caller]
fn assert_caught(edit: impl Fn(String) -> String, expected: &str) {
    let broken = violations_after(edit);
    assert!(
        broken.iter().any(|b| b.contains(expected)),
        "expected a violation containing {expected:?}, got {broken:?}"
    );
}

#[test]
fn krew_rules_accept_a_good_manifest() {
    assert_eq!(violations_after(|m| m), Vec::<String>::new());
}

#[test]
fn krew_rules_catch_each_kind_of_breakage() {
    let first_platform = "    - selector:\n        matchLabels: {os: linux, arch: amd64}";
    assert_caught(|m| m.replace("v1alpha2", "v1alpha1"), "apiVersion");
    assert_caught(|m| m.replace("kind: Plugin", "kind: Plugins"), "kind");
    assert_caught(
        |m| m.replace("name: netdiag", "name: net-diag"),
        "metadata.name",
    );
    assert_caught(
        |m| {
            m.replace(
                "shortDescription: Network tools in any pod",
                "shortDescription: \"a\\nb\"",
            )
        },
        "line break",
    );
    assert_caught(
        |m| m.replace("shortDescription: Network tools in any pod", ""),
        "shortDescription is empty",
    );
    let bare = format!("version: {}", env!("CARGO_PKG_VERSION"));
    let v = format!("version: v{}", env!("CARGO_PKG_VERSION"));
    assert_caught(|m| m.replacen(&v, &bare, 1), "leading v");
    assert_caught(|m| m.replacen(&v, "version: v1.02.0", 1), "leading v");
    assert_caught(|m| m.replacen(&v, "version: v1.2", 1), "leading v");
    assert_caught(
        |m| m.replacen(NOT_BUILT, &NOT_BUILT[1..], 1),
        "64 lowercase hex",
    );
    assert_caught(
        |m| m.replacen(NOT_BUILT, &NOT_BUILT.replace('0', "A"), 1),
        "64 lowercase hex",
    );
    assert_caught(
        |m| m.replacen("bin: kubectl-netdiag\n", "bin: \"\"\n", 1),
        "bin is empty",
    );
    assert_caught(
        |m| m.replacen("{from: LICENSE, to: .}", "{from: LICENSE}", 1),
        "lacks from or to",
    );
    assert_caught(
        |m| m.replacen("        - {from: LICENSE, to: .}\n", "", 1),
        "do not install LICENSE",
    );
    assert_caught(
        |m| {
            m.replacen(
                "{os: linux, arch: amd64}",
                "{os: linux, arch: amd64, libc: gnu}",
                1,
            )
        },
        "selector key \"libc\"",
    );
    assert_caught(
        |m| {
            m.replacen(
                "matchLabels: {os: linux, arch: amd64}",
                "matchLabels: {}",
                1,
            )
        },
        "matchLabels given but empty",
    );
    assert_caught(
        |m| {
            m.replacen(
                "matchLabels: {os: linux, arch: amd64}",
                "matchLabels: {os: plan9}",
                1,
            )
        },
        "matches no os/arch",
    );
    // A platform for all Linux overlaps the linux/arm64 one.
    assert_caught(
        |m| m.replacen("{os: linux, arch: amd64}", "{os: linux}", 1),
        "overlap",
    );
    assert_caught(
        |m| {
            m.replacen(
                first_platform,
                "    - selector: {matchExpressions: [{key: os, operator: In, values: [linux]}]}",
                1,
            )
        },
        "overlap",
    );
    assert_caught(
        |m| m.replacen(first_platform, "    - selector:", 1),
        "no selector",
    );
    assert_caught(
        |m| {
            m.replacen(
                "kubectl-netdiag_windows_amd64.tar.gz",
                "kubectl-netdiag_windows_amd64.exe",
                1,
            )
        },
        "not a .tar.gz or .zip",
    );
    assert_caught(
        |m| m.replacen("bin: kubectl-netdiag.exe", "bin: kubectl-netdiag", 1),
        ".exe exactly on Windows",
    );
    assert_caught(
        |m| m.replace("1.25 or later", "a recent version"),
        "do not mention 1.25",
    );
    assert_caught(
        |m| {
            m.replace(
            "Network diagnostics inside any pod.",
            "Network diagnostics inside any pod, even distroless ones, with a line that goes on too long.",
        )
        },
        "description line longer than 80",
    );
    // Misspelt fields are refused rather than read as missing.
    let misspelt = good_manifest().replacen("sha256:", "sha265:", 1);
    assert!(serde_norway::from_str::<Plugin>(&misspelt).is_err());
}

#[test]
fn krew_semver_needs_the_v_and_three_numbers() {
    for good in [
        "v0.1.0",
        "v1.2.3",
        "v10.20.30",
        "v1.0.0-rc.1",
        "v1.0.0+build.5",
        "v1.0.0-alpha-2+x",
    ] {
        assert!(is_krew_semver(good), "{good}");
    }
    for bad in [
        "0.1.0",
        "v1.2",
        "v1.2.3.4",
        "v01.2.3",
        "v1.2.3-",
        "v1.2.3-a..b",
        "V1.2.3",
        "v1.x.3",
        "",
    ] {
        assert!(!is_krew_semver(bad), "{bad}");
    }
}

// ---------------------------------------------------------------------------
// `kubectl netdiag version` (the developer build) through kubectl.

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `kubectl netdiag ARGS` with `plugin_dir` first on PATH.
fn kubectl_netdiag(plugin_dir: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    let path = format!(
        "{}:{}",
        plugin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    process::output(
        Command::new("kubectl")
            .arg("netdiag")
            .args(args)
            .env("PATH", path)
            .env_remove("NETDIAG_IMAGE")
            .envs(env.iter().cloned()),
        Duration::from_secs(60),
    )
}

#[test]
fn version_shows_the_plugin_its_image_and_ephemeral_container_support() {
    let plugin = plugin_bin();
    let dir = plugin.parent().expect("the plugin has a directory");
    // Without a cluster: the offline part, and no failure.
    let offline = [(
        "KUBECONFIG".to_owned(),
        "/nonexistent/kubeconfig".to_owned(),
    )];
    let out = kubectl_netdiag(dir, &offline, &["version"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(concat!("kubectl-netdiag ", env!("CARGO_PKG_VERSION")))
    );
    assert!(
        lines
            .get(1)
            .is_some_and(|l| l.starts_with(&format!("default image: {IMAGE_REPOSITORY}"))),
        "{stdout}"
    );
    assert!(
        lines
            .get(2)
            .is_some_and(|l| l.starts_with("cluster: not checked")),
        "{stdout}"
    );

    if !require_root("version_shows_the_plugin_its_image_and_ephemeral_container_support") {
        return;
    }
    let sandbox = Sandbox::start("pods: []\n");
    let out = kubectl_netdiag(dir, &sandbox.env(), &["version"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("\ncluster: Kubernetes v1."), "{stdout}");
    assert!(
        stdout.ends_with("ephemeral containers: supported\n"),
        "{stdout}"
    );
}

// ---------------------------------------------------------------------------
// The release build.

/// `sha256sum FILE`'s hash.
fn sha256sum(file: &Path) -> String {
    let out = process::checked(Command::new("sha256sum").arg(file), DEFAULT_TIMEOUT);
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `diff -u` of two files, for a failure message.
fn diff(a: &Path, b: &Path) -> String {
    text(
        &process::output(
            Command::new("diff").arg("-u").arg(a).arg(b),
            DEFAULT_TIMEOUT,
        )
        .stdout,
    )
}

fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A blob of an OCI layout, checked against its digest.
fn oci_blob(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("digest {digest:?} is not sha256"));
    let blob = layout.join("blobs/sha256").join(hex);
    assert_eq!(
        sha256sum(&blob),
        hex,
        "{} is not its digest",
        blob.display()
    );
    blob
}

/// A local podman image tag, removed on drop.
struct LocalImage(String);

impl Drop for LocalImage {
    fn drop(&mut self) {
        let _ = podman().args(["rmi", &self.0]).output();
    }
}

#[test]
fn release_archive_matches_the_manifest_and_its_pinned_image_runs() {
    if !require_root("release_archive_matches_the_manifest_and_its_pinned_image_runs") {
        return;
    }
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    let dist = TempDir::new("release");
    let fresh_manifest = dist.path().join("krew-manifest.yaml");

    // The local release, as a developer runs it (minus the output paths).
    let started = Instant::now();
    process::checked(
        Command::new(workspace_root().join("release/build.sh"))
            .arg("--dist")
            .arg(dist.path())
            .arg("--manifest")
            .arg(&fresh_manifest)
            .env("CARGO", env!("CARGO"))
            // podman's settings for this machine, as the harness uses them.
            .envs(
                podman()
                    .get_envs()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
            ),
        RELEASE_TIMEOUT,
    );
    eprintln!(
        "release/build.sh (agent image, plugin, manifest) took {:.0?}",
        started.elapsed()
    );

    // The archive: the binary and the LICENSE, owned by root, at the
    // epoch, with fixed modes.
    let archive_name = format!("kubectl-netdiag_{version}_linux_amd64.tar.gz");
    let archive = dist.path().join(&archive_name);
    let listing = text(
        &process::checked(
            Command::new("tar").arg("tzvf").arg(&archive),
            DEFAULT_TIMEOUT,
        )
        .stdout,
    );
    let entries: Vec<Vec<&str>> = listing
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let summary: Vec<(&str, &str, &str, &str)> =
        entries.iter().map(|e| (e[0], e[1], e[3], e[5])).collect();
    assert_eq!(
        summary,
        [
            ("-rwxr-xr-x", "0/0", "1970-01-01", "kubectl-netdiag"),
            ("-rw-r--r--", "0/0", "1970-01-01", "LICENSE"),
        ],
        "{listing}"
    );
    let unpacked = TempDir::new("release-unpacked");
    process::checked(
        Command::new("tar")
            .arg("xzf")
            .arg(&archive)
            .arg("-C")
            .arg(unpacked.path()),
        DEFAULT_TIMEOUT,
    );
    let license = std::fs::read(unpacked.path().join("LICENSE")).expect("LICENSE unpacked");
    assert_eq!(
        license,
        std::fs::read(workspace_root().join("LICENSE")).expect("the repository's LICENSE")
    );

    // The checksum: in the .sha256 file, in the manifest of this run, and
    // in the committed manifest.
    let sha = sha256sum(&archive);
    let sha_file = std::fs::read_to_string(dist.path().join(format!("{archive_name}.sha256")))
        .expect("the .sha256 file");
    assert_eq!(sha_file, format!("{sha}  {archive_name}\n"));
    let fresh_text = std::fs::read_to_string(&fresh_manifest).expect("the fresh manifest");
    let fresh = parse_manifest(&fresh_text);
    assert_eq!(platform(&fresh, "linux", "amd64").sha256, sha);
    assert_eq!(krew_violations("netdiag", &fresh), Vec::<String>::new());

    // The image chain: default image -> OCI manifest digest -> config ->
    // the image podman runs.
    let pinned = std::fs::read_to_string(dist.path().join("agent-image.ref"))
        .expect("agent-image.ref")
        .trim()
        .to_owned();
    assert_eq!(manifest_image(&fresh_text), pinned);
    let layout = dist.path().join("agent-image");
    let index = read_json(&layout.join("index.json"));
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        version.as_str()
    );
    let digest = entry["digest"].as_str().expect("a manifest digest");
    assert_eq!(pinned, format!("{IMAGE_REPOSITORY}@{digest}"));
    let image_manifest = read_json(&oci_blob(&layout, digest));
    let config_digest = image_manifest["config"]["digest"].as_str().expect("config");
    let config = read_json(&oci_blob(&layout, config_digest));
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/netdiag-agent"])
    );
    let top_layer = image_manifest["layers"]
        .as_array()
        .and_then(|l| l.last())
        .and_then(|l| l["digest"].as_str())
        .expect("a layer");
    let agent_in_image = process::checked(
        Command::new("tar")
            .arg("xzOf")
            .arg(oci_blob(&layout, top_layer))
            .arg("netdiag-agent"),
        DEFAULT_TIMEOUT,
    )
    .stdout;
    assert!(
        agent_in_image == std::fs::read(dist.path().join("agent-context/netdiag-agent")).unwrap(),
        "the image's /netdiag-agent is not the agent the script built"
    );

    // The plugin as krew installs it: `version` names the pinned image.
    let plugin_dir = unpacked.path();
    let offline = [(
        "KUBECONFIG".to_owned(),
        "/nonexistent/kubeconfig".to_owned(),
    )];
    let out = kubectl_netdiag(plugin_dir, &offline, &["version"]);
    assert!(
        text(&out.stdout).contains(&format!("\ndefault image: {pinned}\n")),
        "{}",
        text(&out.stdout)
    );

    // The image in podman's storage is the layout's, by content.
    let local = LocalImage(format!("localhost/{}:test", unique_name("release-agent")));
    let out = process::checked(
        podman()
            .args(["pull", "--quiet"])
            .arg(format!("oci:{}:{version}", layout.display())),
        DEFAULT_TIMEOUT,
    );
    let id = text(&out.stdout).trim().to_owned();
    assert_eq!(format!("sha256:{id}"), config_digest);
    process::checked(podman().args(["tag", &id, &local.0]), DEFAULT_TIMEOUT);
    // `podman pull oci:DIR` also named it after the directory.
    let _ = podman()
        .args([
            "untag",
            &id,
            &format!("localhost{}:latest", layout.display()),
        ])
        .output();

    // A cluster whose registry has the agent only under the pinned name,
    // and a mirror of it: what an air-gapped cluster looks like.
    let mirror = format!("registry.example/mirror/netdiag-agent@{digest}");
    let pods = format!(
        r#"
images:
  - {{ref: "{pinned}", podman: "{local}"}}
  - {{ref: "{mirror}", podman: "{local}"}}
pods:
  - name: web
    containers: [{{name: app, image: x, command: [busybox, nc, -ll, -p, "8080", -e, /bin/cat]}}]
"#,
        local = local.0
    );
    let sandbox = Sandbox::start_with(
        &pods,
        &SandboxOptions {
            image_mode: ImageMode::Podman(local.0.clone()),
            ..SandboxOptions::default()
        },
    );
    let env = sandbox.env();
    let out = kubectl_netdiag(plugin_dir, &env, &["version"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("ephemeral containers: supported"),
        "{stdout}"
    );

    // By default the pinned image runs.
    let out = kubectl_netdiag(plugin_dir, &env, &["web", "ss", "-Htln"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(":8080"), "{}", text(&out.stdout));

    // --image and NETDIAG_IMAGE choose the mirror.
    let out = kubectl_netdiag(
        plugin_dir,
        &env,
        &["--image", &mirror, "web", "ss", "-Htln"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut with_variable = env.clone();
    with_variable.push(("NETDIAG_IMAGE".to_owned(), mirror.clone()));
    let out = kubectl_netdiag(plugin_dir, &with_variable, &["web", "ss", "-Htln"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let images = sandbox.kubectl_output(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.spec.ephemeralContainers[*].image}",
    ]);
    assert_eq!(
        text(&images.stdout),
        format!("{pinned} {mirror} {mirror}"),
        "the images of the three runs, in order"
    );

    // An image the registry lacks fails with the way out.
    let missing = "registry.example/other/netdiag-agent:v0";
    let out = kubectl_netdiag(
        plugin_dir,
        &env,
        &["--timeout", "20s", "--image", missing, "web", "ss"],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(missing) && err.contains("--image"), "{err}");
    drop(sandbox);

    // Last, as everything above holds for a stale manifest too: the
    // committed manifest is what this checkout builds, byte for byte.
    let committed = workspace_root().join("krew-manifest.yaml");
    assert!(
        fresh_text == committed_manifest(),
        "krew-manifest.yaml is not what release/build.sh builds from this checkout \
         (the plugin, agent or Cargo.lock changed since it was written): run \
         `sudo release/build.sh` and commit krew-manifest.yaml.\n{}",
        diff(&committed, &fresh_manifest)
    );
}
