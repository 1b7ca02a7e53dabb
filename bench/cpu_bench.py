"""What the CPU budget costs: the issue-19 workloads in one invocation, interleaved
native CPython 3.13 (built from the guest's own source) -> rlmbox (CPU-time budget,
the default) -> rlmbox with a fuel budget (the opt-in metered variant), best of N.

    python3 bench/cpu_bench.py [--bin build/rlmbox] [--reps 5]   (make bench-cpu)

rlmbox times are the sandbox's own `execution_time` from `rlmbox run --json`
(module-level code in a fresh sandbox); native times wrap the same code's exec in
a fresh namespace. Prints ms and ratios to native.
"""
import argparse
import json
import os
import subprocess
import sys

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
    ("sorted of 10^6 ints", "import random\nrandom.seed(2)\nv = [random.random() for _ in range(10**6)]\n",
     "s = sorted(v)"),
]

# The timed part runs after the set-up part, both inside one sandbox/process.
HARNESS = "import time as _t\n{setup}\n_s = _t.perf_counter()\n{code}\n_e = _t.perf_counter()\n" \
          "print(round((_e - _s) * 1000, 3))\n"


def native(python, setup, code):
    p = subprocess.run([python, "-c", HARNESS.format(setup=setup, code=code)],
                       capture_output=True, text=True, timeout=300, check=True)
    return float(p.stdout.split()[-1])


def rlmbox(binary, setup, code, fuel):
    args = [binary, "run", "--json", "--timeout", "120", "--memory-mb", "1024"]
    if fuel:
        args += ["--fuel", str(10 ** 13)]
    p = subprocess.run(args + ["-c", HARNESS.format(setup=setup, code=code)],
                       capture_output=True, text=True, timeout=300)
    r = json.loads(p.stdout)
    assert r["outcome"] == "ok", r
    assert ("fuel_used" in r) == fuel, r
    return float(r["stdout"].split()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "rlmbox"))
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    python = subprocess.run([os.path.join(ROOT, "scripts", "native-python.sh")],
                            capture_output=True, text=True, check=True).stdout.strip()
    rlmbox(a.bin, "", "1", True)  # the fuel variant compiled (or loaded) before timing
    print(f"{'workload':34} {'native ms':>10} {'cpu-time':>9} {'fuel':>9} {'fuel cost':>10}")
    for name, setup, code in WORKLOADS:
        best = {"native": 1e9, "cpu": 1e9, "fuel": 1e9}
        for _ in range(a.reps):
            best["native"] = min(best["native"], native(python, setup, code))
            best["cpu"] = min(best["cpu"], rlmbox(a.bin, setup, code, False))
            best["fuel"] = min(best["fuel"], rlmbox(a.bin, setup, code, True))
        n = best["native"]
        print(f"{name:34} {n:10.1f} {best['cpu'] / n:8.2f}x {best['fuel'] / n:8.2f}x "
              f"{(best['fuel'] / best['cpu'] - 1) * 100:+9.0f}%", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
