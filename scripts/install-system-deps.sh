#!/usr/bin/env bash
# Installs the Debian packages rlmbox needs to build and test. Idempotent: does
# nothing when every package is already present. Needs root (CI and dev machines
# run as root); prints what is missing otherwise.
set -euo pipefail

PACKAGES=(
  # C++ toolchain and libraries (host side)
  build-essential cmake ninja-build pkg-config clang-format clang-tidy
  libcpp-httplib-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev zlib1g-dev libyaml-cpp-dev libabsl-dev
  # Guest cross toolchain (wasm32-wasip1)
  clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32 libclang-rt-19-dev
  # Guest sources and build helpers
  dpkg-dev patch xz-utils zip unzip curl ca-certificates
  libffi-dev libbz2-dev liblzma-dev libsqlite3-dev libreadline-dev
  # Test and benchmark tools (iproute2 and nftables: tests/netns)
  python3 python3-pytest python3-pip python3-dev nodejs iproute2 nftables
)
BACKPORT_PACKAGES=(wasi-libc opentelemetry-cpp-dev)

SOURCES_FILE=/etc/apt/sources.list.d/rlmbox.sources

missing=()
for p in "${PACKAGES[@]}" "${BACKPORT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# wasi-libc must be the backports build (bookworm's 2022 snapshot lacks what CPython 3.13 needs).
if dpkg-query -W -f='${Version}' wasi-libc 2>/dev/null | grep -qv bpo; then missing+=(wasi-libc); fi

if [[ ${#missing[@]} -eq 0 && -f "$SOURCES_FILE" ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "rlmbox: missing Debian packages (run as root to install): ${missing[*]}" >&2
  exit 1
fi

echo "rlmbox: installing Debian packages: ${missing[*]:-(sources only)}"
if [[ ! -f "$SOURCES_FILE" ]]; then
  cat >"$SOURCES_FILE" <<'SRC'
# Added by rlmbox scripts/install-system-deps.sh
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports "${BACKPORT_PACKAGES[@]}" >/dev/null
echo "rlmbox: Debian packages ready"
