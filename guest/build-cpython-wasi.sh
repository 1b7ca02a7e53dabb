#!/usr/bin/env bash
# Cross-builds CPython (libpython + static stdlib extension modules) and zlib for
# wasm32-wasip1 with Debian's clang-19/lld-19 and wasi-libc.
# Usage: build-cpython-wasi.sh PY_TARBALL ZLIB_TARBALL BUILD_PYTHON OUT_DIR
# Leaves OUT_DIR/cpython (configured build tree with libpython3.13.a, the module
# objects and link.vars) and OUT_DIR/zlib (installed static zlib).
set -euo pipefail
py_tarball=$1 zlib_tarball=$2 build_python=$3 out=$4
[[ -f "$out/.done" ]] && exit 0
here="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$out" && mkdir -p "$out"

# Debian's clang finds the wasi-libc sysroot and compiler-rt builtins under the
# "wasm32-wasi" triple name (the wasm32-wasip1 spelling misses the builtins).
export CC="clang-19 --target=wasm32-wasi"
export CPP="clang-19 --target=wasm32-wasi -E"
export AR=llvm-ar-19 RANLIB=llvm-ranlib-19
# bulk-memory: memcpy/memset become memory.copy/fill instead of byte loops
# (clang-19's default wasm CPU lacks it); nontrapping-fptoint and sign-ext
# shorten float->int and narrow-int conversions. wasmtime supports all three.
# -O3 with ThinLTO (the reactor link in build.sh finishes it): ~15% faster
# bytecode loops than -O2 without LTO (docs/benchmarks.md).
export CFLAGS="-O3 -g0 -flto=thin -mbulk-memory -mnontrapping-fptoint -msign-ext"
export LDFLAGS="-flto=thin -O3"

# --- zlib --------------------------------------------------------------------
mkdir -p "$out/zlib-src"
tar -C "$out/zlib-src" --strip-components=1 -xf "$zlib_tarball"
(cd "$out/zlib-src" && CHOST=wasm32 ./configure --static --prefix="$out/zlib" >/dev/null &&
  make -s -j"$(nproc)" libz.a >/dev/null && make -s install >/dev/null) ||
  { echo "zlib cross build failed" >&2; exit 1; }

# --- CPython -----------------------------------------------------------------
mkdir -p "$out/cpython"
tar -C "$out/cpython" --strip-components=1 -xf "$py_tarball"
cd "$out/cpython"
# Our own changes to the interpreter (guest/cpython-patches/README.md): the
# hooks the import policy enforces allowed_imports with.
for p in "$here"/cpython-patches/*.patch; do
  patch -s -p1 <"$p" || { echo "applying $(basename "$p") failed" >&2; exit 1; }
done
export CONFIG_SITE="$PWD/Tools/wasm/config.site-wasm32-wasi"
export ZLIB_CFLAGS="-I$out/zlib/include" ZLIB_LIBS="-L$out/zlib/lib -lz"
export PKG_CONFIG_PATH="" PKG_CONFIG_LIBDIR="$out/zlib/lib/pkgconfig"
# --with-pymalloc: CPython disables it on WASI by default; the guest is
# single-threaded and pymalloc's small-object arenas are markedly faster than
# wasi-libc's dlmalloc for Python's allocation pattern.
# --enable-big-digits=30: wasm32 would otherwise get 15-bit int digits, so any
# int above 32767 takes the multi-digit slow paths (see docs/benchmarks.md).
./configure --quiet \
  --host=wasm32-wasip1 --build="$(CC=gcc ./config.guess)" \
  --with-build-python="$build_python" \
  --with-pymalloc --enable-big-digits=30 --without-ensurepip --disable-test-modules \
  --disable-ipv6 >configure.log 2>&1 || { tail -40 configure.log >&2; exit 1; }
make -s -j"$(nproc)" python.wasm >make.log 2>&1 ||
  { grep -B2 -A8 -m5 'error' make.log >&2; exit 1; }
# Record what the Makefile would link python.wasm with, so the reactor links
# the same libpython, module libraries and system libraries.
cat >"$out/print-link-vars.mk" <<'MK'
print-link-vars:
	@echo 'LINK_OBJS=$(LINK_PYTHON_OBJS)'
	@echo 'LIBS=$(LIBS) $(MODLIBS) $(SYSLIBS)'
	@echo 'LDFLAGS=$(PY_CORE_LDFLAGS) $(LINKFORSHARED)'
MK
make -s -f Makefile -f "$out/print-link-vars.mk" print-link-vars >"$out/link.vars"
touch "$out/.done"
