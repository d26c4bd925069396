# shellcheck shell=bash
# The real-node mode of scripts/k8s-testenv.sh (K8S_TESTENV_KUBELET=1), sourced by it: one real
# Kubernetes node beside the control plane, whose pods are real containers.
#
# Where everything lives:
# - one network namespace, bftws-k8s-<id>, created here: the control plane, the node's processes
#   and the tests' commands all run in it. Its only addresses are loopback, NODE_IP on one end of
#   a veth pair whose both ends are inside (the node's InternalIP: kubelet refuses a loopback one) and the pod bridge cni0
#   (POD_CIDR, gateway .1). Nothing is added to the host's own namespace. Pods reach the node's
#   processes (apiserver, DNS) through the bridge; Services are routed by kube-proxy's iptables
#   rules, which live in this namespace too.
# - one mount namespace (a `sleep` holder started with unshare) shared by containerd, kubelet
#   and every container's shim, so kubelet's volume mounts are what containerd bind-mounts into
#   containers. Fresh tmpfs over /run, /var/lib and /var/log inside it take the paths containerd,
#   CNI and kubelet cannot be told to move (shim sockets, the CNI cache, /var/log/pods); every
#   mount they make stays in it and vanishes with its last process.
# - everything else under DIR/node: containerd's root and state, kubelet's root, the local
#   PersistentVolumes, CNI config and IP allocations.
#
# Parts: kubelet and kube-proxy (iptables mode) from the same k8s.io/kubernetes module graph as
# the control plane; CoreDNS (tools/coredns, a build with only the plugins used) as a node
# process answering for cluster.local on NODE_IP:53, kubelet's clusterDNS; containerd, runc, the
# CNI plugins (bridge + host-local), iptables and conntrack from Debian; a pause image made of
# Debian's static catatonit. Images reach containerd without a registry: `k8s-testenv.sh load`.
#
# What kubelet changes outside these namespaces, and `stop` undoes (and checks): the global
# sysctls it tunes (saved at start, restored at stop) and the cgroups it makes (kubepods/ in each
# hierarchy; cgroupDriver cgroupfs, this machine has a mixed v1 layout and no systemd). `stop`
# fails when a process, mount, cgroup, network namespace or sysctl change is left behind.

NODE_NAME=bftws-node-0
NODE_IP=10.250.0.2
NODE_CIDR=10.250.0.0/24
POD_CIDR=10.244.0.0/24
CLUSTER_DOMAIN=cluster.local
API_PORT=6443
PAUSE_IMAGE=localhost/bftws-pause:catatonit
NODE_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack catatonit curl)
CNI_BIN_DIR=/usr/lib/cni
# The sysctls kubelet sets at start (pkg/kubelet/cm: setupKernelTunables) and that are global,
# not per network namespace; kube-proxy is configured to leave conntrack's alone.
KUBELET_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
	kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
# cgroup v1 hierarchies kubelet (cgroupfs driver, cgroupRoot /) makes kubepods/ in.
CGROUP_FS=/sys/fs/cgroup

node_netns() { echo "bftws-k8s-$(printf %s "$1" | sha256sum | cut -c1-10)"; }

# in_net CMD...: run CMD in the test network namespace (host mount namespace: /sys, /proc and
# the files of the host). Set up by node_start; used by `run` and by start's readiness checks.
in_net() { nsenter --net="/run/netns/$NETNS" -- "$@"; }

