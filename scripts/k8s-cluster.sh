#!/usr/bin/env bash
# A single-node Kubernetes cluster for tests/k8s (make test-k8s), made of the
# binaries scripts/k8s-tools.sh builds, run inside one network namespace and a
# private mount namespace so that the host keeps its links, routes, nftables,
# sysctls and mounts.
#
#   scripts/k8s-cluster.sh check          exit 0 if this machine can, else print why, exit 3
#   scripts/k8s-cluster.sh up DIR         start a cluster whose state lives in DIR; waits
#                                         until the node is Ready; prints the netns name
#   scripts/k8s-cluster.sh down DIR       stop it: every process, pod, cgroup, namespace
#   scripts/k8s-cluster.sh kubectl DIR ARGS...   kubectl (also: helm, ctr) against it
#
# Addresses (inside the cluster's network namespace only): the node is 10.201.0.1
# (API server :6443, kubelet :10250, DNS :53 with CoreDNS on the node), pods get
# 10.202.0.0/24 through the CNI ptp plugin (routed, so kube-proxy's nftables rules
# see pod-to-Service traffic without br_netfilter), Services 10.203.0.0/24.
set -euo pipefail
source "$(dirname "$0")/common.sh"

NODE_IP=10.201.0.1
POD_CIDR=10.202.0.0/24
SERVICE_CIDR=10.203.0.0/24
NODE_NAME=rlmbox-node
# The /proc/sys files the kubelet rewrites to its liking at start-up; in the
# cluster's mount namespace each is a private file, so the host keeps its values.
KUBELET_SYSCTLS=(kernel/panic kernel/panic_on_oops vm/overcommit_memory vm/panic_on_oom
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

cluster_name() { echo "rlmbox-k8s-$(realpath "$1" | sha256sum | cut -c1-8)"; }

why_not() {
  [[ $(id -u) -eq 0 ]] || { echo "needs root (network and mount namespaces, cgroups)"; return; }
  # The pods run the image (this also installs podman and runc when missing).
  local image
  image=$("$ROOT/scripts/container-image.sh" check) || { echo "the image cannot be built: $image"; return; }
  for tool in ip nsenter unshare openssl nft runc; do
    command -v "$tool" >/dev/null || { echo "needs $tool on the host"; return; }
  done
  awk '$5 ~ "^/sys/fs/cgroup" && ($9 == "cgroup" || $9 == "cgroup2") {found = 1} END {exit !found}' \
    /proc/self/mountinfo || { echo "needs cgroups mounted under /sys/fs/cgroup"; return; }
  ip netns add rlmbox-k8s-probe 2>/dev/null && ip netns del rlmbox-k8s-probe ||
    { echo "cannot create network namespaces (ip netns add failed)"; return; }
}

# --- certificates: one CA; the API server's serving certificate; one client
# certificate in system:masters that every component and the tests use (a test
# cluster: RBAC still applies to the workloads' service accounts).
make_pki() {
  local pki=$1
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
      -subj "/CN=rlmbox-test-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:%s,IP:10.203.0.1,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost\n' \
      "$NODE_IP" >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver.crt -days 2 -extfile apiserver.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout kubelet.key -out kubelet.csr \
      -subj "/CN=$NODE_NAME" 2>/dev/null
    printf 'subjectAltName=IP:%s,DNS:%s\n' "$NODE_IP" "$NODE_NAME" >kubelet.ext
    openssl x509 -req -in kubelet.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out kubelet.crt -days 2 -extfile kubelet.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
      -subj "/O=system:masters/CN=rlmbox-test-admin" 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out admin.crt -days 2 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  cat >"$1/../kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: rlmbox-test
  cluster: {server: "https://$NODE_IP:6443", certificate-authority: "$pki/ca.crt"}
users:
- name: admin
  user: {client-certificate: "$pki/admin.crt", client-key: "$pki/admin.key"}
contexts:
- name: rlmbox-test
  context: {cluster: rlmbox-test, user: admin}
current-context: rlmbox-test
EOF
}

write_configs() {
  local dir=$1 tools=$2 cgroot=$3
  mkdir -p "$dir/cni/net.d" "$dir/etc" "$dir/logs"
  # Routed pod networking (ptp + host-local); no masquerade: nothing leaves the namespace.
  cat >"$dir/cni/net.d/10-rlmbox.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "rlmbox-test", "plugins": [
  {"type": "ptp", "ipMasq": false, "mtu": 1500,
   "ipam": {"type": "host-local", "dataDir": "$dir/cni/ipam",
            "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
  cat >"$dir/etc/containerd.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$dir/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/rlmbox-pause:1"
  # No CAP_SYS_RESOURCE here: containers may not lower their oom_score_adj.
  restrict_oom_score_adj = true
  enable_selinux = false
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$tools/root/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
EOF
  printf 'nameserver %s\nsearch cluster.local\n' "$NODE_IP" >"$dir/etc/resolv.conf"
  cat >"$dir/etc/kubelet.yaml" <<EOF
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
  x509: {clientCAFile: "$dir/pki/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$dir/pki/kubelet.crt"
tlsPrivateKeyFile: "$dir/pki/kubelet.key"
containerRuntimeEndpoint: "unix://$dir/containerd.sock"
cgroupDriver: cgroupfs
cgroupRoot: "$cgroot"
failCgroupV1: false
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
resolvConf: "$dir/etc/resolv.conf"
podLogsDir: "$dir/pod-logs"
failSwapOn: false
protectKernelDefaults: false
rotateCertificates: false
serializeImagePulls: false
maxPods: 60
evictionHard: {memory.available: 200Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
  cat >"$dir/etc/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
clientConnection: {kubeconfig: "$dir/kubeconfig"}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Conntrack limits are the host's (init namespace) settings: left alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s, udpTimeout: 0s, udpStreamTimeout: 0s}
EOF
  cat >"$dir/etc/Corefile" <<EOF
.:53 {
  bind $NODE_IP
  errors
  kubernetes cluster.local in-addr.arpa ip6.arpa {
    kubeconfig "$dir/kubeconfig" rlmbox-test
    pods insecure
    fallthrough in-addr.arpa ip6.arpa
  }
  cache 5
}
EOF
}

# The cgroup (under this process's memory cgroup, the same path in every v1
# hierarchy) that holds the whole cluster: its daemons and, below, every pod.
cgroup_root() { echo "$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup | sed 's#/$##')/$1"; }

cgroup_dirs() {  # every hierarchy's directory for cgroup path $1
  local mnt
  for mnt in $(awk '$9 == "cgroup" || $9 == "cgroup2" {print $5}' /proc/self/mountinfo); do
    echo "$mnt$1"
  done
}

make_cgroups() {  # make_cgroups PATH: creates it (and missing parents) everywhere, recording what it made
  local path=$1 record=$2 d parent
  for d in $(cgroup_dirs "$path"); do
    local missing=() p=$d
    while [[ ! -d "$p" ]]; do missing=("$p" "${missing[@]}"); p=$(dirname "$p"); done
    for p in "${missing[@]}"; do
      mkdir "$p"
      echo "$p" >>"$record"
      parent=$(dirname "$p")
      if [[ -f "$p/cpuset.cpus" ]]; then
        cat "$parent/cpuset.cpus" >"$p/cpuset.cpus"
        cat "$parent/cpuset.mems" >"$p/cpuset.mems"
      fi
    done
  done
}

# Every process of the cluster (the daemons, containerd's shims, the pods) is in
# the cluster's cgroup subtree of the pids hierarchy.
cluster_pids() {
  local d
  for d in $(cgroup_dirs "$1"); do
    [[ -d "$d" ]] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -un
}

kill_cluster_processes() {  # kill_cluster_processes CGROUP (called from outside it)
  local i pids
  for ((i = 0; i < 50; i++)); do
    pids=$(cluster_pids "$1")
    [[ -z "$pids" ]] && return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  log "processes left in $1: $pids"
  return 1
}

# --- inside the namespaces --------------------------------------------------
inner() {
  local dir=$1 tools=$2 cgroot=$3
  local bin=$tools/bin root=$tools/root
  export PATH="$root/usr/bin:$root/usr/sbin:$bin:$PATH"
  mount --make-rprivate /
  # This namespace's own /sys (its /sys/class/net), with the host's cgroup
  # hierarchies mounted again under it.
  local cgmounts
  cgmounts=$(awk '$9 == "cgroup" || $9 == "cgroup2" {print $5, $9, $NF}' /proc/self/mountinfo)
  mount -t sysfs sysfs /sys
  mount -t tmpfs -o mode=755 cgroup-root /sys/fs/cgroup
  local mnt fstype opts
  while read -r mnt fstype opts; do
    mkdir -p "$mnt"
    if [[ $fstype == cgroup2 ]]; then mount -t cgroup2 cgroup2 "$mnt"
    else mount -t cgroup -o "$(tr , '\n' <<<"$opts" | grep -vx 'rw' | paste -sd,)" cgroup "$mnt"; fi
  done <<<"$cgmounts"
  # What containerd, the kubelet and the CNI plugins write to fixed paths stays here.
  mount -t tmpfs -o mode=755 rlmbox-run /run
  mount -t tmpfs -o mode=755 rlmbox-varlib /var/lib
  mount -t tmpfs -o mode=755 rlmbox-varlog /var/log
  mkdir -p "$dir/sysctl"
  local f name
  for f in "${KUBELET_SYSCTLS[@]}"; do
    name=$dir/sysctl/${f//\//.}
    cat "/proc/sys/$f" >"$name"
    mount --bind "$name" "/proc/sys/$f"
  done
  echo 1 >/proc/sys/net/ipv4/ip_forward  # this namespace's own

  local pids=()
  start() {  # start NAME CMD...
    local name=$1
    shift
    "$@" >"$dir/logs/$name.log" 2>&1 &
    pids+=($!)
  }
  # The daemons stop on SIGTERM; `down`, outside the cluster's cgroup, then
  # sweeps whatever is left there (pods, shims).
  stop_all() {
    trap - TERM INT
    kill -TERM "${pids[@]}" 2>/dev/null || true
    # Reaped as they exit; any still running after 5 s is killed.
    (sleep 5 && kill -KILL "${pids[@]}" 2>/dev/null) &
    local killer=$!
    wait "${pids[@]}" 2>/dev/null || true
    kill "$killer" 2>/dev/null || true
    exit 0
  }
  trap stop_all TERM INT

  local pki=$dir/pki kc=$dir/kubeconfig
  start etcd etcd --name rlmbox-test --data-dir "$dir/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster rlmbox-test=http://127.0.0.1:2380 --quota-backend-bytes 1073741824
  start kube-apiserver kube-apiserver --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$NODE_IP" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --kubelet-preferred-address-types=InternalIP \
    --kubelet-client-certificate="$pki/admin.crt" --kubelet-client-key="$pki/admin.key" \
    --kubelet-certificate-authority="$pki/ca.crt" \
    --cert-dir="$dir/apiserver-certs" --profiling=false
  local i
  for ((i = 0; i < 600; i++)); do
    kubectl --kubeconfig "$kc" get --raw /readyz >/dev/null 2>&1 && break
    sleep 0.2
  done
  start kube-controller-manager kube-controller-manager --kubeconfig="$kc" \
    --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --use-service-account-credentials=true --leader-elect=false --bind-address=127.0.0.1
  start kube-scheduler kube-scheduler --kubeconfig="$kc" --authentication-kubeconfig="$kc" \
    --authorization-kubeconfig="$kc" --leader-elect=false --bind-address=127.0.0.1
  start containerd containerd --config "$dir/etc/containerd.toml"
  for ((i = 0; i < 300; i++)); do
    [[ -S "$dir/containerd.sock" ]] && break
    sleep 0.1
  done
  start kubelet kubelet --config="$dir/etc/kubelet.yaml" --kubeconfig="$kc" \
    --root-dir="$dir/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
    --cert-dir="$dir/kubelet-certs"
  start kube-proxy kube-proxy --config="$dir/etc/kube-proxy.yaml"
  start coredns coredns -conf "$dir/etc/Corefile"
  touch "$dir/started"
  # Any daemon that exits brings the cluster down (its log says why).
  wait -n "${pids[@]}" || true
  log "a cluster daemon exited; stopping the cluster (see $dir/logs)"
  stop_all
}

up() {
  local dir tools name cgroot record
  dir=$(realpath "$1")
  mkdir -p "$dir"
  tools=$("$ROOT/scripts/k8s-tools.sh")
  name=$(cluster_name "$dir")
  cgroot=$(cgroup_root "$name")
  record="$dir/cgroups-made"
  # What a killed earlier run in DIR left behind goes first; a failure below
  # takes down what this run made.
  down "$dir"
  trap 'down "$dir"' ERR
  rm -rf "${dir:?}"/{etcd,containerd,kubelet,kubelet-certs,apiserver-certs,pod-logs,cni,logs,started}
  : >"$record"
  echo "$cgroot" >"$dir/cgroup"
  make_pki "$dir/pki"
  write_configs "$dir" "$tools" "$cgroot"
  ip netns add "$name"
  echo "$name" >"$dir/netns"
  ip -n "$name" link set lo up
  # The node's address, on a veth pair whose both ends stay in the namespace
  # (some kernels have no dummy links).
  ip -n "$name" link add rlmbox0 type veth peer name rlmbox1
  ip -n "$name" addr add "$NODE_IP/24" dev rlmbox0
  ip -n "$name" link set rlmbox1 up
  ip -n "$name" link set rlmbox0 up
  ip -n "$name" route add default dev rlmbox0
  make_cgroups "$cgroot" "$record"
  # The supervisor joins the cluster's cgroup first: everything it starts is below.
  setsid bash -c 'for d in "$@"; do [[ -f $d/cgroup.procs ]] && echo $$ >"$d/cgroup.procs"; done
    exec nsenter --net="/run/netns/'"$name"'" unshare --mount --propagation private \
      "'"$0"'" _inner "'"$dir"'" "'"$tools"'" "'"$cgroot"'"' \
    "$ROOT/scripts/k8s-cluster.sh" $(cgroup_dirs "$cgroot") \
    >"$dir/logs/supervisor.log" 2>&1 </dev/null &
  echo $! >"$dir/supervisor.pid"
  local i t0=$SECONDS
  for ((i = 0; i < 1800; i++)); do
    if [[ -f "$dir/started" ]] &&
      in_netns "$dir" "$tools/bin/kubectl" --kubeconfig "$dir/kubeconfig" get node "$NODE_NAME" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True; then
      log "test cluster up in $((SECONDS - t0)) s (netns $name)"
      trap - ERR
      echo "$name"
      return 0
    fi
    kill -0 "$(cat "$dir/supervisor.pid")" 2>/dev/null || break
    sleep 0.2
  done
  log "the test cluster did not come up; last lines of its logs:"
  tail -n 5 "$dir"/logs/*.log >&2 || true
  down "$dir"
  return 1
}

in_netns() {  # in_netns DIR CMD...
  local dir=$1
  shift
  nsenter --net="/run/netns/$(cat "$dir/netns")" "$@"
}

down() {
  local dir
  dir=$(realpath "$1")
  [[ -f "$dir/netns" ]] || return 0
  local name cgroot pid
  name=$(cat "$dir/netns")
  cgroot=$(cat "$dir/cgroup")
  pid=$(cat "$dir/supervisor.pid" 2>/dev/null || echo 0)
  if [[ $pid -gt 0 ]] && kill -TERM "$pid" 2>/dev/null; then
    local i
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  kill_cluster_processes "$cgroot" || true
  # Made cgroups, deepest first.
  if [[ -f "$dir/cgroups-made" ]]; then
    local d
    for d in $(sort -r "$dir/cgroups-made"); do
      find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
  fi
  ip netns del "$name" 2>/dev/null || true
  rm -f "$dir/netns"
}

case "${1:-}" in
  check)
    reason=$(why_not)
    if [[ -n "$reason" ]]; then echo "$reason"; exit 3; fi
    ;;
  up) up "$2" ;;
  down) down "$2" ;;
  _inner) inner "$2" "$3" "$4" ;;
  kubectl | helm)
    dir=$(realpath "$2")
    tool=$1
    shift 2
    tools=$("$ROOT/scripts/k8s-tools.sh")
    KUBECONFIG="$dir/kubeconfig" in_netns "$dir" "$tools/bin/$tool" "$@"
    ;;
  ctr)
    dir=$(realpath "$2")
    shift 2
    tools=$("$ROOT/scripts/k8s-tools.sh")
    "$tools/root/usr/bin/ctr" --address "$dir/containerd.sock" -n k8s.io "$@"
    ;;
  *)
    echo "usage: $0 check|up DIR|down DIR|kubectl DIR ...|helm DIR ...|ctr DIR ..." >&2
    exit 2
    ;;
esac
