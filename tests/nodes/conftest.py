"""Fixtures for the workflow-node tests: serve-exec with the test tools and a
profile config, and the scripted model."""
import json
import os
import sys

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "service"))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
from service_process import Service, read_event  # noqa: E402,F401
from model_fixture import model  # noqa: E402,F401  (fixture)

TOOLS = os.path.join(HERE, "tools")

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
