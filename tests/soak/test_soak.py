"""The 60-second soak inside `make test` (`make soak` runs the 10-minute one)."""
import os
import subprocess
import sys


def test_soak_60_seconds():
    p = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "soak.py"),
                        "--seconds", "60"], capture_output=True, text=True, timeout=300)
    print(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "errors: none" in p.stdout
