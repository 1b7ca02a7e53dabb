"""rlmbox in-process (the wheel's engine): limits, callbacks, tools, threads,
sessions, asyncio, shutdown, and the console script from the same install."""
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

import rlmbox
from rlmbox import HostCallError, Sandbox, Session

BIN = os.path.join(sys.prefix, "bin")


# ---------------------------------------------------------------- results and limits


def test_sandbox_result_has_the_http_fields():
    r = Sandbox(timeout=5, memory_mb=64).execute("x = 40 + 2\nprint(1 + 1)\nx")
    assert (r.stdout, r.outcome, r.success, r.error) == ("2\n42\n", "ok", True, None)
    assert r.locals == {"x": 42} and r.execution_time > 0 and r.execution_id
    assert r.cpu_time > 0 and r.fuel_used == 0 and r.memory_peak_bytes > 0
    e = Sandbox().execute("1/0")
    assert e.success is False and e.outcome == "exception"
    assert e.error == "ZeroDivisionError: division by zero" and "Traceback" in e.stderr


def test_every_limit_gives_its_outcome():
    assert Sandbox(timeout=0.3).execute("while True: pass").outcome == "timeout"
    assert Sandbox(timeout=0.3).execute("import re; re.match('(a+)+$', 'a' * 40 + 'b')").outcome \
        == "timeout"  # a C-level loop: no bytecode runs
    assert Sandbox(memory_mb=32).execute("x = bytearray(100 << 20)").outcome == "memory_exceeded"
    assert Sandbox(fuel=20_000_000).execute("while True: pass").outcome == "fuel_exhausted"
    with Session(fuel=20_000_000) as s:  # a session with a fuel budget is metered throughout
        assert s.execute("while True: pass").outcome == "fuel_exhausted"
        assert s.execute("1").fuel_used > 0
    r = Sandbox(timeout=20, cpu_time=0.3).execute("x = 7 ** (10 ** 9)")  # C code, no bytecode
    assert r.outcome == "cpu_exceeded" and 0.3 <= r.cpu_time < 1
    assert Sandbox(cpu_time=2).limits["cpu_time"] == 2
    r = Sandbox(max_output_bytes=10).execute("print('x' * 50)")
    assert r.outcome == "output_truncated" and len(r.stdout) <= 10
    assert Sandbox(profile="code").limits["memory_mb"] == 32
    assert Sandbox(profile="code").execute("x = bytearray(40 << 20)").outcome == "memory_exceeded"


def test_limits_are_checked_against_the_http_ceilings():
    for kwargs, words in [({"memory_mb": 99999}, "memory_mb"), ({"timeout": 0}, "timeout"),
                          ({"timeout": 10_000}, "timeout"), ({"profile": "nope"}, "nope"),
                          ({"max_output_bytes": -1}, "max_output_bytes")]:
        with pytest.raises(ValueError) as e:
            Sandbox(**kwargs)
        assert words in str(e.value), (kwargs, str(e.value))
    with pytest.raises(ValueError):
        Sandbox().execute("")


def test_a_fresh_sandbox_per_execute_and_isolated_sessions():
    sb = Sandbox()
    sb.execute("secret = 1")
    assert sb.execute("secret").error == "NameError: name 'secret' is not defined"
    with Session() as a, Session() as b:
        a.execute("secret = 'a'")
        assert b.execute("secret").outcome == "exception"
        assert a.execute("secret").stdout == "'a'\n"
        assert a.get_var("secret").value == "a"
        with pytest.raises(KeyError):
            b.get_var("secret")
        assert a.memory_bytes() > 0


def test_a_50_mb_context_bound_once():
    big = "x" * 50_000_000
    with Session(context=big) as s:
        assert s.execute("n = len(context)").success
        assert s.execute("n").stdout == "50000000\n"
        assert s.execute("context.count('x')").stdout == "50000000\n"
    assert Sandbox().execute("len(context)", context=big).stdout == "50000000\n"
    assert Sandbox().execute("context['k'][1]", context={"k": [1, 2]}).stdout == "2\n"


