"""Host calls over the wire (design §5.3): NDJSON events answered by the caller."""
import json
import threading
import time

from service_process import read_event


def answer(svc, sid, call_id, body):
    return svc.post(f"/session/{sid}/calls/{call_id}", body)


def test_llm_query_round_trip(svc):
    sid = svc.new_session()
    c, resp = svc.stream(sid, "r = llm_query('What is 6*7?')\nprint('model said', r)")
    assert resp.status == 200
    assert "application/x-ndjson" in resp.getheader("Content-Type")
    ev = read_event(resp)
    assert ev["event"] == "host_call" and ev["kind"] == "llm_query"
    assert ev["args"]["prompt"] == "What is 6*7?"
    assert len(ev["call_id"]) == 32
    assert answer(svc, sid, ev["call_id"], {"result": "42"}) == (200, {"status": "ok"})
    done = read_event(resp)
    c.close()
    assert done["event"] == "result"
    assert done["success"] is True and done["stdout"] == "model said 42\n"
    assert done["host_calls"] == 1
    # The session keeps what the cell assigned.
    assert svc.run(sid, "r")[1]["stdout"] == "'42'\n"


def test_batched_arrives_as_one_event_and_fails_per_item(svc):
    sid = svc.new_session()
    c, resp = svc.stream(sid, "print(llm_query_batched(['a', 'b', 'c']))")
    ev = read_event(resp)
    assert ev["kind"] == "llm_query_batched" and ev["args"]["prompts"] == ["a", "b", "c"]
    # Wrong shapes are refused and the call stays open.
    assert answer(svc, sid, ev["call_id"], {"result": ["only one"]})[0] == 400
    assert answer(svc, sid, ev["call_id"], {"nothing": 1})[0] == 400
    status, _ = answer(svc, sid, ev["call_id"],
                       {"result": ["A", {"error": "rate limited"}, "C"]})
    assert status == 200
    done = read_event(resp)
    c.close()
    assert done["stdout"] == "['A', 'Error: rate limited', 'C']\n"


def test_error_answer_raises_in_the_guest(svc):
    sid = svc.new_session()
    c, resp = svc.stream(sid, "llm_query('x')")
    ev = read_event(resp)
    answer(svc, sid, ev["call_id"], {"error": "model unavailable"})
    done = read_event(resp)
    c.close()
    assert done["outcome"] == "exception"
    assert done["error"] == "LLMQueryError: model unavailable"


def test_duplicate_late_and_foreign_answers_are_refused(svc):
    sid, other = svc.new_session(), svc.new_session()
    c, resp = svc.stream(sid, "a = llm_query('1')\nb = llm_query('2')\nprint(a, b)")
    first = read_event(resp)
    assert answer(svc, other, first["call_id"], {"result": "x"})[0] == 404  # wrong session
    assert answer(svc, sid, "f" * 32, {"result": "x"})[0] == 404            # unknown id
    assert answer(svc, sid, first["call_id"], {"result": "one"})[0] == 200
    second = read_event(resp)
    assert second["call_id"] != first["call_id"]
    # The first call is settled: answering it again is refused.
    assert answer(svc, sid, first["call_id"], {"result": "again"})[0] in (404, 409)
    assert answer(svc, sid, second["call_id"], {"result": "two"})[0] == 200
    done = read_event(resp)
    c.close()
    assert done["stdout"] == "one two\n"
    assert answer(svc, sid, second["call_id"], {"result": "late"})[0] == 404


def test_deadline_expires_while_waiting(svc):
    sid = svc.new_session()
    t0 = time.time()
    c, resp = svc.stream(sid, "llm_query('never answered')\nprint('after')", timeout=0.5)
    ev = read_event(resp)
    done = read_event(resp)
    c.close()
    assert time.time() - t0 < 3
    assert done["event"] == "result"
    assert done["success"] is False
    assert done["outcome"] in ("timeout", "exception")
    assert answer(svc, sid, ev["call_id"], {"result": "too late"})[0] == 404
    assert svc.run(sid, "1 + 1")[1]["stdout"] == "2\n"


def test_plain_json_caller_gets_a_clear_error(svc):
    sid = svc.new_session()
    r = svc.run(sid, "llm_query('hi')")[1]
    assert r["outcome"] == "exception"
    assert "not available" in r["error"]
    r = svc.execute("llm_query('hi')")[1]
    assert "not available" in r["error"]


def test_disconnect_mid_stream_ends_the_execution(svc):
    sid = svc.new_session()
    svc.run(sid, "kept = 'yes'")
    c, resp = svc.stream(sid, "x = llm_query('q')\nwhile True: pass", timeout=20)
    ev = read_event(resp)
    c.close()  # the caller goes away without answering
    # The answer endpoint no longer knows the call once the execution ended,
    # and the session is usable long before the 20 s deadline.
    deadline = time.time() + 10
    while time.time() < deadline:
        status, r = svc.run(sid, "kept")
        if status == 200:
            break
        time.sleep(0.1)
    assert svc.run(sid, "kept")[1]["stdout"] == "'yes'\n"
    assert time.time() < deadline


def test_many_calls_in_one_execution(svc):
    sid = svc.new_session()
    c, resp = svc.stream(sid, "print(sum(int(llm_query(str(i))) for i in range(20)))")
    for _ in range(20):
        ev = read_event(resp)
        assert answer(svc, sid, ev["call_id"], {"result": ev["args"]["prompt"]})[0] == 200
    done = read_event(resp)
    c.close()
    assert done["stdout"] == f"{sum(range(20))}\n"
