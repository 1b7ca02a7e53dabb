#!/usr/bin/env bash
# Builds a small OpenTelemetry Collector (the real OTLP receiver the tests in
# tests/otel send rlmbox's spans to) from the Go module proxy, and prints the path
# of the binary on stdout; progress goes to stderr.
#
# The collector's core distribution (cmd/otelcorecol) is not served by the module
# proxy, so this installs the collector's own builder (ocb, cmd/builder) with
# `go install` at a pinned version and has it build a distribution from the
# manifest below: the otlp receiver, the otlphttp and debug exporters and the batch
# processor, all at the same pinned release. Everything (GOPATH, module cache, build
# cache, sources, binary) lives under $RLMBOX_CACHE/otelcol-<hash of this recipe>,
# so a fresh clone reuses it. Idempotent: a cache hit returns at once.
set -euo pipefail
source "$(dirname "$0")/common.sh"

# One collector release: components are v0.X.0, the stable modules v1.Y.0.
OCB_VERSION=v0.162.0
STABLE_VERSION=v1.68.0

GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[[ -x "$GO" ]] || { log "otelcol: no Go toolchain (looked for go on PATH and /usr/local/go/bin/go)"; exit 1; }
go_version=$("$GO" env GOVERSION)

hash=$( { (cd "$ROOT" && sha256sum scripts/otelcol.sh); echo "$go_version"; } | sha256sum | cut -c1-16)
out="$RLMBOX_CACHE/otelcol-$hash"
bin="$out/bin/otelcol"
if [[ -x "$bin" && -f "$out/.done" ]]; then echo "$bin"; exit 0; fi

mkdir -p "$out"
# One build at a time per recipe (parallel test runs on a fresh machine).
exec 9>"$out/.lock"
flock 9
if [[ -x "$bin" && -f "$out/.done" ]]; then echo "$bin"; exit 0; fi

log "building the OpenTelemetry Collector $OCB_VERSION with $go_version (first time only, a few minutes) -> $out"
start=$(date +%s)
export GOPATH="$out/gopath"
export GOMODCACHE="$out/gopath/pkg/mod"
export GOCACHE="$out/gocache"
export GOFLAGS="-modcacherw -buildvcs=false"  # -modcacherw: the cache dir stays removable
export GOTOOLCHAIN=local                       # never download another toolchain
export CGO_ENABLED=0
export PATH="$(dirname "$GO"):$PATH"

"$GO" install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" >&2
ocb="$GOPATH/bin/builder"

c="go.opentelemetry.io/collector"
v="${OCB_VERSION}"
s="${STABLE_VERSION}"
rm -rf "$out/src"
cat >"$out/manifest.yaml" <<EOF
dist:
  module: rlmbox.local/otelcol
  name: otelcol
  description: OpenTelemetry Collector for rlmbox's tests (OTLP in, OTLP/HTTP JSON or debug out)
  version: ${v#v}-rlmbox
  output_path: $out/src
  go: $GO
receivers:
  - gomod: $c/receiver/otlpreceiver $v
exporters:
  - gomod: $c/exporter/otlphttpexporter $v
  - gomod: $c/exporter/debugexporter $v
processors:
  - gomod: $c/processor/batchprocessor $v
providers:
  - gomod: $c/confmap/provider/fileprovider $s
  - gomod: $c/confmap/provider/envprovider $s
  - gomod: $c/confmap/provider/yamlprovider $s
telemetry:
  gomod: $c/service $v
  import: $c/service/telemetry/otelconftelemetry
EOF
"$ocb" --config "$out/manifest.yaml" >&2

mkdir -p "$out/bin"
cp "$out/src/otelcol" "$bin.tmp" && mv "$bin.tmp" "$bin"
"$bin" --version >&2
# The build cache is only needed to build; the module cache stays for a rebuild.
"$GO" clean -cache >/dev/null 2>&1 || true
touch "$out/.done"
log "otelcol built in $(( $(date +%s) - start )) s"
echo "$bin"
