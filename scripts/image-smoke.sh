#!/usr/bin/env bash
# Smoke test of the node image without Kubernetes (`make image-smoke`, after `make image`):
# 4 L1 validators and 1 L2 node on a podman network run a supplier and a warehouse session to
# the end (committed to L1, checked on every L1 node), then one L1 node is killed and another
# pair of sessions still commits on the remaining three.
#
# One podman pod per node, shaped like the operator's pod (operator/src/resources/statefulset.rs):
# the pod holds the network namespace (one address, host name = node name); `init` runs
# `bftws-node init` on the mounts the operator would make from its Secrets and ConfigMaps and
# exits; then `app` (`bftws-node run`) and, once its /healthz answers (the pod's startup probe),
# `cometbft` (`cometbft start`), sharing the data volume (the PVC) and the ABCI socket volume
# (the emptyDir); CometBFT's RPC stays on the pod's loopback. Every container runs as the
# image's non-root user with a read-only root filesystem and no capabilities, as in the pod.
# This is the shape the image is deployed in, so it is the shape tested: a single container
# running both processes behind a wrapper script would exercise a layout nothing deploys.
#
# The mounts come from `bftws-node cluster-files` (bftws-home, the code the operator uses);
# keys of the CometBFT nodes are fresh, tokens and the other keys are the devnet's DEMO ones.
# The podman network here has no DNS (CNI without the dnsname plugin), so every pod gets a fixed
# address on it and /etc/hosts entries for every node: stable names resolved once at start, as
# the per-pod Services give the L1 nodes in Kubernetes.
#
# Everything created (pods, containers, volumes, network, temporary files) is removed on exit,
# also on failure or Ctrl-C; on failure the last log lines of every container are printed first.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_IMAGE="${NODE_IMAGE:-localhost/bftws-node:dev}"
RUN_ID="bftws-smoke-$$"
NETWORK="$RUN_ID"
L1_NODES=(l1-0 l1-1 l1-2 l1-3)
L2_NODES=(l2-0)
NODES=("${L1_NODES[@]}" "${L2_NODES[@]}")
READY_TIMEOUT=${BFTWS_SMOKE_READY_TIMEOUT:-180}
# A read-only DEMO token (the auditor's, services/supply-chain/src/demo.rs).
READ_TOKEN=demo-auditor
# The node to kill: first in the L2 node's list of L1 APIs, so its commits must fail over.
VICTIM=l1-0
# What is killed: `pod` (default) SIGKILLs every container of the node's pod, infra container
# included, so its network namespace and address vanish as when a machine fails and peers'
# packets go unanswered (the L2 committer must give up on that address within its connect
# timeout and commit through another L1 node). `containers` SIGKILLs only the cometbft and app
# containers, as when a pod's containers crash: peers see the connections refused.
KILL=${BFTWS_SMOKE_KILL:-pod}

started=$SECONDS
say() { echo "image-smoke: $*" >&2; }
fail() {
  echo "image-smoke: FAILED: $*" >&2
  exit 1
}

case "$KILL" in containers | pod) ;; *) fail "BFTWS_SMOKE_KILL is containers or pod, not '$KILL'" ;; esac
[ "$(id -u)" = 0 ] || fail "rootful podman is used: run as root"
command -v podman >/dev/null || fail "podman is not installed (make image runs scripts/podman-setup.sh)"
command -v curl >/dev/null || fail "curl is required"
command -v jq >/dev/null || fail "jq is required"
podman image exists "$NODE_IMAGE" || fail "no image $NODE_IMAGE: run 'make image' first"

