#!/usr/bin/env bash
# Builds a native CPython of exactly the guest's version: CPython's cross build
# needs it as --with-build-python (Debian bookworm ships 3.11 only), build.sh
# byte-compiles the stdlib with it, `make bench` uses it as the native baseline,
# and the Python package is built and tested for it too (a venv of it holds pip:
# ensurepip needs pyexpat; PyPI needs ssl and hashlib; eryx's wheel, for
# `make bench-python`, needs Python >= 3.12).
# Usage: build-native-python.sh SRC_TARBALL OUT_DIR   (OUT_DIR/python on success)
#
# Only what those uses need is built: the extension modules that wrap system
# libraries or big bundled ones (decimal, the CJK codecs, sqlite, ...) are left
# out, which takes ~40% off this stage on 2 cores (docs/benchmarks.md, "Set-up"). The interpreter itself is built exactly as upstream does (-O3).
set -euo pipefail
tarball=$1 out=$2
[[ -x "$out/python" && -f "$out/.done" ]] && exit 0
rm -rf "$out" && mkdir -p "$out"
tar -C "$out" --strip-components=1 -xf "$tarball"
cd "$out"
skip=(_decimal _sqlite3 _tkinter _curses _curses_panel readline
  _dbm _gdbm _lzma _bz2 _elementtree _codecs_cn _codecs_hk _codecs_iso2022
  _codecs_jp _codecs_kr _codecs_tw _multibytecodec _uuid nis _crypt xxlimited xxlimited_35
  _testcapi _testinternalcapi _testbuffer _testimportmultiple _testmultiphase
  _testsinglephase _xxtestfuzz _ctypes_test _testclinic _testclinic_limited _testexternalinspection)
env_skip=()
for m in "${skip[@]}"; do env_skip+=("py_cv_module_${m}=n/a"); done
env "${env_skip[@]}" ./configure --quiet --without-ensurepip --disable-test-modules >/dev/null
make -s -j"$(nproc)" >/dev/null 2>make.err || { tail -30 make.err >&2; exit 1; }
touch .done
