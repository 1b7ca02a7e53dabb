#!/usr/bin/env bash
# A virtualenv (cached by the hash of tests/rlms/requirements.txt) holding the
# official `rlms` library for the environment-adapter test. Prints its python.
# rlms pins pytest>=9 among its dependencies, so it never goes into the system
# Python the other tests use. Idempotent.
set -euo pipefail
source "$(dirname "$0")/common.sh"
venv="$RLMBOX_CACHE/venv-rlms-$(recipe_hash tests/rlms/requirements.txt scripts/setup-python-env.sh)"
if [[ ! -x "$venv/bin/python" || ! -f "$venv/.done" ]]; then
  log "creating the rlms test virtualenv (first time only)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$ROOT/tests/rlms/requirements.txt" >&2
  touch "$venv/.done"
fi
echo "$venv/bin/python"
