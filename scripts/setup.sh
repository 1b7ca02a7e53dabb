#!/usr/bin/env bash
# One idempotent set-up: Debian packages, wasmtime C API, the guest, and the
# CMake build directory. Heavy artifacts are cached outside the clone
# ($RLMBOX_CACHE, default ~/.cache/rlmbox) keyed by recipe hash, so a fresh
# clone with a warm cache configures in seconds. Each stage that has work to do
# says what it is doing, how long it usually takes on 2 cores and how long it
# took; a set-up that built anything ends with its total time.
#
# The wasmtime build (cargo) and the guest build (CPython's configure and make)
# run side by side: neither keeps both cores busy all the time (cargo's last
# crates and the two configure scripts are serial), so together they finish
# sooner than one after the other (docs/benchmarks.md, "Set-up").
set -euo pipefail
source "$(dirname "$0")/common.sh"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
t0=$SECONDS

"$ROOT/scripts/install-system-deps.sh"

wasmtime_log="$RLMBOX_CACHE/wasmtime-build.log"
wasmtime_out=$(mktemp)
trap 'rm -f "$wasmtime_out"' EXIT
"$ROOT/scripts/build-wasmtime.sh" >"$wasmtime_out" 2>"$wasmtime_log" &
wasmtime_pid=$!
sleep 0.2
if grep -q "building wasmtime" "$wasmtime_log" 2>/dev/null; then
  log "building wasmtime C API in the background (usually ~7 min on 2 cores; cargo's log: $wasmtime_log)"
fi

guest_status=0
guest_dir=$("$ROOT/guest/build.sh") || guest_status=$?
wasmtime_status=0
wait "$wasmtime_pid" || wasmtime_status=$?
if [[ $wasmtime_status -ne 0 ]]; then
  tail -30 "$wasmtime_log" >&2
  log "the wasmtime C API build failed (full log: $wasmtime_log)"
  exit 1
fi
[[ $guest_status -eq 0 ]] || { log "the guest build failed"; exit 1; }
wasmtime_dir=$(tail -1 "$wasmtime_out")
if (( SECONDS - t0 > 5 )); then log "wasmtime C API and guest: ready after $(fmt_secs $((SECONDS - t0)))"; fi

# Reconfigure only when an input changed (keeps `make` fast and quiet).
stamp="$BUILD_DIR/.rlmbox-configured"
want="$wasmtime_dir|$guest_dir|${CMAKE_BUILD_TYPE:-RelWithDebInfo}|${RLMBOX_SANITIZE:-OFF}"
if [[ ! -f "$BUILD_DIR/build.ninja" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" \
    -DWASMTIME_DIR="$wasmtime_dir" -DRLMBOX_GUEST_DIR="$guest_dir" \
    -DRLMBOX_SANITIZE="${RLMBOX_SANITIZE:-OFF}" >/dev/null
  echo "$want" >"$stamp"
fi
if (( SECONDS - t0 > 5 )); then
  log "set-up took $(fmt_secs $((SECONDS - t0))); next: the C++ build (usually ~4 min on 2 cores the first time)"
fi
