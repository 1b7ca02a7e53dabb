"""Fixtures for the workflow-node tests: serve-exec with the test tools and a
profile config, and the scripted model."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "service"))
from service_process import Service, free_port, read_event  # noqa: E402,F401

TOOLS = os.path.join(HERE, "tools")
MODEL_SERVER = os.path.join(HERE, "..", "fixtures", "scripted_model.py")

# Shorter time limits for the profiles whose defaults (10 s, 30 s, 60 s per
# iteration) would make the tests slow; the others keep the seed's defaults.
PROFILES = {
    "profiles": {
        "code": {"timeout": 1.5},
        "loop": {"timeout": 1},
        "agent": {"timeout": 2},
        "tool": {"allowed_imports": ["math", "json"]},
        "strict": {"memory_mb": 32, "timeout": 5, "allowed_imports": ["math", "json"]},
    }
}


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    config = tmp_path_factory.mktemp("profiles") / "profiles.yaml"
    config.write_text(json.dumps(PROFILES))
    s = Service(args=["--tools-dir", TOOLS, "--profiles", str(config)])
    yield s
    s.stop()


@pytest.fixture
def model(tmp_path):
    """Starts a scripted model; returns a function(script) -> (base_url, log_path)."""
    procs = []

    def start(script):
        port = free_port()
        path = tmp_path / f"script-{port}.json"
        path.write_text(json.dumps(script))
        log = tmp_path / f"requests-{port}.jsonl"
        p = subprocess.Popen([sys.executable, MODEL_SERVER, "--port", str(port),
                              "--script", str(path), "--log", str(log)])
        procs.append(p)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        return f"http://127.0.0.1:{port}/v1", log

    yield start
    for p in procs:
        p.kill()
        p.wait()