def test_variables_bind_json_values_by_name():
    with Session() as s:
        text = "na\u00efve \u2603 " * 1000  # non-ASCII crosses as UTF-8
        r = s.execute("print(len(text), n + 1, _private, __mangled, rows[1]['b'])",
                      variables={"text": text, "n": 41, "_private": "p", "__mangled": "m",
                                 "rows": [{"a": 1}, {"b": None}]})
        assert r.stdout == f"{len(text)} 42 p m None\n", r.error
        # Module dunders are the interpreter's: never bound from variables.
        r = s.execute("print(__name__)", variables={"__name__": "evil", "__builtins__": {}})
        assert r.stdout == "__main__\n"
        with pytest.raises(ValueError, match="surrogate"):
            s.execute("1", variables={"lone": "\ud800x"})
        with pytest.raises(ValueError, match="JSON"):
            s.execute("1", variables={"bad": {1, 2}})


def test_a_closed_session_refuses_and_close_is_idempotent():
    s = Session()
    s.execute("x = 1")
    s.close()
    s.close()
    assert s.closed
    with pytest.raises(rlmbox.RlmboxError):
        s.execute("x")


# ---------------------------------------------------------------- callbacks


def test_llm_callbacks_plain_raising_and_batched():
    seen = []

    def llm(prompt, model=None):
        seen.append((prompt, model))
        if prompt == "refuse":
            raise HostCallError("no such luck")
        if prompt == "bug":
            raise KeyError("oops")
        return prompt.upper()

    with Session(llm_query=llm, rlm_query=lambda p, model=None: "deep:" + p) as s:
        assert s.execute("llm_query('abc'), llm_query('x', model='small')").stdout == \
            "('ABC', 'X')\n"
        assert ("x", "small") in seen
        assert s.execute("llm_query('refuse')").error == "LLMQueryError: no such luck"
        assert s.execute("llm_query('bug')").error == "LLMQueryError: KeyError: 'oops'"
        assert s.execute("llm_query_batched(['a', 'refuse'])").stdout == \
            "['A', 'Error: no such luck']\n"
        assert s.execute("rlm_query('q')").stdout == "'deep:q'\n"
    calls = []
    with Session(llm_query=llm, llm_query_batched=lambda ps, model=None: calls.append(ps) or
                 [p * 2 for p in ps]) as s:
        assert s.execute("llm_query_batched(['a', 'b'])").stdout == "['aa', 'bb']\n"
    assert calls == [["a", "b"]]
    r = Sandbox().execute("llm_query('x')")
    assert r.outcome == "exception" and "no language model" in r.error


def test_batched_prompts_are_answered_concurrently():
    gate = threading.Barrier(4, timeout=10)  # passes only with 4 calls in flight at once

    def llm(prompt, model=None):
        gate.wait()
        return "ok" + prompt

    r = Sandbox(llm_query=llm).execute("llm_query_batched(['1', '2', '3', '4'])")
    assert r.stdout == "['ok1', 'ok2', 'ok3', 'ok4']\n", r.stderr


def test_callbacks_see_the_callers_context_variables():
    import contextvars
    user = contextvars.ContextVar("user", default="nobody")
    user.set("alice")
    sb = Sandbox(llm_query=lambda p, model=None: user.get(), tools={"who": lambda: user.get()})
    assert sb.execute("llm_query('x'), who()").stdout == "('alice', 'alice')\n"


def test_a_hanging_callback_is_cut_by_the_deadline():
    release = threading.Event()

    def hang(*a, **k):
        release.wait(60)
        return "late"

    for sb, code in ((Sandbox(timeout=1, llm_query=hang), "llm_query('x')"),
                     (Sandbox(timeout=1, tools={"hang": hang}), "hang()")):
        t = time.monotonic()
        r = sb.execute(code)
        took = time.monotonic() - t
        assert r.outcome == "timeout", r
        assert took < 3, took
    release.set()


# ---------------------------------------------------------------- tools


def search(query, limit=2):
    return [f"{query}-{i}" for i in range(limit)]


