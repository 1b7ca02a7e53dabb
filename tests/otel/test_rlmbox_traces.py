"""rlmbox's own traces, received by a real OpenTelemetry Collector: a span per
workflow, node and sandbox execution, with the right parent/child links and
attributes."""
import http.client
import json
import os
import subprocess
import sys

from otel_collector import describe

BIN = os.environ.get("RLMBOX_BIN", "build/rlmbox")
HERE = os.path.dirname(__file__)
TRIAGE = os.path.join(HERE, "..", "nodes", "triage.yaml")
sys.path.insert(0, os.path.join(HERE, "..", "service"))
from service_process import Service, free_port, wait_http  # noqa: E402
from model_fixture import model  # noqa: E402,F401  (fixture)


def by_name(spans, name):
    found = [s for s in spans if s["name"] == name]
    assert found, f"no span {name!r}:\n{describe(spans)}"
    return found


def test_workflow_run_exports_a_span_tree(collector):
    env = {**os.environ, **collector.env()}
    env.pop("LLM_API_KEY", None)
    p = subprocess.run([BIN, "workflow", "run", TRIAGE, "--inputs",
                        json.dumps({"fail": True, "text": "too short"})],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr  # the "broken" node fails on purpose
    spans = collector.wait_for(
        lambda ss: any(s["name"] == "workflow triage" for s in ss)
        and sum(s["name"] == "sandbox.execute" for s in ss) >= 7, timeout=15)

    (root,) = by_name(spans, "workflow triage")
    assert root["parent_span_id"] is None and root["service_name"] == "rlmbox"
    assert root["status"]["code"] == "ERROR"
    assert root["attributes"]["rlmbox.workflow.failed_node"] == "broken"
    assert all(s["trace_id"] == root["trace_id"] for s in spans if s["name"] != "")

    (words,) = by_name(spans, "node words")
    assert words["parent_span_id"] == root["span_id"]
    assert words["attributes"]["rlmbox.node.type"] == "code"
    assert words["attributes"]["rlmbox.node.profile"] == "code"
    assert words["attributes"]["rlmbox.outcome"] == "ok"
    execs = [s for s in spans if s["name"] == "sandbox.execute"
             and s["parent_span_id"] == words["span_id"]]
    assert len(execs) == 1
    assert execs[0]["attributes"]["rlmbox.outcome"] == "ok"
    assert execs[0]["attributes"]["rlmbox.cpu_time"] > 0
    assert "rlmbox.fuel" not in execs[0]["attributes"]  # only when a fuel budget was asked for
    assert execs[0]["attributes"]["rlmbox.memory_peak_bytes"] > 0

    # The loop node runs one sandbox execution per item (+ none for a literal list).
    (lengths,) = by_name(spans, "node lengths")
    loop_execs = [s for s in spans if s["parent_span_id"] == lengths["span_id"]]
    assert len(loop_execs) == 3 and lengths["attributes"]["rlmbox.node.type"] == "loop"

    # The nested workflow hangs under its node.
    (stats,) = by_name(spans, "node stats")
    (nested,) = [s for s in spans if s["parent_span_id"] == stats["span_id"]]
    assert nested["name"].startswith("workflow")
    (total,) = by_name(spans, "node total")
    assert total["parent_span_id"] == nested["span_id"]

    (broken,) = by_name(spans, "node broken")
    assert broken["status"]["code"] == "ERROR"
    assert broken["attributes"]["rlmbox.outcome"] == "exception"
    # Skipped and not-run nodes have no spans of their own.
    assert not [s for s in spans if s["name"] in ("node summary", "node after_broken")]


def test_execution_plane_exports_node_spans(collector):
    svc = Service(env=collector.env())
    try:
        status, r = svc.post("/nodes/execute", {"type": "condition", "expression": "1 < 2"})
        assert status == 200 and r["output"] is True
        spans = collector.wait_for(lambda ss: any(s["name"] == "sandbox.execute" for s in ss),
                                   timeout=15)
    finally:
        svc.stop()
    (node,) = by_name(spans, "node condition")
    assert node["parent_span_id"] is None and node["service_name"] == "rlmbox-exec"
    assert node["attributes"]["rlmbox.node.profile"] == "condition"
    (ex,) = by_name(spans, "sandbox.execute")
    assert ex["parent_span_id"] == node["span_id"]


def test_execute_and_session_cells_export_spans(collector):
    svc = Service(env=collector.env())
    try:
        svc.post("/execute", {"code": "1 / 0"})
        sid = svc.new_session()
        svc.run(sid, "x = 1")
        spans = collector.wait_for(
            lambda ss: sum(s["name"] == "sandbox.execute" for s in ss) >= 2, timeout=15)
    finally:
        svc.stop()
    by_kind = {s["attributes"]["rlmbox.execution.kind"]: s for s in spans
               if s["name"] == "sandbox.execute"}
    stateless, session = by_kind["stateless"], by_kind["session"]
    assert stateless["parent_span_id"] is None
    assert stateless["attributes"]["rlmbox.outcome"] == "exception"
    assert stateless["status"]["code"] == "ERROR"
    assert "ZeroDivisionError" in stateless["status"]["message"]
    assert session["attributes"]["rlmbox.session_id"] == sid
    assert session["attributes"]["rlmbox.outcome"] == "ok"
    assert session["attributes"]["rlmbox.cpu_time"] > 0


def test_inference_plane_exports_a_span_per_rlm_request(collector, model):
    base, _ = model({"rules": [
        {"times": 1, "reply": "```repl\nx = 6 * 7\n```"},
        {"times": 1, "reply": "FINAL_VAR(x)"},
    ]})
    port = free_port()
    env = {**os.environ, **collector.env(), "LLM_BASE_URL": base, "LLM_API_KEY": "k",
           "LLM_MODEL": "m"}
    for k in ("WASM_SERVICE_URL", "WASM_MANAGER_SERVICE_URL"):
        env.pop(k, None)
    p = subprocess.Popen([BIN, "serve", "--port", str(port)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(port)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("POST", "/completion", body=json.dumps({"query": "q", "context": "c"}),
                  headers={"Content-Type": "application/json"})
        r = json.loads(c.getresponse().read())
        assert r["success"] and r["answer"] == "42", r
        spans = collector.wait_for(lambda ss: any(s["name"] == "rlm /completion" for s in ss),
                                   timeout=15)
    finally:
        p.terminate()
        p.wait()
    (span,) = by_name(spans, "rlm /completion")
    assert span["attributes"]["rlmbox.rlm.iterations"] == 2
    assert span["attributes"]["rlmbox.rlm.model_calls"] == 2
    assert span["attributes"]["rlmbox.rlm.model"] == "m"
    assert span["status"]["code"] != "ERROR"
