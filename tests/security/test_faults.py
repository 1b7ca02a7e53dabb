"""Fault injection: the model misbehaving, the execution plane dying mid-session, a
trajectory disk that cannot be written. Each ends in a clear error to the caller, no
crash, and the next request works."""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "rlm"))
sys.path.insert(0, os.path.join(HERE, "..", "service"))

from test_complete import BIN, free_port, model  # noqa: E402,F401  (fixture)
from test_serve import call, wait_http  # noqa: E402


def start(args, env):
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def base_env():
    return {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "WASM_"))}


def test_execution_plane_killed_mid_session_and_restarted(model, tmp_path):
    url, _ = model({"rules": [
        {"match": "Query: slow", "reply": "```repl\nimport time\ntime.sleep(5)\n```\nFINAL(slept)"},
        {"match": "Query:", "reply": "```repl\nx = 2 + 2\n```\nFINAL_VAR(x)"},
    ]})
    exec_port = free_port()
    exec_proc = start([BIN, "serve-exec", "--port", str(exec_port)], base_env())
    wait_http(exec_port)
    port = free_port()
    env = dict(base_env(), LLM_BASE_URL=url, LLM_API_KEY="k", WASM_SERVICE_URL=f"http://127.0.0.1:{exec_port}")
    serve = start([BIN, "serve", "--port", str(port)], env)
    try:
        wait_http(port)
        assert call(port, "POST", "/completion", {"context": "c", "query": "add"})[1]["answer"] == "4"
        # Kill the execution plane while a cell is running.
        import threading
        out = {}
        t = threading.Thread(target=lambda: out.update(r=call(port, "POST", "/completion",
                                                               {"context": "c", "query": "slow"})))
        t.start()
        time.sleep(1.0)
        exec_proc.kill()
        exec_proc.wait()
        t.join(30)
        status, r = out["r"]
        assert status == 200 and r["success"] is False
        assert "execution plane" in r["error"] or "REPL" in r["error"]
        assert call(port, "GET", "/ready")[0] == 503
        # Restart it: the inference plane recovers without a restart of its own.
        exec_proc = start([BIN, "serve-exec", "--port", str(exec_port)], base_env())
        wait_http(exec_port)
        assert call(port, "GET", "/ready")[0] == 200
        assert call(port, "POST", "/completion", {"context": "c", "query": "add"})[1]["answer"] == "4"
        # No session is left behind on the execution plane once requests are done.
        status, listing = call(exec_port, "GET", "/sessions")
        assert status == 200 and listing["sessions"] == []
    finally:
        serve.terminate()
        exec_proc.terminate()
        serve.wait(10)
        exec_proc.wait(10)


def test_trajectory_disk_unwritable(model, tmp_path):
    url, _ = model({"rules": [{"reply": "FINAL(fine)"}]})
    port = free_port()
    env = dict(base_env(), LLM_BASE_URL=url, LLM_API_KEY="k",
               RLM_TRAJECTORY_DIR="/proc/no-such-dir")  # every write fails
    serve = start([BIN, "serve", "--port", str(port)], env)
    try:
        wait_http(port)
        status, r = call(port, "POST", "/completion", {"context": "c", "query": "q"})
        assert status == 200 and r["success"] is True and r["answer"] == "fine"
        assert "trajectory_id" not in r
        assert call(port, "POST", "/completion", {"context": "c", "query": "q"})[1]["answer"] == "fine"
    finally:
        serve.terminate()
        serve.wait(10)


def test_model_garbage_slow_and_errors(model):
    url, _ = model({"rules": [
        {"match": "Query: garbage", "raw": "\x00\x01 not json at all"},
        {"match": "Query: empty-choices", "raw": json.dumps({"choices": []})},
        {"match": "Query: 500", "status": 500},
        {"match": "Query: slow", "delay": 20, "reply": "FINAL(late)"},
        {"reply": "FINAL(ok)"},
    ]})
    port = free_port()
    env = dict(base_env(), LLM_BASE_URL=url, LLM_API_KEY="k", REQUEST_TIMEOUT="2")
    serve = start([BIN, "serve", "--port", str(port)], env)
    try:
        wait_http(port)
        for query, expect in (("garbage", "malformed"), ("empty-choices", "malformed"),
                              ("500", "after retries"), ("slow", "")):
            t0 = time.time()
            status, r = call(port, "POST", "/completion", {"context": "c", "query": query})
            assert status == 200 and r["success"] is False, (query, r)
            assert expect in r["error"], (query, r["error"])
            assert time.time() - t0 < 10
        assert call(port, "POST", "/completion", {"context": "c", "query": "fine"})[1]["answer"] == "ok"
    finally:
        serve.terminate()
        serve.wait(10)
