#!/usr/bin/env bash
# Fetches the upstream source tarballs pinned in guest/sources.lock into
# $RLMBOX_CACHE/src, verifying each SHA-256; prints "PACKAGE PATH" per tarball.
#
# Only the tarball is fetched (apt's --tar-only URI), so a mirror that lacks the
# rest of a source package (.dsc, .debian.tar.xz) or has moved to a newer Debian
# revision does not matter. A cached tarball whose hash does not match is removed
# and fetched again; a download whose hash does not match is refused, never built.
# Usage: fetch-sources.sh [PACKAGE...]   (default: every pinned package)
set -euo pipefail
source "$(dirname "$0")/common.sh"
lock="${RLMBOX_SOURCES_LOCK:-$ROOT/guest/sources.lock}"  # override: tests only
src="$RLMBOX_CACHE/src"
mkdir -p "$src"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# uri_for PACKAGE FILE: where the mirror serves FILE. The URI apt lists for the
# package's current tarball when that is FILE; otherwise FILE in the same pool
# directory (the pool keeps an upstream tarball while any suite refers to it).
uri_for() {
  local listed
  listed=$(apt-get source --print-uris --tar-only -qq "$1" 2>/dev/null | sed -n "s/^'\([^']*\)' .*/\1/p" | head -1)
  [[ -n "$listed" ]] || return 1
  if [[ "$(basename "$listed")" == "$(printf %s "$2" | sed 's/+/%2b/g')" || "$(basename "$listed")" == "$2" ]]; then
    echo "$listed"
  else
    echo "$(dirname "$listed")/$(printf %s "$2" | sed 's/+/%2b/g')"
  fi
}

fetch_one() {  # fetch_one PACKAGE VERSION FILE SHA256
  local pkg=$1 version=$2 file=$3 want=$4 dest="$src/$3"
  if [[ -f "$dest" ]]; then
    if [[ "$(sha_of "$dest")" == "$want" ]]; then echo "$pkg $dest"; return 0; fi
    log "cached $file does not match its pinned SHA-256; removing it and fetching again"
    rm -f "$dest"
  fi
  log "fetching $pkg $version source tarball ($file, a few seconds)"
  local uri
  if ! uri=$(uri_for "$pkg" "$file"); then
    log "cannot find Debian source package $pkg: run scripts/install-system-deps.sh (it adds the trixie deb-src entry and runs apt-get update)"
    return 1
  fi
  rm -f "$dest.part"
  if ! /usr/lib/apt/apt-helper -qq download-file "$uri" "$dest.part" >/dev/null 2>&1; then
    rm -f "$dest.part"
    log "the pinned source $pkg $version ($file) is no longer served by the Debian mirror; copy that file (sha256 $want) into $src/ or move the pin in guest/sources.lock to the version 'apt-get source --print-uris --tar-only $pkg' lists"
    return 1
  fi
  local got
  got=$(sha_of "$dest.part")
  if [[ "$got" != "$want" ]]; then
    rm -f "$dest.part"
    log "refusing $file: its SHA-256 is $got, the pin in guest/sources.lock is $want"
    return 1
  fi
  mv "$dest.part" "$dest"
  echo "$pkg $dest"
}

status=0
while read -r pkg version file sha; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  if [[ $# -gt 0 && " $* " != *" $pkg "* ]]; then continue; fi
  fetch_one "$pkg" "$version" "$file" "$sha" || status=1
done <"$lock"
exit $status
