"""serve-exec: health, readiness, /execute and its errors, over real HTTP."""
import json


def test_health_ready_metrics(svc):
    assert svc.get("/health") == (200, {"status": "healthy"})
    assert svc.get("/ready") == (200, {"status": "ready"})
    status, text = svc.get("/metrics")
    assert status == 200
    for name in ("wasm_sessions_active", "wasm_execution_duration_seconds",
                 "wasm_execution_errors_total", "wasm_executions_total"):
        assert name in text


def test_seed_execute_example(svc):
    # The seeds' own curl body, unchanged (seeds/002).
    status, r = svc.post("/execute", {
        "code": "print(\"Hello from WASM!\")\nx = 42\ny = 58\nresult = x + y",
        "context": {}, "timeout": 30})
    assert status == 200
    assert r["success"] is True
    assert r["stdout"] == "Hello from WASM!\n"
    assert r["stderr"] == ""
    assert r["locals"] == {"x": 42, "y": 58, "result": 100}
    assert r["error"] is None
    assert r["execution_time"] > 0
    assert r["outcome"] == "ok"
    for extra in ("execution_id", "cpu_time", "memory_peak_bytes"):
        assert extra in r


def test_python_exception_is_a_completed_execution(svc):
    status, r = svc.execute("x = 1\nraise KeyError('k')")
    assert status == 200
    assert r["success"] is False and r["outcome"] == "exception"
    assert r["error"] == "KeyError: 'k'"
    assert "Traceback" in r["stderr"]
    assert r["locals"] == {"x": 1}


def test_context_is_bound(svc):
    assert svc.execute("context['n'] * 2", context={"n": 21})[1]["stdout"] == "42\n"
    assert svc.execute("context.upper()", context="abc")[1]["stdout"] == "'ABC'\n"


def test_limits_and_profiles(svc):
    r = svc.execute("while True: pass", timeout=0.3)[1]
    assert r["outcome"] == "timeout"
    r = svc.execute("x = bytearray(200 << 20)", profile="code")[1]  # code: 32 MB
    assert r["outcome"] == "memory_exceeded"
    r = svc.execute("print('y' * 5000)", limits={"max_output_bytes": 100})[1]
    assert r["outcome"] == "output_truncated" and len(r["stdout"]) <= 100
    r = svc.execute("while True: pass", limits={"fuel": 10_000_000})[1]
    assert r["outcome"] == "fuel_exhausted" and r["fuel_used"] >= 10_000_000
    r = svc.execute("import re\nre.match(r'(a+)+$', 'a' * 40 + 'b')", timeout=20,
                    limits={"cpu_time": 0.3})[1]
    assert r["outcome"] == "cpu_exceeded" and 0.3 <= r["cpu_time"] < 1, r
    assert "CPU time budget of 300 ms" in r["error"]
    status, r = svc.execute("1", limits={"cpu_time": 10_000})
    assert status == 400 and "cpu_time" in r["error"]


def test_stateless_runs_share_nothing(svc):
    svc.execute("leak = 'tenant-a'")
    assert svc.execute("'leak' in globals()")[1]["stdout"] == "False\n"


def test_bad_requests(svc):
    assert svc.post("/execute", {"code": ""}) == (400, {"error": "Code is required",
                                                        "code": "bad_request"})
    assert svc.post("/execute", {"context": {}})[0] == 400
    assert svc.request("POST", "/execute", raw="{not json")[1]["error"] == "invalid JSON body"
    assert svc.request("POST", "/execute", raw="[1, 2]")[0] == 400
    assert svc.post("/execute", {"code": 5})[1]["error"] == "code must be a string"
    assert svc.post("/execute", {"code": "1", "timeout": "soon"})[0] == 400
    assert svc.post("/execute", {"code": "1", "timeout": -1})[0] == 400
    assert svc.post("/execute", {"code": "1", "timeout": 10**9})[0] == 400
    assert svc.post("/execute", {"code": "1", "profile": "root"})[1]["error"] == \
        "unknown profile 'root'"
    assert svc.post("/execute", {"code": "1", "limits": {"memory_mb": 10**7}})[0] == 400
    assert svc.post("/execute", {"code": "1", "limits": {"cpu": 1}})[0] == 400
    # Invalid UTF-8 is not JSON.
    assert svc.request("POST", "/execute", raw=b'{"code": "\xff\xfe"}')[0] == 400
    assert svc.get("/nope")[0] == 404
    # Still serving.
    assert svc.execute("1 + 1")[1]["stdout"] == "2\n"


