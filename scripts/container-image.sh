#!/usr/bin/env bash
# Builds the rlmbox image from deploy/docker/Dockerfile with podman, for the
# image and cluster tests (make test-image, make test-k8s).
#
#   scripts/container-image.sh build    build (or reuse) the image; prints its reference
#   scripts/container-image.sh check    exit 0 if this machine can, else print why, exit 3
#   scripts/container-image.sh env      print the settings a podman command here needs
#   scripts/container-image.sh bases    make and import the two stand-in base images only
#   scripts/container-image.sh cleanup  remove containers and podman's traces on the host
#
# No image registry is reachable from the machines this runs on, so the two base
# images the Dockerfile names are made locally and tagged with the names Docker
# Hub gives them (docker.io/library/debian:12.11-slim, docker.io/library/rust:
# 1.95.0-bookworm). They are test stand-ins only: Debian bookworm from
# mmdebstrap, and for the build stage the packages the official rust image
# starts from plus this machine's Rust toolchain. The Dockerfile itself stays as
# a real user builds it with real bases; nothing here edits it.
#
# podman keeps its own settings, storage and temporary files under
# $RLMBOX_CACHE/podman (so images survive between runs, keyed like every other
# heavy artifact) and never uses or changes the host's container set-up. Every
# build and container uses --network host: podman's default bridge network
# would leave nftables tables, a cni-podman0 link and ip_forward=1 behind.
set -euo pipefail
source "$(dirname "$0")/common.sh"

PODMAN_DIR="$RLMBOX_CACHE/podman"
# podman's run-time state (a tmpfs path, one per cache so that two caches never
# share it); removed by `cleanup`.
RUNROOT="/run/rlmbox-podman-$(echo "$PODMAN_DIR" | sha256sum | cut -c1-12)"
IMAGE=localhost/rlmbox:test
SLIM=docker.io/library/debian:12.11-slim
RUST=docker.io/library/rust:1.95.0-bookworm
# What the official rust:bookworm image has beyond a minimal Debian (its
# buildpack-deps base), as far as a C/C++/Rust build reaches for it.
RUST_BASE_PACKAGES=ca-certificates,curl,wget,gnupg,netbase,git,procps,gcc,g++,libc6-dev,make,patch,unzip,xz-utils,file,dpkg-dev,pkg-config,libssl-dev,zlib1g-dev

CONTAINER_PACKAGES=(podman buildah runc mmdebstrap)

# Installs the Debian packages above when they are missing and we are root
# (kept out of scripts/install-system-deps.sh: the image's own build stage runs
# that, and needs no container engine inside).
install_tools() {
  local missing=() p
  for p in "${CONTAINER_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [[ ${#missing[@]} -gt 0 && $(id -u) -eq 0 ]] || return 0
  log "installing Debian packages for the image tests: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; } ||
    true
}

# Why this machine cannot build and run the image, or nothing.
why_not() {
  [[ $(id -u) -eq 0 ]] || { echo "needs root (podman runs as root here: rootless podman cannot set the image's limits)"; return; }
  install_tools
  for tool in podman mmdebstrap; do
    command -v "$tool" >/dev/null || { echo "needs $tool (Debian packages ${CONTAINER_PACKAGES[*]}; installing them failed)"; return; }
  done
  command -v runc >/dev/null || { echo "needs runc (crun refuses hybrid cgroups)"; return; }
  command -v cargo >/dev/null || { echo "needs a Rust toolchain on the host for the build stage's stand-in base"; return; }
}

podman_env() {
  mkdir -p "$PODMAN_DIR/conf" "$PODMAN_DIR/tmp" "$PODMAN_DIR/storage" "$PODMAN_DIR/networks"
  # runc, not crun: crun refuses this kind of machine's hybrid cgroups. The
  # ulimits are set explicitly: the defaults podman copies from its own
  # process cannot be raised inside and runc refuses them.
  cat >"$PODMAN_DIR/conf/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$RUNROOT/libpod"
[network]
network_config_dir = "$PODMAN_DIR/networks"
EOF
  cat >"$PODMAN_DIR/conf/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PODMAN_DIR/storage"
runroot = "$RUNROOT"
EOF
  # podman's state database remembers the paths it was first run with and
  # prefers them to the configuration's: start it afresh when they change (it
  # holds containers only, which never outlive a test; images stay).
  local paths="$RUNROOT $PODMAN_DIR"
  if [[ "$(cat "$PODMAN_DIR/conf/paths" 2>/dev/null)" != "$paths" ]]; then
    rm -f "$PODMAN_DIR/storage/libpod/bolt_state.db"
    echo "$paths" >"$PODMAN_DIR/conf/paths"
  fi
  export CONTAINERS_CONF="$PODMAN_DIR/conf/containers.conf"
  export CONTAINERS_STORAGE_CONF="$PODMAN_DIR/conf/storage.conf"
}

