#!/usr/bin/env bash
# What a user does on a real cluster, on real pods:
#   K8S_TESTENV_KUBELET=1 scripts/k8s-testenv.sh run DIR -- scripts/cluster-e2e.sh
# (`make e2e`). The node and operator images are loaded into the node's containerd; `helm
# install` runs the operator from its image; the 4-1 sample BftWebService, pointed at the node
# image, becomes real pods that form both chains; supplier and warehouse sessions through the L2
# API Service commit to L1, and each receipt's transaction is on every L1 pod's CometBFT; L2
# scales out to a full node that catches up and serves; an L1 pod deleted during sessions comes
# back and nothing acknowledged is lost; deleting with Retain and recreating resumes both chains;
# deleting with Delete removes everything. Runs inside the test cluster's network namespace,
# where Service and pod addresses route. Every check fails the run with a message.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE="${CARGO_TARGET_DIR:-$ROOT/target}/debug/bftws-node"
CHART="$ROOT/charts/bftws-operator"
NODE_IMAGE=${NODE_IMAGE:-localhost/bftws-node:dev}
OPERATOR_IMAGE=${OPERATOR_IMAGE:-localhost/bftws-operator:dev}
HELM=$("$ROOT/scripts/install-helm.sh")
NS=shop
NAME=demo
OPNS=bftws-system
# A read-only DEMO token (services/supply-chain/src/demo.rs).
READ_TOKEN=demo-auditor
WORK=$(mktemp -d)
started=$SECONDS

say() { echo "cluster-e2e: $*"; }
ok() { echo "cluster-e2e: ok: $*"; }
fail() {
  echo "cluster-e2e: FAIL: $*" >&2
  {
    kubectl get nodes -o wide
    kubectl -n "$NS" get bftws,statefulsets,pods,pvc -o wide
    kubectl -n "$OPNS" get pods -o wide
    kubectl -n "$NS" get events --sort-by=.lastTimestamp | tail -25
    kubectl -n "$OPNS" logs deploy/bftws-operator --tail=20
    for pod in $(kubectl -n "$NS" get pods -o name); do
      for c in app cometbft; do
        echo "--- $pod/$c:"
        kubectl -n "$NS" logs "$pod" -c "$c" --tail=15
      done
    done
  } >&2 2>&1 || true
  exit 1
}
trap 'rm -rf "$WORK"' EXIT
k() { kubectl -n "$NS" "$@"; }
# Waits up to $1 seconds for the command after it to succeed.
until_ok() { local t=$1; shift; for _ in $(seq 1 "$t"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done; return 1; }
jp() { k get "$1" -o "jsonpath=$2" 2>/dev/null; }
[ -n "${K8S_TESTENV_DIR:-}" ] || fail "run under scripts/k8s-testenv.sh run (K8S_TESTENV_KUBELET=1)"
[ -x "$NODE" ] || fail "build it first (make dev-build): $NODE"

# ---- images and the operator -----------------------------------------------------------------
"$ROOT/scripts/k8s-testenv.sh" load "$K8S_TESTENV_DIR" "$NODE_IMAGE" "$OPERATOR_IMAGE" 2>/dev/null ||
  fail "cannot load $NODE_IMAGE and $OPERATOR_IMAGE into the node"
t=$SECONDS
"$HELM" install bftws-operator "$CHART" -n "$OPNS" --create-namespace \
  --set "image.repository=${OPERATOR_IMAGE%:*},image.tag=${OPERATOR_IMAGE##*:},image.pullPolicy=Never" \
  --wait --timeout 180s >/dev/null || fail "helm install"
[ "$(kubectl -n "$OPNS" get deploy bftws-operator -o 'jsonpath={.status.readyReplicas}')" = 2 ] ||
  fail "the operator Deployment has no 2 ready replicas"
# Its PodDisruptionBudget sees both replicas and allows one to go.
pdb_allows() { [ "$(kubectl -n "$OPNS" get pdb bftws-operator -o 'jsonpath={.status.disruptionsAllowed}')" = 1 ]; }
until_ok 30 pdb_allows || fail "the operator's PodDisruptionBudget does not allow exactly one disruption"
ok "helm install: 2 operator pods from $OPERATOR_IMAGE Running and Ready in $((SECONDS - t)) s"

# ---- the 4-1 sample on real pods -------------------------------------------------------------
# The DEMO tokens and reference data (the devnet's), so the demo client's sessions are accepted.
"$NODE" cluster-files --l1 1 --l2 1 --out "$WORK/files" >/dev/null
kubectl create namespace "$NS" >/dev/null
k create secret generic demo-tokens --from-file=tokens.json="$WORK/files/tokens/tokens.json" >/dev/null
python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["app_state"]["service"]))' \
  "$WORK/files/l1/genesis/genesis.json" >"$WORK/reference.json"
