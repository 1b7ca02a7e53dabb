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