work=$(mktemp -d "${TMPDIR:-/tmp}/bftws-smoke.XXXXXX")
status=0
cleanup() {
  status=$?
  trap - EXIT INT TERM
  if [ "$status" != 0 ] && [ "$status" != 130 ]; then
    for node in "${NODES[@]}"; do
      for container in app cometbft; do
        name="$RUN_ID-$node-$container"
        podman container exists "$name" || continue
        echo "----- last lines of $node/$container -----" >&2
        podman logs --tail 25 "$name" 2>&1 | sed 's/^/  /' >&2 || true
      done
    done
  fi
  for node in "${NODES[@]}"; do
    podman pod rm -f "$RUN_ID-$node" >/dev/null 2>&1 || true
    podman volume rm -f "$RUN_ID-$node-data" "$RUN_ID-$node-socket" >/dev/null 2>&1 || true
  done
  podman rm -f "$RUN_ID-client" >/dev/null 2>&1 || true
  podman network rm -f "$NETWORK" >/dev/null 2>&1 || true
  rm -rf "$work"
  case "$status" in
    0) say "ok: cleaned up; $((SECONDS - started)) s in all" ;;
    130) say "interrupted; cleaned up" ;;
    *) say "cleaned up after the failure" ;;
  esac
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The mounts of every pod, written by the image's own binary (as the image's user).
mounts="$work/mounts"
mkdir -p "$mounts"
chown 10001:10001 "$mounts"
podman run --rm --network none -v "$mounts:/out" "$NODE_IMAGE" \
  bftws-node cluster-files --l1 "${#L1_NODES[@]}" --l2 "${#L2_NODES[@]}" --out /out >/dev/null

podman network create "$NETWORK" >/dev/null
subnet=$(podman network inspect --format '{{range .Subnets}}{{.Subnet}} {{end}}' "$NETWORK" | awk '{print $1}')
case "$subnet" in
  *.0/24) prefix=${subnet%.0/24} ;;
  *) fail "network $NETWORK has subnet '$subnet'; a /24 was expected" ;;
esac
declare -A IP
hosts=()
for i in "${!NODES[@]}"; do
  IP[${NODES[$i]}]="$prefix.$((i + 10))"
  hosts+=(--add-host "${NODES[$i]}:${IP[${NODES[$i]}]}")
done

# The restricted container settings of the operator's pods.
restricted=(--read-only --cap-drop ALL --security-opt no-new-privileges)