def test_tools_take_json_arguments_and_return_json():
    with Session(tools={"search": search, "add": lambda a, b: a + b,
                        "info": lambda **kw: {"got": kw}}) as s:
        assert s.execute("hits = search(query='x')\nhits").stdout == "['x-0', 'x-1']\n"
        assert s.execute("search('y', limit=3)[-1]").stdout == "'y-2'\n"
        assert s.execute("add(2, 3)").stdout == "5\n"
        assert s.execute("info(a=[1, {'b': None}])").stdout == "{'got': {'a': [1, {'b': None}]}}\n"
        # Tools are not variables, and a cell cannot break them.
        assert "search" not in s.execute("z = 1").locals
        s.execute("search = 5")
        assert s.execute("search('z', limit=1)").stdout == "['z-0']\n"


def test_tools_with_bad_arguments_or_results_raise_in_the_guest():
    def boom(**kw):
        raise RuntimeError("the index is down")

    sb = Sandbox(tools={"search": search, "boom": boom, "bad": lambda: object(),
                        "nan": lambda: float("nan")})
    r = sb.execute("search(object())")
    assert r.error.startswith("TypeError: search(): arguments must be JSON data")
    r = sb.execute("search(1, 2, 3, 4)")
    assert r.error.startswith("ToolError: TypeError: search() takes from 1 to 2 positional")
    r = sb.execute("search(nope=1)")
    assert "unexpected keyword argument 'nope'" in r.error
    assert sb.execute("boom()").error == "ToolError: RuntimeError: the index is down"
    assert "not JSON data" in sb.execute("bad()").error
    assert "not JSON data" in sb.execute("nan()").error
    r = sb.execute("try:\n    boom()\nexcept ToolError as e:\n    print('caught', e)")
    assert r.stdout == "caught RuntimeError: the index is down\n"
    # A name the embedder did not declare is refused by the engine, whatever the guest sends.
    r = sb.execute("import _rlmbox, json\n"
                   "json.loads(_rlmbox.host_call(b'{\"kind\": \"tool\", \"args\": {\"name\": \"rm\"}}'))")
    assert "no tool named 'rm'" in r.stdout, r


def test_tool_names_are_checked():
    for bad in ["rlm_query_batched", "__builtins__", "1x", "a-b", "x" * 65, "context"]:
        with pytest.raises(ValueError):
            Sandbox(tools={bad: search}).execute("1")
    with pytest.raises(TypeError):
        Sandbox(tools={"x": 1})


def test_tools_work_under_an_import_policy():
    sb = Sandbox(tools={"search": search}, allowed_imports=["json"])
    assert sb.execute("import json\njson.dumps(search('p', limit=1))").stdout == "'[\"p-0\"]'\n"
    assert sb.execute("import os").outcome == "exception"


# ---------------------------------------------------------------- threads and asyncio


def test_8_threads_by_50_executions_all_correct():
    errors = []
    shared = Session()
    shared.execute("count = 0")

    def work(t):
        sb = Sandbox(tools={"tag": lambda: t})
        for i in range(50):
            r = sb.execute(f"v = {t} * 1000 + {i}\nprint(v, tag())")
            if r.stdout != f"{t * 1000 + i} {t}\n":
                errors.append((t, i, r.stdout, r.error))
            shared.execute("count += 1")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert shared.execute("count").stdout == "400\n"
    shared.close()


def test_the_gil_is_released_while_code_runs():
    done = {}

    def spin():
        Sandbox(timeout=2).execute("while True: pass")
        done["spin"] = time.monotonic()

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.2)
    quick = [Sandbox().execute(f"{i} + 1").stdout for i in range(20)]
    done["quick"] = time.monotonic()
    t.join()
    assert quick == [f"{i + 1}\n" for i in range(20)]
    assert done["quick"] < done["spin"] - 0.5  # ran while the other sandbox spun


def test_async_sandbox_and_session():
    async def main():
        sb = rlmbox.AsyncSandbox(timeout=5)
        results = await asyncio.gather(*[sb.execute(f"{i} * 2") for i in range(8)])
        assert [r.stdout for r in results] == [f"{i * 2}\n" for i in range(8)]
        async with rlmbox.AsyncSession(context="abc") as s:
            await s.execute("v = context * 2")
            assert (await s.get_var("v")).value == "abcabc"

    asyncio.run(main())


