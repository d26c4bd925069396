#!/usr/bin/env bash
# Prepares rootful podman to build and run the bftws images on a machine that cannot pull from a
# container registry (only the Debian archive, crates.io and the Go module proxy are reachable).
# Idempotent and quick when warm (it only checks); prints nothing but progress notes on stderr.
#
#   1. podman, runc, catatonit, debootstrap, curl and jq from Debian (apt-get, when missing);
#   2. /etc/containers/containers.conf: runc (crun refuses this machine's mixed cgroup v1/v2
#      hierarchy) and default ulimits under the 20000 hard nofile limit (podman's default asks
#      for 1048576 and the container fails to start); only these keys are touched;
#   3. the base image $BFTWS_BASE_IMAGE (localhost/bftws-base:bookworm): Debian bookworm from
#      `debootstrap --variant=minbase` (what the official debian images are made from), with
#      bookworm-updates and security applied and docs/man pages/locales left out, imported
#      with `podman import`. The rootfs tarball is cached under $BFTWS_CACHE/image/, so a wiped
#      podman store re-imports it in seconds instead of running debootstrap again;
#   4. the builder image $BFTWS_BUILDER_IMAGE: the base plus gcc, libc6-dev, pkg-config and
#      ca-certificates. It holds no toolchain: scripts/image-build.sh mounts the host's Rust
#      toolchain at /opt/rust and Go at /opt/go (both on its PATH), and the cargo and Go caches
#      its environment names (/cache/...) from $BFTWS_CACHE/image/.
#
# The base follows the bookworm suite (and its security updates) as of the day it was bootstrapped;
# the cached tarball freezes that content. BFTWS_BASE_REFRESH=1 (or deleting the tarball)
# bootstraps a fresh one with the newer packages.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
CACHE_ROOT="${BFTWS_CACHE:-$HOME/.cache/bftws}"
IMAGE_CACHE="$CACHE_ROOT/image"
ROOTFS_TAR="$IMAGE_CACHE/debian-$SUITE-minbase.tar.gz"
BASE_IMAGE="${BFTWS_BASE_IMAGE:-localhost/bftws-base:$SUITE}"
BUILDER_IMAGE="${BFTWS_BUILDER_IMAGE:-localhost/bftws-builder:$SUITE}"
CONTAINERS_CONF=/etc/containers/containers.conf
# Packages of the builder image (see builder_containerfile).
BUILDER_PACKAGES="gcc libc6-dev pkg-config ca-certificates"

note() { echo "podman-setup: $*" >&2; }
die() {
  echo "podman-setup: error: $*" >&2
  exit 1
}

# Temporary directories, removed on exit (also on failure).
scratch=()
trap 'rm -rf "${scratch[@]}" "$ROOTFS_TAR.tmp" "$CONTAINERS_CONF.tmp"' EXIT

[ "$(id -u)" = 0 ] || die "rootful podman is used: run as root (sudo $0)"

