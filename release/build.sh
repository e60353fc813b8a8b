#!/usr/bin/env bash
# Release builds of kubectl netdiag: the agent image the plugin runs by
# default, the plugin archives krew installs, and krew-manifest.yaml naming
# both. The same script makes a local release here and every part of the
# published release in .github/workflows/release.yml (on native runners).
#
#   release/build.sh                local release: what this machine can build
#                                   (agent-image, then plugin, then manifest)
#   release/build.sh agent-image    static agent for this Linux machine's arch,
#                                   the image Dockerfile.debug makes of it, as
#                                   an OCI layout DIST/agent-image; writes its
#                                   pinned reference to DIST/agent-image.ref
#   release/build.sh agent-binary   only the static agent, as
#                                   DIST/agent-context/netdiag-agent (a build
#                                   context for Dockerfile.debug)
#   release/build.sh plugin         DIST/kubectl-netdiag_vVERSION_OS_ARCH.tar.gz
#                                   (+ .sha256): the plugin, built to run IMAGE
#                                   by default, and LICENSE
#   release/build.sh manifest       krew-manifest.yaml from the archives in DIST
#   release/build.sh version        the release's version (v + the workspace's)
#
# Options, anywhere on the line:
#   --dist DIR        outputs (default: target/dist)
#   --image REF       the agent image the plugin runs by default, pinned by
#                     digest (default: the content of DIST/agent-image.ref)
#   --target TRIPLE   the plugin's Rust target (default: this machine's)
#   --manifest FILE   where `manifest` writes (default: krew-manifest.yaml)
#   --require-all     `manifest` fails unless all six archives are in DIST
#
# Reproducible on purpose: built twice, from checkouts at different paths,
# the archive is the same bytes, so the sha256 committed in
# krew-manifest.yaml can be checked by rebuilding (tests/tests/release.rs).
# What makes it so:
# - rustc's --remap-path-prefix turns the checkout (which holds the cargo
#   target directories) and $CARGO_HOME into fixed names, so panic locations
#   do not embed /home/you/src/...; std's paths are already /rustc/HASH.
# - tar with sorted names, owner 0:0, fixed modes and every mtime at the
#   epoch, and gzip -n (no name, no time). The epoch rather than the commit
#   time: the manifest holding the checksum is committed with the sources,
#   so the checksum must not depend on the commit that records it.
# - The image is built with `--timestamp 0` (creation time and file times),
#   so its digest, which is compiled into the plugin, is stable too.
# - Fixed toolchain (rust 1.95.0 here and in CI), Cargo.lock (--locked) and
#   the release profile of Cargo.toml (one codegen unit, fat LTO).
# Release and agent builds use their own target directories under
# target/release-build: their RUSTFLAGS differ from a developer's build,
# and sharing a directory would make each build invalidate the other's.
#
# What it needs: cargo, GNU tar (gtar on macOS), gzip, sha256sum or shasum;
# for agent-image, podman (root here) and a Linux machine.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$root"

# Where the release lives: the URLs in the manifest and the image name.
readonly repository=https://github.com/netdiag/kubectl-netdiag
readonly image_repository=ghcr.io/netdiag/netdiag-agent
# The platforms krew gets an archive for, in manifest order (os/arch).
readonly platforms="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"
# The value krew's rules accept for an archive this run did not build: it
# is no archive's checksum, so krew refuses the download (see manifest).
readonly not_built=0000000000000000000000000000000000000000000000000000000000000000

die() {
    echo "release/build.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,/^# Reproducible/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

command=local
dist=$root/target/dist
image=
target=
manifest=$root/krew-manifest.yaml
require_all=false
while [ $# -gt 0 ]; do
    case $1 in
    local | agent-image | agent-binary | plugin | manifest | version) command=$1 ;;
    --dist) dist=${2:?--dist needs a directory}; shift ;;
    --image) image=${2:?--image needs a reference}; shift ;;
    --target) target=${2:?--target needs a Rust target triple}; shift ;;
    --manifest) manifest=${2:?--manifest needs a file name}; shift ;;
    --require-all) require_all=true ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument \"$1\"; run release/build.sh --help" ;;
    esac
    shift