def test_unicode_round_trips(svc):
    status, r = svc.execute("s = 'żółw 🐢 \u4e2d'\nprint(s)")
    assert r["stdout"] == "żółw 🐢 中\n"


def test_huge_body_is_413(make_service):
    s = make_service(env={"MAX_REQUEST_BYTES": "100000"})
    status, r = s.post("/execute", {"code": "x = '" + "a" * 200_000 + "'"})
    assert status == 413
    assert r["code"] == "too_large"
    assert s.execute("print('ok')")[1]["stdout"] == "ok\n"


def test_a_context_over_the_body_limit_is_413_and_one_under_it_binds_whole(make_service):
    """The routes that carry a big context read their body themselves (one buffer
    sized from Content-Length): the limit still holds, whether the length is
    declared or the body is chunked, and a body just under it arrives whole."""
    s = make_service(env={"MAX_REQUEST_BYTES": "100000"})
    big = {"context": "a" * 200_000}
    status, r = s.post("/session", big)
    assert status == 413 and r["code"] == "too_large", r
    status, sid = s.post("/session", {})
    sid = sid["session_id"]
    status, r = s.request("PUT", f"/session/{sid}/context", big)
    assert status == 413 and r["code"] == "too_large", r
    status, r = s.request("PUT", f"/session/{sid}/context", raw="b" * 200_000,
                          headers={"Content-Type": "text/plain"})
    assert status == 413 and r["code"] == "too_large", r

    def chunked(path, payload, ctype):
        c = s.conn(30)
        c.putrequest("PUT" if "context" in path else "POST", path)
        c.putheader("Content-Type", ctype)
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        for i in range(0, len(payload), 10_000):
            part = payload[i:i + 10_000]
            c.send(b"%x\r\n%s\r\n" % (len(part), part))
        c.send(b"0\r\n\r\n")
        r = c.getresponse()
        out = (r.status, json.loads(r.read()))
        c.close()
        return out
    status, r = chunked("/session", json.dumps(big).encode(), "application/json")
    assert status == 413 and r["code"] == "too_large", r
    status, r = chunked(f"/session/{sid}/context", b"c" * 200_000, "text/plain")
    assert status == 413 and r["code"] == "too_large", r
    # Just under the limit: every byte is there.
    text = "xyz" * 30_000
    status, r = s.post("/session", {"context": text})
    assert status == 200, r
    assert s.post(f"/session/{r['session_id']}/execute",
                  {"code": "print(len(context), context[-3:])"})[1]["stdout"] == "90000 xyz\n"
    status, _ = chunked(f"/session/{sid}/context", text.encode(), "text/plain")
    assert status == 200
    assert s.post(f"/session/{sid}/execute",
                  {"code": "print(len(context))"})[1]["stdout"] == "90000\n"
    assert s.execute("print('ok')")[1]["stdout"] == "ok\n"


def test_metrics_count_outcomes(svc):
    svc.execute("1/0")
    svc.execute("while True: pass", limits={"cpu_time": 0.2})
    _, text = svc.get("/metrics")
    assert 'wasm_executions_total{kind="stateless",outcome="exception"}' in text
    assert 'wasm_executions_total{kind="stateless",outcome="cpu_exceeded"}' in text
    # CPU seconds of executions, beside their wall time: the spin above used >= 0.2 s.
    cpu_sum = [l for l in text.splitlines() if l.startswith("wasm_execution_cpu_seconds_sum")]
    assert cpu_sum and float(cpu_sum[0].split()[-1]) >= 0.2
    assert 'wasm_host_errors_total{code="bad_request"}' in text


def test_one_json_log_line_per_execution(make_service):
    s = make_service()
    s.execute("print('a')\nprint('b')")
    s.stop()
    lines = [json.loads(l) for l in s.logs().splitlines() if l.startswith("{")]
    execs = [l for l in lines if l["event"] == "execution"]
    assert len(execs) == 1
    e = execs[0]
    assert e["stdout_lines"] == 2 and e["outcome"] == "ok" and e["success"] is True
    for f in ("execution_id", "duration_ms", "cpu_ms", "stderr_lines"):
        assert f in e
    assert "fuel_used" not in e  # only under a fuel budget
    assert "code" not in e  # never the code unless LOG_LEVEL=debug
