"""`rlmbox serve` in all three architectures (seeds 000/001/003): in-process sandbox,
sidecar sessions (WASM_MANAGER_SERVICE_URL) and a remote execution plane
(WASM_SERVICE_URL) — real processes, real HTTP, a scripted model."""
import http.client
import json
import os
import subprocess
import sys
import time

import pytest

from test_complete import BIN, free_port, model, requests_of  # noqa: F401  (fixture)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "service"))
from service_process import wait_http  # noqa: E402

NEEDLE_CODE = (
    "```repl\n"
    "chunks = [context[i:i + 200_000] for i in range(0, len(context), 200_000)]\n"
    "replies = llm_query_batched([f'Scan this: {c}' for c in chunks])\n"
    "hits = [r for r in replies if r != 'nothing']\n"
    "result = hits[0] if hits else 'not found'\n"
    "print(len(chunks), hits)\n"
    "```\n"
    "FINAL_VAR(result)")


def call(port, method, path, body=None, headers=None, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json", **(headers or {})}
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data.decode()


@pytest.fixture
def stack(model, tmp_path):
    """Starts serve (+ serve-exec for sidecar/remote); returns a function(mode, script)."""
    procs = []

    def start(mode, script, extra_env=None):
        url, log = model(script)
        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("LLM_", "WASM_", "RLMBOX_TOKEN"))}
        serve_env = dict(base_env, LLM_BASE_URL=url, LLM_API_KEY="inference-only-key",
                         LLM_MODEL="root-model", RLM_TRAJECTORY_DIR=str(tmp_path))
        serve_env.update(extra_env or {})
        if mode in ("sidecar", "remote"):
            exec_port = free_port()
            # The execution plane gets no LLM settings at all.
            args = [BIN, "serve-exec", "--port", str(exec_port), "--warm", "2"]
            if mode == "sidecar":
                args.append("--sidecar")
            procs.append(subprocess.Popen(args, env=base_env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_http(exec_port)
            key = "WASM_MANAGER_SERVICE_URL" if mode == "sidecar" else "WASM_SERVICE_URL"
            serve_env[key] = f"http://127.0.0.1:{exec_port}"
        port = free_port()
        procs.append(subprocess.Popen([BIN, "serve", "--port", str(port)], env=serve_env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(port)
        return port, log

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.mark.parametrize("mode", ["in_process", "sidecar", "remote"])
def test_needle_task_in_every_architecture(stack, mode, tmp_path):
    port, log = stack(mode, {"rules": [
        {"match": "Query:", "reply": NEEDLE_CODE},
        {"match": "MAGIC-777", "reply": "MAGIC-777"},
        {"match": "Scan this", "reply": "nothing"},
    ]})
    assert call(port, "GET", "/ready")[1]["backend"] == mode
    haystack = "filler text. " * 150_000  # ~2 MB
    haystack = haystack[:1_000_000] + " the magic word is MAGIC-777 " + haystack[1_000_000:]
    status, r = call(port, "POST", "/completion", {"context": haystack,
                                                   "query": "Find the magic word."})
    assert status == 200, r
    assert r["success"] is True and r["answer"] == "MAGIC-777"
    assert r["iterations"] == 1 and r["model"] == "root-model"
    assert r["usage"]["model_usage_summaries"]["root-model"]["total_calls"] >= 2
    # The trajectory file exists and is in the rlm logger format.
    lines = [json.loads(l) for l in open(tmp_path / (r["trajectory_id"] + ".jsonl"))]
    assert lines[0]["type"] == "metadata"
    assert lines[0]["environment_type"] == "rlmbox_" + mode
    assert len(lines[1]["code_blocks"][0]["result"]["rlm_calls"]) == len(haystack) // 200_000 + 1
    # Every model request came from the inference plane, with its key.
    assert all(q["headers"]["Authorization"] == "Bearer inference-only-key"
               for q in requests_of(log))


@pytest.mark.parametrize("mode", ["in_process", "remote"])
def test_infer_and_chat_completions(stack, mode):
    port, log = stack(mode, {"rules": [
        {"match": "Query: What is 42 + 10?", "reply":
            "```repl\nanswer['content'] = str(42 + 10)\nanswer['ready'] = True\n```"},
        {"match": "Query: Say hi", "reply": "FINAL(hi there)"},
    ]})
    # The seeds' own /infer body.
    status, r = call(port, "POST", "/infer", {
        "query": "What is 42 + 10?",
        "context": "You are a helpful assistant that can execute Python code.",
        "model": "gpt-5", "max_depth": 2})
    assert status == 200
    assert r["success"] is True and r["answer"] == "52"
    assert r["model"] == "gpt-5" and r["max_depth"] == 2
    assert requests_of(log)[-1]["body"]["model"] == "gpt-5"
    # OpenAI-compatible facade.
    status, c = call(port, "POST", "/v1/chat/completions", {
        "model": "chat-model",
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Say hi"}]})
    assert status == 200
    assert c["object"] == "chat.completion" and c["model"] == "chat-model"
    assert c["choices"][0]["message"] == {"role": "assistant", "content": "hi there"}
    assert c["usage"]["total_tokens"] >= 0


def test_depth_two_with_a_remote_execution_plane(stack):
    port, _ = stack("remote", {"rules": [
        {"match": "Query: Top", "reply":
            "```repl\nsub = rlm_query('Sub-task: give a number')\n```\nFINAL_VAR(sub)"},
        {"match": "Query: Sub-task", "reply": "```repl\nx = 6 * 7\n```\nFINAL_VAR(x)"},
    ]})
    status, r = call(port, "POST", "/completion", {"context": "c", "query": "Top", "max_depth": 2})
    assert r["success"] is True and r["answer"] == "42", r


FORK_SCRIPT = {"rules": [
    # Two cells: the first defines state, the second calls rlm_query.
    {"match": "Query: Top", "reply":
        "```repl\nsecret = 'S' + str(6 * 7)\ndef helper(): return 'H'\n```\n"
        "```repl\nsub = rlm_query('Sub-task: report')\nout = sub + '/' + secret\n```\n"
        "FINAL_VAR(out)"},
    # The child reports what it sees of the parent, then overwrites `secret`.
    {"match": "Query: Sub-task", "reply":
        "```repl\nr = globals().get('secret', 'fresh')"
        " + (helper() if 'helper' in globals() else '') + '|' + context[:8]\n"
        "secret = 'changed'\n```\nFINAL_VAR(r)"},
]}


@pytest.mark.parametrize("mode", ["in_process", "remote"])
def test_rlm_query_children_fork_the_parents_repl(stack, mode, tmp_path):
    port, _ = stack(mode, FORK_SCRIPT, extra_env={"RLM_FORK_CHILDREN": "1"})
    status, r = call(port, "POST", "/completion", {"context": "c", "query": "Top", "max_depth": 2})
    # The child saw the parent's variable and function, its own context, and
    # its write did not reach the parent.
    assert status == 200 and r["success"] is True, r
    # A child that started fresh says why in its trajectory's metadata.
    why = [l for f in tmp_path.glob("*.jsonl") for l in open(f) if "fork" in l]
    assert r["answer"] == "S42H|Sub-task/S42", why


def test_rlm_query_children_start_fresh_by_default(stack):
    port, _ = stack("in_process", FORK_SCRIPT)
    status, r = call(port, "POST", "/completion", {"context": "c", "query": "Top", "max_depth": 2})
    assert status == 200 and r["answer"] == "fresh|Sub-task/S42", r


def test_bad_input_and_backend_down(stack):
    port, _ = stack("in_process", {"rules": [{"reply": "FINAL(x)"}]})
    assert call(port, "POST", "/completion", {"context": "c"})[0] == 400
    assert call(port, "POST", "/completion", {"context": "c", "query": "  "})[0] == 400
    assert call(port, "POST", "/infer", {"query": "q", "max_depth": "deep"})[0] == 400
    assert call(port, "POST", "/v1/chat/completions", {"messages": []})[0] == 400
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/completion", body="{nope", headers={"Content-Type": "application/json"})
    assert c.getresponse().status == 400
    assert call(port, "POST", "/completion", {"context": "c", "query": "q"})[1]["answer"] == "x"

    dead = free_port()
    port2, _ = stack("in_process", {"rules": [{"reply": "FINAL(x)"}]},
                     extra_env={"WASM_SERVICE_URL": f"http://127.0.0.1:{dead}"})
    assert call(port2, "GET", "/ready")[0] == 503
    status, r = call(port2, "POST", "/completion", {"context": "c", "query": "q"})
    assert status == 200 and r["success"] is False
    assert "unreachable" in r["error"]
    assert call(port2, "GET", "/health")[0] == 200


def test_metrics_of_the_inference_plane(stack):
    port, _ = stack("in_process", {"rules": [{"reply": "```repl\nx = 1\n```\nFINAL(done)"}]})
    call(port, "POST", "/completion", {"context": "c", "query": "q"})
    status, text = call(port, "GET", "/metrics")
    assert 'rlm_inference_requests_total{route="/completion",success="true"} 1' in text
    assert "rlm_inference_duration_seconds_count 1" in text
    assert "rlm_code_generated_total 1" in text


def test_context_above_the_request_limit_is_413(stack):
    port, _ = stack("in_process", {"rules": [{"reply": "FINAL(x)"}]},
                    extra_env={"MAX_REQUEST_BYTES": "100000"})
    status, r = call(port, "POST", "/completion", {"context": "y" * 200_000, "query": "q"})
    assert status == 413
    assert call(port, "POST", "/completion", {"context": "small", "query": "q"})[1]["answer"] == "x"