done
mkdir -p "$dist"
dist=$(cd "$dist" && pwd -P)

# What cargo sets for the programs it runs, inherited when `cargo test`
# runs this script: build scripts track some of them (ring reruns when
# CARGO_MANIFEST_DIR changes), so they would rebuild the world each time a
# test and a developer take turns. Not ours to pass on.
for variable in $(compgen -e); do
    case $variable in
    CARGO_MANIFEST_* | CARGO_PKG_* | CARGO_CRATE_NAME | CARGO_BIN_NAME | CARGO_PRIMARY_PACKAGE | \
        CARGO_TARGET_TMPDIR | OUT_DIR) unset "$variable" ;;
    esac
done
cargo=${CARGO:-cargo}
# "path+file:///.../plugin#kubectl-netdiag@0.1.0" -> v0.1.0
version=v$("$cargo" pkgid --quiet --locked -p kubectl-netdiag | sed 's/.*[#@]//')
host=$("${RUSTC:-rustc}" -vV | sed -n 's/^host: //p')
target=${target:-$host}

# krew's os/arch for a Rust target triple.
platform_of() {
    case $1 in
    x86_64-*-linux-*) echo linux/amd64 ;;
    aarch64-*-linux-*) echo linux/arm64 ;;
    x86_64-apple-darwin) echo darwin/amd64 ;;
    aarch64-apple-darwin) echo darwin/arm64 ;;
    x86_64-pc-windows-*) echo windows/amd64 ;;
    aarch64-pc-windows-*) echo windows/arm64 ;;
    *) die "no krew platform for Rust target \"$1\"" ;;
    esac
}

archive_name() { # os/arch
    echo "kubectl-netdiag_${version}_${1%/*}_${1#*/}.tar.gz"
}

sha256_of() {
    if command -v sha256sum >/dev/null; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

# A path as rustc sees it (Git Bash on Windows says /d/a/..., rustc D:\a\...).
native_path() {
    if command -v cygpath >/dev/null; then cygpath -w "$1"; else printf '%s' "$1"; fi
}

# `cargo build --release --locked` of one package for one target, in its own
# target directory, with the path remapping above plus `extra` rustflags.
# Prints the executable's path. Called in $(...), where set -e does not
# reach: every failure must die explicitly, or a stale executable from an
# earlier build would be packaged.
release_build() { # package target target-dir [extra rustflags...]
    local package=$1 triple=$2 dir=$3
    shift 3
    local cargo_home
    cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P) || die "no cargo home at ${CARGO_HOME:-$HOME/.cargo}"
    # Unit separators, not spaces: CARGO_ENCODED_RUSTFLAGS keeps a checkout
    # path with spaces in one piece. The checkout comes first and CARGO_HOME
    # last: rustc applies the last matching prefix, and CARGO_HOME may lie
    # inside the checkout but not the other way round.
    local flags=("$@"
        "--remap-path-prefix=$(native_path "$root")=kubectl-netdiag"
        "--remap-path-prefix=$(native_path "$cargo_home")=cargo-home")
    local encoded
    encoded=$(IFS=$'\x1f' && echo "${flags[*]}")
    # --target is always explicit: the flags then reach only the target's
    # code, not build scripts and proc-macros (crt-static must not).
    env -u RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS \
        CARGO_ENCODED_RUSTFLAGS="$encoded" CARGO_TARGET_DIR="$dir" \
        "$cargo" build --quiet --release --locked -p "$package" --target "$triple" >&2 ||
        die "cargo build of $package for $triple failed"
    local exe=$dir/$triple/release/$package
    case $triple in *-windows-*) exe=$exe.exe ;; esac
    [ -x "$exe" ] || die "cargo built no $exe"
    echo "$exe"
}

