"""deploy/docker: hadolint (from PyPI) and our own rules (dockerfile_rules.py)
over the Dockerfile, each shown able to fail; the image's healthcheck script
against a real serve-exec."""
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from dockerfile_rules import check, makefile_targets

DOCKERFILE = os.path.join(ROOT, "deploy", "docker", "Dockerfile")
HADOLINT_CONFIG = os.path.join(ROOT, "deploy", "docker", ".hadolint.yaml")
HEALTHCHECK = os.path.join(ROOT, "deploy", "docker", "healthcheck.sh")


def read(path):
    with open(path) as f:
        return f.read()


def targets():
    return makefile_targets(read(os.path.join(ROOT, "Makefile")))


def hadolint(tools, path):
    return tools.run(tools.hadolint, "--no-color", "-c", HADOLINT_CONFIG, path)


def test_hadolint_passes(tools):
    p = hadolint(tools, DOCKERFILE)
    assert p.returncode == 0, p.stdout + p.stderr


def test_our_rules_pass():
    assert check(read(DOCKERFILE), targets()) == []


def test_build_stage_uses_the_make_target_the_tests_use():
    text = read(DOCKERFILE)
    assert re.search(r"^\s*make build\b", text, re.M)
    assert "build" in targets() and "test" in targets()


MUTATIONS = [
    ("FROM debian:12.11-slim AS runtime", "FROM debian:latest AS runtime", "not pinned"),
    ("USER 65532:65532", "USER root", "numeric non-root"),
    ("    make build \\\n", "    make everything \\\n", "no such Makefile target"),
    ("apt-get install -y --no-install-recommends \\\n      libcpp-httplib0.11",
     "apt-get install -y \\\n      libcpp-httplib0.11", "--no-install-recommends"),
    ("COPY --from=build /opt/rlmbox /opt/rlmbox",
     "COPY --from=build /opt/rlmbox /opt/rlmbox\nADD https://example.com/x.tar.gz /tmp/", "ADD of a URL"),
    ("libabsl20220623 ca-certificates", "libabsl20220623 ca-certificates build-essential",
     "build tools"),
    ("HEALTHCHECK --interval", "# HEALTHCHECK --interval", "HEALTHCHECK"),
]


@pytest.mark.parametrize("old,new,expected", MUTATIONS, ids=[m[2] for m in MUTATIONS])
def test_our_rules_can_fail(old, new, expected):
    text = read(DOCKERFILE)
    assert old in text
    problems = check(text.replace(old, new, 1), targets())
    assert any(expected in p for p in problems), problems


def test_hadolint_can_fail(tools, tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text(read(DOCKERFILE).replace("USER 65532:65532", "USER root")
                   .replace("--no-install-recommends \\\n      libcpp", "\\\n      libcpp"))
    p = hadolint(tools, str(bad))
    assert p.returncode != 0
    assert "DL3002" in p.stdout and "DL3015" in p.stdout, p.stdout


def test_dockerignore_keeps_build_trees_out():
    ignore = read(os.path.join(ROOT, "deploy", "docker", "Dockerfile.dockerignore")).split()
    for entry in ("build", "build-*", ".git", "**/node_modules"):
        assert entry in ignore


def test_healthcheck_script_probes_both_routes_with_the_token():
    """The script the image's HEALTHCHECK and the exec probes run, against a real
    serve-exec that requires a token: /health without it, /ready with it."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "service"))
    from service_process import Service

    svc = Service(env={"RLMBOX_TOKEN": "s3cret"})
    try:
        port = str(svc.port)
        env = {k: v for k, v in os.environ.items() if k != "RLMBOX_TOKEN"}

        def probe(*args, token=None):
            e = dict(env, RLMBOX_TOKEN=token) if token else env
            return subprocess.run([HEALTHCHECK, *args], env=e, timeout=10).returncode

        deadline = time.time() + 30
        while probe("--path", "/ready", port, token="s3cret") != 0 and time.time() < deadline:
            time.sleep(0.2)
        assert probe("--path", "/ready", port, token="s3cret") == 0
        assert probe("--path", "/health", port) == 0
        assert probe(port) == 0  # default path /health
        assert probe("--path", "/ready", port) == 1  # 401 without the token
        assert probe("--path", "/ready", port, token="wrong") == 1
        assert probe("--path", "/nope", port, token="s3cret") == 1
        assert probe("--path", "/health", "1") == 1  # nothing listens there
    finally:
        svc.stop()
