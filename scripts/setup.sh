#!/usr/bin/env bash
# One idempotent set-up: Debian packages, wasmtime C API, the guest, and the
# CMake build directory. Heavy artifacts are cached outside the clone
# ($RLMBOX_CACHE, default ~/.cache/rlmbox) keyed by recipe hash, so a fresh
# clone with a warm cache configures in seconds. Each stage that has work to do
# says what it is doing, how long it usually takes on 2 cores and how long it
# took; a set-up that built anything ends with its total time.
#
# The stages run one after the other: running the wasmtime build beside the
# guest build was tried and measured slower on 2 cores (13 min 29 s against
# 12 min 59 s; docs/benchmarks.md, "Set-up").
set -euo pipefail
source "$(dirname "$0")/common.sh"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
t0=$SECONDS

"$ROOT/scripts/install-system-deps.sh"

wasmtime_dir=$("$ROOT/scripts/build-wasmtime.sh")
(( SECONDS - t0 > 5 )) && log "wasmtime C API: ready after $(fmt_secs $((SECONDS - t0)))"
guest_dir=$("$ROOT/guest/build.sh")
if (( SECONDS - t0 > 5 )); then log "wasmtime C API and guest: ready after $(fmt_secs $((SECONDS - t0)))"; fi

pytools_dir=$("$ROOT/scripts/python-build-deps.sh")
# The extension module is built for the Python on PATH (the one `make test`
# uses) and for the native 3.13 built above (`make bench-python` runs eryx beside it).
python_exe="$(command -v python3);$("$ROOT/scripts/native-python.sh")"

# Reconfigure only when an input changed (keeps `make` fast and quiet).
stamp="$BUILD_DIR/.rlmbox-configured"
want="$wasmtime_dir|$guest_dir|${CMAKE_BUILD_TYPE:-RelWithDebInfo}|${RLMBOX_SANITIZE:-OFF}|$pytools_dir|$python_exe"
if [[ ! -f "$BUILD_DIR/build.ninja" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" \
    -DWASMTIME_DIR="$wasmtime_dir" -DRLMBOX_GUEST_DIR="$guest_dir" \
    -DRLMBOX_SANITIZE="${RLMBOX_SANITIZE:-OFF}" \
    -DPYBIND11_INCLUDE_DIR="$pytools_dir/pybind11/include" -DRLMBOX_PYTHONS="$python_exe" >/dev/null
  echo "$want" >"$stamp"
fi
if (( SECONDS - t0 > 5 )); then
  log "set-up took $(fmt_secs $((SECONDS - t0))); next: the C++ build (usually ~4 min on 2 cores the first time)"
fi
