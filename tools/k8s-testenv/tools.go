//go:build tools

// Package tools pins the commands built by scripts/k8s-testenv.sh into this
// module's graph, so `go mod tidy` keeps their dependencies in go.mod/go.sum
// and `go build k8s.io/kubernetes/cmd/...` works from this directory.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