# ---------------------------------------------------------------- process life


def run_python(code, env=None, timeout=120):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_interpreter_exit_with_live_sessions_is_clean():
    p = run_python(
        "import rlmbox, threading\n"
        "keep = [rlmbox.Session(context='x') for _ in range(3)]\n"
        "for s in keep: s.execute('y = len(context)')\n"
        "print(keep[0].execute('y').stdout, end='')\n")
    assert p.returncode == 0 and p.stdout == "1\n" and p.stderr == "", p.stderr


def test_import_and_in_process_use_load_no_http_or_asyncio_modules():
    p = run_python("import sys, rlmbox\n"
                   "print(rlmbox.Sandbox().execute('1').stdout, end='')\n"
                   "print(sorted(m for m in ('http.client', 'asyncio', 'dataclasses') "
                   "if m in sys.modules))")
    assert p.stdout == "1\n[]\n", p.stderr


def test_first_use_compiles_once_and_says_so(tmp_path):
    env = {"RLMBOX_MODULE_CACHE": str(tmp_path / "modules")}
    code = ("import rlmbox\nprint(rlmbox.Sandbox().execute('6 * 7').stdout, end='')\n"
            "print(rlmbox.engine_info()['module_from_cache'])")
    first = run_python(code, env)
    assert first.returncode == 0 and first.stdout == "42\nFalse\n", first.stderr
    lines = first.stderr.splitlines()
    assert len(lines) == 1 and "compiling" in lines[0] and str(tmp_path) in lines[0]
    second = run_python(code, env)
    assert second.stdout == "42\nTrue\n" and second.stderr == ""
    assert os.listdir(tmp_path / "modules")


# ---------------------------------------------------------------- the console script


def test_the_console_script_is_the_bundled_binary():
    p = subprocess.run([os.path.join(BIN, "rlmbox"), "run", "-c", "print(6 * 7)"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout == "42\n", p.stderr
    p = subprocess.run([os.path.join(BIN, "rlmbox"), "run", "--json", "-c", "while True: pass",
                        "--timeout", "0.3"], capture_output=True, text=True, timeout=120)
    assert json.loads(p.stdout)["outcome"] == "timeout" and p.returncode == 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_exec_from_the_venv_and_the_same_code_remote():
    port = free_port()
    proc = subprocess.Popen([os.path.join(BIN, "rlmbox"), "serve-exec", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/ready", timeout=1).read()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "serve-exec did not become ready"
                time.sleep(0.1)
        assert rlmbox.ExecClient(url).execute("6 * 7").stdout == "42\n"
        # One constructor argument moves the same code to the execution plane.
        for backend in ({}, {"remote": url}):
            r = Sandbox(timeout=5, **backend).execute("print(len(context))", context="abcd")
            assert (r.stdout, r.outcome, r.success) == ("4\n", "ok", True), backend
            with Session(llm_query=lambda p, model=None: p[::-1], **backend) as s:
                s.execute("a = llm_query('abc')")
                assert s.execute("a").stdout == "'cba'\n", backend
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_snapshot_restore_and_fork_in_process():
    with Session(context="one two three") as s:
        s.execute("import random\ndef words(): return len(context.split())\nclass K: pass\nk = K()\nk.n = 5")
        sealed = s.snapshot()
        assert isinstance(sealed, bytes) and 0 < len(sealed) < 2 << 20
        s.execute("k.n = 0")
        with Session.restore(sealed) as r:
            assert r.execute("print(k.n, words())").stdout == "5 3\n"
            assert r.get_var("k").type == "K"
        kids = s.fork(3)
        try:
            kids[0].execute("k.n = 9")
            assert [c.execute("k.n").stdout for c in kids] == ["9\n", "0\n", "0\n"]
            assert s.execute("k.n").stdout == "0\n"
            assert len({c.execute("random.random()").stdout for c in kids}) == 3
        finally:
            for c in kids:
                c.close()
        tampered = bytearray(sealed)
        tampered[len(tampered) // 2] ^= 1
        with pytest.raises(ValueError, match="not authentic"):
            Session.restore(bytes(tampered))
        with pytest.raises(ValueError):
            Session.restore(sealed[:100])
