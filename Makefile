# rlmbox — the two commands a newcomer needs:
#   make run    set up what is missing, build, start rlmbox
#   make test   set up what is missing, build, run every test
# Heavy artifacts are cached in $(RLMBOX_CACHE) (default ~/.cache/rlmbox).

BUILD_DIR ?= build
export BUILD_DIR

.PHONY: all setup fetch-sources build test test-image test-k8s test-asan fuzz soak run wheel bench bench-http bench-rlm bench-nodes bench-python bench-cpu bench-quick format clean

all: build

setup:
	@scripts/setup.sh

# The pinned upstream source tarballs alone (guest/sources.lock) into $(RLMBOX_CACHE)/src.
fetch-sources:
	@scripts/fetch-sources.sh >/dev/null

build: setup
	@cmake --build $(BUILD_DIR)

test: build
	@why=$$(scripts/container-image.sh check) || echo "make test: the image tests will be skipped: $$why"
	@why=$$(scripts/k8s-cluster.sh check) || echo "make test: the Kubernetes tests will be skipped: $$why"
	@cd $(BUILD_DIR) && ctest --output-on-failure -j2 --timeout 600

# The image from deploy/docker/Dockerfile built with podman and run locked down
# (scripts/container-image.sh; also part of `make test`).
test-image: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -L image

# Both topologies on a single-node Kubernetes cluster built from the registries
# (scripts/k8s-cluster.sh, tests/k8s; also part of `make test`).
test-k8s: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -L k8s

# ASan + UBSan build of the C++ tests (the gtest binaries) in build-asan/.
# wasmtime handles the guest's faults with its own signal handlers, so ASan must
# leave SIGSEGV/SIGBUS to it; the test binaries keep one engine for their whole
# life on purpose, so leak checking is off.
test-asan:
	@BUILD_DIR=build-asan RLMBOX_SANITIZE=ON scripts/setup.sh
	@cmake --build build-asan --target engine_test rlm_test service_test
	@cd build-asan && ASAN_OPTIONS=handle_segv=0:handle_sigbus=0:allow_user_segv_handler=1:detect_leaks=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -E pytest -j2

fuzz: setup
	@scripts/fuzz.sh 600

soak: build
	@RLMBOX_BIN=$(BUILD_DIR)/rlmbox python3 tests/soak/soak.py --seconds 600

run: build
	@scripts/run.sh

# Installable wheels of the `rlmbox` Python package (engine in-process, the
# binary, the guest) in dist/: `pip install dist/rlmbox-*.whl`.
wheel: build
	@python3 scripts/build-wheel.py --build-dir $(BUILD_DIR) --out dist

bench: build
	@cd bench/pyodide && npm ci --no-audit --no-fund --silent >/dev/null 2>&1 || echo "bench: pyodide unavailable"
	@$(BUILD_DIR)/rlmbox_bench --native-python python3 --native-python $$(scripts/native-python.sh) \
	  --pyodide bench/pyodide/bench.mjs

bench-http: build
	@bench/http_bench.sh

bench-rlm: build
	@python3 bench/rlm_overhead.py

bench-nodes: build
	@cd bench/pyodide && npm ci --no-audit --no-fund --silent >/dev/null 2>&1 || echo "bench: pyodide unavailable"
	@python3 bench/nodes_bench.py

# The Python package against eryx (pyeryx) in one run: wheel size, import and
# first-sandbox time, fresh/session execute, threads, idle-session memory.
bench-python: build
	@python3 bench/python_bench.py --build-dir $(BUILD_DIR)

# The CPU workloads: native CPython, rlmbox (CPU-time budget, and fuel), Pyodide and
# eryx interleaved in one run; then the time to bind a 10 / 40 MB context.
bench-cpu: build
	@cd bench/pyodide && npm ci --no-audit --no-fund --silent >/dev/null 2>&1 || echo "bench: pyodide unavailable"
	@python3 bench/cpu_bench.py --bin $(BUILD_DIR)/rlmbox

bench-quick: build
	@$(BUILD_DIR)/rlmbox_bench --quick --native-python python3

format:
	@clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD_DIR)
