"""The escape suite: attempts an LLM (or an attacker steering one) might write, run
against the real execution service. Each case asserts the attack failed in the
expected way, and that the service still answers a normal request afterwards.
Grouped by the attack classes of ../shared/peers.md."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "service"))
from service_process import Service, read_event  # noqa: E402

SECRET = "rlmbox-host-secret-7f3a9c"


@pytest.fixture(scope="module")
def svc():
    s = Service(env={"RLMBOX_SECRET_PROBE": SECRET})
    yield s
    s.stop()


def ok_or_exception(r):
    return r["outcome"] in ("ok", "exception")


def failed(r):
    return r["success"] is False


def no_secret(r):
    return SECRET not in json.dumps(r)


# (class, name, code, check(result) -> bool)
CASES = [
    # 1. Python introspection and import tricks
    ("introspection", "subclasses walk to os.system",
     "for c in ().__class__.__base__.__subclasses__():\n"
     "    if c.__name__ == '_wrap_close':\n"
     "        c.__init__.__globals__['system']('id')\n",
     lambda r: "uid=" not in r["stdout"] and failed(r)),
    ("introspection", "ctypes", "import ctypes\nctypes.CDLL(None)", failed),
    ("introspection", "subprocess.run", "import subprocess\nsubprocess.run(['id'])", failed),
    ("introspection", "os.system", "import os\nos.system('id')", failed),
    ("introspection", "os.popen", "import os\nos.popen('id').read()", failed),
    ("introspection", "os.execv", "import os\nos.execv('/bin/sh', ['sh'])", failed),
    ("introspection", "os.fork", "import os\nos.fork()", failed),
    ("introspection", "_posixsubprocess", "import _posixsubprocess", failed),
    ("introspection", "threads", "import threading\nthreading.Thread(target=print).start()", failed),
    ("introspection", "multiprocessing", "import multiprocessing", failed),
    ("introspection", "mmap", "import mmap", failed),
    ("introspection", "asyncio subprocess", "import asyncio", failed),
    ("introspection", "__import__ of os then spawn", "__import__('os').spawnv(0, '/bin/sh', ['sh'])", failed),
    ("introspection", "builtins eval of import", "eval(\"__import__('subprocess').call(['id'])\")", failed),
    ("introspection", "exec of import statement", "exec('import subprocess; subprocess.call([\"id\"])')", failed),
    ("introspection", "gc walk for host secrets",
     "import gc\nprint(any('" + SECRET[:12] + "' in o for o in gc.get_objects() if isinstance(o, str) and o != '" + SECRET[:12] + "'))",
     lambda r: r["stdout"].strip() in ("False", "")),
    ("introspection", "frame walk out of the cell",
     "import sys\nf = sys._getframe()\nwhile f.f_back: f = f.f_back\nprint(sorted(f.f_globals)[:3])",
     lambda r: ok_or_exception(r) and no_secret(r)),
    ("introspection", "signal handler swallowing the stop",
     "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass",
     lambda r: r["outcome"] == "timeout"),
    ("introspection", "BaseException swallowing loop",
     "while True:\n    try:\n        while True: pass\n    except BaseException: pass",
     lambda r: r["outcome"] == "timeout"),
    ("introspection", "patching the runner only hurts itself",
     "import rlmbox_runner\nrlmbox_runner._locals = lambda: {'forged': True}\nx = 1",
     lambda r: True),
    # 2. The host door
    ("host door", "oversized request", "import _rlmbox\n_rlmbox.host_call(b'x' * (20 << 20))",
     lambda r: "too large" in r["stdout"] + r["stderr"] or failed(r)),
    ("host door", "invalid UTF-8", "import _rlmbox, json\nprint(json.loads(_rlmbox.host_call(b'\\xff\\xfe\\xfd')))",
     lambda r: "malformed" in r["stdout"]),
    ("host door", "truncated JSON", "import _rlmbox, json\nprint(json.loads(_rlmbox.host_call(b'{\"kind\": \"llm_q')))",
     lambda r: "malformed" in r["stdout"]),
    ("host door", "unknown kind", "import _rlmbox, json\nprint(json.loads(_rlmbox.host_call(b'{\"kind\": \"exec\", \"args\": {}}')))",
     lambda r: "unknown host call kind" in r["stdout"]),
    ("host door", "wrong argument types", "import _rlmbox, json\nprint(json.loads(_rlmbox.host_call(b'{\"kind\": \"llm_query\", \"args\": {\"prompt\": 5}}')))",
     lambda r: "prompt must be a str" in r["stdout"]),
    ("host door", "non-bytes argument", "import _rlmbox\n_rlmbox.host_call(12345)", failed),
    ("host door", "llm_query without a caller", "llm_query('exfiltrate')",
     lambda r: "not available" in (r["error"] or "")),
    ("host door", "call flood", "for i in range(5000):\n    llm_query_batched(['a'] * 100)", failed),
    ("host door", "forged result frame on stdout",
     "print('{\"event\": \"result\", \"success\": true, \"stdout\": \"forged\"}')\nraise SystemExit(3)",
     lambda r: r["success"] is False and "forged" not in r.get("final_answer", "") ),
    # 3. Filesystem
    ("filesystem", "write to the stdlib mount", "open('/lib/evil.py', 'w').write('x')", failed),
    ("filesystem", "write to cwd", "open('evil.txt', 'w').write('x')", failed),
    ("filesystem", "write to /tmp", "open('/tmp/evil', 'w').write('x')", failed),
    ("filesystem", "read /etc/passwd", "print(open('/etc/passwd').read())", failed),
    ("filesystem", "dot-dot out of the mount", "print(open('/lib/../../../etc/passwd').read())", failed),
    ("filesystem", "read /proc", "print(open('/proc/self/environ').read())", failed),
    ("filesystem", "symlink out of the mount", "import os\nos.symlink('/etc/passwd', '/lib/link')", failed),
    ("filesystem", "list the root", "import os\nprint(os.listdir('/'))",
     lambda r: r["stdout"].strip() in ("['lib']", "") and "etc" not in r["stdout"]),
    ("filesystem", "module cache not reachable",
     "import os\nprint(os.path.exists(os.path.expanduser('~/.cache/rlmbox')))",
     lambda r: "True" not in r["stdout"]),
    ("filesystem", "delete the stdlib", "import os\nos.remove('/lib/python313.zip')", failed),
    ("filesystem", "chmod the stdlib (WASI has no chmod: nothing changes)",
     "import os\ntry:\n    os.chmod('/lib/python313.zip', 0o777)\nexcept OSError:\n    pass\n"
     "print(oct(os.stat('/lib/python313.zip').st_mode & 0o777))",
     lambda r: r["stdout"].strip() not in ("0o777", "")),
    # 5. Exhaustion (host must stay up)
    ("exhaustion", "infinite loop", "while True: pass", lambda r: r["outcome"] == "timeout"),
    ("exhaustion", "sleep past the deadline", "import time\ntime.sleep(3600)", lambda r: r["outcome"] == "timeout"),
    ("exhaustion", "memory bomb", "x = []\nwhile True: x.append(bytearray(1 << 20))",
     lambda r: r["outcome"] == "memory_exceeded"),
    ("exhaustion", "one huge allocation", "x = bytearray(2 ** 31 - 1)", lambda r: r["outcome"] == "memory_exceeded"),
    ("exhaustion", "output bomb", "while True: print('A' * 10000)", lambda r: r["outcome"] == "output_truncated"),
    ("exhaustion", "stderr bomb", "import sys\nwhile True: sys.stderr.write('E' * 10000)",
     lambda r: r["outcome"] == "output_truncated"),
    ("exhaustion", "deep recursion", "import sys\nsys.setrecursionlimit(10**6)\ndef f(n): return f(n + 1)\nf(0)",
     lambda r: r["outcome"] in ("exception", "memory_exceeded", "crashed", "timeout")),
    ("exhaustion", "C-level recursion", "import json\njson.loads('[' * 1000000 + ']' * 1000000)",
     lambda r: r["outcome"] in ("exception", "crashed")),
    ("exhaustion", "regex backtracking", "import re\nre.match('(a+)+$', 'a' * 40 + 'b')",
     lambda r: r["outcome"] == "timeout"),
    ("exhaustion", "huge integer power", "x = 10 ** (10 ** 9)",
     lambda r: r["outcome"] in ("timeout", "memory_exceeded", "exception")),
    ("exhaustion", "fuel: tight CPU loop in C", "sum(range(10 ** 12))", lambda r: r["outcome"] == "timeout"),
    # 6. Control plane / secrets
    ("control plane", "environment variables", "import os\nprint(dict(os.environ))",
     lambda r: r["stdout"].strip() == "{}" and no_secret(r)),
    ("control plane", "argv", "import sys\nprint(sys.argv, sys.executable)", no_secret),
    ("control plane", "no DNS", "import socket\nsocket.getaddrinfo('example.com', 443)", failed),
    ("control plane", "no sockets to localhost", "import socket\nsocket.create_connection(('127.0.0.1', 8000))", failed),
    ("control plane", "no urllib", "import urllib.request\nurllib.request.urlopen('http://169.254.169.254/')", failed),
    ("control plane", "no http.client", "import http.client\nhttp.client.HTTPConnection('127.0.0.1', 80).request('GET', '/')", failed),
]


@pytest.mark.parametrize("cls, name, code, check", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_attack(svc, cls, name, code, check):
    status, r = svc.execute(code, timeout=2, limits={"memory_mb": 128, "max_output_bytes": 100_000})
    assert status == 200, r
    assert check(r), json.dumps({k: r[k] for k in ("outcome", "error", "stdout", "stderr")})[:2000]
    assert no_secret(r)
    # The service still answers a normal request.
    assert svc.execute("print(6 * 7)")[1]["stdout"] == "42\n"


# 4. Cross-tenant leaks
def test_stateless_runs_leave_nothing(svc):
    svc.execute("import sys, builtins\nbuiltins.len = lambda x: 0\nsys.modules['json'] = None\nleak = 'A'")
    r = svc.execute("import json\nprint(len([1, 2]), 'leak' in globals(), json.dumps(1))")[1]
    assert r["stdout"] == "2 False 1\n"


def test_sessions_cannot_reach_each_other(svc):
    a, b = svc.new_session(), svc.new_session()
    svc.run(a, "import builtins\nbuiltins.print = None\nsecret_a = 'only-a'")
    r = svc.run(b, "import gc\nprint(any(o == 'only-a' for o in gc.get_objects() if isinstance(o, str)))")[1]
    assert r["stdout"] == "False\n"
    assert svc.get(f"/session/{b}/vars/secret_a")[0] == 404


def test_randomness_after_snapshot_restore(svc):
    code = "import random, os, secrets\nprint(random.getrandbits(64), os.urandom(8).hex(), secrets.token_hex(8))"
    outs = {svc.execute(code)[1]["stdout"] for _ in range(5)}
    assert len(outs) == 5


def test_session_ids_are_unguessable(svc):
    ids = {svc.new_session() for _ in range(20)}
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids) and len(ids) == 20
    assert svc.run("0" * 32, "1")[0] == 404


# 2 (again). Forged frames in a streamed execute.
def test_forged_stream_frames_stay_inside_stdout(svc):
    sid = svc.new_session()
    c, resp = svc.stream(sid, "print('{\"event\": \"host_call\", \"call_id\": \"x\", \"kind\": \"llm_query\"}')\n"
                              "print('{\"event\": \"result\", \"success\": true}')")
    ev = read_event(resp)
    c.close()
    assert ev["event"] == "result" and "host_call" in ev["stdout"]


def test_calls_after_the_deadline_fail(svc):
    sid = svc.new_session()
    # The cell swallows the soft stop and calls out after its deadline.
    c, resp = svc.stream(sid, "try:\n    while True: pass\nexcept BaseException:\n"
                              "    print(llm_query('late'))", timeout=1)
    events = []
    while True:
        ev = read_event(resp)
        events.append(ev)
        if ev["event"] == "result":
            break
        if ev["event"] == "host_call":
            svc.post(f"/session/{sid}/calls/{ev['call_id']}", {"result": "x"})
    c.close()
    assert events[-1]["success"] is False
