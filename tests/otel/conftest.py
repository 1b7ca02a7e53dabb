"""Fixtures for the tracing tests: a real OpenTelemetry Collector (tests/fixtures/
otel_collector.py, built once by scripts/otelcol.sh) and the spans it received."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from otel_collector import OtelCollector, describe, otelcol_binary, post_json  # noqa: E402,F401

BIN = os.environ.get("RLMBOX_BIN", "build/rlmbox")


@pytest.fixture(scope="session")
def otelcol_bin():
    """The collector binary; builds it on a fresh machine (a failed build fails the test)."""
    return otelcol_binary()


@pytest.fixture
def collector(otelcol_bin):
    """A fresh collector per test: put collector.env() (OTEL_EXPORTER_OTLP_ENDPOINT) in
    the environment of the process under test, then read collector.spans() /
    collector.wait_for(...)."""
    with OtelCollector(binary=otelcol_bin) as c:
        yield c