start_node() {
  local node=$1 layer=${1%%-*} ordinal=${1##*-} pod="$RUN_ID-$1"
  local data="$RUN_ID-$node-data:/var/lib/bftws" socket="$RUN_ID-$node-socket:/run/bftws"
  podman volume create "$RUN_ID-$node-data" >/dev/null
  podman volume create "$RUN_ID-$node-socket" >/dev/null
  podman pod create --name "$pod" --hostname "$node" --network "$NETWORK" --ip "${IP[$node]}" "${hosts[@]}" >/dev/null
  podman run --rm --pod "$pod" --name "$pod-init" "${restricted[@]}" -e "BFTWS_ORDINAL=$ordinal" \
    -v "$data" \
    -v "$mounts/$layer/keys:/etc/bftws/keys:ro" \
    -v "$mounts/$layer/genesis:/etc/bftws/genesis:ro" \
    -v "$mounts/$layer/layer:/etc/bftws/layer:ro" \
    "$NODE_IMAGE" /usr/local/bin/bftws-node init --manifest /etc/bftws/layer/layer.json --ordinal "$ordinal" >/dev/null ||
    fail "$node: bftws-node init failed"
  local l2_mounts=()
  [ "$layer" = l2 ] && l2_mounts=(-v "$mounts/commit-key:/etc/bftws/commit-key:ro" -v "$mounts/l1/genesis:/etc/bftws/l1-genesis:ro")
  podman run -d --pod "$pod" --name "$pod-app" "${restricted[@]}" -e NO_COLOR=1 \
    -v "$data" -v "$socket" -v "$mounts/tokens:/etc/bftws/tokens:ro" "${l2_mounts[@]}" \
    "$NODE_IMAGE" /usr/local/bin/bftws-node run --config /var/lib/bftws/node.json >/dev/null
}

start_cometbft() {
  local node=$1 pod="$RUN_ID-$1"
  podman run -d --pod "$pod" --name "$pod-cometbft" "${restricted[@]}" \
    -v "$RUN_ID-$node-data:/var/lib/bftws" -v "$RUN_ID-$node-socket:/run/bftws" \
    "$NODE_IMAGE" /usr/local/bin/cometbft start --home /var/lib/bftws/cometbft >/dev/null
}

# Waits until `GET path` on the node answers 200.
wait_http() {
  local node=$1 path=$2 deadline=$((SECONDS + READY_TIMEOUT))
  until curl -fsS -o /dev/null --max-time 2 "http://${IP[$node]}:8080$path" 2>/dev/null; do
    for container in app cometbft; do
      if podman container exists "$RUN_ID-$node-$container" &&
        [ "$(podman inspect --format '{{.State.Running}}' "$RUN_ID-$node-$container")" != true ]; then
        fail "$node: the $container container exited"
      fi
    done
    [ "$SECONDS" -lt "$deadline" ] || fail "$node: $path did not answer 200 within $READY_TIMEOUT s"
    sleep 0.5
  done
}

say "starting ${#L1_NODES[@]} L1 + ${#L2_NODES[@]} L2 node pods from $NODE_IMAGE on $NETWORK ($subnet)"
for node in "${NODES[@]}"; do start_node "$node"; done
for node in "${NODES[@]}"; do
  wait_http "$node" /healthz
  start_cometbft "$node"
done
for node in "${NODES[@]}"; do wait_http "$node" /readyz; done
say "all nodes ready after $((SECONDS - started)) s"

# One supplier and one warehouse session from a client container on the network.
run_sessions() {
  local package=$1
  podman run --rm --name "$RUN_ID-client" --network "$NETWORK" "$NODE_IMAGE" \
    bftws-node demo --api "http://${IP[l2-0]}:8080" --package-id "$package" ||
    fail "the sessions on $package did not complete"
}

# Every listed L1 node's state has the package processed: the warehouse session's commit
# (and before it the supplier's) reached L1 and was applied by every validator.
check_on_l1() {
  local package=$1 node reply state
  shift
  for node in "$@"; do
    reply=$(curl -sS --max-time 5 -H "authorization: Bearer $READ_TOKEN" "http://${IP[$node]}:8080/v1/packages/$package") ||
      fail "$node: GET /v1/packages/$package failed"
    state=$(jq -r '.data.status // "missing"' <<<"$reply")
    [ "$state" = processed ] || fail "$node: package $package is '$state' on L1, expected 'processed': $reply"
    say "  $node: $package processed at L1 height $(jq -r '.meta.height' <<<"$reply")"
  done
}

say "sessions 1: supplier + warehouse on PKG-SMOKE-1"
run_sessions PKG-SMOKE-1
check_on_l1 PKG-SMOKE-1 "${L1_NODES[@]}"

if [ "$KILL" = pod ]; then
  say "killing $VICTIM: SIGKILL to every container of its pod, network namespace included"
  podman pod kill "$RUN_ID-$VICTIM" >/dev/null
else
  # cometbft first: it exits by itself once its application is gone.
  say "killing $VICTIM: SIGKILL to its cometbft and app containers"
  podman kill "$RUN_ID-$VICTIM-cometbft" "$RUN_ID-$VICTIM-app" >/dev/null
fi
for container in app cometbft; do
  [ "$(podman inspect --format '{{.State.Running}}' "$RUN_ID-$VICTIM-$container")" = false ] ||
    fail "$VICTIM/$container still runs after the kill"
done
survivors=()
for node in "${L1_NODES[@]}"; do [ "$node" = "$VICTIM" ] || survivors+=("$node"); done

say "sessions 2: supplier + warehouse on PKG-SMOKE-2 with ${#survivors[@]} of ${#L1_NODES[@]} L1 validators"
run_sessions PKG-SMOKE-2
check_on_l1 PKG-SMOKE-2 "${survivors[@]}"
