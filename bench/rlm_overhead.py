"""The inference plane's own overhead, per architecture (make bench-rlm).

For each REPL backend (in-process, sidecar, remote) this starts `rlmbox serve`
(and `serve-exec` where needed) and the scripted model (tests/fixtures), which
answers instantly. A request runs ITER iterations; each iteration's code makes
SUB llm_query calls. From the response and its trajectory:

  per iteration = (request wall time - time inside code cells) / iterations
                  (the root model round trip, parsing, prompt building, REPL
                  round trips: everything but guest code)
  per sub-call  = (time of a cell with SUB calls - time of a cell with none) / SUB
                  (host door, streaming hop for sidecar/remote, model round trip)

Usage: python3 bench/rlm_overhead.py [--requests 5] [--iterations 5] [--subcalls 10]
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("RLMBOX_BIN", os.path.join(ROOT, "build", "rlmbox"))
MODEL = os.path.join(ROOT, "tests", "fixtures", "scripted_model.py")

sys.path.insert(0, os.path.join(ROOT, "tests", "service"))
from service_process import free_port, wait_http  # noqa: E402






def post(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    return json.loads(c.getresponse().read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--subcalls", type=int, default=10)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rlm-bench-")
    # Iteration i (1-based) runs a cell with SUB sequential llm_query calls, except
    # the first, which runs one without; the last iteration answers.
    rules = []
    for i in range(1, a.iterations + 1):
        calls = 0 if i == 1 else a.subcalls
        code = f"r = [llm_query('sub {i}-' + str(k)) for k in range({calls})]\nstep = {i}"
        reply = f"```repl\n{code}\n```"
        if i == a.iterations:
            reply += "\nFINAL(done)"
        rules.append({"match": "Query:" if i == 1 else f"Turn {i - 1} of", "reply": reply})
    rules.append({"match": "sub ", "reply": "ok"})
    script = os.path.join(tmp, "script.json")
    with open(script, "w") as f:
        json.dump({"rules": rules}, f)

    print(f"rlm overhead: {a.requests} requests x {a.iterations} iterations, "
          f"{a.subcalls} llm_query per cell; scripted model answering instantly")
    print(f"{'backend':<12}{'request ms':>12}{'per iteration ms':>18}{'per sub-call ms':>17}")
    for mode in ("in_process", "sidecar", "remote"):
        procs = []
        try:
            mport = free_port()
            procs.append(subprocess.Popen([sys.executable, MODEL, "--port", str(mport), "--script", script],
                                          stderr=subprocess.DEVNULL))
            env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "WASM_"))}
            serve_env = dict(env, LLM_BASE_URL=f"http://127.0.0.1:{mport}/v1", LLM_API_KEY="k",
                             LLM_MODEL="m", RLM_TRAJECTORY_DIR=tmp,
                             MAX_ITERATIONS=str(a.iterations + 1))
            if mode != "in_process":
                eport = free_port()
                procs.append(subprocess.Popen([BIN, "serve-exec", "--port", str(eport)], env=env,
                                              stderr=subprocess.DEVNULL))
                wait_http(eport)
                key = "WASM_MANAGER_SERVICE_URL" if mode == "sidecar" else "WASM_SERVICE_URL"
                serve_env[key] = f"http://127.0.0.1:{eport}"
            sport = free_port()
            procs.append(subprocess.Popen([BIN, "serve", "--port", str(sport)], env=serve_env,
                                          stderr=subprocess.DEVNULL))
            wait_http(sport)
            wait_http(mport)
            totals, per_iter, per_sub = [], [], []
            for _ in range(a.requests + 1):  # the first warms caches and is dropped
                r = post(sport, "/completion", {"context": "c", "query": "q"})
                assert r["success"], r
                lines = [json.loads(l) for l in open(os.path.join(tmp, r["trajectory_id"] + ".jsonl"))]
                its = [l for l in lines if l["type"] == "iteration"]
                cells = [b["result"]["execution_time"] for l in its for b in l["code_blocks"]]
                total = r["execution_time"]
                totals.append(total)
                per_iter.append((total - sum(cells)) / len(its))
                with_calls = statistics.mean(cells[1:]) if len(cells) > 1 else 0
                per_sub.append((with_calls - cells[0]) / a.subcalls)
            totals, per_iter, per_sub = totals[1:], per_iter[1:], per_sub[1:]
            print(f"{mode:<12}{statistics.median(totals) * 1000:>12.1f}"
                  f"{statistics.median(per_iter) * 1000:>18.2f}{statistics.median(per_sub) * 1000:>17.2f}")
        finally:
            for p in procs:
                p.terminate()
                p.wait()


if __name__ == "__main__":
    main()
