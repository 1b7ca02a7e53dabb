"""The SDK under test comes from clients/python (as `pip install ./clients/python`
would install it); the services are the real binary.

With RLMBOX_SDK_BACKEND=inprocess (tests/python_pkg runs this from a venv the
wheel was installed into), `client` is the installed package's LocalExecClient
instead: the same tests against the in-process engine; tests marked http_only
(they need a server: its routes, auth, connection errors) are skipped."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INPROCESS = os.environ.get("RLMBOX_SDK_BACKEND") == "inprocess"
if not INPROCESS:
    sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "service"))
sys.path.insert(0, os.path.join(HERE, "..", "rlm"))

import pytest  # noqa: E402

from service_process import Service  # noqa: E402
from rlmbox import ExecClient  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "http_only: needs a real server (skipped in-process)")


def pytest_collection_modifyitems(config, items):
    if INPROCESS:
        skip = pytest.mark.skip(reason="needs a server; this run is in-process")
        for item in items:
            if "http_only" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="module")
def svc():
    """A serve-exec for the module's tests (none when running in-process)."""
    if INPROCESS:
        yield None
        return
    s = Service()
    yield s
    s.stop()


@pytest.fixture
def client(svc):
    if INPROCESS:
        from rlmbox import LocalExecClient
        return LocalExecClient()
    return ExecClient(f"http://127.0.0.1:{svc.port}")
