#!/usr/bin/env bash
# A real, local Kubernetes control plane for tests, built from Go modules only
# (DESIGN.md §14): etcd, kube-apiserver (RBAC on), kube-controller-manager,
# kube-scheduler, and kwok with fake nodes that marks pods Running and Ready.
# Everything listens on 127.0.0.1 on free ports; nothing is downloaded except
# Go modules through the Go module proxy (and openssl from Debian).
#
#   scripts/k8s-testenv.sh build            build/install the binaries (idempotent), print the bin dir
#   scripts/k8s-testenv.sh start DIR        start a control plane in DIR, print DIR/kubeconfig
#   scripts/k8s-testenv.sh stop DIR         stop everything started in DIR
#   scripts/k8s-testenv.sh run DIR -- CMD…  start, run CMD with KUBECONFIG set, always stop;
#                                           exit with CMD's status
#   scripts/k8s-testenv.sh env DIR          print `export KUBECONFIG=…; export PATH=…` for a started DIR
#   scripts/k8s-testenv.sh load DIR IMAGE…  (real node only) copy podman images into the node's
#                                           containerd, as a registry pull would
#
# Two kinds of node:
# - default: kwok with fake nodes that marks pods Running and Ready (many nodes, fast; no
#   container runs);
# - K8S_TESTENV_KUBELET=1 (for build, start and run; root): one real node, kubelet on
#   containerd and runc, CNI bridge networking, kube-proxy and CoreDNS, local PersistentVolumes,
#   in a network namespace of its own with the control plane (scripts/k8s-testenv-kubelet.sh
#   says where everything lives). `run` runs COMMAND in that network namespace; `env` prints
#   the namespace's name. `stop` fails if anything of the node is left behind.
#
# `start` returns once /readyz answers, kwok has made the fake nodes Ready and the
# default ServiceAccount exists; it cleans up after itself if any step fails.
# `run` also passes the bin dir (kubectl, …) on PATH to COMMAND, and on TERM/INT it
# ends COMMAND and stops the control plane. DIR keeps pki/, logs/ and the kubeconfigs
# after `stop` (etcd data is removed); components authenticate with client certs
# (admin is in system:masters; controller-manager and scheduler use their own users).
#
# The Go module tools/k8s-testenv pins k8s.io/kubernetes and replaces every
# staging module by its published tag (see tools/k8s-testenv/gen-replaces.sh).
# Binaries are cached in $BFTWS_CACHE/k8s/<version>/bin (default ~/.cache/bftws).
#
# Environment knobs: K8S_TESTENV_NODES (fake nodes, default 3),
# K8S_TESTENV_PVS (pre-created PersistentVolumes of the default StorageClass
# "standard": hostPath ones with kwok, local ones on the real node; default 32),
# K8S_TESTENV_READY_TIMEOUT (seconds, default 120; 300 with a real node).
set -euo pipefail

# ---- pinned versions (the only place they are set) --------------------------
# KUBE_VERSION must match `require k8s.io/kubernetes` in tools/k8s-testenv/go.mod,
# ETCD_VERSION the go.etcd.io/etcd/server/v3 that Kubernetes' go.mod requires.
KUBE_VERSION=v1.36.3
ETCD_VERSION=v3.6.8
KWOK_VERSION=v0.8.0
# github.com/coredns/coredns in tools/coredns/go.mod (the real node's cluster DNS).
COREDNS_VERSION=v1.15.0
# ------------------------------------------------------------------------------

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODDIR="$ROOT/tools/k8s-testenv"
CACHE_ROOT="${BFTWS_CACHE:-$HOME/.cache/bftws}"
BIN_DIR="$CACHE_ROOT/k8s/$KUBE_VERSION/bin"
NODES="${K8S_TESTENV_NODES:-3}"
PVS="${K8S_TESTENV_PVS:-32}"
SERVICE_CIDR=10.0.0.0/24 # the apiserver's Service is its .1
KUBELET_NODE="${K8S_TESTENV_KUBELET:-}"
[[ -z $KUBELET_NODE || $KUBELET_NODE == 1 ]] || { echo "k8s-testenv: K8S_TESTENV_KUBELET is 1 or unset" >&2; exit 2; }
READY_TIMEOUT="${K8S_TESTENV_READY_TIMEOUT:-$([[ -n $KUBELET_NODE ]] && echo 300 || echo 120)}"
export GOTOOLCHAIN=local
# Prefixes that put a command into the real node's namespaces (empty with kwok).
IN_NODE=() IN_NET=() NETNS=""

