#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz with clang-19 (+ASan/UBSan) and runs
# each for $1 seconds (default 20). Exits non-zero on the first crash.
set -euo pipefail
source "$(dirname "$0")/common.sh"
secs="${1:-20}"
out="${BUILD_DIR:-$ROOT/build}/fuzz"
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$ROOT/src")
declare -A sources=(
  [reply_parser]="src/rlm/parse.cc"
  [request_json]="src/service/profiles.cc src/base/status.cc"
  [host_door]="src/engine/door_protocol.cc"
  [guest_reply]="src/engine/guest_reply.cc src/base/bounded_json.cc src/base/status.cc"
  [deep_json]="src/base/bounded_json.cc src/base/status.cc"
)
status=0
for target in reply_parser request_json host_door guest_reply deep_json; do
  bin="$out/fuzz_$target"
  srcs=()
  for s in ${sources[$target]}; do srcs+=("$ROOT/$s"); done
  if [[ ! -x "$bin" || -n "$(find "$ROOT/tests/fuzz/fuzz_$target.cc" "${srcs[@]}" -newer "$bin" 2>/dev/null)" ]]; then
    clang++-19 "${flags[@]}" "$ROOT/tests/fuzz/fuzz_$target.cc" "${srcs[@]}" -o "$bin"
  fi
  scratch=$(mktemp -d)
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
       -artifact_prefix="$out/crash-$target-" "$scratch" "$ROOT/tests/fuzz/corpus/$target" \
       >"$out/$target.log" 2>&1; then
    echo "fuzz $target: ok, no crash in ${secs}s: $(grep -E '^#[0-9]+.*DONE' "$out/$target.log" | tail -1)"
  else
    echo "fuzz $target: FAILED — see $out/$target.log and $out/crash-$target-*"
    tail -30 "$out/$target.log"
    status=1
  fi
  rm -rf "$scratch"
done
exit $status