have_image() { podman image exists "$1"; }

# A base image from a cached mmdebstrap tarball (made once per recipe).
import_base() {  # import_base NAME TAR CHANGES... ; builds TAR with the caller's recipe first
  local name=$1 tar=$2
  shift 2
  local id
  id=$(podman import "$@" "$tar" "$name") || return 1
  log "imported $name (${id:0:12}) from $tar"
}

ensure_bases() {
  local toolchain key dir
  toolchain="$(rustc --print sysroot)"
  # Keyed by this recipe alone (the function's own text, the package list and
  # the toolchain), not by the rest of the script.
  key=$(
    {
      declare -f ensure_bases
      echo "$RUST_BASE_PACKAGES"
      rustc --version
      cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true
    } | sha256sum | cut -c1-16
  )
  dir="$RLMBOX_CACHE/base-images-$key"
  # The certificate authorities this machine trusts beyond Debian's (a network
  # that inspects TLS), so the build stage reaches the package registries the
  # way the host does. A real base image needs none of this.
  local trust_local_cas='if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then mkdir -p "$1/usr/local/share/ca-certificates" && cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" && chroot "$1" update-ca-certificates >/dev/null; fi'
  mkdir -p "$dir"
  if [[ ! -f "$dir/slim.tar" ]]; then
    stage_start "making the stand-in debian:12.11-slim with mmdebstrap" "40 s"
    mmdebstrap --quiet --variant=minbase --include=ca-certificates \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
      --format=tar bookworm "$dir/slim.tar.part" >&2
    mv "$dir/slim.tar.part" "$dir/slim.tar"
    stage_end
  fi
  if [[ ! -f "$dir/rust.tar" ]]; then
    stage_start "making the stand-in rust:1.95.0-bookworm (Debian + this machine's $(rustc --version | cut -d' ' -f1-2))" "2 min"
    mmdebstrap --quiet --variant=minbase --include="$RUST_BASE_PACKAGES" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
      --customize-hook="mkdir -p \"\$1/usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu\" \"\$1/usr/local/cargo/bin\"" \
      --customize-hook="tar -C '$toolchain' --exclude=./share -cf - . | tar -C \"\$1/usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu\" -xf -" \
      --customize-hook='for b in "$1"/usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu/bin/*; do ln -s "${b#"$1"}" "$1/usr/local/cargo/bin/"; done' \
      --customize-hook="$trust_local_cas" \
      --format=tar bookworm "$dir/rust.tar.part" >&2
    mv "$dir/rust.tar.part" "$dir/rust.tar"
    stage_end
  fi
  # Re-imported when the recipe changed (the label names the tarball's key).
  if [[ "$(podman image inspect --format '{{index .Labels "rlmbox.base"}}' "$SLIM" 2>/dev/null)" != "$key" ]]; then
    import_base "$SLIM" "$dir/slim.tar" --change "LABEL rlmbox.base=$key" --change 'CMD ["bash"]' >/dev/null
  fi
  if [[ "$(podman image inspect --format '{{index .Labels "rlmbox.base"}}' "$RUST" 2>/dev/null)" != "$key" ]]; then
    import_base "$RUST" "$dir/rust.tar" --change "LABEL rlmbox.base=$key" \
      --change 'ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo' \
      --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      >/dev/null
  fi
}

