"""POST /nodes/execute against the real execution plane: every node type, each
profile's memory and time limits actually enforced, and bad requests."""
import json

from conftest import read_event


def node(svc, **fields):
    status, body = svc.post("/nodes/execute", fields)
    assert status == 200, body
    return body


def stream_node(svc, answer, **fields):
    """Runs a node over NDJSON, answering each host call with answer(event)."""
    c = svc.conn()
    c.request("POST", "/nodes/execute", body=json.dumps(fields),
              headers={"Content-Type": "application/json", "Accept": "application/x-ndjson"})
    resp = c.getresponse()
    calls = []
    while True:
        ev = read_event(resp)
        if ev["event"] == "result":
            return ev, calls
        assert ev["event"] == "host_call", ev
        calls.append(ev)
        reply = answer(ev)
        if reply is not None:
            st, body = svc.post(f"/runs/{ev['run_id']}/calls/{ev['call_id']}", reply)
            assert st == 200, body


# ---------------------------------------------------------------- node types

def test_code_node_output_and_last_expression(svc):
    r = node(svc, type="code", code="output = {'double': x * 2}", context={"x": 21})
    assert r["success"] and r["outcome"] == "ok" and r["output"] == {"double": 42}
    assert r["usage"]["duration_ms"] > 0 and r["usage"]["cpu_ms"] > 0
    assert "fuel" not in r["usage"]  # only when a fuel budget was asked for
    assert r["usage"]["memory_peak_bytes"] > 0
    r = node(svc, type="code", code="words = text.split()\nlen(words)", context={"text": "a b c"})
    assert r["output"] == 3
    r = node(svc, type="code", code="print('hi')\n1/0")
    assert not r["success"] and r["outcome"] == "exception"
    assert r["error"] == "ZeroDivisionError: division by zero" and r["stdout"] == "hi\n"


def test_code_nodes_share_nothing(svc):
    node(svc, type="code", code="leak = 'secret'")
    r = node(svc, type="code", code="'leak' in globals()")
    assert r["output"] is False


def test_condition_node(svc):
    assert node(svc, type="condition", expression="score > 0.5", context={"score": 0.9})["output"] is True
    assert node(svc, type="condition", expression="'x' in tags", context={"tags": []})["output"] is False
    r = node(svc, type="condition", expression="score + 1", context={"score": 1})
    assert not r["success"] and "must evaluate to a bool, not int" in r["error"]
    assert r["output"] is None
    r = node(svc, type="condition", expression="x = 1")
    assert not r["success"] and r["error"].startswith("SyntaxError")


def test_loop_over_items_and_while(svc):
    r = node(svc, type="loop", items=[1, 2, 3], body="output = item * factor", context={"factor": 10})
    assert r["success"] and r["output"] == [10, 20, 30]
    r = node(svc, type="loop", items="[w.upper() for w in words]", body="item + '!'",
             context={"words": ["a", "b"]})
    assert r["output"] == ["A!", "B!"]
    r = node(svc, type="loop", **{"while": "n < 4"}, body="n += 1\nn * n", context={"n": 0})
    assert r["success"] and r["output"] == [1, 4, 9, 16]


def test_loop_iteration_cap(svc):
    r = node(svc, type="loop", **{"while": "True"}, body="1", max_iterations=5)
    assert not r["success"] and "max_iterations (5)" in r["error"] and len(r["output"]) == 5
    r = node(svc, type="loop", items=list(range(10)), body="item", max_iterations=3)
    assert not r["success"] and "exceed max_iterations (3)" in r["error"]
    r = node(svc, type="loop", items=[1, 0], body="10 // item")
    assert not r["success"] and r["error"].startswith("iteration 1: ZeroDivisionError")


def test_tool_node(svc):
    r = node(svc, type="tool", tool="add", tool_args={"a": 7, "b": 9})
    assert r["success"] and r["output"] == {"sum": 16, "root": 4.0}
    status, body = svc.post("/nodes/execute", {"type": "tool", "tool": "nope"})
    assert status == 404 and "no tool named 'nope'" in body["error"]
    r = node(svc, type="tool", tool="add", tool_args={"a": 1})
    assert not r["success"] and "TypeError" in r["error"]


def test_llm_node_renders_in_the_sandbox_and_the_caller_makes_the_call(svc):
    prompts = []

    def answer(ev):
        prompts.append(ev["args"]["prompt"])
        return {"result": "Bonjour"}

    r, calls = stream_node(svc, answer, type="llm", prompt="Translate '{text}' for {who[name]}",
                           context={"text": "hello", "who": {"name": "Ann"}}, model="small")
    assert r["success"] and r["output"] == "Bonjour", r
    assert calls[0]["kind"] == "llm_query" and calls[0]["args"]["model"] == "small"
    assert prompts == ["Translate 'hello' for Ann"]
    # A plain JSON caller cannot answer: a clear error, no call made.
    r = node(svc, type="llm", prompt="hi")
    assert not r["success"] and "llm nodes need a model" in r["error"]
    # A template naming a missing variable fails in the sandbox.
    r = node(svc, type="llm", prompt="{missing}")
    assert not r["success"] and "KeyError" in r["error"]


