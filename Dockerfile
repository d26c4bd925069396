# Container images of bftws, two targets:
#
#   node      CometBFT (the pinned v0.38.x, built with Go) and bftws-node. Every pod of a
#             BftWebService runs it three times: `bftws-node init`, `bftws-node run --config
#             /var/lib/bftws/node.json` and `cometbft start --home /var/lib/bftws/cometbft`
#             (operator/src/resources/statefulset.rs; paths in home/src/cluster.rs).
#   operator  bftws-operator (`bftws-operator run`).
#
# Both run as non-root users on a small Debian runtime, with release builds.
#
# On a machine that can pull from Docker Hub, this file builds as it is:
#
#   docker build --target node -t bftws-node .        (or: podman build ...)
#   docker build --target operator -t bftws-operator .
#
# `make image` (scripts/image-build.sh) builds this same file where no container registry can be
# reached: the three base images below are replaced (build args) by local ones made by
# scripts/podman-setup.sh from debootstrap, the builder image gets the host's Rust toolchain and
# Go bind-mounted at /opt/rust and /opt/go, and its cargo and Go caches are bind-mounted from
# ~/.cache/bftws/image/, so rebuilds after a source change are incremental. Nothing here depends
# on that: the builds use whatever `cargo` and `go` are on PATH and the caches their
# environment names.

ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

# CometBFT, the same pin as scripts/install-cometbft.sh (v0.38 is the ABCI 2.0 line bftws
# speaks; never @latest). Static (no cgo), so the runtime needs nothing for it.
FROM ${GO_IMAGE} AS cometbft
ARG COMETBFT_VERSION=v0.38.26
RUN GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN=/out \
      go install -trimpath -ldflags='-s -w' "github.com/cometbft/cometbft/cmd/cometbft@${COMETBFT_VERSION}" \
 && /out/cometbft version

# The workspace sources, shared by both Rust builds.
FROM ${RUST_IMAGE} AS rust-source
# The workspace's release profile keeps DWARF line tables (for host profiling and file:line in
# backtraces); they are 80% of each binary, so the images build without them by default
# (symbols stay: backtraces still name functions). --build-arg RELEASE_DEBUG=line-tables-only
# keeps them.
ARG RELEASE_DEBUG=false
ENV CARGO_PROFILE_RELEASE_DEBUG=${RELEASE_DEBUG}
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY framework framework
COPY home home
COPY node node
COPY operator operator
COPY services services

# Both binaries in one build: their shared dependencies compile once, and the second image
# reuses this stage.
FROM rust-source AS rust-build
RUN cargo build --release --locked -p bftws-node -p bftws-operator \
 && install -D -m 0755 "${CARGO_TARGET_DIR:-target}/release/bftws-node" /out/bftws-node \
 && install -D -m 0755 "${CARGO_TARGET_DIR:-target}/release/bftws-operator" /out/bftws-operator \
 && /out/bftws-node --version && /out/bftws-operator --version

# bftws-node needs only glibc and libgcc_s, which every Debian base has: nothing is installed.
FROM ${RUNTIME_IMAGE} AS node
# The user of the operator's pods (RUN_AS in operator/src/resources/statefulset.rs). The data
# and socket directories belong to it, so runtimes that copy an image directory into a new
# volume (podman, docker) give a writable volume; Kubernetes uses the pods' fsGroup instead.
RUN echo 'bftws:x:10001:10001:bftws node:/var/lib/bftws:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'bftws:x:10001:' >>/etc/group \
 && mkdir -p /var/lib/bftws /run/bftws \
 && chown 10001:10001 /var/lib/bftws /run/bftws
COPY --from=cometbft /out/cometbft /usr/local/bin/cometbft
COPY --from=rust-build /out/bftws-node /usr/local/bin/bftws-node
USER 10001:10001
WORKDIR /var/lib/bftws
# p2p, CometBFT metrics, the node's API.
EXPOSE 26656 26660 8080
CMD ["bftws-node", "--help"]

FROM ${RUNTIME_IMAGE} AS operator
# A distroless-style nonroot user, as the chart's podSecurityContext expects (65532).
RUN echo 'nonroot:x:65532:65532:bftws operator:/nonexistent:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'nonroot:x:65532:' >>/etc/group
COPY --from=rust-build /out/bftws-operator /usr/local/bin/bftws-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bftws-operator"]
CMD ["run"]
