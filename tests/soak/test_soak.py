"""The 60-second soak inside `make test` (`make soak` runs the 10-minute one)."""
import glob
import os
import subprocess
import sys
import tempfile


def test_soak_60_seconds():
    leftovers = os.path.join(tempfile.gettempdir(), "rlmbox-soak-*")
    before = set(glob.glob(leftovers))
    p = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "soak.py"),
                        "--seconds", "60"], capture_output=True, text=True, timeout=300)
    print(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "errors: none" in p.stdout
    assert set(glob.glob(leftovers)) == before, "the soak left its temporary directory behind"
