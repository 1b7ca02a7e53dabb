"""Fixtures for the serve-exec tests."""
import pytest

from service_process import Service, read_event  # noqa: F401  (re-exported for tests)


@pytest.fixture(scope="module")
def svc():
    s = Service()
    yield s
    s.stop()


@pytest.fixture
def make_service():
    started = []

    def make(**kw):
        s = Service(**kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()
