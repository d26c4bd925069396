// Command coredns is CoreDNS with only the plugins the real-kubelet test cluster's DNS uses
// (scripts/k8s-testenv.sh, K8S_TESTENV_KUBELET=1): the kubernetes plugin answers for the
// cluster domain, everything else is refused. CoreDNS documents this way of building it with a
// chosen set of plugins; leaving out the cloud back-ends cuts its cold build from minutes to
// well under one. It is a module of its own: inside tools/k8s-testenv its dependencies would
// move grpc and OpenTelemetry for the Kubernetes binaries too.
package main

import (
	"github.com/coredns/coredns/coremain"

	// The plugins of the Corefile that scripts/k8s-testenv.sh writes; the execution order is
	// CoreDNS's own (dnsserver.Directives), which lists every plugin by name.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/template"
)

func main() {
	coremain.Run()
}
