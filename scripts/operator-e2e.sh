#!/usr/bin/env bash
# The operator against a real kube-apiserver (with kwok fake nodes), under
#   scripts/k8s-testenv.sh run DIR -- scripts/operator-e2e.sh
# which sets KUBECONFIG and puts kubectl on PATH. The chart is linted, rendered, dry-run on the
# server and installed with Helm; two real operator processes then run on this host with the
# chart's ServiceAccount (its RBAC is all they have) and elect one leader. Every check fails the
# run with a message.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
OPERATOR="$TARGET/bftws-operator"
NODE="$TARGET/bftws-node"
CHART="$ROOT/charts/bftws-operator"
HELM=$("$ROOT/scripts/install-helm.sh")
WORK=$(mktemp -d)
NS=shop
# The operator's release: `helm install bftws-operator` names everything bftws-operator.
OPNS=bftws-system
RELEASE=bftws-operator
LEASE=bftws-operator-leader
fail() {
  echo "operator-e2e: FAIL: $*" >&2
  for log in "$WORK"/op-*.log; do [ -f "$log" ] && { echo "--- $(basename "$log"):" >&2; tail -20 "$log" >&2; }; done
  if [ -n "${OPERATOR_IMAGE:-}" ] && podman container exists "$CONTAINER" 2>/dev/null; then
    echo "--- op-b ($OPERATOR_IMAGE):" >&2
    podman logs --tail 20 "$CONTAINER" >&2 || true
  fi
  exit 1
}
ok() { echo "operator-e2e: ok: $*"; }
k() { kubectl -n "$NS" "$@"; }
# Waits up to $1 seconds for the command after it to succeed.
until_ok() { local t=$1; shift; for _ in $(seq 1 "$t"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done; return 1; }
jp() { k get "$1" -o "jsonpath=$2" 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

for binary in "$OPERATOR" "$NODE"; do
  [ -x "$binary" ] || fail "build it first (make dev-build): $binary"
done

# Operator replicas: name -> pid (or container) and metrics port. Each runs as the chart's
# ServiceAccount. With OPERATOR_IMAGE set (make e2e sets it), replica op-b runs from the operator
# image under podman, on the host network: the image itself is tested against the apiserver.
OPERATOR_IMAGE=${OPERATOR_IMAGE:-}
CONTAINER="bftws-e2e-op-b-$$"
declare -A pids ports
start_operator() { # start_operator NAME
  local name=$1
  ports[$name]=$(free_port)
  local args=(run --listen "127.0.0.1:${ports[$name]}" --lease-name "$LEASE")
  if [ "$name" = op-b ] && [ -n "$OPERATOR_IMAGE" ]; then
    podman rm -f "$CONTAINER" >/dev/null 2>&1 || true
    podman run -d --name "$CONTAINER" --network host --read-only \
      -v "$WORK/operator.kubeconfig:/etc/bftws/kubeconfig:ro" -e KUBECONFIG=/etc/bftws/kubeconfig \
      -e POD_NAME="$name" -e POD_NAMESPACE="$OPNS" "$OPERATOR_IMAGE" "${args[@]}" >/dev/null ||
      fail "cannot start $OPERATOR_IMAGE"
    pids[$name]=container
    return
  fi
  POD_NAME=$name POD_NAMESPACE=$OPNS KUBECONFIG="$WORK/operator.kubeconfig" \
    "$OPERATOR" "${args[@]}" >>"$WORK/op-$name.log" 2>&1 &
  pids[$name]=$!
}
stop_operator() { # stop_operator NAME [SIGNAL]
  local name=$1 pid=${pids[$1]:-}
  [ -n "$pid" ] || return 0
  if [ "$pid" = container ]; then
    podman kill --signal "${2:-TERM}" "$CONTAINER" >/dev/null 2>&1 || true
    podman wait "$CONTAINER" >/dev/null 2>&1 || true
    podman logs "$CONTAINER" >>"$WORK/op-$name.log" 2>&1 || true
    podman rm -f "$CONTAINER" >/dev/null 2>&1 || true
  else
    kill "-${2:-TERM}" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  pids[$name]=
}
stop_all() { local name; for name in "${!pids[@]}"; do stop_operator "$name"; done; }
trap 'stop_all; rm -rf "$WORK"' EXIT
# Output is captured before grep: under pipefail, `grep -q` closing a pipe early fails the writer.
is_leader() { local metrics; metrics=$(curl -sf "http://127.0.0.1:${ports[$1]}/metrics") && grep -qx 'bftws_operator_leader 1' <<<"$metrics"; }
holder() { kubectl -n "$OPNS" get lease "$LEASE" -o 'jsonpath={.spec.holderIdentity}' 2>/dev/null; }
# Exactly one running replica says it leads, and it is the Lease's holder; prints its name.
one_leader() {
  local name leaders=()
  for name in "${!pids[@]}"; do [ -n "${pids[$name]}" ] && is_leader "$name" && leaders+=("$name"); done
  [ "${#leaders[@]}" = 1 ] && [ "$(holder)" = "${leaders[0]}" ] && echo "${leaders[0]}"
}

# ---- Helm: lint, render, server-side dry-run, install -------------------------------------------
"$HELM" lint --strict "$CHART" >/dev/null || fail "helm lint $CHART"
all_on=metrics.serviceMonitor.enabled=true,metrics.podMonitor.enabled=true,metrics.prometheusRule.enabled=true
"$HELM" lint --strict "$CHART" --set "$all_on,watchNamespace=$NS" >/dev/null || fail "helm lint with every option on"
rendered=$("$HELM" template "$RELEASE" "$CHART" -n "$OPNS" --set "$all_on,watchNamespace=$NS")
for kind in ServiceMonitor PodMonitor PrometheusRule Role RoleBinding Deployment ConfigMap PodDisruptionBudget; do
  grep -q "^kind: $kind\$" <<<"$rendered" || fail "helm template with every option on renders no $kind"
done
if grep -q '^kind: ClusterRole' <<<"$rendered"; then fail "watchNamespace still renders a ClusterRole"; fi
if out=$("$HELM" template "$RELEASE" "$CHART" --set replicaCount=2,leaderElection.enabled=false 2>&1); then
  fail "two replicas without leader election rendered"
fi
grep -q "needs leaderElection.enabled" <<<"$out" || fail "unclear refusal: $out"
# values.schema.json refuses bad values before anything renders, naming the value.
for bad in replicaCount=0 logFormat=xml watchNamespace=Bad_NS metrics.podMonitor.interval=soon image.tagg=1; do
  if out=$("$HELM" template "$RELEASE" "$CHART" --set "$bad" 2>&1); then fail "helm accepted --set $bad"; fi
  leaf=${bad%%=*} && leaf=${leaf##*.}
  grep -q "values don't meet the specifications" <<<"$out" && grep -q "$leaf" <<<"$out" ||
    fail "the refusal of --set $bad does not name it: $out"
done
kubectl create namespace "$OPNS" >/dev/null
dry_run() { local out; out=$(kubectl apply --dry-run=server "$@" 2>&1) || fail "kubectl apply --dry-run=server $*: $out"; }
"$HELM" template "$RELEASE" "$CHART" -n "$OPNS" --include-crds >"$WORK/chart.yaml"
dry_run -f "$WORK/chart.yaml"
dry_run -f "$ROOT/manifests/install.yaml"
ok "helm lint and template pass, bad values are refused by the schema; the rendered chart and manifests/install.yaml pass kubectl apply --dry-run=server"
"$HELM" install "$RELEASE" "$CHART" -n "$OPNS" --set image.repository=localhost/bftws-operator,image.tag=dev \
  --wait --timeout 120s >/dev/null || fail "helm install"
[ "$(kubectl -n "$OPNS" get deploy "$RELEASE" -o 'jsonpath={.status.readyReplicas}')" = 2 ] ||
  fail "the chart's Deployment has no 2 ready replicas"
ok "helm install: the CRD and 2 operator replicas, ready (kwok runs the pods)"

# The CRD (installed by the chart) works; kubectl shows its schema and printer columns.
kubectl wait --for condition=established --timeout=30s crd/bftwebservices.bftws.io >/dev/null
# The CRD's schema reaches kubectl's OpenAPI view a moment after the CRD is established.
explains_l1() { local doc; doc=$(kubectl explain bftws.spec 2>&1) && grep -q '^  l1' <<<"$doc"; }
until_ok 30 explains_l1 || fail "kubectl explain bftws.spec shows no spec.l1: $(kubectl explain bftws.spec 2>&1 | head -20)"
kubectl create namespace "$NS" >/dev/null
k get bftws >/dev/null || fail "kubectl get bftws"
dry_run -f "$ROOT/manifests/sample-bftwebservice.yaml"
ok "CRD installed, explain and get work; the sample BftWebService passes the server-side dry-run"

# The operator's credentials: a token of the chart's ServiceAccount, nothing else.
token=$(kubectl -n "$OPNS" create token "$RELEASE" --duration=2h)
kubectl config view --minify --raw --flatten >"$WORK/operator.kubeconfig"
KUBECONFIG="$WORK/operator.kubeconfig" kubectl config set-credentials operator --token="$token" >/dev/null
KUBECONFIG="$WORK/operator.kubeconfig" kubectl config set-context --current --user=operator >/dev/null
chmod 0644 "$WORK/operator.kubeconfig" # the image's non-root user reads it; $WORK itself is private
can() { KUBECONFIG="$WORK/operator.kubeconfig" kubectl auth can-i "$@" 2>/dev/null; }
[ "$(can patch statefulsets -n "$NS")" = yes ] || fail "the chart's RBAC cannot patch StatefulSets"
for denied in "list secrets -n $NS" "delete statefulsets -n $NS" "delete secrets -n $NS" "create pods -n $NS" \
  "update leases -n $NS"; do
  # shellcheck disable=SC2086
  [ "$(can $denied)" = no ] || fail "the chart's RBAC allows more than it needs: $denied"
done
ok "the chart's RBAC is least privilege (no secret listing, no deletes, leases only in $OPNS)"

# Two replicas elect exactly one leader.
# op-b first, so that with OPERATOR_IMAGE the image's replica leads while the deployment is
# created; after the two leader changes below it leads again for the Delete case.
start_operator op-b
sleep 1
start_operator op-a
until_ok 30 one_leader || fail "two replicas did not elect exactly one leader (holder: $(holder))"
leader=$(one_leader)
ok "two operator replicas${OPERATOR_IMAGE:+ (op-b from $OPERATOR_IMAGE)}: exactly one leader ($leader)"

cat >"$WORK/demo.yaml" <<'YAML'
apiVersion: bftws.io/v1alpha1
kind: BftWebService
metadata: {name: demo-ws, namespace: shop}
spec:
  image: registry.example/bftws-node:test
  l1: {replicas: 4}
  l2: {replicas: 1, validators: 1}
YAML

# Invalid specs are refused at admission with a readable message.
if out=$(sed 's/validators: 1/validators: 3/' "$WORK/demo.yaml" | kubectl apply -f - 2>&1); then fail "l2.validators > replicas accepted"; fi
grep -q "validators must be at most" <<<"$out" || fail "unclear refusal: $out"
if out=$(sed 's/replicas: 4/replicas: -1/' "$WORK/demo.yaml" | kubectl apply -f - 2>&1); then fail "negative l1.replicas accepted"; fi
ok "invalid specs refused: ${out:0:120}"

# A 4-1 BftWebService becomes its objects and goes Ready as kwok runs its pods.
k apply -f "$WORK/demo.yaml" >/dev/null
until_ok 60 k get statefulset demo-ws-l1 demo-ws-l2 || fail "StatefulSets not created"
for object in secret/demo-ws-l1-keys secret/demo-ws-l2-keys secret/demo-ws-l2-commit-key configmap/demo-ws-l1-genesis \
  configmap/demo-ws-l2-genesis service/demo-ws-l1-headless service/demo-ws-l2-api service/demo-ws-l1-api \
  service/demo-ws-l1-0 service/demo-ws-l1-3 poddisruptionbudget/demo-ws-l1 poddisruptionbudget/demo-ws-l2; do
  k get "$object" >/dev/null || fail "missing $object"
done
[ "$(jp sts/demo-ws-l1 '{.spec.replicas}')" = 4 ] || fail "L1 StatefulSet replicas"
[ "$(jp pdb/demo-ws-l1 '{.spec.maxUnavailable}')" = 1 ] || fail "PDB maxUnavailable is not f = 1"
[ "$(jp pdb/demo-ws-l2 '{.spec.maxUnavailable}/{.spec.selector.matchExpressions[0].values}')" = '0/["0"]' ] ||
  fail "the L2 PDB does not cover exactly the L2 validator with f = 0: $(jp pdb/demo-ws-l2 '{.spec}')"
# The genesis lists the 4 validators of the key Secret, and each pod's init (the real
# `bftws-node init`, fed the objects as the pod mounts them) makes a node whose persistent peers
# are the 3 others' node ids at their per-pod Service names.
mkdir -p "$WORK/mounts"
k get secret demo-ws-l1-keys -o json >"$WORK/mounts/keys.json"
k get configmap demo-ws-l1-genesis -o json >"$WORK/mounts/genesis.json"
k get configmap demo-ws-l1-layer -o json >"$WORK/mounts/layer.json"
python3 - "$WORK/mounts" <<'PY' || fail "cannot lay out the L1 pod mounts"
import base64, json, os, sys
root = sys.argv[1]
load = lambda name: json.load(open(os.path.join(root, name)))
os.makedirs(os.path.join(root, "keys"), exist_ok=True)
for key, value in load("keys.json")["data"].items():
    open(os.path.join(root, "keys", key), "wb").write(base64.b64decode(value))
open(os.path.join(root, "genesis.json.file"), "w").write(load("genesis.json")["data"]["genesis.json"])
open(os.path.join(root, "layer.json.file"), "w").write(load("layer.json")["data"]["layer.json"])
PY
for i in 0 1 2 3; do
  "$NODE" init --ordinal "$i" --manifest "$WORK/mounts/layer.json.file" --genesis "$WORK/mounts/genesis.json.file" \
    --keys-dir "$WORK/mounts/keys" --data-dir "$WORK/pod-$i" >/dev/null 2>"$WORK/init-$i.log" ||
    fail "bftws-node init --ordinal $i: $(cat "$WORK/init-$i.log")"
done
services=$(k get services -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}')
python3 - "$WORK" "$NS" "$services" <<'PY' || fail "L1 genesis, keys and peers disagree"
import base64, hashlib, json, os, re, sys
work, ns, services = sys.argv[1], sys.argv[2], set(sys.argv[3].split())
keys = os.path.join(work, "mounts", "keys")
def public(key_file):
    return json.load(open(os.path.join(keys, key_file)))["pub_key"]["value"]
def node_id(key_file):
    raw = base64.b64decode(json.load(open(os.path.join(keys, key_file)))["priv_key"]["value"])
    return hashlib.sha256(raw[32:]).hexdigest()[:40]
genesis = json.load(open(os.path.join(work, "mounts", "genesis.json.file")))
in_genesis = sorted(v["pub_key"]["value"] for v in genesis["validators"])
in_secret = sorted(public(f"priv-validator-key-{i}.json") for i in range(4))
assert in_genesis == in_secret, f"genesis validators {in_genesis} != Secret keys {in_secret}"
ids = {i: node_id(f"node-key-{i}.json") for i in range(4)}
for i in range(4):
    home = os.path.join(work, f"pod-{i}", "cometbft")
    config = open(os.path.join(home, "config", "config.toml")).read()
    peers = set(re.search(r'^persistent_peers = "(.*)"$', config, re.M).group(1).split(","))
    want = {f"{ids[j]}@demo-ws-l1-{j}.{ns}.svc:26656" for j in range(4) if j != i}
    assert peers == want, f"pod {i} peers {sorted(peers)} != {sorted(want)}"
    for j in range(4):
        assert f"demo-ws-l1-{j}" in services, f"no Service demo-ws-l1-{j} behind peer address of ordinal {j}"
    validator = json.load(open(os.path.join(home, "config", "priv_validator_key.json")))["pub_key"]["value"]
    assert validator == public(f"priv-validator-key-{i}.json"), f"pod {i} validator key is not ordinal {i}'s"
print("genesis validators = Secret keys; every pod peers with the other 3 at their stable Service names")
PY
ok "L1 genesis holds the 4 Secret validator keys; init wires each pod to the 3 others' Service addresses"
ready() { [ "$(jp "bftws/${1:-demo-ws}" '{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
until_ok 120 ready || fail "never Ready: $(k get bftws demo-ws -o jsonpath='{.status.conditions}')"
k get bftws demo-ws
ok "4-1 objects created and Ready"

# kubectl scale changes only L2.
l1_version=$(jp sts/demo-ws-l1 '{.metadata.resourceVersion}')
k scale bftws/demo-ws --replicas=3 >/dev/null
l2_scaled() { [ "$(jp sts/demo-ws-l2 '{.spec.replicas}')" = 3 ]; }
until_ok 30 l2_scaled || fail "L2 StatefulSet not scaled to 3"
[ "$(jp sts/demo-ws-l1 '{.metadata.resourceVersion}')" = "$l1_version" ] || fail "scaling L2 touched the L1 StatefulSet"
if out=$(k patch bftws demo-ws --type merge -p '{"spec":{"l1":{"replicas":7}}}' 2>&1); then fail "l1.replicas change accepted"; fi
grep -q "immutable" <<<"$out" || fail "unclear refusal: $out"
ok "scale touches only L2; l1.replicas is immutable"

# Restarting the operator changes nothing: the leader steps down (SIGTERM releases the Lease),
# the standby takes over at once and finds everything as it should be.
until_ok 60 ready || fail "not Ready after scaling"
sleep 2
snapshot() { k get statefulset,service,configmap,secret,pdb -o 'jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}' | sort; }
before=$(snapshot)
leader=$(one_leader) || fail "no single leader before the restart"
stop_operator "$leader"
until_ok 20 one_leader || fail "the standby did not take over a released Lease"
standby=$(one_leader)
start_operator "$leader"
sleep 8
[ "$(snapshot)" = "$before" ] || fail "the new leader changed objects: $(diff <(echo "$before") <(snapshot) || true)"
[ "$(one_leader)" = "$standby" ] || fail "the restarted replica took the Lease from the leader"
ok "leader $leader stopped: $standby took over at once and changed nothing; $leader rejoined as standby"

# A leader that dies without releasing the Lease is replaced once the Lease expires (15 s).
stop_operator "$standby" KILL
until_ok 40 one_leader || fail "no takeover after the leader was killed (holder: $(holder))"
ok "leader $standby killed: $(one_leader) took over after the Lease expired"

# Deleting with deletionPolicy Retain: owned objects go; keys, genesis and volumes stay.
k delete bftws demo-ws --wait=true >/dev/null
gone() { ! k get statefulset demo-ws-l1 >/dev/null 2>&1; }
until_ok 60 gone || fail "StatefulSets not garbage-collected"
for object in secret/demo-ws-l1-keys secret/demo-ws-l2-keys secret/demo-ws-l2-commit-key configmap/demo-ws-l1-genesis \
  configmap/demo-ws-l2-genesis pvc/data-demo-ws-l1-0; do
  k get "$object" >/dev/null || fail "Retain lost $object"
done
absent() { ! k get "$1" >/dev/null 2>&1; }
for object in service/demo-ws-l1-0 configmap/demo-ws-l1-layer pdb/demo-ws-l1; do
  until_ok 60 absent "$object" || fail "Retain kept the owned $object"
done
ok "delete with Retain keeps keys, geneses and volumes, removes the rest"

# Deleting with deletionPolicy Delete: everything of the deployment goes, keys and volumes too.
{ sed -e 's/demo-ws/gone-ws/' -e 's/l1: {replicas: 4}/l1: {replicas: 1}/' "$WORK/demo.yaml"; echo "  deletionPolicy: Delete"; } |
  k apply -f - >/dev/null
until_ok 60 k get secret/gone-ws-l1-keys configmap/gone-ws-l1-genesis statefulset/gone-ws-l1 pvc/data-gone-ws-l1-0 ||
  fail "gone-ws objects not created"
# Deleted only once Ready: a StatefulSet deleted within a second of its claims' creation can
# lose the claims' owner reference in the StatefulSet controller and leave them behind.
until_ok 120 ready gone-ws || fail "gone-ws never Ready"
left() { k get secret,configmap,service,statefulset,pdb,pvc -l app.kubernetes.io/instance=gone-ws -o name; }
[ -n "$(left)" ] || fail "gone-ws objects carry no instance label"
k delete bftws gone-ws --wait=true >/dev/null
none_left() { [ -z "$(left)" ] && absent pvc/data-gone-ws-l1-0 && absent secret/gone-ws-l1-keys; }
until_ok 90 none_left || fail "Delete left objects behind: $(left | tr '\n' ' ')"
ok "delete with Delete removes keys, geneses, volumes and everything else"
echo "operator-e2e: all checks passed"
