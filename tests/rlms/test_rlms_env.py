"""The official `rlms` library with rlmbox as its REPL environment, end to end:
rlms's own loop and LM handler on the user's side, the code in an rlmbox sandbox."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "service"))
sys.path.insert(0, os.path.join(HERE, "..", "rlm"))

from service_process import Service  # noqa: E402
from test_complete import model, requests_of  # noqa: E402,F401  (fixture)

ROOT = os.path.join(HERE, "..", "..")


# The model's side of a two-turn rlms run (tests/python_pkg runs it in-process too).
RLMS_SCRIPT = {"rules": [
    # Turn 2 (rlms ends each turn's messages with "Turn N/M:"): answer via the dict.
    {"match": "Turn 2/", "reply":
        "```repl\nanswer['content'] = 'length ' + result\nanswer['ready'] = True\n```"},
    # The sub-call made from inside the sandbox.
    {"match": "count the characters", "reply": "19"},
    # Turn 1 (anything else): look at the context and ask a sub-LLM.
    {"reply": "```repl\nresult = llm_query('count the characters: ' + context)\n"
              "print(result, len(context))\n```"},
]}


@pytest.fixture(scope="module")
def rlms_python():
    p = subprocess.run([os.path.join(ROOT, "scripts", "setup-python-env.sh")],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_rlms_completes_a_multi_iteration_task_in_rlmbox(rlms_python, model):
    svc = Service()
    try:
        url, log = model(RLMS_SCRIPT)
        p = subprocess.run([rlms_python, os.path.join(HERE, "run_rlms.py"),
                            f"http://127.0.0.1:{svc.port}", url, "what a long context"],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
        out = json.loads(p.stdout.strip().splitlines()[-1])
        assert out["response"] == "length 19"
        reqs = requests_of(log)
        sub = [q for q in reqs if "count the characters" in q["body"]["messages"][-1]["content"]]
        assert len(sub) == 1 and len(reqs) >= 3
        # The model's code ran in rlmbox: its executions are in serve-exec's log.
        svc.stop()
        execs = [json.loads(l) for l in svc.logs().splitlines()
                 if l.startswith("{") and '"event":"execution"' in l]
        assert len(execs) >= 2 and all(e["kind"] == "session" for e in execs)
        assert any(e["host_calls"] == 1 for e in execs)
    finally:
        svc.stop()
