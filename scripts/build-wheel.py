#!/usr/bin/env python3
"""Builds the `rlmbox` wheel(s) from a finished build (`make wheel`).

For each extension module in BUILD/python/cpXY/ it packs: the Python package
(clients/python/rlmbox), the extension module, the rlmbox binary (as
rlmbox/_bin/rlmbox, run by the `rlmbox` console script) and the guest image
(rlmbox/_guest: guest.wasm and the stdlib zip), debug info stripped. The
compiled-module cache is not shipped: it is made on first use on the user's
machine. auditwheel then vendors the shared libraries that are not part of the
manylinux baseline (into rlmbox.libs/, via patchelf) and gives the wheel its
manylinux tag. Prints the paths of the wheels written to OUT.

Usage: build-wheel.py [--build-dir build] [--out dist] [--no-repair]
"""
from __future__ import annotations

import argparse
import base64
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "rlmbox"
SUMMARY = "LLM-written Python in a WebAssembly sandbox, in-process or over HTTP"


def version() -> str:
    text = open(os.path.join(ROOT, "clients", "python", "rlmbox", "__init__.py")).read()
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def cmake_cache(build_dir: str, key: str) -> str:
    for line in open(os.path.join(build_dir, "CMakeCache.txt")):
        if line.startswith(key + ":"):
            return line.split("=", 1)[1].strip()
    raise SystemExit(f"build-wheel: {key} is not set in {build_dir}/CMakeCache.txt")


def record_line(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def stripped(path: str, tmp: str) -> str:
    out = os.path.join(tmp, os.path.basename(path) + ".stripped")
    subprocess.run(["strip", "--strip-unneeded", "-o", out, path], check=True)
    return out


def build_one(ext: str, build_dir: str, guest_dir: str, out_dir: str, tmp: str) -> str:
    m = re.search(r"cpython-(\d)(\d+)-", os.path.basename(ext))
    if not m:
        raise SystemExit(f"build-wheel: cannot tell the Python version of {ext}")
    tag_py = f"cp{m.group(1)}{m.group(2)}"
    ver = version()
    wheel = os.path.join(tmp, f"{NAME}-{ver}-{tag_py}-{tag_py}-linux_x86_64.whl")
    dist_info = f"{NAME}-{ver}.dist-info"

    files = []  # (arcname, source path or bytes, executable)
    pkg = os.path.join(ROOT, "clients", "python", "rlmbox")
    for py in sorted(glob.glob(os.path.join(pkg, "*.py"))):
        files.append((f"rlmbox/{os.path.basename(py)}", py, False))
    files.append((f"rlmbox/{os.path.basename(ext)}", stripped(ext, tmp), True))
    files.append(("rlmbox/_bin/rlmbox", stripped(os.path.join(build_dir, "rlmbox"), tmp), True))
    files.append(("rlmbox/_guest/guest.wasm", os.path.join(guest_dir, "guest.wasm"), False))
    for f in sorted(os.listdir(os.path.join(guest_dir, "lib"))):
        files.append((f"rlmbox/_guest/lib/{f}", os.path.join(guest_dir, "lib", f), False))
    readme = open(os.path.join(ROOT, "clients", "python", "README.md")).read()
    metadata = (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {ver}\nSummary: {SUMMARY}\n"
                f"Requires-Python: =={m.group(1)}.{m.group(2)}.*\n"
                "Description-Content-Type: text/markdown\n\n" + readme)
    files.append((f"{dist_info}/METADATA", metadata.encode(), False))
    files.append((f"{dist_info}/WHEEL", (
        "Wheel-Version: 1.0\nGenerator: rlmbox scripts/build-wheel.py\n"
        f"Root-Is-Purelib: false\nTag: {tag_py}-{tag_py}-linux_x86_64\n").encode(), False))
    files.append((f"{dist_info}/entry_points.txt",
                  b"[console_scripts]\nrlmbox = rlmbox._cli:main\nrlmbox-mcp = rlmbox.mcp:main\n",
                  False))
    files.append((f"{dist_info}/top_level.txt", b"rlmbox\n", False))

    records = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for arcname, src, executable in files:
            data = src if isinstance(src, bytes) else open(src, "rb").read()
            info = zipfile.ZipInfo(arcname, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if executable else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
            records.append(record_line(arcname, data))
        records.append(f"{dist_info}/RECORD,,")
        info = zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        z.writestr(info, "\n".join(records) + "\n")
    return wheel


def repair(wheel: str, out_dir: str, pytools: str) -> str:
    env = dict(os.environ, PYTHONPATH=pytools,
               PATH=os.path.join(pytools, "bin") + os.pathsep + os.environ.get("PATH", ""))
    before = set(glob.glob(os.path.join(out_dir, "*.whl")))
    p = subprocess.run([sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", out_dir,
                        wheel], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit("build-wheel: auditwheel repair failed")
    made = sorted(set(glob.glob(os.path.join(out_dir, "*.whl"))) - before)
    tag = re.search(r"Fixed-up wheel written to (\S+)", p.stdout + p.stderr)
    return tag.group(1) if tag else (made[-1] if made else wheel)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.environ.get("BUILD_DIR", os.path.join(ROOT, "build")))
    ap.add_argument("--out", default=os.path.join(ROOT, "dist"))
    ap.add_argument("--no-repair", action="store_true", help="keep the linux_x86_64 tag")
    a = ap.parse_args()
    build_dir = os.path.abspath(a.build_dir)
    guest_dir = cmake_cache(build_dir, "RLMBOX_GUEST_DIR")
    pytools = os.path.dirname(os.path.dirname(cmake_cache(build_dir, "PYBIND11_INCLUDE_DIR")))
    exts = sorted(glob.glob(os.path.join(build_dir, "python", "cp*", "_native.*.so")))
    if not exts:
        raise SystemExit("build-wheel: no extension module in build/python (run `make build`)")
    os.makedirs(a.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rlmbox-wheel-") as tmp:
        for ext in exts:
            wheel = build_one(ext, build_dir, guest_dir, a.out, tmp)
            if a.no_repair:
                final = os.path.join(a.out, os.path.basename(wheel))
                shutil.copy(wheel, final)
            else:
                final = repair(wheel, a.out, pytools)
            print(os.path.abspath(final))


if __name__ == "__main__":
    main()