k create configmap demo-reference --from-file=reference.json="$WORK/reference.json" >/dev/null
# The sample as shipped, pointed at the node image and the demo data.
sed -e "s|^  namespace: default\$|  namespace: $NS|" \
  -e "s|^  image: .*\$|  image: $NODE_IMAGE\n  imagePullPolicy: Never\n  app:\n    referenceData: {name: demo-reference}\n    tokensSecret: demo-tokens|" \
  "$ROOT/manifests/sample-bftwebservice.yaml" >"$WORK/demo.yaml"
grep -q "^  name: $NAME\$" "$WORK/demo.yaml" && grep -q "imagePullPolicy: Never" "$WORK/demo.yaml" ||
  fail "the sample's shape changed: $(cat "$WORK/demo.yaml")"

pods_ready() { # pods_ready N: N pods of the deployment, all Ready
  local ready
  ready=$(k get pods -l "app.kubernetes.io/instance=$NAME" \
    -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')
  [ "$(grep -c . <<<"$ready")" = "$1" ] && ! grep -qv True <<<"$ready"
}
bftws_ready() { [ "$(jp "bftws/$NAME" '{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
t=$SECONDS
k apply -f "$WORK/demo.yaml" >/dev/null
until_ok 240 pods_ready 5 || fail "the 5 pods of the 4-1 sample are not all Ready after 240 s"
pods_up=$((SECONDS - t))
until_ok 60 bftws_ready || fail "BftWebService $NAME not Ready: $(jp "bftws/$NAME" '{.status.conditions}')"
k get pods -o wide
containers=$(k get pods -l "app.kubernetes.io/instance=$NAME" \
  -o 'jsonpath={range .items[*]}{.metadata.name}={range .status.initContainerStatuses[*]}{.name}:{.started} {end}{range .status.containerStatuses[*]}{.name}:{.ready} {end}{"\n"}{end}')
while read -r line; do
  [ -z "$line" ] && continue
  grep -q "app:true" <<<"$line" && grep -q "cometbft:true" <<<"$line" ||
    fail "a pod does not run its app sidecar and cometbft: $line"
done <<<"$containers"
ok "4-1 sample: 5 pods Running and Ready (init, app sidecar, cometbft) $pods_up s after kubectl apply"

# ---- sessions through the L2 API Service -----------------------------------------------------
l2_api=$(jp "service/$NAME-l2-api" '{.spec.clusterIP}')
[ -n "$l2_api" ] || fail "no ClusterIP on service/$NAME-l2-api"
pod_ip() { jp "pod/$1" '{.status.podIP}'; }
# Every L1 pod's state has the package processed (both sessions reached L1 and were applied).
processed_on() { # processed_on POD PACKAGE
  local reply
  reply=$(curl -sS --max-time 5 -H "authorization: Bearer $READ_TOKEN" "http://$(pod_ip "$1"):8080/v1/packages/$2") &&
    [ "$(jq -r '.data.status // "missing"' <<<"$reply")" = processed ]
}
processed_on_l1() { # processed_on_l1 PACKAGE: on every L1 pod (waiting for a pod that catches up)
  local i
  for i in 0 1 2 3; do until_ok 60 processed_on "$NAME-l1-$i" "$1" || fail "$1 is not processed on $NAME-l1-$i"; done
}
# The tx of a receipt, read from one L1 pod's own CometBFT RPC (pod loopback, via port-forward).
tx_on_pod() { # tx_on_pod POD HASH HEIGHT
  local pf port reply
  k port-forward "pod/$1" :26657 >"$WORK/pf.log" 2>&1 &
  pf=$!
  until_ok 15 grep -q 'Forwarding from 127.0.0.1' "$WORK/pf.log" || { kill "$pf"; return 1; }
  port=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\) .*/\1/p' "$WORK/pf.log" | head -1)
  reply=$(curl -sS --max-time 5 "http://127.0.0.1:$port/tx?hash=0x$2") || true
  kill "$pf" 2>/dev/null; wait "$pf" 2>/dev/null || true
  [ "$(jq -r '.result.height' <<<"$reply")" = "$3" ] && [ "$(jq -r '.result.tx_result.code // 0' <<<"$reply")" = 0 ]
}
run_demo() { # run_demo API PACKAGE: a supplier and a warehouse session; their receipts in $WORK/PACKAGE.receipts
  "$NODE" demo --api "$1" --package-id "$2" >"$WORK/$2.out" 2>&1 || { cat "$WORK/$2.out" >&2; return 1; }
  sed -n 's/^  L1 receipt: //p' "$WORK/$2.out" >"$WORK/$2.receipts"
  [ "$(grep -c . "$WORK/$2.receipts")" = 2 ]
}
t=$SECONDS
run_demo "http://$l2_api:8080" PKG-E2E-1 || fail "the sessions on PKG-E2E-1 did not complete"
sessions_took=$((SECONDS - t))
processed_on_l1 PKG-E2E-1
while read -r receipt; do
  hash=$(jq -r .tx_hash <<<"$receipt") height=$(jq -r .height <<<"$receipt")
  [ "$(jq -r .code <<<"$receipt")" = 0 ] || fail "a receipt with code $(jq -r .code <<<"$receipt"): $receipt"
  for i in 0 1 2 3; do
    tx_on_pod "$NAME-l1-$i" "$hash" "$height" || fail "tx $hash (height $height) is not on $NAME-l1-$i's CometBFT"
  done
done <"$WORK/PKG-E2E-1.receipts"
ok "a supplier and a warehouse session through service/$NAME-l2-api committed in $sessions_took s; both receipts' txs are on all 4 L1 pods' CometBFT"
# L2 verified those receipts against the L1 genesis mounted in its pod, and anyone can check
# them again with the genesis the operator published, trusting no node.
if k logs "$NAME-l2-0" -c app | grep -q "without verifying"; then fail "the L2 pod records receipts unverified"; fi
k get configmap "$NAME-l1-genesis" -o 'jsonpath={.data.genesis\.json}' >"$WORK/l1-genesis.json"
l1_api=$(jp "service/$NAME-l1-api" '{.spec.clusterIP}')
while read -r receipt; do
  "$NODE" verify --l1 "http://$l1_api:8080" --session "$(jq -r .session_id <<<"$receipt")" \
    --genesis "$WORK/l1-genesis.json" >"$WORK/verify.out" 2>&1 || fail "bftws-node verify: $(cat "$WORK/verify.out")"
done <"$WORK/PKG-E2E-1.receipts"
ok "both receipts verify with bftws-node verify against configmap/$NAME-l1-genesis: $(head -1 "$WORK/verify.out" | cut -c1-90)..."

# ---- heights rise in kubectl get bftws ---------------------------------------------------------
h1=$(jp "bftws/$NAME" '{.status.l1.height}')
rose() { [ "$(jp "bftws/$NAME" '{.status.l1.height}')" -gt "${h1:-0}" ]; }
until_ok 60 rose || fail "the L1 height in status stays at '$h1'"
k get bftws "$NAME"
ok "kubectl get bftws: L1 height rose from $h1 to $(jp "bftws/$NAME" '{.status.l1.height}')"

# ---- L2 scales out: a full node catches up and serves ------------------------------------------
l1_version=$(jp "sts/$NAME-l1" '{.metadata.resourceVersion}')
t=$SECONDS
k scale "bftws/$NAME" --replicas=2 >/dev/null
until_ok 180 pods_ready 6 || fail "L2 pod $NAME-l2-1 not Ready after scaling"
[ "$(jp "sts/$NAME-l1" '{.metadata.resourceVersion}')" = "$l1_version" ] || fail "scaling L2 touched the L1 StatefulSet"
run_demo "http://$(pod_ip "$NAME-l2-1"):8080" PKG-E2E-2 || fail "the new L2 full node did not serve the sessions on PKG-E2E-2"
processed_on_l1 PKG-E2E-2
ok "kubectl scale --replicas=2: $NAME-l2-1 Ready in $((SECONDS - t)) s, caught up and served a supplier and a warehouse session"
# L2's budget covers its validator (pod index 0) and not the new full node.
l2_budget() { [ "$(jp "pdb/$NAME-l2" '{.status.expectedPods}/{.status.currentHealthy}/{.status.disruptionsAllowed}')" = 1/1/0 ]; }
until_ok 30 l2_budget || fail "pdb/$NAME-l2 is not 1 expected, 1 healthy, 0 allowed: $(jp "pdb/$NAME-l2" '{.status}')"
ok "pdb/$NAME-l2 covers the L2 validator only (1 of 2 L2 pods) and allows no disruption of it"

# ---- an L1 validator deleted during sessions ---------------------------------------------------
victim="$NAME-l1-1"
uid=$(jp "pod/$victim" '{.metadata.uid}')
(for n in 3 4 5; do run_demo "http://$l2_api:8080" "PKG-E2E-$n" || exit 1; done) &
load=$!
sleep 2
t=$SECONDS
k delete pod "$victim" --wait=false >/dev/null
wait "$load" || fail "sessions failed while $victim was deleted"
back() { [ "$(jp "pod/$victim" '{.metadata.uid}')" != "$uid" ] && pods_ready 6; }
until_ok 180 back || fail "$victim did not come back Ready"
for n in 1 2 3 4 5; do processed_on_l1 "PKG-E2E-$n"; done
ok "$victim deleted during 3 pairs of sessions: all committed, the StatefulSet recreated it (Ready in $((SECONDS - t)) s), it caught up: PKG-E2E-1..5 processed on all 4 L1 pods"

# ---- delete with Retain, recreate: both chains resume ------------------------------------------
height_of() { curl -sS --max-time 5 "http://$(pod_ip "$1"):8080/readyz" | jq -r .height; }
l1_before=$(height_of "$NAME-l1-0") l2_before=$(height_of "$NAME-l2-0")
[ "$l1_before" -gt 0 ] && [ "$l2_before" -gt 0 ] || fail "no heights before the delete: L1 '$l1_before' L2 '$l2_before'"
k delete bftws "$NAME" --wait=true >/dev/null
no_pods() { [ -z "$(k get pods -l "app.kubernetes.io/instance=$NAME" -o name)" ]; }
until_ok 120 no_pods || fail "pods left after deleting the BftWebService"
k get "pvc/data-$NAME-l1-0" "secret/$NAME-l1-keys" "configmap/$NAME-l1-genesis" >/dev/null || fail "Retain lost a volume, keys or genesis"
t=$SECONDS
k apply -f "$WORK/demo.yaml" >/dev/null
# The recreated spec has 1 L2 replica; the retained volumes hold both chains.
until_ok 240 pods_ready 5 || fail "the recreated deployment's pods are not Ready"
l1_after=$(height_of "$NAME-l1-0") l2_after=$(height_of "$NAME-l2-0")
[ "$l1_after" -ge "$l1_before" ] && [ "$l2_after" -ge "$l2_before" ] ||
  fail "the chains did not resume: L1 $l1_before -> $l1_after, L2 $l2_before -> $l2_after"
processed_on_l1 PKG-E2E-1
# The Services are new objects, with new cluster IPs.
l2_api=$(jp "service/$NAME-l2-api" '{.spec.clusterIP}')
run_demo "http://$l2_api:8080" PKG-E2E-6 || fail "no sessions after the recreate"
processed_on_l1 PKG-E2E-6
ok "delete with Retain and recreate: Ready in $((SECONDS - t)) s, L1 resumed at $l1_after (was $l1_before), L2 at $l2_after (was $l2_before); old packages kept, new sessions commit"

# ---- delete with Delete: everything goes -----------------------------------------------------
k patch "bftws/$NAME" --type merge -p '{"spec":{"deletionPolicy":"Delete"}}' >/dev/null
# The operator has moved the keys under the BftWebService, told the StatefulSets to delete
# their volumes, and made the BftWebService an owner of every claim (also of L2's scaled-away
# ordinal 1, which no StatefulSet deletes).
claims_owned() {
  local owners
  owners=$(k get pvc -l "app.kubernetes.io/instance=$NAME" \
    -o 'jsonpath={range .items[*]}{.metadata.name}={.metadata.ownerReferences[*].kind}{"\n"}{end}')
  grep -q . <<<"$owners" && ! grep -v BftWebService <<<"$owners" | grep -q .
}
switched() {
  [ "$(jp "secret/$NAME-l1-keys" '{.metadata.ownerReferences[0].kind}')" = BftWebService ] &&
    [ "$(jp "sts/$NAME-l1" '{.spec.persistentVolumeClaimRetentionPolicy.whenDeleted}')" = Delete ] &&
    claims_owned
}
until_ok 60 switched || fail "deletionPolicy Delete did not reach the keys, StatefulSets and claims"
k delete bftws "$NAME" --wait=true >/dev/null
left() { k get secret,configmap,service,statefulset,pdb,pvc,pod -l "app.kubernetes.io/instance=$NAME" -o name; }
none_left() { [ -z "$(left)" ] && ! k get "pvc/data-$NAME-l1-0" && ! k get "secret/$NAME-l1-keys"; }
until_ok 120 none_left || fail "Delete left objects behind: $(left | tr '\n' ' ')"
ok "delete with Delete: pods, volumes, keys, geneses and every other object of $NAME are gone"
say "all checks passed in $((SECONDS - started)) s"
