#!/usr/bin/env bash
# HTTP benchmark of the execution plane (issue: serve-exec), with a Pyodide-in-Node
# service as the baseline in the same run. Prints p50/p99 and throughput for
# POST /execute {"code":"x=1"} at concurrency 1, 2, 8, 32, for session executes,
# and the ratios against Pyodide (warm interpreter, and fresh per request).
# Usage: bench/http_bench.sh [seconds-per-point]     (make bench-http)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-3}"
build="${BUILD_DIR:-build}"
load="$build/rlmbox_http_load"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -sf "127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.1; done; return 1; }
field() { python3 -c "import json,sys; print(round(json.loads(sys.argv[1])['$2'], 3))" "$1"; }

rb=$(port); "$build/rlmbox" serve-exec --port "$rb" --warm 8 2>/dev/null & rb_pid=$!
pids=("$rb_pid")
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
have_pyodide=0
if (cd bench/pyodide && npm ci --no-audit --no-fund --silent >/dev/null 2>&1); then
  pw=$(port); node bench/pyodide/server.mjs "$pw" warm 2>/dev/null & pids+=($!)
  pf=$(port); node bench/pyodide/server.mjs "$pf" fresh 2>/dev/null & pids+=($!)
  have_pyodide=1
fi
wait_up "$rb"
[[ $have_pyodide == 1 ]] && { wait_up "$pw" && wait_up "$pf" || have_pyodide=0; }
sleep 1

printf '%-34s %5s %10s %10s %10s %12s\n' "target" "conc" "p50 ms" "p99 ms" "req/s" "vs pyodide"
for c in 1 2 8 32; do
  r=$("$load" --port "$rb" --concurrency "$c" --seconds "$secs")
  ratio="-"
  if [[ $have_pyodide == 1 ]]; then
    p=$("$load" --port "$pw" --concurrency "$c" --seconds "$secs")
    ratio="$(python3 -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(f\"{a['rps']/max(b['rps'],1e-9):.1f}x rps\")" "$r" "$p")"
    printf '%-34s %5s %10s %10s %10s %12s\n' "pyodide warm (shared, no isolation)" "$c" \
      "$(field "$p" p50_ms)" "$(field "$p" p99_ms)" "$(field "$p" rps)" ""
  fi
  printf '%-34s %5s %10s %10s %10s %12s\n' "rlmbox /execute (fresh sandbox)" "$c" \
    "$(field "$r" p50_ms)" "$(field "$r" p99_ms)" "$(field "$r" rps)" "$ratio"
done
for c in 1 8; do
  r=$("$load" --port "$rb" --concurrency "$c" --seconds "$secs" --session)
  printf '%-34s %5s %10s %10s %10s %12s\n' "rlmbox session execute" "$c" \
    "$(field "$r" p50_ms)" "$(field "$r" p99_ms)" "$(field "$r" rps)" ""
done
if [[ $have_pyodide == 1 ]]; then
  p=$("$load" --port "$pf" --concurrency 1 --requests 3 --seconds 120)
  r=$("$load" --port "$rb" --concurrency 1 --seconds "$secs")
  printf '%-34s %5s %10s %10s %10s %12s\n' "pyodide fresh interpreter/request" 1 \
    "$(field "$p" p50_ms)" "$(field "$p" p99_ms)" "$(field "$p" rps)" \
    "$(python3 -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(f\"{b['p50_ms']/a['p50_ms']:.0f}x p50\")" "$r" "$p")"
fi
