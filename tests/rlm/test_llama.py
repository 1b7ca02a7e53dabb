"""`rlmbox complete` and `rlmbox serve` against a real OpenAI-compatible server:
llama.cpp's own server with SmolLM2-135M (tests/fixtures/llama_fixture.py). The
model cannot solve the task; these tests check the plumbing a scripted server
cannot: a real server's replies and usage, whatever the model writes."""
import json
import os
import subprocess
import sys
import time

from test_complete import BIN, free_port
from test_serve import call

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "service"))
from llama_fixture import MODEL_NAME, llama_server, metrics  # noqa: E402,F401  (fixture)
from service_process import wait_http  # noqa: E402

QUERY = "Print the length of the context with Python in a ```repl block, then answer FINAL(n)."


def llm_env(url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "WASM_"))}
    return dict(env, LLM_BASE_URL=url, LLM_MODEL=MODEL_NAME, LLM_API_KEY="unused",
                EXECUTION_TIMEOUT="5")


def counted(usage):
    """(calls, input tokens, output tokens) summed over the result's models."""
    s = usage["model_usage_summaries"].values()
    return (sum(m["total_calls"] for m in s), sum(m["total_input_tokens"] for m in s),
            sum(m["total_output_tokens"] for m in s))


def served(before, after):
    """(prompt tokens, predicted tokens) llama.cpp counted between two /metrics reads."""
    prompt = lambda m: m["prompt_tokens_total"] + m.get("prompt_tokens_cached_total", 0)  # noqa: E731
    return prompt(after) - prompt(before), after["tokens_predicted_total"] - before["tokens_predicted_total"]


def check_trajectory(lines, iterations):
    assert lines[0]["type"] == "metadata" and lines[0]["root_model"] == MODEL_NAME
    steps = [l for l in lines[1:] if l["type"] == "iteration"]
    # the turns, and when they gave no answer, the one that asks the model for it
    assert len(steps) in (iterations, iterations + 1)
    for step in steps:
        assert isinstance(step["response"], str)  # the model's text, whatever it is
        for block in step["code_blocks"]:  # each block the reply held ran in the sandbox
            assert set(block["result"]) >= {"stdout", "stderr"}


def test_complete_against_llama_cpp(llama_server, tmp_path):
    before = metrics(llama_server)
    traj = tmp_path / "t.jsonl"
    t0 = time.monotonic()
    p = subprocess.run([BIN, "complete", "--json", "--context", "hello world " * 20,
                        "--query", QUERY, "--max-iterations", "2", "--max-depth", "1",
                        "--timeout", "300", "--trajectory", str(traj)],
                       env=llm_env(llama_server), capture_output=True, text=True, timeout=400)
    took = time.monotonic() - t0
    r = json.loads(p.stdout)  # parsed whatever the model said
    assert p.returncode == (0 if r["success"] else 1), p.stderr
    assert "error" not in r or "HTTP" not in r["error"], r  # the server accepted every request
    assert 1 <= r["iterations"] <= 2 and took < 300
    calls, tokens_in, tokens_out = counted(r["usage"])
    assert calls >= r["iterations"]
    # rlmbox's usage is the server's own count of what it served.
    assert (tokens_in, tokens_out) == served(before, metrics(llama_server))
    assert tokens_in > 500 and tokens_out > 0  # the system prompt, and something back
    check_trajectory([json.loads(l) for l in open(traj)], r["iterations"])


def test_serve_against_llama_cpp(llama_server, tmp_path):
    port = free_port()
    env = dict(llm_env(llama_server), RLM_TRAJECTORY_DIR=str(tmp_path), MAX_ITERATIONS="2",
               MAX_DEPTH="1")
    proc = subprocess.Popen([BIN, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(port)
        before = metrics(llama_server)
        status, r = call(port, "POST", "/completion", {"context": "abc " * 50, "query": QUERY},
                         timeout=400)
        assert status == 200, r
        assert 1 <= r["iterations"] <= 2 and r["model"] == MODEL_NAME
        calls, tokens_in, tokens_out = counted(r["usage"])
        assert calls >= r["iterations"] and tokens_out > 0
        assert (tokens_in, tokens_out) == served(before, metrics(llama_server))
        check_trajectory([json.loads(l) for l in open(tmp_path / (r["trajectory_id"] + ".jsonl"))],
                         r["iterations"])
        # The OpenAI-compatible facade, served by a real model underneath.
        status, c = call(port, "POST", "/v1/chat/completions", {
            "model": MODEL_NAME, "messages": [{"role": "user", "content": "Say hi"}]}, timeout=400)
        assert status == 200 and c["object"] == "chat.completion"
        assert isinstance(c["choices"][0]["message"]["content"], str)
    finally:
        proc.terminate()
        proc.wait(10)
