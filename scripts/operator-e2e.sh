#!/usr/bin/env bash
# The operator against a real kube-apiserver (with kwok fake nodes), under
#   scripts/k8s-testenv.sh run DIR -- scripts/operator-e2e.sh
# which sets KUBECONFIG and puts kubectl on PATH. Every check fails the run with a message.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OPERATOR="${CARGO_TARGET_DIR:-$ROOT/target}/debug/bftws-operator"
WORK=$(mktemp -d)
NS=shop
fail() { echo "operator-e2e: FAIL: $*" >&2; echo "--- operator log:" >&2; tail -30 "$WORK/operator.log" >&2 || true; exit 1; }
ok() { echo "operator-e2e: ok: $*"; }
k() { kubectl -n "$NS" "$@"; }
# Waits up to $1 seconds for the command after it to succeed.
until_ok() { local t=$1; shift; for _ in $(seq 1 "$t"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done; return 1; }
jp() { k get "$1" -o "jsonpath=$2" 2>/dev/null; }

[ -x "$OPERATOR" ] || fail "build the operator first (cargo build -p bftws-operator): $OPERATOR"
operator_pid=
start_operator() { "$OPERATOR" run >>"$WORK/operator.log" 2>&1 & operator_pid=$!; }
stop_operator() { [ -n "$operator_pid" ] && kill "$operator_pid" 2>/dev/null && wait "$operator_pid" 2>/dev/null; operator_pid=; }
trap 'stop_operator || true; rm -rf "$WORK"' EXIT

# The CRD installs; kubectl shows its schema and printer columns.
kubectl apply --server-side -f "$ROOT/crds/bftws.io_bftwebservices.yaml" >/dev/null
kubectl wait --for condition=established --timeout=30s crd/bftwebservices.bftws.io >/dev/null
until_ok 20 kubectl explain bftws.spec || fail "kubectl explain bftws.spec"
kubectl explain bftws.spec | grep -q "l1" || fail "explain shows no spec.l1"
kubectl create namespace "$NS" >/dev/null
k get bftws >/dev/null || fail "kubectl get bftws"
ok "CRD installed, explain and get work"

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
start_operator
k apply -f "$WORK/demo.yaml" >/dev/null
until_ok 60 k get statefulset demo-ws-l1 demo-ws-l2 || fail "StatefulSets not created"
for object in secret/demo-ws-l1-keys secret/demo-ws-l2-keys secret/demo-ws-l2-commit-key configmap/demo-ws-l1-genesis \
  configmap/demo-ws-l2-genesis service/demo-ws-l1-headless service/demo-ws-l2-api service/demo-ws-l1-api \
  service/demo-ws-l1-0 service/demo-ws-l1-3 poddisruptionbudget/demo-ws-l1; do
  k get "$object" >/dev/null || fail "missing $object"
done
[ "$(jp sts/demo-ws-l1 '{.spec.replicas}')" = 4 ] || fail "L1 StatefulSet replicas"
[ "$(jp pdb/demo-ws-l1 '{.spec.maxUnavailable}')" = 1 ] || fail "PDB maxUnavailable is not f = 1"
validators=$(k get configmap demo-ws-l1-genesis -o 'jsonpath={.data.genesis\.json}' | grep -c '"tendermint/PubKeyEd25519"' || true)
[ "$validators" -ge 4 ] || fail "L1 genesis does not list 4 validators"
ready() { [ "$(jp bftws/demo-ws '{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
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

# Restarting the operator changes nothing.
until_ok 60 ready || fail "not Ready after scaling"
sleep 2
snapshot() { k get statefulset,service,configmap,secret,pdb -o 'jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}' | sort; }
before=$(snapshot)
stop_operator
start_operator
sleep 8
[ "$(snapshot)" = "$before" ] || fail "a restarted operator changed objects: $(diff <(echo "$before") <(snapshot) || true)"
ok "operator restart changes nothing"

# Deleting with deletionPolicy Retain: owned objects go, keys and genesis stay.
k delete bftws demo-ws --wait=true >/dev/null
gone() { ! k get statefulset demo-ws-l1 >/dev/null 2>&1; }
until_ok 60 gone || fail "StatefulSets not garbage-collected"
k get secret demo-ws-l1-keys >/dev/null || fail "Retain lost the L1 keys"
k get configmap demo-ws-l1-genesis >/dev/null || fail "Retain lost the L1 genesis"
ok "delete with Retain keeps keys and genesis"
echo "operator-e2e: all checks passed"
