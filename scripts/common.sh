# Shared helpers for rlmbox's set-up scripts (sourced, not run).
# The cache lives outside the clone so a fresh clone (CI) reuses heavy artifacts;
# every artifact directory is keyed by a hash of the recipe that produced it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RLMBOX_CACHE="${RLMBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rlmbox}"
mkdir -p "$RLMBOX_CACHE"

# recipe_hash FILE_OR_DIR... : a short hash of the contents of the given inputs.
recipe_hash() {
  (cd "$ROOT" && find "$@" -type f ! -name '*.pyc' -print0 | LC_ALL=C sort -z |
    xargs -0 sha256sum) | sha256sum | cut -c1-16
}

log() { echo "rlmbox-setup: $*" >&2; }

# Stage reporting: what a set-up stage does, how long it usually takes on 2 cores,
# and how long it took here. Only stages that do work (cache misses) report.
stage_start() {  # stage_start WHAT TYPICAL
  _stage_what=$1 _stage_t0=$SECONDS
  log "$1 (usually ~$2 on 2 cores)"
}
stage_end() { log "$_stage_what: done in $(fmt_secs $((SECONDS - _stage_t0)))"; }
fmt_secs() { printf '%dm %02ds' $(($1 / 60)) $(($1 % 60)); }

# The native CPython built from the guest's own source (guest/build-native-python.sh).
native_python_dir() {
  echo "$RLMBOX_CACHE/cpython-native-3.13.5-$(recipe_hash guest/build-native-python.sh guest/sources.lock)"
}
