"""The package's own API tests. They run against the *installed* rlmbox (the
wheel in a fresh venv: tests/python_pkg drives this), never the source tree."""
import os

import pytest

import rlmbox

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(os.path.dirname(os.path.abspath(rlmbox.__file__))) == os.path.dirname(HERE):
    raise pytest.UsageError("these tests need the installed wheel, not clients/python on sys.path")