# The static agent (a static-pie glibc executable: the image is FROM scratch).
build_agent_binary() {
    case $host in *-linux-*) ;; *) die "the agent is a Linux program; build it on Linux (this is $host)" ;; esac
    local exe context=$dist/agent-context
    exe=$(release_build netdiag-agent "$host" "$root/target/release-build/agent" -Ctarget-feature=+crt-static)
    rm -rf "$context"
    mkdir -p "$context"
    cp "$exe" "$context/netdiag-agent"
    chmod 0755 "$context/netdiag-agent"
    echo "agent: $context/netdiag-agent" >&2
}

# The agent image for this machine's arch, as Dockerfile.debug builds it,
# stored as an OCI layout; its manifest digest is what the plugin pins.
build_agent_image() {
    build_agent_binary
    local arch tag layout=$dist/agent-image
    arch=$(platform_of "$host")
    arch=${arch#linux/}
    tag=localhost/netdiag-agent-release:$version-$$
    podman build --quiet --layers=false --timestamp 0 --platform "linux/$arch" \
        -f Dockerfile.debug -t "$tag" "$dist/agent-context" >/dev/null
    rm -rf "$layout"
    # The layout is the artifact; the image leaves local storage again.
    if ! podman push --quiet "$tag" "oci:$layout:$version"; then
        podman rmi "$tag" >/dev/null
        die "podman push to $layout failed"
    fi
    podman rmi "$tag" >/dev/null
    local digest
    digest=$(sed -n 's/.*"digest":"\(sha256:[0-9a-f]\{64\}\)".*/\1/p' "$layout/index.json")
    [ -n "$digest" ] || die "no manifest digest in $layout/index.json"
    echo "$image_repository@$digest" >"$dist/agent-image.ref"
    echo "agent image: $image_repository@$digest (linux/$arch, OCI layout $layout)" >&2
}

# The image the plugin runs by default: --image, else what agent-image wrote.
default_image() {
    if [ -z "$image" ]; then
        [ -f "$dist/agent-image.ref" ] ||
            die "no agent image: run release/build.sh agent-image first, or pass --image REF@sha256:DIGEST"
        image=$(cat "$dist/agent-image.ref")
    fi
    # A tag can move; a release names exactly the image it was tested with.
    case $image in
    *@sha256:*) ;;
    *) die "--image \"$image\" is not pinned by digest (expected NAME@sha256:DIGEST)" ;;
    esac
    echo "$image"
}

gnu_tar() {
    local t
    for t in gtar tar; do
        if command -v "$t" >/dev/null && "$t" --version 2>/dev/null | grep -q 'GNU tar'; then
            echo "$t"
            return
        fi
    done
    die "GNU tar is needed for a reproducible archive (macOS: brew install gnu-tar)"
}

build_plugin() {
    local pinned platform exe bin name stage tar
    pinned=$(default_image)
    platform=$(platform_of "$target")
    # option_env! in plugin/src/session.rs reads it; cargo tracks the
    # variable, so a new image rebuilds the plugin.
    export NETDIAG_DEFAULT_IMAGE=$pinned
    exe=$(release_build kubectl-netdiag "$target" "$root/target/release-build/plugin")
    bin=kubectl-netdiag
    case $target in *-windows-*) bin=kubectl-netdiag.exe ;; esac
    name=$(archive_name "$platform")
    tar=$(gnu_tar)
    stage=$(mktemp -d)
    cp "$exe" "$stage/$bin"
    cp LICENSE "$stage/LICENSE"
    (
        cd "$stage"
        "$tar" --format=ustar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
            --mode='u=rwX,go=rX' -cf - "$bin" LICENSE
    ) | gzip -n -9 >"$dist/$name"
    rm -rf "$stage"
    (cd "$dist" && echo "$(sha256_of "$name")  $name" >"$name.sha256")
    echo "plugin: $dist/$name ($platform, default image $pinned)" >&2
}

