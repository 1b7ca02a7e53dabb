"""Workflow nodes on the execution plane (make bench-nodes).

Starts `rlmbox serve-exec` and, when bench/pyodide is installed, the Pyodide
baseline service in its "fresh" mode (a new interpreter per request: the
isolation seed 004's per-node sandboxing needs from Pyodide). Then, one request
at a time over a keep-alive connection, measures:

  /execute            the same condition as plain code (the existing path)
  condition node      {"type": "condition"} with a context
  code node           {"type": "code"} with a context
  code node + policy  the same code under allowed_imports (the policy's cost)
  loop node, 10 items one sandbox, 10 executions
  3-node workflow     code -> condition -> code over /workflows/run
  Pyodide fresh       the condition as code in a fresh Pyodide interpreter

and prints p50 / p99 per variant and the ratios that matter: each node type
against /execute, the policy against no policy, Pyodide against a condition node.

Usage: python3 bench/nodes_bench.py [--requests 500] [--pyodide-requests 5]
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("RLMBOX_BIN", os.path.join(ROOT, "build", "rlmbox"))
sys.path.insert(0, os.path.join(ROOT, "tests", "service"))
from service_process import free_port, wait_http  # noqa: E402

VALUES = list(range(20))
CODE = "import json\noutput = json.dumps({'n': len(values), 'total': sum(values)})"
WORKFLOW = {"nodes": [
    {"id": "stats", "type": "code", "code": "output = {'n': len(values)}"},
    {"id": "big", "type": "condition", "depends_on": ["stats"], "expression": "stats['n'] > 3"},
    {"id": "label", "type": "code", "when": "big", "code": "output = 'big'"},
], "inputs": {"values": VALUES}}

VARIANTS = [
    ("/execute", "/execute", {"code": "x = 5\nx > 3"}),
    ("condition node", "/nodes/execute", {"type": "condition", "expression": "x > 3",
                                          "context": {"x": 5}}),
    ("code node", "/nodes/execute", {"type": "code", "code": CODE, "context": {"values": VALUES}}),
    ("code node + policy", "/nodes/execute", {"type": "code", "code": CODE,
                                              "context": {"values": VALUES},
                                              "allowed_imports": ["json", "math"]}),
    ("loop node, 10 items", "/nodes/execute", {"type": "loop", "items": list(range(10)),
                                               "body": "item * item"}),
    ("3-node workflow", "/workflows/run", {"workflow": WORKFLOW}),
]


def measure(port, path, body, n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    payload = json.dumps(body)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", path, body=payload, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        times.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            raise RuntimeError(f"{path}: HTTP {r.status} {data[:200]!r}")
        j = json.loads(data)
        if j.get("success") is False:
            raise RuntimeError(f"{path}: {j}")
    conn.close()
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--pyodide-requests", type=int, default=5)
    a = ap.parse_args()

    procs = []
    try:
        port = free_port()
        procs.append(subprocess.Popen([BIN, "serve-exec", "--port", str(port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(port, "/ready")
        results = {}
        for name, path, body in VARIANTS:
            measure(port, path, body, 20)  # warm-up
            results[name] = measure(port, path, body, a.requests)
        pyodide = os.path.join(ROOT, "bench", "pyodide")
        if os.path.isdir(os.path.join(pyodide, "node_modules", "pyodide")) and a.pyodide_requests:
            pport = free_port()
            procs.append(subprocess.Popen(["node", os.path.join(pyodide, "server.mjs"), str(pport),
                                           "fresh"], cwd=pyodide, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            wait_http(pport, timeout=120)
            results["Pyodide fresh"] = measure(pport, "/execute", {"code": "x = 5\nx > 3"},
                                               a.pyodide_requests)

        print(f"nodes bench: {a.requests} sequential requests per variant (c=1, keep-alive)")
        for name, (p50, p99) in results.items():
            print(f"  {name:22s} p50 {p50:9.3f} ms   p99 {p99:9.3f} ms")
        base = results["/execute"][0]
        print("ratios (p50):")
        for name in ["condition node", "code node", "loop node, 10 items", "3-node workflow"]:
            print(f"  {name} / /execute: {results[name][0] / base:.2f}x")
        print(f"  policy cost: code node + policy / code node: "
              f"{results['code node + policy'][0] / results['code node'][0]:.2f}x")
        if "Pyodide fresh" in results:
            print(f"  Pyodide fresh interpreter / condition node: "
                  f"{results['Pyodide fresh'][0] / results['condition node'][0]:.0f}x")
    finally:
        for p in procs:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
