#!/usr/bin/env bash
# Hand-run smoke check of scripts/k8s-testenv.sh (not wired into CI):
# build, start, /version, a 2-replica StatefulSet whose pods kwok marks Running
# and Ready, stop (via `run`, which always stops).
#   tools/k8s-testenv/smoke.sh [DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${1:-$(mktemp -d /tmp/k8s-testenv-smoke.XXXXXX)}
t=$SECONDS
"$ROOT/scripts/k8s-testenv.sh" build >/dev/null
echo "build: $((SECONDS - t))s"
exec "$ROOT/scripts/k8s-testenv.sh" run "$DIR" -- bash -euo pipefail -c '
kubectl get --raw /version
kubectl version
kubectl get nodes -o wide
kubectl apply -f - <<Y
apiVersion: v1
kind: Service
metadata: {name: smoke}
spec:
  clusterIP: None
  selector: {app: smoke}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: smoke}
spec:
  serviceName: smoke
  replicas: 2
  selector: {matchLabels: {app: smoke}}
  template:
    metadata: {labels: {app: smoke}}
    spec:
      containers:
      - name: c
        image: example.invalid/smoke:1
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
Y
kubectl rollout status statefulset/smoke --timeout=90s
kubectl get pods,pvc -o wide
test "$(kubectl get statefulset smoke -o jsonpath={.status.readyReplicas})" = 2
kubectl delete statefulset smoke --wait=true --timeout=60s
if kubectl auth can-i create pods --as=system:serviceaccount:default:default; then echo "RBAC is not enforced"; exit 1; fi
echo SMOKE OK
'
