"""Workflows: `rlmbox workflow run FILE` (in-process, the scripted model as the
LLM) and POST /workflows/run on the execution plane."""
import json
import os
import subprocess

import pytest
from conftest import read_event

BIN = os.environ.get("RLMBOX_BIN", "build/rlmbox")
HERE = os.path.dirname(__file__)
TRIAGE = os.path.join(HERE, "triage.yaml")


def run_cli(*args, env=None):
    full = dict(os.environ)
    full.update(env or {})
    p = subprocess.run([BIN, "workflow", "run", *args], capture_output=True, text=True,
                       env=full, timeout=120)
    return p.returncode, json.loads(p.stdout), p.stderr


def test_cli_runs_the_dag_with_a_condition_branch_a_loop_and_an_llm_node(model):
    base, log = model({"rules": [{"match": "Summarise", "reply": "A fox jumps a dog."}]})
    rc, r, err = run_cli(TRIAGE, env={"LLM_BASE_URL": base, "LLM_API_KEY": "k",
                                      "LLM_MODEL": "m"})
    assert rc == 0, (r, err)
    assert r["success"] and r["failed_node"] is None
    nodes = r["nodes"]
    assert nodes["words"]["output"][:2] == ["the", "quick"]
    assert nodes["is_long"]["output"] is True
    assert nodes["lengths"]["output"] == [3, 5, 5, 3, 5, 4, 3, 4, 3]
    assert nodes["summary"]["status"] == "ok" and nodes["summary"]["output"] == "A fox jumps a dog."
    assert nodes["short_note"]["status"] == "skipped"  # the other branch
    assert nodes["stats"]["output"] == {"total": 35}
    assert r["outputs"]["after_broken"] == 70
    # The prompt was rendered against the workflow's inputs; the key went to the model.
    req = [json.loads(l) for l in open(log)][0]
    assert req["body"]["messages"][-1]["content"].startswith("Summarise in one line: the quick")
    assert req["headers"].get("Authorization") == "Bearer k"


def test_cli_failed_node_stops_its_dependants_and_says_why(model):
    base, _ = model({"rules": [], "default": "ok"})
    rc, r, _ = run_cli(TRIAGE, "--inputs", json.dumps({"fail": True, "text": "too short"}),
                       env={"LLM_BASE_URL": base, "LLM_API_KEY": "k"})
    assert rc == 1
    assert not r["success"] and r["failed_node"] == "broken"
    assert r["error"] == "node 'broken' failed: ValueError: asked to fail"
    assert r["nodes"]["after_broken"]["status"] == "not_run"
    assert r["nodes"]["summary"]["status"] == "skipped"   # is_long is False now
    assert r["nodes"]["short_note"]["output"] == "short"
    assert r["nodes"]["stats"]["status"] == "ok"          # independent work still ran


def test_cli_rejects_malformed_workflows(tmp_path):
    cases = {
        "cycle": {"nodes": [{"id": "a", "type": "code", "code": "1", "depends_on": ["b"]},
                            {"id": "b", "type": "code", "code": "1", "depends_on": ["a"]}]},
        "unknown dep": {"nodes": [{"id": "a", "type": "code", "code": "1", "depends_on": ["z"]}]},
        "duplicate": {"nodes": [{"id": "a", "type": "code", "code": "1"},
                                {"id": "a", "type": "code", "code": "2"}]},
        "bad id": {"nodes": [{"id": "a-b", "type": "code", "code": "1"}]},
    }
    messages = {"cycle": "cycle", "unknown dep": "unknown node 'z'", "duplicate": "duplicate",
                "bad id": "identifier"}
    for name, wf in cases.items():
        path = tmp_path / "wf.json"
        path.write_text(json.dumps(wf))
        rc, r, _ = run_cli(str(path))
        assert rc == 2 and messages[name] in r["error"], (name, r)


def test_http_workflow_with_yaml_body_and_parallel_branches(svc):
    wf = """
name: fanout
nodes:
  - {id: a, type: code, code: "import time\\ntime.sleep(0.3)\\noutput = 1"}
  - {id: b, type: code, code: "import time\\ntime.sleep(0.3)\\noutput = 2"}
  - {id: c, type: code, depends_on: [a, b], code: "output = a + b"}
output: c
"""
    status, r = svc.post("/workflows/run", {"workflow": wf})
    assert status == 200, r
    assert r["success"] and r["output"] == 3
    # a and b ran side by side: the whole took less than their sum.
    assert r["nodes"]["a"]["usage"]["duration_ms"] >= 300
    assert r["duration_ms"] < 600 + 200


