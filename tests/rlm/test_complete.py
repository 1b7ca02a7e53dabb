"""`rlmbox complete` end to end: the real binary, the real sandbox, and a scripted
OpenAI-compatible model server as a separate process."""
import json
import os
import subprocess
import sys
import time

import pytest

BIN = os.environ.get("RLMBOX_BIN", "build/rlmbox")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
from model_fixture import free_port, model  # noqa: E402,F401  (fixture; others import it from here)


def complete(base_url, *args, key="test-key", extra_env=None, timeout=120):
    env = dict(os.environ, LLM_BASE_URL=base_url, LLM_MODEL="root-model")
    env.pop("LLM_API_KEY", None)
    if key is not None:
        env["LLM_API_KEY"] = key
    env.update(extra_env or {})
    return subprocess.run([BIN, "complete", "--json", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def requests_of(log):
    return [json.loads(l) for l in open(log)] if os.path.exists(log) else []


def test_code_then_final(model, tmp_path):
    url, log = model({"rules": [
        {"match": "Query:", "reply": "Let me look.\n```repl\nprint(len(context))\n```"},
        {"match": "REPL output", "reply": "The context has 11 characters.\nFINAL(11 characters)"},
    ]})
    traj = tmp_path / "t.jsonl"
    p = complete(url, "--context", "hello world", "--query", "How long is it?",
                 "--trajectory", str(traj))
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["success"] is True and r["answer"] == "11 characters"
    assert r["iterations"] == 2 and r["model"] == "root-model"
    assert r["usage"]["model_usage_summaries"]["root-model"]["total_calls"] == 2
    # The model saw the REPL's output, and the API key in the header.
    reqs = requests_of(log)
    assert reqs[0]["headers"]["Authorization"] == "Bearer test-key"
    assert "11" in reqs[1]["body"]["messages"][-1]["content"]
    assert "a str of 11 characters" in reqs[0]["body"]["messages"][0]["content"]
    # Trajectory: metadata line, then one line per iteration.
    lines = [json.loads(l) for l in open(traj)]
    assert lines[0]["type"] == "metadata" and lines[0]["root_model"] == "root-model"
    assert [l["type"] for l in lines[1:]] == ["iteration", "iteration"]
    block = lines[1]["code_blocks"][0]
    assert block["code"] == "print(len(context))\n"
    assert block["result"]["stdout"] == "11\n"
    assert lines[2]["final_answer"] == "11 characters"


def test_final_var_and_answer_dict(model):
    url, _ = model({"rules": [{"match": "Query:", "reply":
        "```repl\nresult = context.upper()\n```\nFINAL_VAR(result)"}]})
    r = json.loads(complete(url, "--context", "abc", "--query", "upper?").stdout)
    assert r["answer"] == "ABC" and r["iterations"] == 1

    url, _ = model({"rules": [{"match": "Query:", "reply":
        "```repl\nanswer['content'] = str(sum(context['n']))\nanswer['ready'] = True\n```"}]})
    r = json.loads(complete(url, "--context", '{"n": [1, 2, 3]}', "--context-json",
                            "--query", "sum?").stdout)
    assert r["answer"] == "6"


def test_final_var_of_a_missing_variable_is_fed_back(model):
    url, log = model({"rules": [
        {"match": "Query:", "reply": "FINAL_VAR(nothing_here)"},
        {"match": "no such variable", "reply": "FINAL(recovered)"},
    ]})
    r = json.loads(complete(url, "--context", "x", "--query", "q").stdout)
    assert r["answer"] == "recovered" and r["iterations"] == 2


def test_needle_in_a_haystack_with_batched_sub_calls(model):
    haystack = "\n".join(f"line {i}: nothing to see" for i in range(120_000))  # ~3 MB
    pos = len(haystack) // 3
    haystack = haystack[:pos] + "\nthe secret code is NEEDLE-4242\n" + haystack[pos:]
    code = (
        "```repl\n"
        "size = 500_000\n"
        "chunks = [context[i:i + size] for i in range(0, len(context), size)]\n"
        "replies = llm_query_batched([f'Find the secret code in: {c}' for c in chunks])\n"
        "found = [r for r in replies if r.startswith('FOUND')]\n"
        "print(len(chunks), found)\n"
        "answer['content'] = found[0].split()[-1]\n"
        "answer['ready'] = True\n"
        "```")
    url, log = model({"rules": [
        {"match": "Query:", "reply": code},
        {"match": "NEEDLE-4242", "reply": "FOUND NEEDLE-4242"},
        {"match": "Find the secret code", "reply": "nothing"},
    ]})
    ctx = os.path.join(os.path.dirname(log), "haystack.txt")
    with open(ctx, "w") as f:
        f.write(haystack)
    p = complete(url, "--context-file", ctx, "--query", "What is the secret code?")
    r = json.loads(p.stdout)
    assert r["success"] is True, p.stderr
    assert r["answer"] == "NEEDLE-4242"
    subs = [q for q in requests_of(log) if "Find the secret code" in q["body"]["messages"][-1]["content"]]
    assert len(subs) == (len(haystack) + 499_999) // 500_000
    # The context went into the REPL once: no model request carries all of it.
    assert all(len(json.dumps(q["body"])) < 1_000_000 for q in requests_of(log))


def test_rlm_query_starts_a_child_rlm_below_the_depth_limit(model):
    url, log = model({"rules": [
        {"match": "Query: What is the capital", "reply":
            "```repl\nsub = rlm_query('Sub-question: name a city')\nprint(sub)\n```\nFINAL_VAR(sub)"},
        {"match": "Query: Sub-question", "reply": "FINAL(Paris)"},
        {"match": "Sub-question", "reply": "plain-call answer"},
    ]})
    r = json.loads(complete(url, "--context", "France", "--query", "What is the capital?",
                            "--max-depth", "2").stdout)
    assert r["answer"] == "Paris"
    # At the depth limit the same call is a plain LLM call.
    r = json.loads(complete(url, "--context", "France", "--query", "What is the capital?",
                            "--max-depth", "1").stdout)
    assert r["answer"] == "plain-call answer"


def test_out_of_iterations_asks_once_more(model):
    url, log = model({"rules": [
        {"match": "out of turns", "reply": "FINAL(best guess)"},
        {"reply": "```repl\nprint('still looking')\n```"},
    ]})
    r = json.loads(complete(url, "--context", "x", "--query", "q", "--max-iterations", "3").stdout)
    assert r["success"] is True and r["answer"] == "best guess"
    assert r["iterations"] == 3
    assert len(requests_of(log)) == 4


def test_reply_without_code_or_answer_gets_a_nudge(model):
    url, log = model({"rules": [
        {"match": "no ```repl block", "reply": "FINAL(ok now)"},
        {"match": "Query:", "reply": "Hmm, let me think."},
    ]})
    r = json.loads(complete(url, "--context", "x", "--query", "q").stdout)
    assert r["answer"] == "ok now"


def test_retries_on_429_and_500(model):
    url, log = model({"rules": [
        {"status": 429, "times": 1, "retry_after": 0.1},
        {"status": 500, "times": 1},
        {"reply": "FINAL(after retries)"},
    ]})
    r = json.loads(complete(url, "--context", "x", "--query", "q").stdout)
    assert r["answer"] == "after retries"
    assert len(requests_of(log)) == 3


def test_clear_errors(model):
    # No key for a remote provider: refused before any network use.
    p = complete("https://api.openai.com/v1", "--context", "x", "--query", "q", key=None)
    assert p.returncode == 1
    assert "LLM_API_KEY is not set" in json.loads(p.stdout)["error"]
    # A rejected key.
    url, _ = model({"rules": [{"status": 401}]})
    r = json.loads(complete(url, "--context", "x", "--query", "q").stdout)
    assert r["success"] is False and "rejected the API key" in r["error"]
    # A malformed reply.
    url, _ = model({"rules": [{"raw": "{not json"}]})
    r = json.loads(complete(url, "--context", "x", "--query", "q").stdout)
    assert r["success"] is False and "malformed" in r["error"]
    # An empty query.
    p = complete(url, "--context", "x", "--query", "  ")
    assert p.returncode == 2


def test_sub_call_errors_fail_per_item(model):
    code = ("```repl\nr = llm_query_batched(['ok one', 'bad one', 'ok two'])\n"
            "answer['content'] = ' | '.join(r)\nanswer['ready'] = True\n```")
    url, _ = model({"rules": [
        {"match": "Query:", "reply": code},
        {"match": "bad one", "status": 400},
        {"match": "ok", "reply": "fine"},
    ]})
    r = json.loads(complete(url, "--context", "x", "--query", "q").stdout)
    parts = r["answer"].split(" | ")
    assert parts[0] == "fine" and parts[2] == "fine"
    assert parts[1].startswith("Error: ") and "HTTP 400" in parts[1]


def test_never_terminating_code_is_stopped(model):
    url, _ = model({"rules": [
        {"match": "Query:", "reply": "```repl\nwhile True: pass\n```"},
        {"match": "TimeoutError", "reply": "FINAL(stopped)"},
    ]})
    p = complete(url, "--context", "x", "--query", "q", extra_env={"EXECUTION_TIMEOUT": "1"})
    r = json.loads(p.stdout)
    assert r["answer"] == "stopped"


def test_request_timeout_mid_iteration_reports_progress(model, tmp_path):
    url, _ = model({"rules": [
        {"match": "Query:", "reply": "```repl\nprint('step one')\n```"},
        {"match": "step one", "reply": "```repl\nwhile True: pass\n```"},
    ]})
    traj = tmp_path / "t.jsonl"
    t0 = time.time()
    p = complete(url, "--context", "x", "--query", "q", "--timeout", "2",
                 "--trajectory", str(traj), extra_env={"EXECUTION_TIMEOUT": "60"})
    assert time.time() - t0 < 15
    r = json.loads(p.stdout)
    assert r["success"] is False and "time limit" in r["error"]
    assert r["iterations"] == 2
    lines = [json.loads(l) for l in open(traj)]
    assert lines[1]["code_blocks"][0]["result"]["stdout"] == "step one\n"


def test_token_budget(model):
    url, log = model({"rules": [
        {"reply": "```repl\nprint('more')\n```", "usage": {"prompt_tokens": 600, "completion_tokens": 10}},
    ]})
    p = complete(url, "--context", "x", "--query", "q", extra_env={"TOKEN_BUDGET": "1500"})
    r = json.loads(p.stdout)
    assert r["success"] is False and "token budget" in r["error"]
    assert len(requests_of(log)) == 3


def test_recursive_model_is_used_for_sub_calls(model):
    url, log = model({"rules": [
        {"match": "Query:", "reply": "```repl\nx = llm_query('sub question')\n```\nFINAL_VAR(x)"},
        {"match": "sub question", "reply": "from the small model"},
    ]})
    r = json.loads(complete(url, "--context", "c", "--query", "q",
                            extra_env={"LLM_RECURSIVE_MODEL": "small-model"}).stdout)
    assert r["answer"] == "from the small model"
    models = [q["body"]["model"] for q in requests_of(log)]
    assert models == ["root-model", "small-model"]
    usage = r["usage"]["model_usage_summaries"]
    assert usage["root-model"]["total_calls"] == 1 and usage["small-model"]["total_calls"] == 1


def test_a_slow_model_cannot_outlast_the_request(model):
    url, _ = model({"rules": [{"delay": 30, "reply": "FINAL(too late)"}]})
    t0 = time.time()
    p = complete(url, "--context", "c", "--query", "q", "--timeout", "1.5")
    assert time.time() - t0 < 10
    r = json.loads(p.stdout)
    assert r["success"] is False
