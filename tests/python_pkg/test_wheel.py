"""`pip install rlmbox` for real: the wheel is built from this build
(scripts/build-wheel.py), installed into a fresh venv in a temporary directory
outside the source tree, and the package's API tests (clients/python/tests),
the SDK tests and the rlms environment test run there against the in-process
engine, importing the installed package only."""
import json
import os
import subprocess
import sys
import zipfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.dirname(os.path.abspath(os.environ.get("RLMBOX_BIN", os.path.join(ROOT, "build",
                                                                                   "rlmbox"))))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
sys.path.insert(0, os.path.join(HERE, "..", "rlm"))
sys.path.insert(0, os.path.join(HERE, "..", "rlms"))
from llama_fixture import has_avx2  # noqa: E402
from model_fixture import model  # noqa: E402,F401  (fixture)
from test_complete import requests_of  # noqa: E402
from test_rlms_env import RLMS_SCRIPT  # noqa: E402


def rlms_pin():
    for line in open(os.path.join(ROOT, "tests", "rlms", "requirements.txt")):
        if line.strip() and not line.startswith("#"):
            return line.strip()


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """(python, wheel): a fresh venv with the wheel, rlms and requirements.txt installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "build-wheel.py"),
                        "--build-dir", BUILD, "--out", str(tmp / "dist")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    wheels = p.stdout.split()
    assert len(wheels) >= 1 and all("manylinux" in w for w in wheels), p.stdout
    tag = "cp%d%d" % sys.version_info[:2]
    wheel = next(w for w in wheels if f"-{tag}-" in os.path.basename(w))
    env_dir = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300)
    python = str(env_dir / "bin" / "python")
    p = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        wheel, rlms_pin(), "-r", os.path.join(HERE, "requirements.txt")],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    return python, wheel


def run_pytest(python, *args, env=None):
    return subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, timeout=1200, cwd="/",
                          env={**os.environ, **(env or {})})


def test_the_wheel_holds_the_engine_the_binary_and_the_guest(venv):
    _, wheel = venv
    names = zipfile.ZipFile(wheel).namelist()
    assert "rlmbox/_bin/rlmbox" in names and "rlmbox/_guest/guest.wasm" in names
    assert "rlmbox/_guest/lib/python313.zip" in names
    assert any(n.startswith("rlmbox/_native.") and n.endswith(".so") for n in names)
    assert any(n.startswith("rlmbox.libs/") for n in names)  # vendored by auditwheel
    assert not any(n.endswith(".cwasm") for n in names)  # compiled on the user's machine
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    entries = zipfile.ZipFile(wheel).read(entry).decode()
    assert "rlmbox = rlmbox._cli:main" in entries and "rlmbox-mcp = rlmbox.mcp:main" in entries


def test_package_api_tests_in_the_venv(venv):
    python, _ = venv
    p = run_pytest(python, os.path.join(ROOT, "clients", "python", "tests"))
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-2000:]
    # The frameworks are installed here: their adapter tests must run, not skip (only the
    # llama.cpp ones may, where the CPU lacks the AVX2 the prebuilt server needs).
    assert " passed" in p.stdout and "failed" not in p.stdout
    assert "skipped" not in p.stdout or not has_avx2(), p.stdout[-3000:]


def test_sdk_tests_against_the_in_process_engine(venv):
    python, _ = venv
    sdk = os.path.join(ROOT, "tests", "python_sdk")
    p = run_pytest(python, os.path.join(sdk, "test_sdk.py"),
                   os.path.join(sdk, "test_rlms_repl_behaviours.py"),
                   env={"RLMBOX_SDK_BACKEND": "inprocess"})
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-2000:]
    assert "failed" not in p.stdout


def test_rlms_runs_its_code_in_the_in_process_engine(venv, model):
    python, _ = venv
    url, log = model(RLMS_SCRIPT)
    p = subprocess.run([python, os.path.join(ROOT, "tests", "rlms", "run_rlms.py"), "inprocess",
                        url, "what a long context"], capture_output=True, text=True, timeout=300,
                       cwd="/")
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads(p.stdout.strip().splitlines()[-1])["response"] == "length 19"
    sub = [q for q in requests_of(log) if "count the characters" in q["body"]["messages"][-1]["content"]]
    assert len(sub) == 1