def test_http_workflow_failure_and_limits(svc):
    wf = {"nodes": [
        {"id": "ok", "type": "code", "code": "output = 1"},
        {"id": "spin", "type": "condition", "expression": "sum(range(10**12)) > 0"},
        {"id": "then", "type": "code", "when": "spin", "code": "output = 2"},
    ]}
    status, r = svc.post("/workflows/run", {"workflow": wf})
    assert status == 200
    assert not r["success"] and r["failed_node"] == "spin"
    assert r["nodes"]["spin"]["outcome"] == "timeout"
    assert r["nodes"]["then"]["status"] == "not_run"
    assert r["outputs"] == {"ok": 1}


def test_http_workflow_refuses_files_and_bad_shapes(svc):
    wf = {"nodes": [{"id": "n", "type": "workflow", "file": "/etc/passwd"}]}
    status, r = svc.post("/workflows/run", {"workflow": wf})
    assert status == 200 and not r["success"]
    assert "cannot be referenced" in r["nodes"]["n"]["error"]
    status, r = svc.post("/workflows/run", {"workflow": {"nodes": []}})
    assert status == 400
    status, r = svc.post("/workflows/run", {"workflow": "nodes: [unclosed"})
    assert status == 400


def test_http_workflow_llm_node_answered_by_the_streaming_caller(svc):
    wf = {"inputs": {"name": "Ann"},
          "nodes": [{"id": "greet", "type": "llm", "prompt": "Greet {name}"}], "output": "greet"}
    c = svc.conn()
    c.request("POST", "/workflows/run", body=json.dumps({"workflow": wf}),
              headers={"Content-Type": "application/json", "Accept": "application/x-ndjson"})
    resp = c.getresponse()
    ev = read_event(resp)
    assert ev["event"] == "host_call" and ev["args"]["prompt"] == "Greet Ann"
    st, _ = svc.post(f"/runs/{ev['run_id']}/calls/{ev['call_id']}", {"result": "Hi Ann!"})
    assert st == 200
    ev = read_event(resp)
    assert ev["event"] == "result" and ev["output"] == "Hi Ann!", ev
    # The answered call cannot be answered again.
    st, _ = svc.post(f"/runs/{ev['run_id']}/calls/x", {"result": "late"})
    assert st == 404


def test_profile_config_errors_are_reported(tmp_path):
    wf = tmp_path / "wf.yaml"
    wf.write_text("nodes:\n  - {id: a, type: code, code: 'output = 1'}\n")
    for config, message in [
        ({"profiles": {"code": {"memory_mb": 10 ** 6}}}, "above the ceilings"),
        ({"profiles": {"code": {"speed": 1}}}, "unknown setting 'speed'"),
        ({"limits": {}}, "unknown key 'limits'"),
    ]:
        path = tmp_path / "profiles.json"
        path.write_text(json.dumps(config))
        rc, r, _ = run_cli(str(wf), "--profiles", str(path))
        assert rc == 2 and message in r["error"], (config, r)
    # A valid YAML config applies: the code node now has 1 MB of room only.
    path = tmp_path / "profiles.yaml"
    path.write_text("profiles:\n  code:\n    memory_mb: 1\n")
    wf.write_text("nodes:\n  - {id: a, type: code, code: 'x = bytearray(32 * 2**20)'}\n")
    rc, r, _ = run_cli(str(wf), "--profiles", str(path))
    assert rc == 1 and r["nodes"]["a"]["outcome"] == "memory_exceeded", r


def test_agent_node_runs_its_rlm_under_the_agent_profile(model, tmp_path):
    # The agent's RLM writes code that allocates 160 MB (over the agent profile's
    # 128 MB), sees the MemoryError fed back, then 96 MB (under it), then answers.
    base, log = model({"rules": [
        {"times": 1, "reply": "```repl\nbig = bytearray(160 * 2**20)\n```"},
        {"times": 1, "reply": "```repl\nok = len(bytearray(96 * 2**20))\n```"},
        {"times": 1, "reply": "FINAL_VAR(ok)"},
    ], "default": "FINAL(out of script)"})
    wf = tmp_path / "agent.yaml"
    wf.write_text("nodes:\n  - {id: a, type: agent, query: 'Allocate', context: {n: 1}}\n")
    rc, r, err = run_cli(str(wf), env={"LLM_BASE_URL": base, "LLM_API_KEY": "k"})
    assert rc == 0, (r, err)
    assert r["nodes"]["a"]["output"] == str(96 * 2 ** 20)
    reqs = [json.loads(l) for l in open(log)]
    fed_back = reqs[1]["body"]["messages"][-1]["content"]
    assert "MemoryError" in fed_back, fed_back
    assert "MemoryError" not in reqs[2]["body"]["messages"][-1]["content"]
