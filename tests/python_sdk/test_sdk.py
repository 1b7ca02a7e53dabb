"""The Python SDK against a real serve-exec (and serve for RLMClient)."""
import asyncio
import os
import threading

import pytest

from service_process import Service, make_service  # noqa: F401  (serve-exec; fixture)
from rlmbox import AsyncExecClient, ExecClient, HostCallError, RlmboxError


def test_execute_returns_typed_results(client):
    assert client.health() == {"status": "healthy"}
    assert client.ready() is True
    r = client.execute("x = 40 + 2\nprint('hi')\nx")
    assert r.success and r.outcome == "ok"
    assert r.stdout == "hi\n42\n" and r.locals == {"x": 42}
    assert r.execution_time > 0 and r.cpu_time > 0 and r.execution_id
    assert r.fuel_used == 0  # fuel is an opt-in budget
    assert client.execute("while True: pass", limits={"cpu_time": 0.2}).outcome == "cpu_exceeded"
    # A Python exception is a result, not a client exception.
    e = client.execute("1/0")
    assert e.success is False and e.outcome == "exception"
    assert e.error == "ZeroDivisionError: division by zero"
    assert client.execute("context['a']", context={"a": 5}).stdout == "5\n"
    assert client.execute("while True: pass", timeout=0.3).outcome == "timeout"
    assert client.execute("print('x' * 50)", limits={"max_output_bytes": 10}).outcome == "output_truncated"
    assert client.execute("x = bytearray(100 << 20)", profile="code").outcome == "memory_exceeded"


@pytest.mark.http_only
def test_host_errors_raise(client, svc):
    with pytest.raises(ValueError):
        ExecClient("ftp://x")
    dead = ExecClient("http://127.0.0.1:1")
    with pytest.raises(RlmboxError) as e:
        dead.execute("1")
    assert e.value.code == "unreachable"


def test_empty_code_and_unknown_profile_are_refused(client):
    with pytest.raises(RlmboxError) as e:
        client.execute("")
    assert e.value.status == 400 and e.value.message == "Code is required"
    with pytest.raises(RlmboxError) as e:
        client.execute("1", profile="nope")
    assert e.value.status == 400


def test_session_context_manager(client):
    with client.session(context="some text") as s:
        s.execute("n = len(context.split())")
        assert s.execute("n * 10").stdout == "20\n"
        assert s.get_var("n").value == 2
        s.set_context({"k": [1, 2, 3]})
        assert s.execute("sum(context['k'])").stdout == "6\n"
    with pytest.raises(RlmboxError):
        s.execute("n")


@pytest.mark.http_only
def test_session_listed_while_open(client):
    with client.session() as s:
        sid = s.session_id
        assert sid in [x["session_id"] for x in client.sessions()]
    assert sid not in [x["session_id"] for x in client.sessions()]
    with pytest.raises(RlmboxError) as e:
        s2 = client.session()
        s2.close()
        s2._client._http.request("POST", f"/session/{s2.session_id}/execute", {"code": "1"})
    assert e.value.status == 404


def test_llm_query_answered_by_a_python_callable(client):
    seen = []

    def llm(prompt, model=None):
        seen.append((prompt, model))
        if "fail" in prompt:
            raise HostCallError("no such luck")
        return prompt.upper()

    with client.session(llm_query=llm) as s:
        r = s.execute("print(llm_query('abc'), llm_query('x', model='small'))")
        assert r.stdout == "ABC X\n", r.stderr
        b = s.execute("print(llm_query_batched(['a', 'fail', 'c']))")
        assert b.stdout == "['A', 'Error: no such luck', 'C']\n"
        e = s.execute("llm_query('please fail')")
        assert e.error == "LLMQueryError: no such luck"
        # rlm_query falls back to the llm callable when no rlm_query callable is given.
        assert s.execute("rlm_query('deep')").stdout == "'DEEP'\n"
    assert ("x", "small") in seen


def test_batched_prompts_run_concurrently(client):
    active, peak, lock = [0], [0], threading.Lock()
    gate = threading.Barrier(4, timeout=10)

    def llm(prompt, model=None):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        gate.wait()  # only passes if 4 calls are in flight at once
        with lock:
            active[0] -= 1
        return "ok"

    with client.session(llm_query=llm) as s:
        r = s.execute("print(llm_query_batched(['1', '2', '3', '4']))")
    assert r.stdout == "['ok', 'ok', 'ok', 'ok']\n"
    assert peak[0] == 4


@pytest.mark.http_only
def test_async_client(svc):
    async def main():
        c = AsyncExecClient(f"http://127.0.0.1:{svc.port}")
        results = await asyncio.gather(*[c.execute(f"{i} * 2") for i in range(8)])
        assert [r.stdout for r in results] == [f"{i * 2}\n" for i in range(8)]
        async with await c.session() as s:
            await s.execute("v = 'async'")
            assert (await s.get_var("v")).text == "async"
            snap = await s.snapshot()
            kids = await s.fork(2)
            await kids[0].execute("v = 'kid'")
            assert [(await k.get_var("v")).text for k in kids] == ["kid", "async"]
            async with await c.restore(snap) as r:
                assert (await r.get_var("v")).text == "async"
            await c.delete_snapshot(snap)
            for k in kids:
                await k.close()
    asyncio.run(main())


@pytest.mark.http_only
def test_token_auth(make_service):
    s = make_service(env={"RLMBOX_TOKEN": "t0k"})
    with pytest.raises(RlmboxError) as e:
        ExecClient(f"http://127.0.0.1:{s.port}").execute("1")
    assert e.value.status == 401
    assert ExecClient(f"http://127.0.0.1:{s.port}", token="t0k").execute("1").stdout == "1\n"


@pytest.mark.http_only
def test_pip_installs_the_package(tmp_path, svc):
    import subprocess
    root = os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python")
    p = subprocess.run(["python3", "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                        str(tmp_path), root], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    check = subprocess.run(
        ["python3", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import rlmbox; "
         f"print(rlmbox.ExecClient('http://127.0.0.1:{svc.port}').execute('6 * 7').stdout, end='')"],
        capture_output=True, text=True, timeout=60)
    assert check.stdout == "42\n", check.stderr


@pytest.mark.http_only
def test_metrics_route(client):
    client.execute("1")
    text = client.metrics()
    assert "wasm_executions_total" in text and "wasm_sessions_active" in text


@pytest.mark.http_only
def test_snapshot_restore_and_fork_over_http(client):
    with client.session(context="one two three") as s:
        s.execute("import random\ndef words(): return len(context.split())\nn = 5")
        snap = s.snapshot()
        assert snap.snapshot_id and 0 < snap.bytes < 2 << 20
        s.execute("n = 0")
        with client.restore(snap) as r:
            assert r.execute("print(n, words())").stdout == "5 3\n"
            assert r.get_var("n").value == 5
        kids = s.fork(2)
        try:
            assert [k.execute("n").stdout for k in kids] == ["0\n", "0\n"]
            kids[0].execute("n = 9")
            assert kids[1].execute("n").stdout == "0\n" and s.execute("n").stdout == "0\n"
            draws = {k.execute("random.random()").stdout for k in kids}
            assert len(draws) == 2
        finally:
            for k in kids:
                k.close()
        client.delete_snapshot(snap)
        with pytest.raises(RlmboxError) as e:
            client.restore(snap.snapshot_id)
        assert e.value.status == 404
