#!/usr/bin/env bash
# `make run`: the HTTP service (rlmbox serve-exec) is not built yet, so this
# shows rlmbox working and how to use it.
set -euo pipefail
source "$(dirname "$0")/common.sh"
bin="${BUILD_DIR:-$ROOT/build}/rlmbox"
cat <<BANNER
================================================================
 rlmbox — a WebAssembly sandbox for code written by language models
 binary: $bin
================================================================
The HTTP services (serve-exec, serve) are not built yet; the sandbox is,
through \`rlmbox run\`. A first run in a fresh sandbox:

  \$ rlmbox run -c 'import sys; print("hello from", sys.platform, sys.version.split()[0])'
BANNER
"$bin" run -c 'import sys; print("hello from", sys.platform, sys.version.split()[0])'
cat <<USAGE

Try:
  $bin run -c 'print(1+1)'
  $bin run script.py
  echo 'x = 6*7; x' | $bin run
  $bin run --json --timeout 2 -c 'while True: pass'

USAGE
"$bin" run --help
