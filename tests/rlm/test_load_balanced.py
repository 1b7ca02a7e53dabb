"""The remote architecture behind a load balancer: two execution-plane instances
behind a round-robin proxy (a Kubernetes Service over two pods). Sessions live in
one instance's memory; with RLMBOX_ADVERTISE_URL each instance names itself when
it creates a session, and the inference plane sends the session's later requests
there. Without it, a later cell can land on the other instance."""
import os
import subprocess
import sys

import pytest

from test_complete import BIN, free_port, model  # noqa: F401  (fixture)
from test_serve import call

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "service"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from service_process import wait_http  # noqa: E402
from round_robin_proxy import RoundRobinProxy  # noqa: E402

# Three iterations whose cells depend on each other's variables.
SCRIPT = {"rules": [
    {"times": 1, "reply": "```repl\nx = 40\n```"},
    {"times": 1, "reply": "```repl\nx += 1\n```"},
    {"times": 1, "reply": "```repl\ny = x + 1\n```\nFINAL_VAR(y)"},
], "default": "FINAL(out of script)"}


@pytest.fixture
def cluster(model):  # noqa: F811
    procs, proxies = [], []

    def start(advertise):
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "WASM_"))}
        ports = []
        for _ in range(2):
            port = free_port()
            env = dict(base_env)
            if advertise:
                env["RLMBOX_ADVERTISE_URL"] = f"http://127.0.0.1:{port}"
            procs.append(subprocess.Popen([BIN, "serve-exec", "--port", str(port), "--warm", "1"],
                                          env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            wait_http(port)
            ports.append(port)
        proxy = RoundRobinProxy([("127.0.0.1", p) for p in ports])
        proxies.append(proxy)
        url, _ = model(SCRIPT)
        port = free_port()
        procs.append(subprocess.Popen(
            [BIN, "serve", "--port", str(port)],
            env=dict(base_env, LLM_BASE_URL=url, LLM_API_KEY="k", LLM_MODEL="m",
                     WASM_SERVICE_URL=f"http://127.0.0.1:{proxy.port}"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(port)
        return port, proxy

    yield start
    for p in procs:
        p.kill()
        p.wait()
    for proxy in proxies:
        proxy.close()


def test_sessions_stick_to_their_instance_with_an_advertised_url(cluster):
    port, proxy = cluster(advertise=True)
    status, r = call(port, "POST", "/completion", {"query": "count", "context": "-"})
    assert status == 200 and r["success"], r
    assert r["answer"] == "42" and r["iterations"] == 3
    assert proxy.connections >= 1  # the session was created through the balancer


def test_without_it_a_cell_lands_on_the_wrong_instance(cluster):
    port, proxy = cluster(advertise=False)
    status, r = call(port, "POST", "/completion", {"query": "count", "context": "-"})
    assert status == 200 and not r["success"], r
    assert "no such session" in r["error"] or "not found" in r["error"].lower(), r
    # The run stops and says why: its REPL state is gone.
    assert r["error"].startswith("the REPL session was lost ("), r
    assert proxy.connections >= 2
