"""serve-exec sessions: state, context, vars, TTL, limits."""
import time


def test_session_lifecycle(svc):
    sid = svc.new_session()
    assert svc.run(sid, "a = 20")[1]["success"]
    status, r = svc.run(sid, "a + 22")
    assert status == 200 and r["stdout"] == "42\n"
    ids = [s["session_id"] for s in svc.get("/sessions")[1]["sessions"]]
    assert sid in ids
    assert svc.get(f"/session/{sid}/vars/a")[1]["value"] == 20
    assert svc.request("DELETE", f"/session/{sid}") == (200, {"status": "ok"})
    assert svc.run(sid, "a")[0] == 404
    assert svc.request("DELETE", f"/session/{sid}")[0] == 404
    assert sid not in [s["session_id"] for s in svc.get("/sessions")[1]["sessions"]]


def test_sessions_do_not_share_state(svc):
    a, b = svc.new_session(), svc.new_session()
    svc.run(a, "who = 'a'")
    svc.run(b, "who = 'b'")
    assert svc.run(a, "who")[1]["stdout"] == "'a'\n"
    assert svc.run(b, "who")[1]["stdout"] == "'b'\n"


def test_context_loaded_once(svc):
    big = "line\n" * 400_000  # 2 MB
    sid = svc.new_session(context=big)
    assert svc.run(sid, "len(context)")[1]["stdout"] == f"{len(big)}\n"
    # PUT replaces it: JSON body ...
    assert svc.request("PUT", f"/session/{sid}/context", {"context": {"k": [1, 2]}})[0] == 200
    assert svc.run(sid, "sum(context['k'])")[1]["stdout"] == "3\n"
    # ... or raw text.
    status, _ = svc.request("PUT", f"/session/{sid}/context", raw="plain text",
                            headers={"Content-Type": "text/plain"})
    assert status == 200
    assert svc.run(sid, "context")[1]["stdout"] == "'plain text'\n"
    # Reassigning it in a cell does not lose it.
    svc.run(sid, "context = None")
    assert svc.run(sid, "context")[1]["stdout"] == "'plain text'\n"


def test_vars_lookup_for_final_var(svc):
    sid = svc.new_session()
    svc.run(sid, "answer_text = 'forty-two'\nnums = [1, 2]")
    status, v = svc.get(f"/session/{sid}/vars/answer_text")
    assert status == 200 and v["text"] == "forty-two" and v["type"] == "str"
    assert svc.get(f"/session/{sid}/vars/nums")[1]["value"] == [1, 2]
    assert svc.get(f"/session/{sid}/vars/missing")[0] == 404
    assert svc.get("/session/nope/vars/x")[0] == 404


def test_session_bad_input(svc):
    assert svc.post("/session", {"profile": "nope"})[0] == 400
    assert svc.post("/session", {"ttl": -5})[0] == 400
    assert svc.post("/session", {"context": "x" * 10, "limits": {"memory_mb": 0}})[0] == 400
    sid = svc.new_session()
    assert svc.run(sid, "")[0] == 400
    assert svc.request("POST", f"/session/{sid}/execute", raw="{oops")[0] == 400
    assert svc.run("0" * 32, "1")[0] == 404
    assert svc.run(sid, "1 + 1")[1]["stdout"] == "2\n"


def test_timeout_in_a_session_keeps_state(svc):
    sid = svc.new_session()
    svc.run(sid, "kept = 7")
    r = svc.run(sid, "while True: pass", timeout=0.3)[1]
    assert r["outcome"] == "timeout"
    assert svc.run(sid, "kept")[1]["stdout"] == "7\n"


def test_session_ttl_expiry(make_service):
    s = make_service(env={"SESSION_TTL": "1"})
    sid = s.new_session()
    assert s.run(sid, "x = 1")[0] == 200
    time.sleep(2.0)
    assert s.run(sid, "x")[0] == 404
    # A per-session ttl overrides the default.
    long_lived = s.new_session(ttl=60)
    time.sleep(1.5)
    assert s.run(long_lived, "1")[0] == 200


def test_max_sessions_refuses_with_429(make_service):
    s = make_service(env={"MAX_SESSIONS": "2"})
    a = s.new_session()
    s.new_session()
    status, r = s.post("/session", {})
    assert status == 429
    assert "MAX_SESSIONS" in r["error"]
    assert s.run(a, "1")[0] == 200  # the others are untouched
    s.request("DELETE", f"/session/{a}")
    assert s.post("/session", {})[0] == 200


def test_flood_of_session_creations(make_service):
    s = make_service(env={"MAX_SESSIONS": "20"})
    codes = [s.post("/session", {})[0] for _ in range(40)]
    assert codes.count(200) == 20 and codes.count(429) == 20
    assert s.execute("print('still here')")[1]["stdout"] == "still here\n"


def test_cpu_time_and_fuel_budgets_in_sessions(svc):
    # CPU time: a cell past its budget stops with its own outcome; the state stays.
    sid = svc.new_session()
    svc.run(sid, "kept = 1")
    status, r = svc.run(sid, "while True: pass", limits={"cpu_time": 0.2})
    assert status == 200 and r["outcome"] == "cpu_exceeded" and r["cpu_time"] >= 0.2
    assert "fuel_used" not in r
    assert svc.run(sid, "kept")[1]["stdout"] == "1\n"
    # A fuel budget needs a session made with one (the metered engine variant).
    status, r = svc.run(sid, "1", limits={"fuel": 10_000_000})
    assert status == 409 and "fuel" in r["error"]
    metered = svc.new_session(limits={"fuel": 50_000_000})
    status, r = svc.run(metered, "x = 0\nwhile True:\n    x += 1")
    assert status == 200 and r["outcome"] == "fuel_exhausted" and r["fuel_used"] >= 50_000_000
    assert svc.run(metered, "x > 0")[1]["stdout"] == "True\n"  # state kept after the stop
