"""The SDK under test comes from clients/python (as `pip install ./clients/python`
would install it); the services are the real binary."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "service"))
sys.path.insert(0, os.path.join(HERE, "..", "rlm"))

import pytest  # noqa: E402

from service_process import Service  # noqa: E402
from rlmbox import ExecClient  # noqa: E402


@pytest.fixture(scope="module")
def svc():
    """A serve-exec for the module's tests."""
    s = Service()
    yield s
    s.stop()


@pytest.fixture
def client(svc):
    return ExecClient(f"http://127.0.0.1:{svc.port}")