log() { echo "k8s-testenv: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=scripts/k8s-testenv-kubelet.sh
. "$ROOT/scripts/k8s-testenv-kubelet.sh"

# ---- build ----------------------------------------------------------------------
KUBE_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

built() {
	local b
	for b in "${KUBE_CMDS[@]}" etcd kwok; do [[ -x $BIN_DIR/$b ]] || return 1; done
	[[ -s $BIN_DIR/kwok-stages.yaml ]] || return 1
	[[ -f $BIN_DIR/.stamp && $(cat "$BIN_DIR/.stamp") == "$KUBE_VERSION $ETCD_VERSION $KWOK_VERSION" ]]
}

# kwok's node and pod lifecycle stages, from the same kwok module that was installed
# (kwokctl embeds these; the bare kwok controller needs them in its --config).
kwok_stages() {
	local out=$1 tmp dir f
	tmp=$(mktemp -d)
	dir=$(cd "$tmp" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" |
		sed -n 's/^\s*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	rmdir "$tmp"
	[[ -d $dir/kustomize/stage ]] || die "kwok $KWOK_VERSION stages not found in the module cache"
	for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
		pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
		echo "---"
		cat "$dir/kustomize/stage/$f"
	done >"$out.tmp.$$"
	mv "$out.tmp.$$" "$out"
}

cmd_build() {
	if built && { [[ -z $KUBELET_NODE ]] || node_built; }; then echo "$BIN_DIR"; return 0; fi
	command -v go >/dev/null || die "Go is required (go build / go install)"
	grep -q "^	k8s.io/kubernetes $KUBE_VERSION\$" "$MODDIR/go.mod" ||
		die "tools/k8s-testenv/go.mod does not require k8s.io/kubernetes $KUBE_VERSION"
	grep -q "^	go.etcd.io/etcd/server/v3 $ETCD_VERSION\$" "$MODDIR/go.mod" ||
		die "tools/k8s-testenv/go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
	mkdir -p "$BIN_DIR"
	[[ $KUBE_VERSION =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "bad KUBE_VERSION $KUBE_VERSION"
	local major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]} ld="" pkg
	# What hack/lib/version.sh sets; gitCommit is unknown outside the git repo.
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
		ld+=" -X $pkg.gitTreeState=archive"
	done
	local c
	for c in "${KUBE_CMDS[@]}"; do
		[[ -x $BIN_DIR/$c ]] && continue
		log "building $c $KUBE_VERSION ..."
		(cd "$MODDIR" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w $ld" \
			-o "$BIN_DIR/$c.tmp.$$" "k8s.io/kubernetes/cmd/$c") || die "building $c failed"
		mv "$BIN_DIR/$c.tmp.$$" "$BIN_DIR/$c"
	done
	if [[ ! -x $BIN_DIR/etcd ]]; then
		log "building etcd $ETCD_VERSION ..."
		(cd "$MODDIR" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" \
			-o "$BIN_DIR/etcd.tmp.$$" go.etcd.io/etcd/server/v3) || die "building etcd failed"
		mv "$BIN_DIR/etcd.tmp.$$" "$BIN_DIR/etcd"
	fi
	if [[ ! -x $BIN_DIR/kwok ]]; then
		log "installing kwok $KWOK_VERSION ..."
		GOBIN="$BIN_DIR" CGO_ENABLED=0 go install -trimpath "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" ||
			die "installing kwok failed"
	fi
	[[ -s $BIN_DIR/kwok-stages.yaml ]] || kwok_stages "$BIN_DIR/kwok-stages.yaml"
	echo "$KUBE_VERSION $ETCD_VERSION $KWOK_VERSION" >"$BIN_DIR/.stamp"
	[[ -z $KUBELET_NODE ]] || node_build "$ld"
	echo "$BIN_DIR"
}

# ---- start / stop ---------------------------------------------------------------
# A TCP port on 127.0.0.1 that nothing listens on (and that we have not handed out),
# below the kernel's ephemeral range so that outgoing connections do not take it
# between this check and the component's bind.
USED_PORTS=" "
free_port() { # free_port VAR: set VAR to a free port
	local p i lo=32768 _
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	((lo > 12000)) || lo=32768
	for ((i = 0; i < 200; i++)); do
		p=$((10000 + RANDOM % (lo - 10000)))
		[[ $USED_PORTS == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			USED_PORTS+="$p "
			printf -v "$1" %s "$p"
			return 0
		fi
	done
	die "no free port found"
}

# spawn DIR NAME BIN ARGS...: start a component in its own session, log to DIR/logs/NAME.log,
# and record "PID NAME BINARY" in DIR/pids (stop only kills what is recorded there).
spawn() {
	local dir=$1 name=$2 bin=$3
	shift 3
	setsid "${IN_NODE[@]}" "$bin" "$@" </dev/null >"$dir/logs/$name.log" 2>&1 &
	echo "$! $name $bin" >>"$dir/pids"
	disown "$!" # stopped by `stop`, not waited for: no job notices
}

alive() { # alive PID BINARY: the process exists and still runs BINARY (no PID reuse)
	[[ -e /proc/$1 ]] && [[ $(readlink "/proc/$1/exe" 2>/dev/null) == "$2" ]]
}

check_alive() {
	local dir=$1 pid name bin
	while read -r pid name bin; do
		alive "$pid" "$bin" || {
			log "$name (pid $pid) exited; last lines of $dir/logs/$name.log:"
			tail -n 30 "$dir/logs/$name.log" >&2 || true
			return 1
		}
	done <"$dir/pids"
}

gen_cert() { # gen_cert PKI NAME SUBJECT [SAN]: EC P-256 key + cert signed by PKI/ca
	local pki=$1 name=$2 subj=$3 san=${4:-} ext
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$name.key" 2>/dev/null
	openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
	ext="$pki/$name.ext"
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		if [[ -n $san ]]; then
			echo "extendedKeyUsage=serverAuth"
			echo "subjectAltName=$san"
		else
			echo "extendedKeyUsage=clientAuth"
		fi
	} >"$ext"
	openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
		-days 30 -sha256 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
	rm -f "$pki/$name.csr" "$ext"
}

write_kubeconfig() { # write_kubeconfig FILE SERVER PKI USER
	local f=$1 server=$2 pki=$3 user=$4
	cat >"$f" <<KC
apiVersion: v1
kind: Config
clusters:
- name: bftws-testenv
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$pki/$user.crt")
    client-key-data: $(base64 -w0 <"$pki/$user.key")
contexts:
- name: bftws-testenv
  context:
    cluster: bftws-testenv
    user: $user
    namespace: default
current-context: bftws-testenv
KC
	chmod 600 "$f"
}

# The default StorageClass "standard": PersistentVolumes made in advance, bound when a pod is
# scheduled. storage_class EXPANDABLE (true|false).
storage_class() {
	cat <<Y
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
allowVolumeExpansion: $1
Y
}

cluster_objects() { # fake nodes, and a default StorageClass with a pool of hostPath PVs
	local i
	for ((i = 0; i < NODES; i++)); do
		cat <<Y
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
    topology.kubernetes.io/zone: zone-$((i % 3))
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110", ephemeral-storage: 1Ti}
  capacity: {cpu: "32", memory: 256Gi, pods: "110", ephemeral-storage: 1Ti}
Y
	done
	storage_class true
	for ((i = 0; i < PVS; i++)); do
		cat <<Y
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: testenv-pv-$i
spec:
  storageClassName: standard
  capacity: {storage: 100Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /tmp/bftws-testenv-pv-$i}
Y
	done
}

cmd_start() {
	local dir=${1:?usage: $0 start DIR}
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [[ -s $dir/pids ]]; then
		local pid name bin
		while read -r pid name bin; do
			alive "$pid" "$bin" && die "$dir already has a running control plane ($name pid $pid); stop it first"
		done <"$dir/pids"
	fi
	command -v openssl >/dev/null || die "openssl is required (apt-get install openssl)"
	local t0=$SECONDS
	cmd_build >/dev/null
	[[ -z $KUBELET_NODE || ! -e $dir/node/netns ]] || die "$dir still has a node's network namespace; stop it first"
	CLEANUP_DIR=$dir # from here on, a failure stops what was started
	rm -rf "$dir/pki" "$dir/etcd" "$dir/logs" "$dir/certs" "$dir/pids" "$dir/kubeconfig" "$dir/node"
	mkdir -p "$dir/pki" "$dir/logs" "$dir/certs"
	local pki=$dir/pki
	: >"$dir/pids"
	local san_ip="" bind=127.0.0.1 advertise=127.0.0.1 node_flags=()
	if [[ -n $KUBELET_NODE ]]; then
		[[ $(id -u) == 0 ]] || die "a real node needs root"
		mkdir -p "$dir/node"
		sysctl_values >"$dir/node/sysctl.saved"
		node_namespaces "$dir" # sets NETNS and IN_NODE
		IN_NET=(in_net)
		san_ip=",IP:$NODE_IP"
		# Inside the test's network namespace: reachable from pods through the bridge.
		bind=0.0.0.0 advertise=$NODE_IP
		node_flags=(--kubelet-client-certificate="$pki/apiserver-kubelet-client.crt"
			--kubelet-client-key="$pki/apiserver-kubelet-client.key"
			--kubelet-preferred-address-types=InternalIP,Hostname)
	fi

	# PKI: a CA, the apiserver's serving cert, client certs, the service-account key pair.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -sha256 \
		-subj "/CN=bftws-testenv-ca" -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
	gen_cert "$pki" apiserver "/CN=kube-apiserver" \
		"IP:127.0.0.1,IP:10.0.0.1$san_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	gen_cert "$pki" admin "/O=system:masters/CN=bftws-testenv-admin"
	gen_cert "$pki" controller-manager "/CN=system:kube-controller-manager"
	gen_cert "$pki" scheduler "/CN=system:kube-scheduler"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/sa.key" 2>/dev/null
	openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
	[[ -z $KUBELET_NODE ]] || node_certs "$pki"

	local etcd_port etcd_peer api_port kcm_port sched_port
	if [[ -n $KUBELET_NODE ]]; then
		# The namespace is the test's own: the usual ports are free.
		etcd_port=2379 etcd_peer=2380 api_port=$API_PORT kcm_port=10257 sched_port=10259
	else
		free_port etcd_port; free_port etcd_peer; free_port api_port
		free_port kcm_port; free_port sched_port
	fi
	local server="https://127.0.0.1:$api_port"
	write_kubeconfig "$dir/kubeconfig" "$server" "$pki" admin
	write_kubeconfig "$dir/controller-manager.kubeconfig" "$server" "$pki" controller-manager
	write_kubeconfig "$dir/scheduler.kubeconfig" "$server" "$pki" scheduler

	spawn "$dir" etcd "$BIN_DIR/etcd" \
		--name=testenv --data-dir="$dir/etcd" \
		--listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
		--listen-peer-urls="http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer" \
		--initial-cluster="testenv=http://127.0.0.1:$etcd_peer" \
		--unsafe-no-fsync --log-level=warn

	spawn "$dir" kube-apiserver "$BIN_DIR/kube-apiserver" \
		--etcd-servers="http://127.0.0.1:$etcd_port" \
		--bind-address="$bind" --advertise-address="$advertise" --secure-port="$api_port" "${node_flags[@]}" \
		--cert-dir="$dir/certs" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
		--client-ca-file="$pki/ca.crt" \
		--authorization-mode=Node,RBAC \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--allow-privileged=true --profiling=false --v=1

	# Wait for /readyz (kubectl with the admin kubeconfig: no other HTTP client needed).
	local deadline=$((SECONDS + READY_TIMEOUT))
	until "${IN_NET[@]}" "$BIN_DIR/kubectl" --kubeconfig="$dir/kubeconfig" get --raw=/readyz >/dev/null 2>&1; do
		check_alive "$dir" || die "control plane failed to start"
		((SECONDS < deadline)) || die "kube-apiserver not ready after ${READY_TIMEOUT}s; see $dir/logs"
		sleep 0.3
	done

	spawn "$dir" kube-controller-manager "$BIN_DIR/kube-controller-manager" \
		--kubeconfig="$dir/controller-manager.kubeconfig" \
		--authentication-kubeconfig="$dir/controller-manager.kubeconfig" \
		--authorization-kubeconfig="$dir/controller-manager.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port="$kcm_port" --cert-dir="$dir/certs" \
		--leader-elect=false --use-service-account-credentials=true \
		--service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
		--cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
		--controllers='*' --profiling=false --v=1

	spawn "$dir" kube-scheduler "$BIN_DIR/kube-scheduler" \
		--kubeconfig="$dir/scheduler.kubeconfig" \
		--authentication-kubeconfig="$dir/scheduler.kubeconfig" \
		--authorization-kubeconfig="$dir/scheduler.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port="$sched_port" \
		--leader-elect=false --profiling=false --v=1

	if [[ -n $KUBELET_NODE ]]; then
		node_config "$dir"
		node_start "$dir" "$deadline"
		node_cluster_objects "$dir" | in_net "$BIN_DIR/kubectl" --kubeconfig="$dir/kubeconfig" apply -f - >"$dir/logs/objects.log"
		node_wait_ready "$dir" "$deadline"
	else
		cp "$BIN_DIR/kwok-stages.yaml" "$dir/kwok.yaml"
		spawn "$dir" kwok "$BIN_DIR/kwok" \
			--config="$dir/kwok.yaml" --kubeconfig="$dir/kubeconfig" \
			--manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
			--node-lease-duration-seconds=40 --cidr=10.244.0.0/16 --node-ip=10.1.0.1

		cluster_objects | "$BIN_DIR/kubectl" --kubeconfig="$dir/kubeconfig" apply -f - >"$dir/logs/objects.log"

		# Ready for tests: kwok has made the nodes Ready, and the default ServiceAccount exists
		# (the ServiceAccount admission plugin refuses pods until it does).
		until "$BIN_DIR/kubectl" --kubeconfig="$dir/kubeconfig" wait --for=condition=Ready node --all --timeout=2s >/dev/null 2>&1 &&
			"$BIN_DIR/kubectl" --kubeconfig="$dir/kubeconfig" -n default get serviceaccount default >/dev/null 2>&1; do
			check_alive "$dir" || die "control plane failed to start"
			((SECONDS < deadline)) || die "nodes or default ServiceAccount not ready after ${READY_TIMEOUT}s; see $dir/logs"
			sleep 0.3
		done
	fi
	check_alive "$dir" || die "control plane failed to start"

	printf 'export KUBECONFIG=%q\nexport PATH=%q:"$PATH"\n' "$dir/kubeconfig" "$BIN_DIR" >"$dir/env"
	[[ -z $NETNS ]] || printf '# The cluster is reached from inside its network namespace: ip netns exec %s COMMAND\nexport K8S_TESTENV_NETNS=%q\n' \
		"$NETNS" "$NETNS" >>"$dir/env"
	CLEANUP_DIR=""
	log "ready in $((SECONDS - t0))s: $server (logs in $dir/logs; stop with: $0 stop $dir)"
	echo "$dir/kubeconfig"
}

# stop_recorded DIR [NAME]: TERM (then KILL after 15 s) the processes recorded in DIR/pids, in
# reverse start order; only NAME's when given.
stop_recorded() {
	local dir=$1 only=${2:-} pid name bin i
	[[ -f $dir/pids ]] || return 0
	local -a pids=() bins=()
	while read -r pid name bin; do
		[[ -z $only || $name == "$only" ]] || continue
		pids=("$pid" "${pids[@]}") bins=("$bin" "${bins[@]}")
	done <"$dir/pids"
	for i in "${!pids[@]}"; do
		alive "${pids[i]}" "${bins[i]}" && kill -TERM "${pids[i]}" 2>/dev/null || true
	done
	local deadline=$((SECONDS + 15)) left
	while :; do
		left=0
		for i in "${!pids[@]}"; do alive "${pids[i]}" "${bins[i]}" && left=1; done
		((left == 0 || SECONDS >= deadline)) && break
		sleep 0.2
	done
	for i in "${!pids[@]}"; do
		alive "${pids[i]}" "${bins[i]}" && kill -KILL "${pids[i]}" 2>/dev/null || true
	done
	return 0
}

cmd_stop() {
	local dir=${1:?usage: $0 stop DIR} rc=0
	[[ -f $dir/pids || -d $dir/node ]] || return 0
	# A real node's containers and namespaces first; it stops the recorded processes too.
	if [[ -d $dir/node ]]; then node_stop "$dir" || rc=1; fi
	stop_recorded "$dir"
	rm -f "$dir/pids" "$dir/env"
	rm -rf "$dir/etcd"
	((rc == 0)) || die "stopped $dir, but left things behind (listed above)"
	log "stopped $dir"
}

cmd_run() {
	local dir=${1:?usage: $0 run DIR -- COMMAND...}
	shift
	[[ ${1:-} == -- ]] && shift
	(($# > 0)) || die "usage: $0 run DIR -- COMMAND..."
	local rc=0
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	cmd_start "$dir" >/dev/null
	CLEANUP_DIR=$dir # always stop, whatever the command does
	# In the background (stdin kept) so that a TERM/INT to this script is handled at once:
	# the EXIT trap then ends the command and stops the control plane.
	[[ -z $KUBELET_NODE ]] || { NETNS=$(cat "$dir/node/netns"); IN_NET=(in_net); }
	KUBECONFIG=$dir/kubeconfig PATH="$BIN_DIR:$PATH" K8S_TESTENV_DIR=$dir "${IN_NET[@]}" "$@" <&0 &
	CMD_PID=$!
	wait "$CMD_PID" || rc=$?
	CMD_PID=""
	exit "$rc"
}

CLEANUP_DIR="" CMD_PID=""
on_exit() {
	local rc=$?
	if [[ -n $CMD_PID ]] && kill -0 "$CMD_PID" 2>/dev/null; then
		kill -TERM "$CMD_PID" 2>/dev/null || true
		wait "$CMD_PID" 2>/dev/null || true
	fi
	[[ -z $CLEANUP_DIR ]] || cmd_stop "$CLEANUP_DIR" || true
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- main -------------------------------------------------------------------------
case "${1:-}" in
build) cmd_build ;;
start) cmd_start "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
run) shift; cmd_run "$@" ;;
env) [[ -f ${2:?usage: $0 env DIR}/env ]] || die "$2 is not started"; cat "$2/env" ;;
load) shift; [[ $# -ge 2 ]] || die "usage: $0 load DIR IMAGE..."; node_load "$(cd "$1" && pwd)" "${@:2}" ;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
