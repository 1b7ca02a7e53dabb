"""POST /workflows/run on the inference plane (`rlmbox serve`), in each
architecture: the nodes run on the REPL backend (in-process, or the execution
plane's /workflows/run), and their llm and agent nodes are answered here, where
the key is — the execution plane never sees it."""
import json

import pytest

from test_complete import model, requests_of  # noqa: F401  (fixture)
from test_serve import call, stack  # noqa: F401  (fixture)

WORKFLOW = {
    "name": "report",
    "inputs": {"items": [3, 4, 5]},
    "nodes": [
        {"id": "facts", "type": "code", "code": "output = {'n': len(items), 'total': sum(items)}"},
        {"id": "big", "type": "condition", "depends_on": ["facts"], "expression": "facts['n'] > 2"},
        {"id": "headline", "type": "llm", "when": "big", "depends_on": ["facts"],
         "prompt": "Write a headline about {facts[n]} items"},
        {"id": "analyst", "type": "agent", "depends_on": ["facts"], "query": "How many items?"},
        {"id": "small", "type": "code", "unless": "big", "code": "output = 'small'"},
    ],
}

SCRIPT = {"rules": [
    {"match": "Write a headline", "reply": "Three items today"},
    {"match": "How many items", "reply": "```repl\nn_items = len(context['items'])\n```\nFINAL_VAR(n_items)"},
], "default": "FINAL(unexpected)"}


@pytest.mark.parametrize("mode", ["in_process", "sidecar", "remote"])
def test_workflow_with_llm_and_agent_nodes(stack, mode):  # noqa: F811
    port, log = stack(mode, SCRIPT)
    status, r = call(port, "POST", "/workflows/run", {"workflow": WORKFLOW})
    assert status == 200, r
    assert r["success"], json.dumps(r, indent=1)
    assert r["outputs"]["facts"] == {"n": 3, "total": 12}
    assert r["outputs"]["headline"] == "Three items today"
    assert r["outputs"]["analyst"] == "3"
    assert r["nodes"]["small"]["status"] == "skipped"
    reqs = requests_of(log)
    assert reqs and all(q["headers"].get("Authorization") == "Bearer inference-only-key"
                        for q in reqs)
    assert any("Write a headline about 3 items" in q["body"]["messages"][-1]["content"]
               for q in reqs)


def test_workflow_errors_on_the_inference_plane(stack):  # noqa: F811
    port, _ = stack("remote", SCRIPT)
    status, r = call(port, "POST", "/workflows/run", {"workflow": {"nodes": []}})
    assert status == 400 and "non-empty list" in r["error"]
    status, r = call(port, "POST", "/workflows/run", {"workflow": "nodes: [", "inputs": {}})
    assert status == 400
    bad = {"nodes": [{"id": "x", "type": "code", "code": "1/0"},
                     {"id": "y", "type": "llm", "depends_on": ["x"], "prompt": "never"}]}
    status, r = call(port, "POST", "/workflows/run", {"workflow": bad})
    assert status == 200 and r["failed_node"] == "x" and r["nodes"]["y"]["status"] == "not_run"
    assert r["error"] == "node 'x' failed: ZeroDivisionError: division by zero"