# One platforms[] entry: the archive's real checksum when DIST has it,
# otherwise the not-built value, said so in a comment.
platform_entry() { # os/arch
    local os=${1%/*} arch=${1#*/} name sha bin=kubectl-netdiag
    [ "$os" = windows ] && bin=kubectl-netdiag.exe
    name=$(archive_name "$1")
    if [ -f "$dist/$name" ]; then
        sha=$(sha256_of "$dist/$name")
    else
        sha=$not_built
        cat <<EOF
    # $os/$arch: NOT BUILT by this run of release/build.sh, so no real
    # checksum exists here yet. The release workflow builds this archive on
    # a native runner and writes its sha256; until then krew refuses it.
EOF
    fi
    cat <<EOF
    - selector:
        matchLabels:
          os: $os
          arch: $arch
      uri: $repository/releases/download/$version/$name
      sha256: $sha
      bin: $bin
      files:
        - from: $bin
          to: .
        - from: LICENSE
          to: .
EOF
}

write_manifest() {
    local pinned built="" missing="" p
    pinned=$(default_image)
    for p in $platforms; do
        if [ -f "$dist/$(archive_name "$p")" ]; then built="$built $p"; else missing="$missing $p"; fi
    done
    [ -n "$built" ] || die "no archive in $dist: run release/build.sh plugin first"
    if $require_all && [ -n "$missing" ]; then
        die "archives missing from $dist (--require-all):$missing"
    fi
    local tmp=$manifest.tmp.$$
    {
        cat <<EOF
# krew plugin manifest of kubectl netdiag $version, written by release/build.sh
# (do not edit: run it again). Install from a downloaded archive with
#   kubectl krew install --manifest=krew-manifest.yaml --archive=ARCHIVE
#
# Agent image the plugin runs by default:
#   $pinned
# Archives with a real sha256:${built}
EOF
        if [ -n "$missing" ]; then
            cat <<EOF
# Not built by this run, so their sha256 is all zeros (no real value
# exists yet):${missing}
# .github/workflows/release.yml builds every archive on native runners
# and writes this file again with all checksums and the digest of the
# multi-arch agent image.
EOF
        fi
        cat <<EOF
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: netdiag
spec:
  version: $version
  homepage: $repository
  shortDescription: Run ss, dig, nc, tcpdump and more in any pod, even distroless
  description: |
    Network diagnostics inside any pod, even distroless ones: netdiag adds a
    tiny static agent (an image FROM scratch) to the pod as an ephemeral
    container in its network namespace and streams back the output of ss,
    nstat, dig, resolve, nc, paping and tcpdump, in the classic tools' own
    formats. Each tool gets only the privileges it needs; most run under
    Pod Security "restricted".

      kubectl netdiag web-7d9f ss -tlnp
      kubectl netdiag -n shop deploy/api resolve api.example.com
      kubectl netdiag web-7d9f tcpdump -i any -U -w - port 53 | wireshark -k -i -
  caveats: |
    netdiag adds an ephemeral container to the pod: Kubernetes 1.25 or later,
    and these permissions in the pod's namespace (the built-in admin and
    edit roles lack pods/ephemeralcontainers):
      pods: get, list, watch          pods/ephemeralcontainers: patch
      pods/attach: create, get        pods/log: get
    When one is missing, netdiag names it and prints a Role granting them.

    The node pulls the agent image
      $pinned
    Air-gapped or private registry: mirror that image, then pass --image or
    set NETDIAG_IMAGE. 'kubectl netdiag version' checks your cluster.
  platforms:
EOF
        for p in $platforms; do
            platform_entry "$p"
        done
    } >"$tmp"
    mv "$tmp" "$manifest"
    echo "manifest: $manifest (built:${built}${missing:+; not built:$missing})" >&2
}

case $command in
version) echo "$version" ;;
agent-binary) build_agent_binary ;;
agent-image) build_agent_image ;;
plugin) build_plugin ;;
manifest) write_manifest ;;
local)
    # An image given with --image is used as is; otherwise build it here.
    [ -n "$image" ] || build_agent_image
    build_plugin
    write_manifest
    ;;
esac
