#!/usr/bin/env bash
# `make run`: starts the execution plane (rlmbox serve-exec) on localhost and
# shows how to call it. Ctrl-C stops it (graceful: in-flight work finishes).
set -euo pipefail
source "$(dirname "$0")/common.sh"
bin="${BUILD_DIR:-$ROOT/build}/rlmbox"
port="${PORT:-8000}"
cat <<BANNER
================================================================
 rlmbox — a WebAssembly sandbox for code written by language models
 execution plane: http://127.0.0.1:$port   (rlmbox serve-exec)
================================================================
Try, from another terminal:

  curl -s localhost:$port/health
  curl -s -X POST localhost:$port/execute -H 'Content-Type: application/json' \\
       -d '{"code": "print(\"Hello from WASM!\")\nx = 42 + 10\nprint(f\"Result: {x}\")", "context": {}, "timeout": 30}'
  SID=\$(curl -s -X POST localhost:$port/session -d '{}' | sed 's/.*"session_id":"\([0-9a-f]*\)".*/\1/')
  curl -s -X POST localhost:$port/session/\$SID/execute -d '{"code": "a = 6 * 7"}'
  curl -s -X POST localhost:$port/session/\$SID/execute -d '{"code": "a"}'
  curl -s localhost:$port/metrics

One-off runs without the server:  $bin run -c 'print(1+1)'
The inference plane (needs an OpenAI-compatible endpoint), against this execution plane:
  LLM_API_KEY=... WASM_SERVICE_URL=http://127.0.0.1:$port $bin serve --port 8001
  curl -s -X POST localhost:8001/completion -d '{"context": "...", "query": "..."}'
API reference: docs/api.md.  Logs (one JSON line per execution) follow.
BANNER
exec "$bin" serve-exec --port "$port"
