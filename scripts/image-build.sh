#!/usr/bin/env bash
# Builds the container images from the Dockerfile with rootful podman, pulling nothing from a
# container registry: the base images are the local ones of scripts/podman-setup.sh (run first),
# the host's Rust toolchain and Go are bind-mounted into the builder (read-only), and cargo's
# registry and target directory and Go's module and build caches live under
# $BFTWS_CACHE/image/, so a rebuild after a source change recompiles only what changed.
#
#   scripts/image-build.sh [node|operator]...      (default: both)
#
# NODE_IMAGE and OPERATOR_IMAGE name the tags (localhost/bftws-node:dev,
# localhost/bftws-operator:dev). After each build the image's binaries are run once as its
# non-root user, and the node image's CometBFT version is checked against the project's pin.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_IMAGE="${NODE_IMAGE:-localhost/bftws-node:dev}"
OPERATOR_IMAGE="${OPERATOR_IMAGE:-localhost/bftws-operator:dev}"
CACHE_ROOT="${BFTWS_CACHE:-$HOME/.cache/bftws}"
BUILD_CACHE="$CACHE_ROOT/image"
BASE_IMAGE="${BFTWS_BASE_IMAGE:-localhost/bftws-base:bookworm}"
BUILDER_IMAGE="${BFTWS_BUILDER_IMAGE:-localhost/bftws-builder:bookworm}"
# The toolchains of the Dockerfile's default images (rust:1.95, golang:1.26), from the host.
RUST_VERSION=1.95.0
RUST_SYSROOT="${BFTWS_RUST_SYSROOT:-${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$RUST_VERSION-x86_64-unknown-linux-gnu}"
GO_ROOT="${BFTWS_GOROOT:-/usr/local/go}"
GO_SERIES=go1.26
# The pin of scripts/install-cometbft.sh (its line COMETBFT_VERSION="${COMETBFT_VERSION:-vX.Y.Z}").
# shellcheck disable=SC2016 # the $ and braces are the text searched for
COMETBFT_VERSION=$(sed -n 's/^COMETBFT_VERSION="${COMETBFT_VERSION:-\(v[0-9.]*\)}"$/\1/p' scripts/install-cometbft.sh)

die() {
  echo "image-build: error: $*" >&2
  exit 1
}

targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(node operator)
for target in "${targets[@]}"; do
  case "$target" in
    node | operator) ;;
    *) die "unknown target $target (node or operator)" ;;
  esac
done

if [ ! -x "$RUST_SYSROOT/bin/cargo" ] || [ ! -x "$RUST_SYSROOT/bin/rustc" ]; then
  die "no Rust $RUST_VERSION toolchain at $RUST_SYSROOT (rustup toolchain install $RUST_VERSION, or set BFTWS_RUST_SYSROOT)"
fi
[ -x "$GO_ROOT/bin/go" ] || die "no Go at $GO_ROOT (set BFTWS_GOROOT)"
go_version=$("$GO_ROOT/bin/go" env GOVERSION)
case "$go_version" in
  "$GO_SERIES" | "$GO_SERIES".*) ;;
  *) die "Go at $GO_ROOT is $go_version; the images are built with $GO_SERIES (set BFTWS_GOROOT)" ;;
esac
[ -n "$COMETBFT_VERSION" ] || die "cannot read the CometBFT pin from scripts/install-cometbft.sh"

./scripts/podman-setup.sh
# crates.io and the Go module proxy are reached over TLS: the builds trust what the host trusts
# (which includes the CA of a TLS-intercepting egress proxy where there is one). Mounted only
# while building; the images keep no CA bundle of this machine.
HOST_CA_BUNDLE="${BFTWS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
ca_bundle=()
[ -f "$HOST_CA_BUNDLE" ] && ca_bundle=(--volume "$HOST_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
mkdir -p "$BUILD_CACHE/cargo" "$BUILD_CACHE/target" "$BUILD_CACHE/go"

for target in "${targets[@]}"; do
  case "$target" in
    node) tag=$NODE_IMAGE ;;
    operator) tag=$OPERATOR_IMAGE ;;
  esac
  echo "image-build: building $tag (target $target) ..." >&2
  started=$SECONDS
  podman build \
    --pull=never \
    --target "$target" \
    --tag "$tag" \
    --build-arg RUST_IMAGE="$BUILDER_IMAGE" \
    --build-arg GO_IMAGE="$BUILDER_IMAGE" \
    --build-arg RUNTIME_IMAGE="$BASE_IMAGE" \
    --build-arg COMETBFT_VERSION="$COMETBFT_VERSION" \
    --volume "$RUST_SYSROOT:/opt/rust:ro" \
    --volume "$GO_ROOT:/opt/go:ro" \
    --volume "$BUILD_CACHE/cargo:/cache/cargo" \
    --volume "$BUILD_CACHE/target:/cache/target" \
    --volume "$BUILD_CACHE/go:/cache/go" \
    "${ca_bundle[@]}" \
    .
  case "$target" in
    node)
      version=$(podman run --rm "$tag" cometbft version)
      [ "v$version" = "$COMETBFT_VERSION" ] || die "$tag has cometbft $version, the pin is $COMETBFT_VERSION"
      podman run --rm "$tag" bftws-node --version >/dev/null
      ;;
    operator) podman run --rm "$tag" --version >/dev/null ;;
  esac
  user=$(podman image inspect --format '{{.Config.User}}' "$tag")
  case "$user" in
    "" | 0 | 0:* | root | root:*) die "$tag runs as root" ;;
  esac
  size=$(podman image inspect --format '{{.Size}}' "$tag")
  echo "image-build: $tag built in $((SECONDS - started)) s ($((size / 1000000)) MB, user $user)" >&2
done
