"""`make fetch-sources` (scripts/fetch-sources.sh) on an empty cache, a corrupted
cache, a bad pin and a pin the mirror no longer serves."""
import hashlib
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LOCK = ROOT / "guest" / "sources.lock"


def pins():
    out = []
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pkg, version, file, sha = line.split()
            out.append((pkg, version, file, sha))
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(cache, *args, lock=None):
    env = dict(os.environ, RLMBOX_CACHE=str(cache))
    if lock:
        env["RLMBOX_SOURCES_LOCK"] = str(lock)
    return subprocess.run([str(ROOT / "scripts" / "fetch-sources.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def shared_download(tmp_path_factory):
    """One real fetch into an empty cache; later tests copy from it."""
    cache = tmp_path_factory.mktemp("cache")
    r = fetch(cache)
    return cache, r


def test_make_fetch_sources_brings_exactly_the_pinned_tarballs(tmp_path):
    r = subprocess.run(["make", "-s", "fetch-sources"], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, RLMBOX_CACHE=str(tmp_path)), timeout=600)
    assert r.returncode == 0, r.stderr
    arrived = sorted(p.name for p in (tmp_path / "src").iterdir())
    assert arrived == sorted(f for _, _, f, _ in pins())
    for _, _, file, sha in pins():
        assert sha256(tmp_path / "src" / file) == sha
    # Only the tarballs: no .dsc, no Debian patches.
    assert not any(n.endswith((".dsc", ".debian.tar.xz")) for n in arrived)


def test_fetch_prints_each_verified_tarball(shared_download):
    cache, r = shared_download
    assert r.returncode == 0, r.stderr
    printed = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert set(printed) == {p for p, _, _, _ in pins()}
    for pkg, _, file, sha in pins():
        assert pathlib.Path(printed[pkg]) == cache / "src" / file


def test_corrupted_cached_tarball_is_refetched_never_used(shared_download, tmp_path):
    cache, _ = shared_download
    shutil.copytree(cache / "src", tmp_path / "src")
    pkg, _, file, sha = pins()[-1]  # zlib: the small one
    target = tmp_path / "src" / file
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    r = fetch(tmp_path, pkg)
    assert r.returncode == 0, r.stderr
    assert "does not match its pinned SHA-256" in r.stderr
    assert sha256(target) == sha


def test_download_with_another_hash_is_refused(tmp_path):
    pkg, version, file, sha = pins()[-1]
    wrong = "0" * 64
    lock = tmp_path / "sources.lock"
    lock.write_text(f"{pkg} {version} {file} {wrong}\n")
    r = fetch(tmp_path / "cache", lock=lock)
    assert r.returncode != 0
    assert f"refusing {file}" in r.stderr and wrong in r.stderr
    assert not (tmp_path / "cache" / "src" / file).exists()
    assert list((tmp_path / "cache" / "src").iterdir()) == []


def test_a_pin_no_longer_served_fails_with_one_clear_line(tmp_path):
    lock = tmp_path / "sources.lock"
    lock.write_text("zlib 0.9.0 zlib_0.9.0.orig.tar.gz " + "1" * 64 + "\n")
    r = fetch(tmp_path / "cache", lock=lock)
    assert r.returncode != 0
    lines = [l for l in r.stderr.splitlines() if "no longer served" in l]
    assert len(lines) == 1
    assert "zlib 0.9.0" in lines[0] and "guest/sources.lock" in lines[0]
    assert "deb-src entry" not in r.stderr