# 1. Packages.
missing=()
# catatonit: podman builds the pods' infra (pause) image locally from it instead of pulling one.
# curl and jq: the smoke test's client side.
for pkg in podman runc catatonit debootstrap curl jq; do
  [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  note "installing ${missing[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. containers.conf: set `key = value` in `[section]`, leaving every other line as it is.
ensure_conf() {
  local section=$1 key=$2 value=$3 line
  line="$key = $value"
  mkdir -p "$(dirname "$CONTAINERS_CONF")"
  touch "$CONTAINERS_CONF"
  # Two passes over the file: the first finds whether the key is set in the section.
  awk -v sec="$section" -v key="$key" -v line="$line" '
    function is_header(s) { return s ~ /^[[:space:]]*\[/ }
    function is_section(s, t) { t = s; gsub(/[[:space:]]/, "", t); return t == "[" sec "]" }
    function is_key(s) { return s ~ ("^[[:space:]]*" key "[[:space:]]*=") }
    FNR == 1 { in_section = 0 }
    NR == FNR {
      if (is_header($0)) { in_section = is_section($0); seen = seen || in_section }
      else if (in_section && is_key($0)) { has_key = 1 }
      next
    }
    is_header($0) {
      in_section = is_section($0); print
      if (in_section && !has_key && !done) { print line; done = 1 }
      next
    }
    in_section && is_key($0) { if (!done) { print line; done = 1 }; next }
    { print }
    END { if (!seen) { if (NR > 0) print ""; print "[" sec "]"; print line } }
  ' "$CONTAINERS_CONF" "$CONTAINERS_CONF" >"$CONTAINERS_CONF.tmp"
  if cmp -s "$CONTAINERS_CONF" "$CONTAINERS_CONF.tmp"; then
    rm "$CONTAINERS_CONF.tmp"
  else
    mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"
    note "set [$section] $line in $CONTAINERS_CONF"
  fi
}
ensure_conf containers default_ulimits '["nofile=20000:20000", "nproc=32768:32768"]'
ensure_conf engine runtime '"runc"'

# 3. Base image.
bootstrap_rootfs() {
  local root
  root=$(mktemp -d "${TMPDIR:-/tmp}/bftws-rootfs.XXXXXX")
  scratch+=("$root")
  note "debootstrap --variant=minbase $SUITE from $MIRROR (a few minutes) ..."
  local started=$SECONDS
  # Like the official images: no documentation, man pages or translations, no apt caches.
  mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
  cat >"$root/etc/dpkg/dpkg.cfg.d/bftws-slim" <<'EOF'
# bftws base image: keep it small (as in the official debian slim images).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
  local log="$IMAGE_CACHE/debootstrap.log"
  mkdir -p "$IMAGE_CACHE"
  debootstrap --variant=minbase --force-check-gpg "$SUITE" "$root" "$MIRROR" >"$log" 2>&1 ||
    { tail -20 "$log" >&2; die "debootstrap failed; see $log"; }
  cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  cat >"$root/etc/apt/apt.conf.d/bftws-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
EOF
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # Security and point-release updates; apt runs as root in the chroot (no _apt sandbox user).
  local apt=(chroot "$root" apt-get -qq -o APT::Sandbox::User=root)
  { "${apt[@]}" update && DEBIAN_FRONTEND=noninteractive "${apt[@]}" -y upgrade && "${apt[@]}" clean; } >>"$log" 2>&1 ||
    { tail -20 "$log" >&2; die "apt-get upgrade in the new rootfs failed; see $log"; }
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
  : >"$root/etc/resolv.conf"
  echo "bftws" >"$root/etc/hostname"
  tar --numeric-owner -C "$root" -czf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  note "rootfs cached at $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1), $((SECONDS - started)) s)"
}

if [ "${BFTWS_BASE_REFRESH:-0}" = 1 ]; then
  rm -f "$ROOTFS_TAR"
  podman image rm -f "$BASE_IMAGE" "$BUILDER_IMAGE" >/dev/null 2>&1 || true
fi
if ! podman image exists "$BASE_IMAGE"; then
  [ -f "$ROOTFS_TAR" ] || bootstrap_rootfs
  note "importing $ROOTFS_TAR as $BASE_IMAGE"
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --message "debootstrap --variant=minbase $SUITE $MIRROR" \
    "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
fi

# 4. Builder image (toolchains are mounted at build time, see scripts/image-build.sh). Its label
# is a hash of its Containerfile and base, so changing either rebuilds it.
builder_containerfile() {
  cat <<EOF
FROM $BASE_IMAGE
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $BUILDER_PACKAGES \\
 && rm -rf /var/lib/apt/lists/*
# scripts/image-build.sh bind-mounts the host's Rust toolchain at /opt/rust, Go at /opt/go and
# the caches below from \$BFTWS_CACHE/image/.
ENV PATH=/opt/rust/bin:/opt/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    CARGO_HOME=/cache/cargo CARGO_TARGET_DIR=/cache/target \\
    GOMODCACHE=/cache/go/mod GOCACHE=/cache/go/build GOFLAGS=-modcacherw
EOF
}
builder_hash=$({ builder_containerfile; podman image inspect --format '{{.Id}}' "$BASE_IMAGE"; } | sha256sum | cut -c1-16)
current=$(podman image inspect --format '{{index .Labels "io.bftws.builder"}}' "$BUILDER_IMAGE" 2>/dev/null || true)
if [ "$current" != "$builder_hash" ]; then
  note "building $BUILDER_IMAGE ($BUILDER_PACKAGES)"
  context=$(mktemp -d "${TMPDIR:-/tmp}/bftws-builder.XXXXXX")
  scratch+=("$context")
  { builder_containerfile; echo "LABEL io.bftws.builder=$builder_hash"; } >"$context/Containerfile"
  podman build --quiet --pull=never --tag "$BUILDER_IMAGE" "$context" >/dev/null || die "building $BUILDER_IMAGE failed"
fi
