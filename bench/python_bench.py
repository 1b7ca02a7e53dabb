"""`make bench-python`: the `rlmbox` Python package in-process, side by side with
eryx (PyPI `pyeryx`, CPython for WASI on wasmtime) in the same run.

Builds the wheels (scripts/build-wheel.py), makes one venv of the native
CPython 3.13 the set-up builds (eryx needs Python >= 3.12) holding both the
rlmbox cp313 wheel and pyeryx, and runs bench/python_worker.py there for each
measurement, alternating rlmbox and eryx so machine drift hits both alike.
Prints the wheel sizes, first-import and first-sandbox times, fresh-sandbox
execute p50/p99, session execute p50, 8-thread throughput and private memory
per idle session, with eryx/rlmbox ratios.

Usage: python3 bench/python_bench.py [--build-dir build] [--fresh 1000] [--session 3000]
       [--reps 3] [--eryx pyeryx==0.11.0]
"""
import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "bench", "python_worker.py")


def sh(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, **kw)


def native_python():
    return sh(os.path.join(ROOT, "scripts", "native-python.sh")).stdout.strip()


def measure(python, backend, what, n=0, env=None):
    # Byte-code caches are written (as in any installed Python) so imports are timed
    # as users see them, not as a first-ever compile of every module.
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    p = subprocess.run([python, WORKER, backend, what, str(n)], capture_output=True, text=True,
                       timeout=900, cwd="/", env={**environ, **(env or {})})
    if p.returncode != 0:
        raise SystemExit(f"{backend} {what} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def pct(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def ms(x):
    return f"{x * 1000:.3f} ms" if x < 0.01 else f"{x * 1000:.1f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--fresh", type=int, default=1000)
    ap.add_argument("--session", type=int, default=3000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--eryx", default="pyeryx==0.11.0")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="rlmbox-bench-python-")
    atexit.register(shutil.rmtree, tmp, True)  # venv, wheels, caches: nothing left behind
    wheels = sh(sys.executable, os.path.join(ROOT, "scripts", "build-wheel.py"),
                "--build-dir", a.build_dir, "--out", os.path.join(tmp, "dist")).stdout.split()
    native = native_python()
    venv = os.path.join(tmp, "venv")
    sh(native, "-m", "venv", venv)
    python = os.path.join(venv, "bin", "python")
    ours = [w for w in wheels if "-cp313-" in os.path.basename(w)]
    if not ours:
        raise SystemExit("bench-python: no cp313 wheel (the extension for the native 3.13 is built "
                         "by `make build`)")
    sh(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", ours[0], a.eryx)
    eryx_wheel = sh(python, "-m", "pip", "download", "--quiet", "--no-deps", "-d",
                    os.path.join(tmp, "eryx"), a.eryx).returncode == 0 and \
        [os.path.join(tmp, "eryx", f) for f in os.listdir(os.path.join(tmp, "eryx"))][0]
    # The compiled guest: both cache theirs on first use; do that (and write the
    # byte-code caches) before timing.
    # eryx unpacks its runtime under TMPDIR: the bench's own directory.
    env = {"RLMBOX_MODULE_CACHE": os.path.join(tmp, "modules"), "TMPDIR": tmp}
    for b in ("rlmbox", "eryx"):
        measure(python, b, "first", env=env)
        measure(python, b, "threads", 2, env=env)

    rows = {}
    backends = ("rlmbox", "eryx")

    def best(what, key, n=0, agg=min):
        vals = {b: [] for b in backends}
        for _ in range(a.reps):
            for b in backends:
                vals[b].append(measure(python, b, what, n, env)[key])
        return {b: agg(v) for b, v in vals.items()}

    rows["wheel size"] = {"rlmbox": os.path.getsize(ours[0]), "eryx": os.path.getsize(eryx_wheel)}
    rows["first import"] = best("import", "seconds")
    rows["first sandbox (after import, compiled guest cached)"] = best("first", "seconds")
    fresh = {b: [] for b in backends}
    session = {b: [] for b in backends}
    for _ in range(a.reps):
        for b in backends:
            fresh[b] += measure(python, b, "fresh", a.fresh // a.reps, env)["samples"]
            session[b] += measure(python, b, "session", a.session // a.reps, env)["samples"]
    rows["fresh Sandbox().execute p50"] = {b: pct(fresh[b], 0.5) for b in backends}
    rows["fresh Sandbox().execute p99"] = {b: pct(fresh[b], 0.99) for b in backends}
    rows["session execute p50"] = {b: pct(session[b], 0.5) for b in backends}
    rows["session execute p99"] = {b: pct(session[b], 0.99) for b in backends}
    rows["8 threads, fresh executes/s"] = best("threads", "per_second", 8, agg=max)
    rows["private memory per idle session"] = best("idle", "bytes_per_session")

    print(f"rlmbox {os.path.basename(ours[0])} vs {a.eryx}, in one venv of {native} "
          f"(Python 3.13); best of {a.reps} runs, alternating\n")
    print("| measurement | rlmbox | eryx | rlmbox ahead by |\n|---|---|---|---|")
    for name, v in rows.items():
        r, e = v["rlmbox"], v["eryx"]
        if "size" in name or "memory" in name:
            fmt = lambda x: f"{x / 2**20:.2f} MiB"  # noqa: E731
        elif "/s" in name:
            fmt = lambda x: f"{x:,.0f}/s"  # noqa: E731
        else:
            fmt = ms
        ratio = (r / e if "/s" in name else e / r) if r and e else float("nan")
        print(f"| {name} | {fmt(r)} | {fmt(e)} | {ratio:.2f}× |")
    print("\n(rlmbox ahead by: eryx / rlmbox for times and sizes, rlmbox / eryx for throughput;"
          " above 1 means rlmbox is ahead)")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
