"""The CPU workloads of issue 19 in one invocation, interleaved rep by rep across
targets so machine drift hits them all alike, best of N, as ratios to native:

  native     CPython 3.13 built from the guest's own source (scripts/native-python.sh)
  rlmbox     `rlmbox run` with its CPU-time budget (the default)
  fuel       `rlmbox run` with a fuel budget (the opt-in metered engine variant)
  Pyodide    one Pyodide (npm, bench/pyodide) interpreter in Node, a fresh globals dict per run
  eryx       pyeryx (PyPI) in a venv of the same native 3.13, a new eryx.Sandbox per run

Every target times the same module-level code with perf_counter inside its own
interpreter, after an untimed set-up part in the same namespace. Then the context
binding figures: POST /session with a 10 MB and a 40 MB `context` on serve-exec.

    python3 bench/cpu_bench.py [--bin build/rlmbox] [--reps 5] [--eryx pyeryx==0.11.0]
                               [--no-pyodide] [--no-eryx]        (make bench-cpu)
"""
import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TEXT = ("import random\nrandom.seed(1)\n"
        "words = ['alpha', 'beta', 'gamma', 'delta', 'eps', 'zeta', 'eta', 'theta']\n"
        "text = '\\n'.join(' '.join(random.choice(words) for _ in range(12)) "
        "for _ in range(60000))\n")
WORKLOADS = [
    ("sum(i*i for i in range(10**6))", "", "sum(i * i for i in range(10 ** 6))"),
    ("for i in range(10**6): x += i", "", "x = 0\nfor i in range(10 ** 6):\n    x += i"),
    ("splitlines + Counter (4.6 MB)", TEXT,
     "from collections import Counter\nc = Counter()\n"
     "for line in text.splitlines():\n    c.update(line.split())"),
    ("regex findall (4.6 MB)", TEXT, "import re\nn = len(re.findall(r'\\b[a-e]\\w+', text))"),
    ("json.dumps of 10^5 dicts", "import json\nrows = [{'id': i, 'name': 'n%d' % i, 'ok': i % 2 == 0}"
     " for i in range(100000)]\n", "s = json.dumps(rows)"),
    ("sorted of 10^6 floats", "import random\nrandom.seed(2)\nv = [random.random() for _ in range(10**6)]\n",
     "s = sorted(v)"),
]

RLM_SETUP = ("import random\nrandom.seed(3)\n"
             "vocab = ['total', 'count', 'of', 'the', 'records', 'error', 'id', 'value']\n"
             "context = ' '.join(random.choice(vocab) if i % 5 else str(i) "
             "for i in range(1_700_000))[:10_000_000]\n")
RLM_CELL = ("import re\nfrom collections import Counter\nwords = Counter()\nnums = []\n"
            "for start in range(0, len(context), 100_000):\n"
            "    chunk = context[start:start + 100_000]\n"
            "    words.update(chunk.split())\n"
            "    nums += [int(n) for n in re.findall(r'\\d+', chunk)]\n"
            "top = words.most_common(3)")
WORKLOADS.append(("RLM cell: 10 MB context", RLM_SETUP, RLM_CELL))

# The timed part runs after the set-up part, both inside one sandbox/process.
HARNESS = "import time as _t\n{setup}\n_s = _t.perf_counter()\n{code}\n_e = _t.perf_counter()\n" \
          "print(round((_e - _s) * 1000, 3))\n"


def native(python, src):
    p = subprocess.run([python, "-c", src], capture_output=True, text=True, timeout=300, check=True)
    return float(p.stdout.split()[-1])


def rlmbox(binary, src, fuel):
    args = [binary, "run", "--json", "--timeout", "120", "--memory-mb", "1024"]
    if fuel:
        args += ["--fuel", str(10 ** 13)]
    p = subprocess.run(args + ["-c", src], capture_output=True, text=True, timeout=300)
    r = json.loads(p.stdout)
    assert r["outcome"] == "ok", r
    assert ("fuel_used" in r) == fuel, r
    return float(r["stdout"].split()[-1])


class Worker:
    """A long-lived interpreter (Pyodide in Node, or eryx) fed one run per line."""

    def __init__(self, argv, cwd=None, env=None):
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.version = json.loads(self.proc.stdout.readline())["ready"]

    def run(self, src):
        self.proc.stdin.write(json.dumps({"src": src}) + "\n")
        self.proc.stdin.flush()
        r = json.loads(self.proc.stdout.readline())
        if "error" in r:
            raise RuntimeError(r["error"])
        return float(r["out"].split()[-1])

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def pyodide_worker():
    d = os.path.join(ROOT, "bench", "pyodide")
    if not os.path.isdir(os.path.join(d, "node_modules", "pyodide")):
        print("bench-cpu: Pyodide left out (bench/pyodide has no node_modules: npm ci there)")
        return None
    return Worker(["node", os.path.join(d, "worker.mjs")], cwd=d)


