#!/usr/bin/env bash
# Renders manifests/install.yaml, the plain install bundle: the bftws-system namespace, the CRD
# and the operator chart with its default values (`kubectl apply --server-side -f` it instead of
# `helm install`). `make check-generated` fails when the committed file differs.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELM=$("$ROOT/scripts/install-helm.sh")
NAMESPACE=bftws-system
out="$ROOT/manifests/install.yaml"
{
	echo "# The bftws operator, rendered from charts/bftws-operator with its default values by"
	echo "# scripts/render-manifests.sh (make manifests). Do not edit by hand."
	echo "#   kubectl apply --server-side -f manifests/install.yaml"
	echo "---"
	echo "apiVersion: v1"
	echo "kind: Namespace"
	echo "metadata:"
	echo "  name: $NAMESPACE"
	echo "---"
	cat "$ROOT/charts/bftws-operator/crds/bftws.io_bftwebservices.yaml"
	"$HELM" template bftws-operator "$ROOT/charts/bftws-operator" --namespace "$NAMESPACE" --kube-version v1.36.0
} >"$out.tmp"
mv "$out.tmp" "$out"
