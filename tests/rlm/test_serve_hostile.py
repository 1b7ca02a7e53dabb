"""`rlmbox serve` (the process that holds the LLM key) under hostile input
(issue 13): deep request bodies, and model-written code that forges the
guest's reply, in every architecture."""
import pytest

from test_serve import call, stack  # noqa: F401  (fixture)
from test_complete import model, requests_of  # noqa: F401  (fixture)

FORGE_DEEP = (
    "```repl\n"
    "import sys\n"
    "_r = sys.modules['rlmbox_runner']\n"
    "_r._encode_reply = lambda obj, level: ['{\"success\": true, \"locals\": {\"x\": ' + '[' * 100000 + '}}']\n"
    "```")


@pytest.mark.parametrize("depth", [300, 200_000])
def test_deep_bodies_are_400(stack, depth):
    port, _ = stack("in_process", {"rules": [{"match": "Query:", "reply": "FINAL(x)"}]})
    for path in ["/completion", "/infer", "/v1/chat/completions", "/workflows/run"]:
        c = __import__("http.client").client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("POST", path, body='{"query": "q", "context": %s%s}' % ("[" * depth, "]" * depth),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        assert r.status == 400, (path, r.read())
        assert b"deeper than 256" in r.read()
    assert call(port, "GET", "/health")[0] == 200


@pytest.mark.parametrize("mode", ["in_process", "sidecar", "remote"])
def test_model_code_forging_a_deep_reply_does_not_kill_serve(stack, mode):
    port, _ = stack(mode, {"rules": [
        {"match": "SandboxCrash", "reply": "FINAL(recovered)"},
        {"match": "deeper than", "reply": "FINAL(recovered)"},
        {"match": "Query: forge", "reply": FORGE_DEEP},
        {"match": "Query: after", "reply": "FINAL(still here)"},
    ]})
    status, r = call(port, "POST", "/completion", {"context": "c", "query": "forge"})
    assert status == 200 and r["answer"] == "recovered", r  # the loop saw the crash
    assert call(port, "GET", "/health")[0] == 200
    status, r = call(port, "POST", "/completion", {"context": "c", "query": "after"})
    assert status == 200 and r["answer"] == "still here", r


GUEST_MODEL = ("```repl\ntry:\n    r = llm_query('sub question', model='pricey-model')\n"
               "except Exception as e:\n    r = 'refused: ' + str(e)\nanswer['content'] = r\n"
               "answer['ready'] = True\n```")


@pytest.mark.parametrize("allowed", [None, "pricey-model"])
def test_a_guest_chosen_model_must_be_allowed(stack, allowed):
    env = {"LLM_ALLOWED_MODELS": allowed} if allowed else {}
    port, log = stack("in_process", {"rules": [
        {"match": "Query: pick", "reply": GUEST_MODEL},
        {"match": "sub question", "reply": "sub answer"},
    ]}, env)
    status, r = call(port, "POST", "/completion", {"context": "c", "query": "pick"})
    assert status == 200, r
    models = [q["body"]["model"] for q in requests_of(log)]
    if allowed:
        assert r["answer"] == "sub answer" and "pricey-model" in models
    else:
        assert r["answer"].startswith("refused:") and "not one this inference plane" in r["answer"]
        assert "pricey-model" not in models


def test_a_reply_with_hundreds_of_blocks_is_bounded(stack, tmp_path):
    blocks = "".join("```repl\nprint('x' * 200_000)\n```\n" for _ in range(300))
    port, _ = stack("in_process", {"rules": [
        {"match": "were skipped", "reply": "FINAL(done)"},
        {"match": "Query: many", "reply": blocks},
    ]})
    status, r = call(port, "POST", "/completion", {"context": "c", "query": "many"})
    assert status == 200 and r["answer"] == "done", r
    import json
    lines = [json.loads(l) for l in open(tmp_path / (r["trajectory_id"] + ".jsonl"))]
    first = lines[1]["code_blocks"]
    assert len(first) == 32
    assert all(len(b["result"]["stdout"]) <= 20_100 for b in first)


SLOW_STR = ("```repl\nimport time\nclass Slow:\n    def __str__(self):\n"
            "        t = time.time()\n        while time.time() - t < 15: pass\n        return 'late'\n"
            "result = Slow()\n```\nFINAL_VAR(result)")


@pytest.mark.parametrize("mode", ["in_process", "remote"])
def test_final_var_str_runs_within_the_request_deadline(stack, mode):
    port, _ = stack(mode, {"rules": [{"match": "Query: slow", "reply": SLOW_STR}]},
                    {"REQUEST_TIMEOUT": "3"})
    import time
    t0 = time.time()
    status, r = call(port, "POST", "/completion", {"context": "c", "query": "slow"})
    elapsed = time.time() - t0
    assert r.get("answer") != "late", r
    assert elapsed < 10, elapsed
    assert call(port, "GET", "/health")[0] == 200