def test_agent_node_is_an_rlm_query_carrying_the_agent_limits(svc):
    r, calls = stream_node(svc, lambda ev: {"result": "42 is the answer"}, type="agent",
                           query="What is the answer?", context={"doc": "..."})
    assert r["success"] and r["output"] == "42 is the answer"
    args = calls[0]["args"]
    assert calls[0]["kind"] == "rlm_query" and args["prompt"] == "What is the answer?"
    assert args["context"] == {"doc": "..."}
    assert args["limits"] == {"memory_mb": 128, "timeout": 2.0}  # agent profile (timeout from config)


# ---------------------------------------------------------------- limits per profile

MB = 1024 * 1024


def test_code_profile_memory_and_time(svc):
    assert node(svc, type="code", code=f"len(bytearray({24 * MB}))")["success"]
    r = node(svc, type="code", code=f"x = bytearray({40 * MB})")
    assert r["outcome"] == "memory_exceeded", r
    r = node(svc, type="code", code="while True: pass")
    assert r["outcome"] == "timeout" and "1500 ms" in r["error"]


def test_condition_profile_memory_and_time(svc):
    assert node(svc, type="condition", expression=f"len(bytearray({4 * MB})) > 0")["output"] is True
    r = node(svc, type="condition", expression=f"len(bytearray({24 * MB})) > 0")
    assert r["outcome"] == "memory_exceeded", r
    r = node(svc, type="condition", expression="sum(range(10**12)) > 0")
    assert r["outcome"] == "timeout" and "1000 ms" in r["error"]


def test_tool_profile_memory_and_time(svc):
    assert node(svc, type="tool", tool="hog", tool_args={"mb": 48})["output"] == 48 * MB
    r = node(svc, type="tool", tool="hog", tool_args={"mb": 80})
    assert r["outcome"] == "memory_exceeded", r
    r = node(svc, type="tool", tool="spin")
    assert r["outcome"] == "timeout" and "5000 ms" in r["error"]


def test_llm_profile_memory_and_time(svc):
    r = node(svc, type="llm", prompt="{x:>%d}" % (40 * MB), context={"x": "a"})
    assert r["outcome"] == "memory_exceeded", r
    # The model call counts against the llm profile's 2 s: an answer that never comes.
    r, calls = stream_node(svc, lambda ev: None, type="llm", prompt="hi")
    assert len(calls) == 1
    assert r["outcome"] == "timeout" and not r["success"], r


def test_loop_profile_memory_and_time_per_iteration(svc):
    r = node(svc, type="loop", items=[16, 48], body=f"len(bytearray(item * {MB}))")
    assert r["success"] and r["output"] == [16 * MB, 48 * MB]
    r = node(svc, type="loop", items=[1, 80], body=f"len(bytearray(item * {MB}))")
    assert r["outcome"] == "memory_exceeded" and r["error"].startswith("iteration 1:"), r
    r = node(svc, type="loop", items=[0.1, 5], body="import time\ntime.sleep(item)\nitem")
    assert r["outcome"] == "timeout" and r["output"] == [0.1], r


def test_agent_profile_time(svc):
    r, calls = stream_node(svc, lambda ev: None, type="agent", query="never answered")
    assert r["outcome"] == "timeout", r


def test_request_limits_within_ceilings(svc):
    r = node(svc, type="code", code=f"x = bytearray({40 * MB})", limits={"memory_mb": 64})
    assert r["success"], r
    r = node(svc, type="code", code="import time\ntime.sleep(0.3)", limits={"timeout": 0.1})
    assert r["outcome"] == "timeout"
    status, body = svc.post("/nodes/execute", {"type": "code", "code": "1",
                                               "limits": {"memory_mb": 10 ** 6}})
    assert status == 400 and "above the limit" in body["error"]


# ---------------------------------------------------------------- bad requests

def test_bad_nodes_are_clear_400s(svc):
    cases = [
        ({"type": "magic"}, "unknown node type"),
        ({"code": "1"}, "needs a 'type'"),
        ({"type": "code"}, "non-empty string 'code'"),
        ({"type": "code", "code": "1", "context": [1]}, "context must be a JSON object"),
        ({"type": "code", "code": "1", "profile": "nope"}, "unknown profile"),
        ({"type": "code", "code": "1", "allowed_imports": "json"}, "list of module names"),
        ({"type": "loop", "body": "1"}, "exactly one of 'items' or 'while'"),
        ({"type": "loop", "items": [1], "body": "1", "max_iterations": 0}, "positive integer"),
        ({"type": "llm"}, "non-empty string 'prompt'"),
        ({"type": "agent", "query": ""}, "non-empty string 'query'"),
    ]
    for body, message in cases:
        status, reply = svc.post("/nodes/execute", body)
        assert status == 400 and message in reply["error"], (body, reply)
    status, reply = svc.request("POST", "/nodes/execute", raw="{nope")
    assert status == 400
    assert node(svc, type="code", code="1 + 1")["output"] == 2  # still serving
