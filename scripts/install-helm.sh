#!/usr/bin/env bash
# Installs the pinned Helm with `go install` (nothing downloaded but Go modules) into
# $BFTWS_CACHE/helm/<version>/ and prints the binary's path; a warm run only checks.
# The ldflags are Helm's own release flags: without them `helm version` says "v3.21" and
# `helm template` assumes Kubernetes 1.20.
set -euo pipefail
HELM_VERSION=v3.21.4
# Kubernetes minor of the client-go that Helm ${HELM_VERSION} requires (k8s.io/client-go v0.36.x).
HELM_K8S_MINOR=36
CACHE_ROOT="${BFTWS_CACHE:-$HOME/.cache/bftws}"
BIN_DIR="$CACHE_ROOT/helm/$HELM_VERSION"
HELM="$BIN_DIR/helm"

if [[ -x $HELM && $("$HELM" version --template '{{.Version}}' 2>/dev/null) == "$HELM_VERSION" ]]; then
	echo "$HELM"
	exit 0
fi
command -v go >/dev/null || { echo "install-helm: error: Go is required (go install)" >&2; exit 1; }
mkdir -p "$BIN_DIR"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
	ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$HELM_K8S_MINOR"
done
echo "install-helm: building helm $HELM_VERSION" >&2
GOTOOLCHAIN=local GOBIN="$BIN_DIR" go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
[[ $("$HELM" version --template '{{.Version}}') == "$HELM_VERSION" ]] || { echo "install-helm: error: built helm does not report $HELM_VERSION" >&2; exit 1; }
echo "$HELM"
