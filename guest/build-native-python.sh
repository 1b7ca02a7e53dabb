#!/usr/bin/env bash
# Builds a native CPython of exactly the guest's version: CPython's cross build
# needs it as --with-build-python (Debian bookworm ships 3.11 only).
# Usage: build-native-python.sh SRC_TARBALL OUT_DIR   (OUT_DIR/python on success)
set -euo pipefail
tarball=$1 out=$2
[[ -x "$out/python" && -f "$out/.done" ]] && exit 0
rm -rf "$out" && mkdir -p "$out"
tar -C "$out" --strip-components=1 -xf "$tarball"
cd "$out"
./configure --quiet --without-ensurepip --disable-test-modules >/dev/null
make -s -j"$(nproc)" >/dev/null 2>make.err || { tail -30 make.err >&2; exit 1; }
touch .done