def eryx_worker(python, spec, tmp):
    venv = os.path.join(tmp, "eryx-venv")
    subprocess.run([python, "-m", "venv", venv], check=True)
    vpy = os.path.join(venv, "bin", "python")
    p = subprocess.run([vpy, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", spec],
                       capture_output=True, text=True)
    if p.returncode != 0:
        print(f"bench-cpu: eryx left out ({spec} did not install: {p.stderr.strip()[-300:]})")
        return None
    # eryx unpacks its runtime under the temporary directory: the bench's own,
    # removed at the end, so nothing is left in /tmp.
    return Worker([vpy, os.path.join(ROOT, "bench", "eryx_worker.py")],
                  env={**os.environ, "TMPDIR": tmp})


def context_binding(binary, reps):
    """POST /session with a big text context on serve-exec: ms from request to reply,
    for the first such request of a fresh server (the goal's case: nothing of the
    process's memory reused yet) and for the same request sent again (best of 3)."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "service"))
    from service_process import free_port, wait_http

    def post(port, body):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        t0 = time.perf_counter()
        c.request("POST", "/session", body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = json.loads(r.read())
        ms = (time.perf_counter() - t0) * 1000
        assert r.status == 200, data
        c.request("DELETE", "/session/" + data["session_id"])
        c.getresponse().read()
        c.close()
        return ms

    rows = []
    for mb in (10, 40):
        text = ("lorem ipsum dolor sit amet 12345 " * (mb * 2 ** 20 // 33 + 1))[:mb * 2 ** 20]
        body = json.dumps({"context": text, "limits": {"memory_mb": 512}})
        first = again = 1e9
        for _ in range(reps):
            port = free_port()
            server = subprocess.Popen([binary, "serve-exec", "--port", str(port), "--warm", "1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_http(port)
                first = min(first, post(port, body))
                again = min(again, min(post(port, body) for _ in range(3)))
            finally:
                server.terminate()
                server.wait(timeout=30)
        rows.append((mb, first, again))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "rlmbox"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--eryx", default="pyeryx==0.11.0")
    ap.add_argument("--no-pyodide", action="store_true")
    ap.add_argument("--no-eryx", action="store_true")
    a = ap.parse_args()
    python = subprocess.run([os.path.join(ROOT, "scripts", "native-python.sh")],
                            capture_output=True, text=True, check=True).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="rlmbox-bench-cpu-")
    try:
        others = {}
        if not a.no_pyodide and (w := pyodide_worker()):
            others["Pyodide"] = w
        if not a.no_eryx and (w := eryx_worker(python, a.eryx, tmp)):
            others["eryx"] = w
        rlmbox(a.bin, "print(1)", True)  # the fuel variant compiled (or loaded) before timing
        for w in others.values():
            w.run("print(1)")
        print("native: " + python + "; " +
              "; ".join(f"{k} {w.version}" for k, w in others.items()))
        cols = ["rlmbox", "fuel", *others]
        print(f"| workload | native ms | {' | '.join(cols)} |\n|---|---|" + "---|" * len(cols))
        for name, setup, code in WORKLOADS:
            src = HARNESS.format(setup=setup, code=code)
            best = {k: 1e9 for k in ["native", *cols]}
            for _ in range(a.reps):
                best["native"] = min(best["native"], native(python, src))
                best["rlmbox"] = min(best["rlmbox"], rlmbox(a.bin, src, False))
                best["fuel"] = min(best["fuel"], rlmbox(a.bin, src, True))
                for k, w in others.items():
                    best[k] = min(best[k], w.run(src))
            n = best["native"]
            print(f"| {name} | {n:.1f} | " + " | ".join(f"{best[k] / n:.2f}x" for k in cols) + " |",
                  flush=True)
        for w in others.values():
            w.close()
        print("\n| context bound at POST /session | first request of a fresh server, ms "
              "(best of 3 servers) | sent again, ms |\n|---|---|---|")
        for mb, first, again in context_binding(a.bin, 3):
            print(f"| {mb} MB text | {first:.0f} | {again:.0f} |", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
