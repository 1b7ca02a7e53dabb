#!/usr/bin/env bash
# Builds the rlmbox guest: CPython 3.13 for wasm32-wasip1 as a reactor with our
# shim, the pruned stdlib zip (with rlmbox_runner inside), pre-initialised by
# Wizer. Prints the directory holding guest.wasm and lib/python313.zip.
#
# Every stage is cached under $RLMBOX_CACHE keyed by the hash of its recipe:
#   src/                       upstream tarballs pinned in guest/sources.lock (verified)
#   cpython-native-<ver>-<hash>/ native build python (cross builds need one)
#   cpython-wasi-<hash>/       libpython + modules + zlib for wasm32 (slow, ~10 min)
#   guest-<hash>/              the final guest (fast: link, zip, wizer)
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"
here="$ROOT/guest"

PY_VERSION=3.13.5

cpython_hash=$(recipe_hash guest/build-cpython-wasi.sh guest/build-native-python.sh guest/sources.lock \
  $(cd "$ROOT" && echo guest/cpython-patches/*.patch))
guest_hash=$(recipe_hash guest/shim.c guest/rlmbox_runner.py guest/rlmbox_policy.py guest/build.sh guest/stdlib-prune.txt \
  guest/wizer/package.json guest/wizer/package-lock.json)-$cpython_hash
out="$RLMBOX_CACHE/guest-$guest_hash"
if [[ -f "$out/.done" ]]; then echo "$out"; exit 0; fi

# --- sources: the pinned upstream tarballs (guest/sources.lock), hash-verified -----------------
sources=$("$ROOT/scripts/fetch-sources.sh" python3.13 zlib)
py_tar=$(awk '$1 == "python3.13" {print $2}' <<<"$sources")
zlib_tar=$(awk '$1 == "zlib" {print $2}' <<<"$sources")

# --- native build python, then the wasm32 CPython -------------------------------------------
native=$(native_python_dir)
if [[ ! -f "$native/.done" ]]; then
  stage_start "building native CPython $PY_VERSION (the cross build's helper)" "3 min"
  "$here/build-native-python.sh" "$py_tar" "$native"
  stage_end
fi
wasi="$RLMBOX_CACHE/cpython-wasi-$cpython_hash"
if [[ ! -f "$wasi/.done" ]]; then
  stage_start "cross-building CPython $PY_VERSION and zlib for wasm32-wasip1" "4 min"
  "$here/build-cpython-wasi.sh" "$py_tar" "$zlib_tar" "$native/python" "$wasi"
  stage_end
fi

rm -rf "$out.tmp" && mkdir -p "$out.tmp/lib"
work="$out.tmp/work"
mkdir -p "$work"

# --- link the reactor (cached on its own: the LTO link takes ~1 min) ----------------------------
cpy="$wasi/cpython"
reactor="$RLMBOX_CACHE/reactor-$(recipe_hash guest/shim.c guest/build.sh)-$cpython_hash.wasm"
if [[ ! -f "$reactor" ]]; then
  stage_start "linking the guest reactor (ThinLTO)" "1 min"
  # shellcheck disable=SC1090
  eval "$(sed -e "s/^\([A-Z_]*\)=\(.*\)$/\1='\2'/" "$wasi/link.vars")"
  clang-19 --target=wasm32-wasi -O3 -g0 -flto=thin -mbulk-memory -I"$cpy/Include" \
    -I"$cpy/Include/internal" -I"$cpy" \
    -c "$here/shim.c" -o "$work/shim.o"
  # -mexec-model=reactor: crt1-reactor (no main; _initialize runs libc ctors).
  # The stack stays first and at CPython's 8 MiB so an overflow traps instead of
  # corrupting the heap. The stack pointer is the guest's one mutable global:
  # exported so that session snapshots can save and check it (engine/snapshot.cc).
  (cd "$cpy" && clang-19 --target=wasm32-wasi -mexec-model=reactor $LDFLAGS \
    -z stack-size=8388608 -Wl,--stack-first -Wl,--initial-memory=20971520 \
    -Wl,--strip-all -Wl,--export=__stack_pointer -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=_PyErr_NoMemory \
    -o "$reactor.tmp" "$work/shim.o" $LINK_OBJS $LIBS)
  mv "$reactor.tmp" "$reactor"
  stage_end
fi
cp "$reactor" "$work/guest-raw.wasm"

# --- the stdlib zip ----------------------------------------------------------------------------
stage_start "packing the stdlib zip and pre-initialising the guest with Wizer" "20 s"
stage="$work/stdlib"
mkdir -p "$stage"
cp -r "$cpy/Lib/." "$stage/"
while read -r entry; do
  [[ -z "$entry" || "$entry" == \#* ]] && continue
  rm -rf "$stage/$entry"
done <"$here/stdlib-prune.txt"
find "$stage" -name '__pycache__' -type d -prune -exec rm -rf {} +
cp "$cpy"/build/lib.wasi-wasm32-3.13/_sysconfigdata*.py "$stage/" 2>/dev/null || true
cp "$here/rlmbox_runner.py" "$here/rlmbox_policy.py" "$stage/"
# Byte-compile with the same CPython version (same magic number), then zip
# .pyc next to .py so tracebacks still show source lines.
"$native/python" -E -s -m compileall -q -j0 -o 0 -b -d /lib/python313.zip "$stage" >/dev/null
(cd "$stage" && find . -type f \( -name '*.py' -o -name '*.pyc' \) | LC_ALL=C sort |
  TZ=UTC zip -q -X -D -9 -@ "$out.tmp/lib/python313.zip")

# --- Wizer pre-initialisation ----------------------------------------------------------------
tools="$RLMBOX_CACHE/wizer-$(recipe_hash guest/wizer/package.json guest/wizer/package-lock.json)"
if [[ ! -x "$tools/node_modules/.bin/wizer" && ! -x "$tools/node_modules/@bytecodealliance/wizer-linux-x64/wizer" ]]; then
  rm -rf "$tools" && mkdir -p "$tools"
  cp "$here/wizer/package.json" "$here/wizer/package-lock.json" "$tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --silent >/dev/null 2>&1) ||
    { log "npm ci for wizer failed"; exit 1; }
fi
wizer="$tools/node_modules/@bytecodealliance/wizer-linux-x64/wizer"
"$wizer" --allow-wasi --init-func rlmbox_init --inherit-stdio true \
  --mapdir "/lib::$out.tmp/lib" -o "$out.tmp/guest.wasm" "$work/guest-raw.wasm"

rm -rf "$work"
stage_end
sha256sum "$out.tmp/guest.wasm" "$out.tmp/lib/python313.zip" | sed "s|$out.tmp/||" >"$out.tmp/SHA256SUMS"
touch "$out.tmp/.done"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
