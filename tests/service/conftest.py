"""Fixtures for the serve-exec tests."""
import pytest

from service_process import Service, make_service, read_event  # noqa: F401  (fixtures, helpers)


@pytest.fixture(scope="module")
def svc():
    s = Service()
    yield s
    s.stop()