node_packages() {
	local pkg missing=()
	for pkg in "${NODE_PACKAGES[@]}"; do
		[[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || missing+=("$pkg")
	done
	((${#missing[@]} == 0)) && return 0
	[[ $(id -u) == 0 ]] || die "a real node needs root and the Debian packages ${missing[*]}"
	log "installing ${missing[*]} with apt-get"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

node_built() {
	local b
	for b in kubelet kube-proxy coredns; do [[ -x $BIN_DIR/$b ]] || return 1; done
	[[ -f $BIN_DIR/.stamp-node && $(cat "$BIN_DIR/.stamp-node") == "$KUBE_VERSION $COREDNS_VERSION" ]]
}

# node_build LDFLAGS: kubelet and kube-proxy like the control plane's binaries, and CoreDNS.
node_build() {
	local ld=$1 c
	node_packages
	node_built && return 0
	grep -q "^require github.com/coredns/coredns $COREDNS_VERSION\$" "$ROOT/tools/coredns/go.mod" ||
		die "tools/coredns/go.mod does not require github.com/coredns/coredns $COREDNS_VERSION"
	for c in kubelet kube-proxy; do
		[[ -x $BIN_DIR/$c ]] && continue
		log "building $c $KUBE_VERSION ..."
		(cd "$MODDIR" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w $ld" \
			-o "$BIN_DIR/$c.tmp.$$" "k8s.io/kubernetes/cmd/$c") || die "building $c failed"
		mv "$BIN_DIR/$c.tmp.$$" "$BIN_DIR/$c"
	done
	if [[ ! -x $BIN_DIR/coredns ]]; then
		log "building coredns $COREDNS_VERSION ..."
		(cd "$ROOT/tools/coredns" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" \
			-o "$BIN_DIR/coredns.tmp.$$" .) || die "building coredns failed"
		mv "$BIN_DIR/coredns.tmp.$$" "$BIN_DIR/coredns"
	fi
	echo "$KUBE_VERSION $COREDNS_VERSION" >"$BIN_DIR/.stamp-node"
}

# The pause image: Debian's static catatonit as /pause, built once with podman and kept in its
# store; written as an archive for containerd.
pause_archive() {
	local out=$1 ctx
	command -v podman >/dev/null || die "podman is required to make the pause image (scripts/podman-setup.sh)"
	if ! podman image exists "$PAUSE_IMAGE"; then
		ctx=$(mktemp -d)
		cp /usr/bin/catatonit "$ctx/pause"
		printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause", "-P"]\n' >"$ctx/Containerfile"
		podman build --quiet --pull=never -t "$PAUSE_IMAGE" "$ctx" >/dev/null || { rm -rf "$ctx"; die "building $PAUSE_IMAGE failed"; }
		rm -rf "$ctx"
	fi
	podman save --quiet --format docker-archive -o "$out" "$PAUSE_IMAGE"
}

# node_import DIR ARCHIVE: import a docker-archive into the node's containerd (namespace k8s.io).
node_import() {
	ctr --address "$1/node/containerd.sock" -n k8s.io images import --no-unpack=false "$2" >/dev/null ||
		die "importing $2 into containerd failed"
}

# node_load DIR IMAGE...: podman images into the running node (no registry).
node_load() {
	local dir=$1 image archive
	shift
	[[ -S $dir/node/containerd.sock ]] || die "$dir has no running node (start it with K8S_TESTENV_KUBELET=1)"
	archive=$(mktemp "${TMPDIR:-/tmp}/bftws-image.XXXXXX")
	for image in "$@"; do
		podman image exists "$image" || { rm -f "$archive"; die "no podman image $image"; }
		rm -f "$archive"
		podman save --quiet --format docker-archive -o "$archive" "$image" || { rm -f "$archive"; die "podman save $image failed"; }
		node_import "$dir" "$archive"
		log "loaded $image into the node"
	done
	rm -f "$archive"
}

node_certs() {
	local pki=$1
	gen_cert "$pki" kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
	gen_cert "$pki" kube-proxy "/CN=system:kube-proxy"
	# The apiserver's client certificate towards kubelets (logs, exec, port-forward).
	gen_cert "$pki" apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
}

sysctl_values() { local k; for k in "${KUBELET_SYSCTLS[@]}"; do echo "$k $(cat "/proc/sys/$k")"; done; }

# The network namespace, and the holder of the node's mount namespace; records both in DIR/node.
node_namespaces() {
	local dir=$1
	NETNS=$(node_netns "$dir")
	if ip netns list | grep -qw "$NETNS"; then die "network namespace $NETNS exists: stop $dir first"; fi
	ip netns add "$NETNS"
	echo "$NETNS" >"$dir/node/netns"
	ip -n "$NETNS" link set lo up
	# A veth pair with both ends inside (this kernel may have no dummy device type).
	ip -n "$NETNS" link add node0 type veth peer name node0-peer
	ip -n "$NETNS" link set node0-peer up
	ip -n "$NETNS" addr add "$NODE_IP/${NODE_CIDR#*/}" dev node0
	ip -n "$NETNS" link set node0 up
	# Service addresses need a route for a connection from the namespace itself to be tried at
	# all (kube-proxy's DNAT comes after the route lookup); a real node has its default route.
	ip -n "$NETNS" route add "$SERVICE_CIDR" dev node0 src "$NODE_IP"
	ip netns exec "$NETNS" sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
	# The holder: a new mount namespace (host mounts still propagate in, none propagate out)
	# entered into the network namespace, with private /run, /var/lib and /var/log.
	setsid unshare --mount --propagation slave -- nsenter --net="/run/netns/$NETNS" -- bash -c '
		set -e
		for d in /run /var/lib /var/log; do mount -t tmpfs -o mode=0755 bftws-node "$d"; done
		mkdir -p /run/netns /var/log/pods /var/log/containers
		exec sleep infinity' </dev/null >"$dir/logs/holder.log" 2>&1 &
	local holder=$!
	echo "$holder holder $(command -v sleep)" >>"$dir/pids"
	# Ready once the holder runs sleep in the new mount namespace.
	local i
	for ((i = 0; i < 50; i++)); do
		[[ $(readlink "/proc/$holder/exe" 2>/dev/null) == "$(readlink -f "$(command -v sleep)")" ]] && break
		sleep 0.1
	done
	[[ $(readlink "/proc/$holder/ns/mnt") != "$(readlink /proc/self/ns/mnt)" ]] || die "the node's mount namespace did not start"
	# Components started from here on run in the holder's mount and network namespaces.
	IN_NODE=(nsenter --target "$holder" --mount --net --)
}

node_config() {
	local dir=$1 pki=$1/pki n=$1/node i
	mkdir -p "$n/containerd" "$n/containerd-state" "$n/kubelet" "$n/cni/net.d" "$n/cni/ipam" "$n/pv" "$n/opt"
	cat >"$n/containerd.toml" <<T
version = 2
root = "$n/containerd"
state = "$n/containerd-state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$n/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$n/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without it every container fails ("can't get final child's PID from pipe"): the machine
  # lacks CAP_SYS_RESOURCE.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$n/cni/net.d"
    max_conf_num = 1
T
	cat >"$n/cni/net.d/10-bftws.conflist" <<J
{
  "cniVersion": "1.0.0",
  "name": "bftws-pods",
  "plugins": [{
    "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "dataDir": "$n/cni/ipam", "ranges": [[{"subnet": "$POD_CIDR"}]],
             "routes": [{"dst": "0.0.0.0/0"}]}
  }]
}
J
	write_kubeconfig "$n/kubelet.kubeconfig" "https://127.0.0.1:$API_PORT" "$pki" kubelet
	write_kubeconfig "$n/kube-proxy.kubeconfig" "https://127.0.0.1:$API_PORT" "$pki" kube-proxy
	cat >"$n/kubelet.yaml" <<Y
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$n/containerd.sock
# containerd 1.6 cannot report its cgroup driver, and this machine's hierarchy is mixed v1.
cgroupDriver: cgroupfs
cgroupRoot: /
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: false
kernelMemcgNotification: false
enforceNodeAllocatable: [pods]
# The disk is shared with everything else on the machine: evict only when it is nearly full.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: [$NODE_IP]
resolvConf: ""
podCIDR: $POD_CIDR
maxPods: 110
serializeImagePulls: false
registerNode: true
Y
	cat >"$n/kube-proxy.yaml" <<Y
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $n/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Zero leaves the (partly global) conntrack sysctls as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
Y
	# Cluster DNS: the kubernetes plugin for the cluster domain; nothing is forwarded (there is
	# no upstream), every other name is NXDOMAIN at once.
	cat >"$n/Corefile" <<C
$CLUSTER_DOMAIN:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $dir/kubeconfig bftws-testenv
        pods insecure
    }
}
.:53 {
    bind $NODE_IP
    template ANY ANY {
        rcode NXDOMAIN
    }
}
C
	for ((i = 0; i < PVS; i++)); do mkdir -p "$n/pv/pv-$i"; done
}

# Local PersistentVolumes on the node (hostPath ones are not chowned to the pods' fsGroup) and
# the default StorageClass that binds them when a pod is scheduled.
node_cluster_objects() {
	local dir=$1 i
	storage_class false # a local volume cannot grow
	for ((i = 0; i < PVS; i++)); do
		cat <<Y
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: local-pv-$i
spec:
  storageClassName: standard
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  local: {path: $dir/node/pv/pv-$i}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$NODE_NAME]}]
Y
	done
}

# Starts containerd, kubelet, kube-proxy and CoreDNS in the node's namespaces (the control plane
# is already up in them), and waits until the node is Ready, Services route and DNS answers.
node_start() {
	local dir=$1 deadline=$2 n=$1/node
	"${IN_NODE[@]}" true || die "cannot enter the node's namespaces"
	spawn "$dir" containerd "$(command -v containerd)" --config "$n/containerd.toml"
	until [[ -S $n/containerd.sock ]] && ctr --address "$n/containerd.sock" version >/dev/null 2>&1; do
		check_alive "$dir" || die "containerd failed to start"
		((SECONDS < deadline)) || die "containerd not up; see $dir/logs/containerd.log"
		sleep 0.2
	done
	local archive=$dir/node/pause.tar
	pause_archive "$archive"
	node_import "$dir" "$archive"
	rm -f "$archive"
	spawn "$dir" kubelet "$BIN_DIR/kubelet" --config="$n/kubelet.yaml" --kubeconfig="$n/kubelet.kubeconfig" \
		--root-dir="$n/kubelet" --cert-dir="$n/kubelet/pki" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
	spawn "$dir" kube-proxy "$BIN_DIR/kube-proxy" --config="$n/kube-proxy.yaml" --v=1
	spawn "$dir" coredns "$BIN_DIR/coredns" -conf "$n/Corefile"
}

node_wait_ready() {
	local dir=$1 deadline=$2
	until in_net "$BIN_DIR/kubectl" --kubeconfig="$dir/kubeconfig" wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s >/dev/null 2>&1 &&
		in_net curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:10256/healthz 2>/dev/null &&
		in_net curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:8181/ready 2>/dev/null &&
		in_net "$BIN_DIR/kubectl" --kubeconfig="$dir/kubeconfig" -n default get serviceaccount default >/dev/null 2>&1; do
		check_alive "$dir" || die "the node failed to start"
		((SECONDS < deadline)) || die "node, kube-proxy or DNS not ready after ${READY_TIMEOUT}s; see $dir/logs"
		sleep 0.5
	done
}

# Every process whose command line names this node's containerd socket (the shims).
node_shims() {
	local dir=$1 p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "-address $dir/node/containerd.sock" && echo "${p#/proc/}"
	done
	return 0
}

# Every process in the pods' cgroups.
pod_processes() {
	local f
	[[ -d $CGROUP_FS/pids/kubepods ]] || return 0
	find "$CGROUP_FS/pids/kubepods" -name cgroup.procs -exec cat {} + 2>/dev/null
	return 0
}

# Kills the containers, their shims, and the node's processes, in that order; then removes
# kubelet's cgroups, the network namespace and restores the global sysctls. Prints what it
# could not remove and returns non-zero then.
node_stop() {
	local dir=$1 left=() pid i k v d
	# kubelet first, so nothing restarts containers.
	stop_recorded "$dir" kubelet
	local victims
	for ((i = 0; i < 50; i++)); do
		victims=$(pod_processes; node_shims "$dir")
		[[ -z $victims ]] && break
		for pid in $victims; do kill -KILL "$pid" 2>/dev/null || true; done
		sleep 0.2
	done
	stop_recorded "$dir"
	for pid in $(pod_processes) $(node_shims "$dir"); do left+=("process $pid ($(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline"))"); done
	# kubepods/ in every hierarchy, deepest first (rmdir of an empty cgroup is how it goes).
	for d in "$CGROUP_FS"/*/kubepods; do
		[[ -d $d ]] || continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
		[[ -d $d ]] && left+=("cgroup $d")
	done
	if [[ -f $dir/node/netns ]]; then
		local netns
		netns=$(cat "$dir/node/netns")
		ip netns del "$netns" 2>/dev/null || true
		ip netns list | grep -qw "$netns" && left+=("network namespace $netns")
		[[ ${#left[@]} -gt 0 ]] || rm -f "$dir/node/netns"
	fi
	if [[ -f $dir/node/sysctl.saved ]]; then
		while read -r k v; do
			[[ $(cat "/proc/sys/$k") == "$v" ]] || echo "$v" >"/proc/sys/$k" || left+=("sysctl $k")
		done <"$dir/node/sysctl.saved"
		[[ ${#left[@]} -gt 0 ]] || rm -f "$dir/node/sysctl.saved"
	fi
	while read -r _ d _; do
		case "$d" in "$dir"/*) left+=("mount $d") ;; esac
	done </proc/self/mounts
	if ((${#left[@]} > 0)); then
		log "error: left behind after stopping $dir:"
		printf '  %s\n' "${left[@]}" >&2
		return 1
	fi
	# The volumes' contents belong to the pods' user; nothing of them is kept.
	rm -rf "$dir/node/pv" "$dir/node/containerd" "$dir/node/containerd-state" "$dir/node/kubelet"
}
