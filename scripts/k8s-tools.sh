#!/usr/bin/env bash
# Builds what the single-node test cluster of tests/k8s runs (make test-k8s) into
# $RLMBOX_CACHE/k8s-<hash>/ and prints that directory. Idempotent: a cache hit
# returns at once; the first build takes ~12 minutes on 2 cores.
#   bin/kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy
#       kubectl   k8s.io/kubernetes from the Go module proxy (Debian has none)
#   bin/coredns   github.com/coredns/coredns from the Go module proxy
#   bin/helm      the chart's installer (the same pin as scripts/deploy-tools.sh)
#   pause         testing/k8s/pause.c, static: the pods' sandbox process
#   root/         etcd, containerd, the CNI plugins from Debian, unpacked with
#                 dpkg -x (no package scripts run, nothing lands on the host)
set -euo pipefail
source "$(dirname "$0")/common.sh"

K8S_VERSION=1.36.3      # v1.32.x fails: a staging module version is refused by the proxy
STAGING_VERSION=0.36.3  # k8s.io/<staging> modules are published as v0.<minor>.<patch>
COREDNS_VERSION=1.15.0
HELM=helm.sh/helm/v3/cmd/helm@v3.22.0
DEBS=(etcd-server containerd containernetworking-plugins)
K8S_CMDS=(kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy kubectl)

GO="$(command -v go || echo /usr/local/go/bin/go)"
hash=$( (recipe_hash scripts/k8s-tools.sh testing/k8s/pause.c; "$GO" version) | sha256sum | cut -c1-16)
out="$RLMBOX_CACHE/k8s-$hash"
if [[ -f "$out/.done" ]]; then echo "$out"; exit 0; fi

log "building the test cluster's binaries (first time only, ~12 min) -> $out"
t0=$SECONDS
rm -rf "$out.tmp" && mkdir -p "$out.tmp/bin" "$out.tmp/mod" "$out.tmp/root"
export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=mod"
# Go's module and build caches live in the set-up cache too, so an empty
# RLMBOX_CACHE is a cold build (and a warm one reuses them).
export GOMODCACHE="$RLMBOX_CACHE/go/mod" GOCACHE="$RLMBOX_CACHE/go/build"

# k8s.io/kubernetes is not meant to be a dependency: its go.mod points each
# staging module at a directory of its own tree. A module of ours that requires
# it names the published versions of those modules instead.
mod="$out.tmp/mod"
staging=$(curl -fsS "$("$GO" env GOPROXY | cut -d, -f1)/k8s.io/kubernetes/@v/v$K8S_VERSION.mod" |
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p')
[[ $(wc -l <<<"$staging") -ge 30 ]] || { log "could not read k8s.io/kubernetes v$K8S_VERSION's staging modules"; exit 1; }
{
  echo "module rlmbox.test/k8s"
  echo
  echo "go 1.26.0"
  echo
  echo "require k8s.io/kubernetes v$K8S_VERSION"
  echo
  echo "replace ("
  for m in $staging; do echo "	$m => $m v$STAGING_VERSION"; done
  echo ")"
} >"$mod/go.mod"
{
  echo "//go:build tools"
  echo
  echo "package tools"
  echo
  echo "import ("
  for c in "${K8S_CMDS[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
  echo ")"
} >"$mod/tools.go"
(cd "$mod" && "$GO" mod tidy >&2)
# The version the binaries report (helm checks the chart's kubeVersion against it).
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*}"
  ldflags+=" -X $pkg.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION") -X $pkg.gitTreeState=clean"
done
stage_start "building ${K8S_CMDS[*]} v$K8S_VERSION" "8 min"
(cd "$mod" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags="$ldflags" -o "$out.tmp/bin/" \
  $(printf 'k8s.io/kubernetes/cmd/%s ' "${K8S_CMDS[@]}") >&2)
stage_end
stage_start "building coredns v$COREDNS_VERSION and helm" "3 min"
for tool in "github.com/coredns/coredns@v$COREDNS_VERSION" "$HELM"; do
  GOBIN="$out.tmp/bin" CGO_ENABLED=0 "$GO" install -trimpath -ldflags=-s "$tool" >&2
done
stage_end

cc -O2 -static -o "$out.tmp/pause" "$ROOT/testing/k8s/pause.c"

(
  cd "$out.tmp"
  apt-get download "${DEBS[@]}" >&2 || { apt-get update >&2 && apt-get download "${DEBS[@]}" >&2; }
  for deb in ./*.deb; do dpkg -x "$deb" root; done
  rm -f ./*.deb
)
# Only what the cluster runs (the packages' docs, man pages and other tools go).
rm -rf "$out.tmp/root/usr/share" "$out.tmp/root/etc"
for f in usr/bin/etcd usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/bin/ctr \
  usr/lib/cni/bridge usr/lib/cni/host-local usr/lib/cni/loopback usr/lib/cni/ptp usr/lib/cni/portmap; do
  [[ -x "$out.tmp/root/$f" ]] || { log "missing $f in the Debian packages ${DEBS[*]}"; exit 1; }
done
rm -rf "$out.tmp/mod"
touch "$out.tmp/.done"
rm -rf "$out" && mv "$out.tmp" "$out"
log "test cluster binaries ready in $(fmt_secs $((SECONDS - t0)))"
echo "$out"