# The build stage's cache mount (RUN --mount=type=cache,target=/var/cache/rlmbox)
# lives under buildah's temporary directory; the set-up artifacts this machine
# already built are copied in, so the image build does not rebuild them.
seed_build_cache() {
  local mount="$PODMAN_DIR/tmp/buildah-cache/var/cache/rlmbox" entry name
  mkdir -p "$mount"
  for entry in "$RLMBOX_CACHE"/src "$RLMBOX_CACHE"/wasmtime-* "$RLMBOX_CACHE"/cpython-wasi-* \
    "$RLMBOX_CACHE"/cpython-native-* "$RLMBOX_CACHE"/wizer-* "$RLMBOX_CACHE"/guest-* \
    "$RLMBOX_CACHE"/reactor-*; do
    [[ -e "$entry" ]] || continue
    name=$(basename "$entry")
    [[ -e "$mount/$name" ]] || cp -a "$entry" "$mount/$name"
  done
}

build_image() {
  ensure_bases
  seed_build_cache
  # The build context's own hash names the image, so an unchanged tree reuses it.
  local key
  # Tests, docs, the Kubernetes files and the test cluster's scripts are left
  # out: the image holds only what src/, guest/ and the build files make.
  key=$(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
    grep -zv -e '^build' -e '\.git' -e '^tests/' -e '^docs/' -e '\.md$' -e '^scripts/container-image.sh$' \
      -e '^deploy/helm/' -e '^deploy/k8s/' -e '^scripts/k8s-' -e '^testing/k8s/' | LC_ALL=C sort -z |
    xargs -0 sha256sum 2>/dev/null | sha256sum | cut -c1-16)
  if [[ "$(podman image inspect --format '{{index .Labels "rlmbox.tree"}}' "$IMAGE" 2>/dev/null)" == "$key" ]]; then
    echo "$IMAGE"
    return
  fi
  stage_start "building the image from deploy/docker/Dockerfile (podman, --network host)" "8 min"
  # --format docker keeps SHELL and HEALTHCHECK (OCI drops them); buildah 1.28
  # does not read <Dockerfile>.dockerignore, so it is named explicitly.
  TMPDIR="$PODMAN_DIR/tmp" podman build --pull=never --network host --format docker \
    --ignorefile "$ROOT/deploy/docker/Dockerfile.dockerignore" \
    --label "rlmbox.tree=$key" -f "$ROOT/deploy/docker/Dockerfile" -t "$IMAGE" "$ROOT" >&2
  stage_end
  # Layers of earlier builds of the tag are not kept.
  podman image prune -f >/dev/null 2>&1 || true
  echo "$IMAGE"
}

# Puts the host back as it was before podman ran: no containers, the storage's
# own bind mount of its overlay directory unmounted, podman's run-time state and
# the image-copy cache podman keeps outside its storage removed.
cleanup() {
  podman rm --all --force --time 0 >/dev/null 2>&1 || true
  # A container's monitor (conmon) may still be writing its exit file.
  local i
  for ((i = 0; i < 100; i++)); do
    pgrep -f "conmon.*$RUNROOT" >/dev/null || break
    sleep 0.1
  done
  local overlay="$PODMAN_DIR/storage/overlay"
  while grep -q " $overlay " /proc/self/mountinfo; do umount "$overlay" || break; done
  rm -rf "$RUNROOT"
  # containers/image always writes this one file under /var/lib/containers.
  if [[ -d /var/lib/containers && -z "$(find /var/lib/containers -mindepth 1 \
        ! -path /var/lib/containers/cache ! -path /var/lib/containers/cache/blob-info-cache-v1.boltdb)" ]]; then
    rm -rf /var/lib/containers
  fi
}

case "${1:-}" in
  check)
    reason=$(why_not)
    if [[ -n "$reason" ]]; then
      echo "$reason"
      exit 3
    fi
    ;;
  env)
    podman_env
    echo "CONTAINERS_CONF=$CONTAINERS_CONF"
    echo "CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"
    ;;
  bases)
    podman_env
    ensure_bases
    ;;
  cleanup)
    podman_env
    cleanup
    ;;
  build)
    reason=$(why_not)
    if [[ -n "$reason" ]]; then
      echo "rlmbox: cannot build the image: $reason" >&2
      exit 3
    fi
    podman_env
    trap cleanup EXIT
    build_image
    ;;
  *)
    echo "usage: $0 build|check|env" >&2
    exit 2
    ;;
esac
