"""The SDK's workflow-node calls: ExecClient.run_node / run_workflow (model calls
answered by Python callables), AsyncExecClient, RLMClient.run_workflow, and
sessions that follow the execution plane's advertised endpoint."""
import asyncio
import os
import subprocess

import pytest

from service_process import BIN, Service, free_port, wait_http
from rlmbox import AsyncExecClient, ExecClient, HostCallError, RLMClient
from test_serve import stack  # noqa: F401  (fixture: serve on a scripted model)
from test_complete import model  # noqa: F401


def test_run_node_without_model_calls(client):
    r = client.run_node({"type": "condition", "expression": "n > 1", "context": {"n": 2}})
    assert r["success"] and r["output"] is True
    r = client.run_node({"type": "code", "code": "import os", "allowed_imports": ["json"]})
    assert not r["success"] and "not allowed" in r["error"]


def test_llm_and_agent_nodes_answered_by_callables(client):
    seen = {}

    def llm(prompt, model=None):
        seen["llm"] = (prompt, model)
        return prompt.upper()

    def agent(prompt, model=None, context=None):
        seen["agent"] = (prompt, context)
        return f"{len(context['items'])} items"

    r = client.run_node({"type": "llm", "prompt": "hi {name}", "context": {"name": "ann"},
                         "model": "m1"}, llm_query=llm)
    assert r["success"] and r["output"] == "HI ANN" and seen["llm"] == ("hi ann", "m1")
    r = client.run_node({"type": "agent", "query": "count", "context": {"items": [1, 2]}},
                        rlm_query=agent)
    assert r["output"] == "2 items" and seen["agent"] == ("count", {"items": [1, 2]})

    def refuse(prompt, **kw):
        raise HostCallError("no budget left")

    r = client.run_node({"type": "llm", "prompt": "x"}, llm_query=refuse)
    assert not r["success"] and r["error"] == "LLMQueryError: no budget left"


def test_run_workflow_yaml_with_parallel_llm_nodes(client):
    wf = """
nodes:
  - {id: a, type: llm, prompt: "one"}
  - {id: b, type: llm, prompt: "two"}
  - {id: c, type: code, depends_on: [a, b], code: "output = a + '+' + b"}
output: c
"""
    r = client.run_workflow(wf, llm_query=lambda p, **kw: p[::-1])
    assert r["success"] and r["output"] == "eno+owt", r


def test_async_client(svc):
    async def go():
        c = AsyncExecClient(f"http://127.0.0.1:{svc.port}")
        nodes = [c.run_node({"type": "code", "code": f"output = {i} * 2"}) for i in range(4)]
        outs = await asyncio.gather(*nodes)
        wf = await c.run_workflow({"nodes": [{"id": "x", "type": "code", "code": "output = 1"}]})
        return [o["output"] for o in outs], wf["outputs"]

    assert asyncio.run(go()) == ([0, 2, 4, 6], {"x": 1})


def test_rlm_client_run_workflow(stack):  # noqa: F811
    port, _ = stack("in_process", {"rules": [{"match": "Name a colour", "reply": "teal"}]})
    r = RLMClient(f"http://127.0.0.1:{port}").run_workflow(
        {"nodes": [{"id": "c", "type": "llm", "prompt": "Name a colour"}], "output": "c"})
    assert r["success"] and r["output"] == "teal"


def test_sessions_follow_the_advertised_endpoint():
    # The instance names an address for its sessions; the session's requests use it
    # (here the same instance under another name: 'localhost' instead of 127.0.0.1).
    port = free_port()
    env = dict(os.environ, RLMBOX_ADVERTISE_URL=f"http://localhost:{port}")
    p = subprocess.Popen([BIN, "serve-exec", "--port", str(port), "--warm", "1"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(port)
        c = ExecClient(f"http://127.0.0.1:{port}")
        with c.session() as sess:
            assert sess._http.host == "localhost" and sess._http.port == port
            assert sess.execute("x = 5").success
            assert sess.execute("x * 2").stdout == "10\n"
        assert c._http.host == "127.0.0.1"
    finally:
        p.kill()
        p.wait()
