"""Integrity under hostile input (issue 13): the host survives what the guest
replies and what callers send, and the outcome of a run tells the truth.

Each test attacks the real `rlmbox serve-exec` and then checks that the process
is alive and still serving others."""
import json
import os
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "service"))
from service_process import Service, make_service  # noqa: E402,F401  (fixture)

MB = 1 << 20


def rss_bytes(pid, field="VmRSS:"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


@pytest.fixture(scope="module")
def svc():
    s = Service()
    yield s
    s.stop()


def assert_alive(svc):
    assert svc.proc.poll() is None, "serve-exec died: " + svc.logs()[-2000:]
    status, body = svc.execute("1 + 1")
    assert status == 200 and body["stdout"] == "2\n", body


# A cell that replaces what the runner hands back to the host with `text`.
# (The runner encodes its reply with _encode_reply; the cell swaps it out.)
def forge_reply(text_expr):
    return (
        "import sys\n"
        "_r = sys.modules['rlmbox_runner']\n"
        f"_r._encode_reply = lambda obj, level: [{text_expr}]\n")


# ---------------------------------------------------------------- class 1: the guest's reply


def test_reply_nested_100k_deep_does_not_crash_the_host(svc):
    deep = "'[' * 100000 + ']' * 100000"
    code = forge_reply('\'{"success": true, "stdout": "", "locals": {"x": \' + ' + deep + " + '}}'")
    status, body = svc.execute(code)
    assert status == 200, body
    assert body["outcome"] == "crashed" and not body["success"]
    assert "deeper than" in body["error"]
    assert_alive(svc)


def test_reply_in_a_session_resets_only_that_session(svc):
    other = svc.new_session()
    assert svc.run(other, "kept = 41")[0] == 200
    victim = svc.new_session()
    deep = "'[' * 200000"
    status, body = svc.run(victim, forge_reply('\'{"success": true, "locals": \' + ' + deep))
    assert status == 200 and body["outcome"] == "crashed", body
    # The attacker's own session carries on, on a fresh sandbox.
    assert svc.run(victim, "1")[1]["stdout"] == "1\n"
    assert svc.run(other, "kept + 1")[1]["stdout"] == "42\n"


@pytest.mark.parametrize("forged, why", [
    ('\'{"success": "yes"}\'', "success"),
    ('\'{"success": true, "stdout": 5}\'', "stdout"),
    ('\'{"success": true, "locals": []}\'', "locals"),
    ('\'{"success": true, "locals": {"a b": 1}}\'', "locals"),
    ('\'{"success": true, "exception_type": "\' + "E" * 5000 + \'"}\'', "exception_type"),
    ('\'[1, 2, 3]\'', "object"),
    ('\'not json\'', "JSON"),
])
def test_malformed_reply_fields_are_refused(svc, forged, why):
    status, body = svc.execute(forge_reply(forged))
    assert status == 200, body
    assert body["outcome"] == "crashed" and why in body["error"], body


def test_huge_forged_reply_is_never_read_by_the_host(make_service):
    svc = make_service()
    before = rss_bytes(svc.proc.pid, "VmHWM:")
    code = forge_reply('\'{"success": true, "stdout": "\' + "A" * (200 << 20) + \'"}\'')
    status, body = svc.execute(code, limits={"memory_mb": 1024, "max_output_bytes": 1000})
    assert status == 200, body
    assert body["outcome"] == "output_truncated", body
    assert "exceeded" in body["error"]
    assert len(body["stdout"]) <= 1000
    # The process's peak is the guest's own memory (which holds the reply), not
    # that plus host copies of 200 MB (each copy would add 200 MB).
    grown = rss_bytes(svc.proc.pid, "VmHWM:") - before
    assert grown < body["memory_peak_bytes"] + 120 * MB, (grown, body["memory_peak_bytes"])
    assert_alive(svc)


# ---------------------------------------------------------------- class 2: deep request bodies


def deep_body(depth, field="x"):
    return '{"code": "1", "%s": %s%s}' % (field, "[" * depth, "]" * depth)


@pytest.mark.parametrize("method, path", [
    ("POST", "/execute"),
    ("POST", "/session"),
    ("POST", "/nodes/execute"),
    ("POST", "/workflows/run"),
])
@pytest.mark.parametrize("depth", [300, 25_000, 200_000])
def test_deep_bodies_are_400_on_every_route(svc, method, path, depth):
    status, body = svc.request(method, path, raw=deep_body(depth))
    assert status == 400, body
    assert "deeper than 256" in body["error"]
    assert svc.proc.poll() is None


def test_deep_bodies_on_session_routes(svc):
    sid = svc.new_session()
    for method, path in [("POST", f"/session/{sid}/execute"), ("PUT", f"/session/{sid}/context")]:
        status, body = svc.request(method, path, raw=deep_body(200_000, "context"))
        assert status == 400 and "deeper than" in body["error"], (path, body)
    assert_alive(svc)


def test_a_context_as_deep_as_allowed_still_binds(svc):
    ctx = "[" * 200 + "]" * 200
    status, body = svc.request("POST", "/execute",
                               raw='{"code": "len(context)", "context": %s}' % ctx)
    assert status == 200 and body["stdout"] == "1\n", body


# ---------------------------------------------------------------- class 3: outcomes the guest cannot change

SWALLOWERS = {
    "except BaseException": "try:\n    while True: pass\nexcept BaseException:\n    pass\nprint('survived')",
    "re-raise another": "try:\n    while True: pass\nexcept BaseException:\n    raise ValueError('not me')",
    "contextlib.suppress": "import contextlib\nwith contextlib.suppress(BaseException):\n    while True: pass",
    "__exit__ True": ("class C:\n    def __enter__(self): return self\n"
                      "    def __exit__(self, *a): return True\nwith C():\n    while True: pass"),
    "generator finally": ("def g():\n    try:\n        while True: pass\n        yield 1\n"
                          "    except BaseException:\n        return\nfor _ in g(): pass"),
}


@pytest.mark.parametrize("name", sorted(SWALLOWERS))
def test_a_swallowed_stop_is_still_a_timeout(svc, name):
    status, body = svc.execute(SWALLOWERS[name], timeout=0.5)
    assert status == 200, body
    assert body["outcome"] == "timeout" and body["success"] is False, (name, body)
    assert "TimeoutError" in body["error"]


def test_a_swallowed_stop_in_a_session_keeps_its_state(svc):
    sid = svc.new_session()
    svc.run(sid, "n = 7")
    status, body = svc.run(sid, SWALLOWERS["except BaseException"], timeout=0.5)
    assert body["outcome"] == "timeout"
    assert svc.run(sid, "n")[1]["stdout"] == "7\n"


def test_a_final_answer_set_by_a_stopped_cell_does_not_count(svc):
    code = "answer['content'] = 'forged'\nanswer['ready'] = True\n" + SWALLOWERS["except BaseException"]
    body = svc.execute(code, timeout=0.5)[1]
    assert body["outcome"] == "timeout" and "final_answer" not in body, body


@pytest.mark.parametrize("code", [
    "raise MemoryError('not really')",
    "def f():\n    raise MemoryError\nf()",
    "class E(MemoryError):\n    pass\nraise E()",
])
def test_a_memory_error_the_code_raises_itself_is_an_exception(svc, code):
    body = svc.execute(code, limits={"memory_mb": 64})[1]
    assert body["outcome"] == "exception", body
    assert "MemoryError" in body["error"] or "E" in body["error"]


@pytest.mark.parametrize("code", [
    "x = bytearray(200 << 20)",
    "x = [str(i) * 200 for i in range(1_000_000)]",
    "x = bytearray(2 ** 31 - 1)",
    "try:\n    x = bytearray(200 << 20)\nexcept MemoryError:\n    raise MemoryError('re-raised')",
])
def test_memory_beyond_the_limit_is_memory_exceeded(svc, code):
    body = svc.execute(code, limits={"memory_mb": 64})[1]
    assert body["outcome"] == "memory_exceeded", body


def test_a_refused_allocation_the_code_survives_is_ok(svc):
    code = "try:\n    bytearray(200 << 20)\nexcept MemoryError:\n    print('survived')"
    body = svc.execute(code, limits={"memory_mb": 64})[1]
    assert body["outcome"] == "ok" and body["stdout"] == "survived\n", body


# ---------------------------------------------------------------- class 4: caps on every field


@pytest.mark.parametrize("size", [100_000, 20 << 20])
def test_output_cap_applies_to_the_final_answer(svc, size):
    code = f"answer['content'] = 'a' * {size}\nanswer['ready'] = True"
    status, body = svc.execute(code, limits={"max_output_bytes": 1000})
    assert status == 200
    assert body["outcome"] == "output_truncated"
    # Cut to the cap, or (past what a reply may carry) not read at all.
    assert len(body.get("final_answer", "")) <= 1000
    if size < (1 << 20):
        assert body["final_answer"] == "a" * 1000


def test_output_cap_applies_to_the_error(svc):
    status, body = svc.execute("raise ValueError('e' * (5 << 20))", limits={"max_output_bytes": 1000})
    assert status == 200
    assert len(body["error"]) <= 1000 and len(body["stderr"]) <= 1000 + 200
    assert body["outcome"] == "output_truncated"


def test_output_cap_applies_to_locals(svc):
    code = "for i in range(150):\n    globals()['v%03d_' % i + 'n' * 200] = 'x' * 4000"
    status, body = svc.execute(code, limits={"max_output_bytes": 1000})
    assert status == 200 and body["success"], body
    assert len(json.dumps(body["locals"])) <= 1000 + 64


def test_output_cap_applies_to_node_output(svc):
    status, body = svc.post("/nodes/execute", {
        "type": "code", "code": "output = 'x' * (5 << 20)", "limits": {"max_output_bytes": 1000}})
    assert status == 200, body
    assert len(json.dumps(body.get("output"))) <= 1000 + 16
    assert body["success"] is False


# ---------------------------------------------------------------- class 5: YAML expansion

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def test_yaml_alias_bomb_is_refused_in_bounded_memory(svc):
    before = rss_bytes(svc.proc.pid)
    t0 = time.time()
    status, body = svc.post("/workflows/run", {"workflow": LAUGHS})
    assert status == 400, body
    assert "aliases" in body["error"]
    assert time.time() - t0 < 20
    assert rss_bytes(svc.proc.pid) - before < 200 * MB
    assert_alive(svc)


@pytest.mark.parametrize("kind", ["stateless", "session", "session streamed"])
def test_an_execute_stops_when_its_caller_hangs_up(make_service, kind):
    # One worker: a 30 s spin whose caller left would hold it for 30 s. (A
    # streamed one used to be noticed only at its next write: none here.)
    s = make_service(args=("--workers", "1"))
    path = "/execute"
    if kind.startswith("session"):
        path = f"/session/{s.new_session()}/execute"
    accept = b"Accept: application/x-ndjson\r\n" if kind.endswith("streamed") else b""
    body = json.dumps({"code": "while True: pass", "timeout": 30}).encode()
    c = socket.create_connection(("127.0.0.1", s.port))
    c.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + accept + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    time.sleep(0.5)
    c.close()
    t0 = time.time()
    status, r = s.execute("print('next')")
    assert status == 200 and r["stdout"] == "next\n", r
    assert time.time() - t0 < 10, s.logs()[-3000:]
    deadline = time.time() + 5  # the stopped execution logs after giving its slot up
    while "caller_disconnected" not in s.logs() and time.time() < deadline:
        time.sleep(0.05)
    assert "caller_disconnected" in s.logs(), s.logs()[-3000:]
    assert_alive(s)


# ---------------------------------------------------------------- class 6: every guest entry through the gate

SLOW_STR = ("import time\nclass Slow:\n    def __str__(self):\n        t = time.time()\n"
            "        while time.time() - t < 3: pass\n        return 'slow'\nv = Slow()")


def test_variable_lookups_take_a_worker_slot(make_service):
    svc = make_service(args=("--workers", "1", "--max-queue", "0"))
    sid = svc.new_session()
    assert svc.run(sid, SLOW_STR)[0] == 200
    got = {}
    t = threading.Thread(target=lambda: got.update(r=svc.get(f"/session/{sid}/vars/v")))
    t.start()
    wait_running(svc, 1)  # the lookup is running str(v) now, in the one worker
    status, body = svc.execute("1")
    t.join()
    assert got["r"][0] == 200 and got["r"][1]["text"] == "slow"
    assert status == 429, body  # the one worker was busy with the lookup


def test_waiting_for_a_session_holds_no_worker(make_service):
    svc = make_service(args=("--workers", "2", "--max-queue", "0"))
    sid = svc.new_session()
    results = []
    spin = "import time\nt = time.time()\nwhile time.time() - t < 2: pass"
    threads = [threading.Thread(target=lambda: results.append(svc.run(sid, spin)[0])) for _ in range(2)]
    for th in threads:
        th.start()
    wait_running(svc, 1)
    time.sleep(0.3)
    # One cell runs, the other waits for the session's turn: one worker is free.
    status, body = svc.execute("1")
    for th in threads:
        th.join()
    assert status == 200, body
    assert sorted(results) == [200, 200]


def wait_running(svc, n, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if gauge(svc, "wasm_executions_running") >= n:
            return
        time.sleep(0.02)
    raise AssertionError("no execution started")




# ---------------------------------------------------------------- class 9: tenants


@pytest.fixture
def tenants(tmp_path, make_service):
    f = tmp_path / "tokens"
    f.write_text("# tenant token\nalice tok-alice-0123456789abcdef\nbob   tok-bob-0123456789abcdef0\n")
    svc = make_service(env={"RLMBOX_TOKENS_FILE": str(f)})
    return svc


def as_(svc, token):
    def call(method, path, body=None):
        return svc.request(method, path, body, headers={"Authorization": "Bearer " + token})
    return call


def test_sessions_belong_to_their_tenant(tenants):
    alice = as_(tenants, "tok-alice-0123456789abcdef")
    bob = as_(tenants, "tok-bob-0123456789abcdef0")
    status, body = alice("POST", "/session", {})
    assert status == 200
    sid = body["session_id"]
    assert alice("POST", f"/session/{sid}/execute", {"code": "secret = 'a'"})[0] == 200
    assert [s["session_id"] for s in alice("GET", "/sessions")[1]["sessions"]] == [sid]
    assert bob("GET", "/sessions")[1]["sessions"] == []
    for method, path, body in [("POST", f"/session/{sid}/execute", {"code": "secret"}),
                               ("GET", f"/session/{sid}/vars/secret", None),
                               ("PUT", f"/session/{sid}/context", {"context": "x"}),
                               ("POST", f"/session/{sid}/calls/x", {"result": "x"}),
                               ("DELETE", f"/session/{sid}", None)]:
        status, out = bob(method, path, body)
        assert status == 404, (method, path, out)
    # Alice's session is untouched by all of it.
    assert alice("POST", f"/session/{sid}/execute", {"code": "secret"})[1]["stdout"] == "'a'\n"
    assert tenants.request("GET", "/sessions", headers={"Authorization": "Bearer nope"})[0] == 401


def test_a_bad_tokens_file_stops_the_server_with_a_clear_line(tmp_path):
    f = tmp_path / "tokens"
    f.write_text("alice short\n")
    with pytest.raises(RuntimeError, match="line 1.*shorter than 16"):
        Service(env={"RLMBOX_TOKENS_FILE": str(f)})


@pytest.mark.parametrize("ttl", ["abc", -1, 0, 1e300, 86401, True, [5]])
def test_nonsense_ttl_is_400(svc, ttl):
    status, body = svc.post("/session", {"ttl": ttl})
    assert status == 400 and "ttl" in body["error"], (ttl, body)


# ---------------------------------------------------------------- class 11: smaller


def test_streamed_session_execute_binds_the_request_context(svc):
    sid = svc.new_session()
    c = svc.conn()
    c.request("POST", f"/session/{sid}/execute",
              body=json.dumps({"code": "context", "context": "from the request"}),
              headers={"Content-Type": "application/json", "Accept": "application/x-ndjson"})
    r = c.getresponse()
    event = None
    for line in r:
        event = json.loads(line)
        if event.get("event") == "result":
            break
    c.close()
    assert event["stdout"] == "'from the request'\n", event


def test_a_non_str_global_does_not_lose_the_session(svc):
    sid = svc.new_session()
    svc.run(sid, "kept = 'yes'")
    status, body = svc.run(sid, "globals()[1] = 2\nglobals()[(3,)] = 4")
    assert status == 200 and body["outcome"] == "ok", body
    assert svc.run(sid, "kept")[1]["stdout"] == "'yes'\n"


# ---------------------------------------------------------------- class 8: one memory budget


def gauge(svc, name):
    text = svc.get("/metrics")[1]
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(name + " not in /metrics")


def test_sessions_and_cells_draw_from_one_memory_budget(make_service):
    svc = make_service(env={"RLMBOX_MEMORY_BUDGET_MB": "400"})
    assert gauge(svc, "wasm_memory_budget_bytes") == 400 * MB
    big = {"limits": {"memory_mb": 1024}}
    a = svc.new_session()
    first = svc.run(a, "x = bytearray(250 << 20)", **big)[1]
    assert first["outcome"] == "ok", (first, gauge(svc, "wasm_memory_budget_used_bytes"))
    b = svc.new_session()
    body = svc.run(b, "y = bytearray(150 << 20)", **big)[1]
    assert body["outcome"] == "memory_exceeded", body
    assert "memory budget (400 MiB" in body["error"], body
    # The session that holds the memory is untouched; freeing it frees the budget.
    assert svc.run(a, "len(x)")[1]["stdout"] == f"{250 << 20}\n"
    assert svc.request("DELETE", f"/session/{a}")[0] == 200
    assert svc.run(b, "y = bytearray(150 << 20)", **big)[1]["outcome"] == "ok"
    # Spend what is left: new sessions are refused with 429, naming the budget.
    left = 400 * MB - gauge(svc, "wasm_memory_budget_used_bytes")
    assert svc.run(b, f"z = bytearray({int(left - 8 * MB)})", **big)[1]["outcome"] == "ok"
    status, body = svc.post("/session", {})
    assert status == 429 and "memory budget" in body["error"], body
    assert svc.proc.poll() is None


def test_loop_outputs_are_bounded_in_total(svc):
    status, body = svc.post("/nodes/execute", {
        "type": "loop", "items": list(range(150)), "max_iterations": 150,
        "body": "output = 'x' * (400 << 10)", "limits": {"max_output_bytes": 1 << 20}})
    assert status == 200, body
    assert body["outcome"] == "output_truncated" and "loop's outputs exceeded" in body["error"], body
    assert svc.proc.poll() is None


def test_a_loop_has_one_deadline_not_one_per_iteration(svc):
    t0 = time.time()
    status, body = svc.post("/nodes/execute", {
        "type": "loop", "items": list(range(50)), "limits": {"timeout": 1},
        "body": "import time\nt = time.time()\nwhile time.time() - t < 0.3: pass\noutput = item"})
    assert status == 200, body
    assert body["success"] is False and body["outcome"] == "timeout", body
    assert time.time() - t0 < 8


def test_large_workflows_are_judged_quickly(svc):
    nodes = [{"id": f"n{i}", "type": "code", "code": "output = 1",
              "depends_on": [f"n{j}" for j in range(i)]} for i in range(800)]
    t0 = time.time()
    status, body = svc.post("/workflows/run", {"workflow": {"nodes": nodes}})
    assert status == 400 and "dependencies in all" in body["error"], body
    chain = [{"id": f"n{i}", "type": "code", "code": "output = 1",
              "depends_on": [f"n{(i + 1) % 1000}"]} for i in range(1000)]
    status, body = svc.post("/workflows/run", {"workflow": {"nodes": chain}})
    assert status == 400 and "cycle" in body["error"], body
    assert time.time() - t0 < 10
