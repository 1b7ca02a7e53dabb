"""`rlmbox run` as a user runs it: a real child process, real sandbox."""
import json
import os
import subprocess

import pytest

BIN = os.environ.get("RLMBOX_BIN", "build/rlmbox")


def rlmbox(*args, stdin=None, timeout=60):
    return subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def test_code_flag_prints_stdout():
    p = rlmbox("run", "-c", "print(1+1)")
    assert p.returncode == 0
    assert p.stdout == "2\n"


def test_script_file(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import math\nprint(math.factorial(10))\n")
    p = rlmbox("run", str(script))
    assert (p.returncode, p.stdout) == (0, "3628800\n")


def test_code_on_stdin_echoes_last_expression():
    p = rlmbox("run", stdin="x = 6 * 7\nx\n")
    assert (p.returncode, p.stdout) == (0, "42\n")


def test_json_result_has_every_field():
    p = rlmbox("run", "--json", "-c", "y = [1, 2]\nprint('out')")
    assert p.returncode == 0
    r = json.loads(p.stdout)
    for field in ("success", "stdout", "stderr", "locals", "execution_time", "error",
                  "outcome", "cpu_time", "memory_peak_bytes"):
        assert field in r, field
    assert r["success"] is True and r["outcome"] == "ok"
    assert r["stdout"] == "out\n"
    assert r["locals"] == {"y": [1, 2]}
    assert r["cpu_time"] > 0 and r["memory_peak_bytes"] > 0
    assert "fuel_used" not in r  # fuel is an opt-in budget (--fuel)


def test_exception_goes_to_stderr_with_exit_code_1():
    p = rlmbox("run", "-c", "print('a')\nraise ValueError('boom')")
    assert p.returncode == 1
    assert p.stdout == "a\n"
    assert "ValueError: boom" in p.stderr
    assert "Traceback" in p.stderr


@pytest.mark.parametrize("args, code, outcome, exit_code", [
    (["--timeout", "0.3"], "while True: pass", "timeout", 3),
    (["--fuel", "20000000"], "while True: pass", "fuel_exhausted", 4),
    (["--cpu-time", "0.3"], "while True: pass", "cpu_exceeded", 8),
    (["--cpu-time", "0.3"], "x = 7 ** (10 ** 9)", "cpu_exceeded", 8),  # C code, no bytecode
    (["--memory-mb", "32"], "b = bytearray(1 << 30)", "memory_exceeded", 5),
    (["--max-output-bytes", "100"], "print('x' * 1000)", "output_truncated", 6),
])
def test_limits_flags_and_exit_codes(args, code, outcome, exit_code):
    p = rlmbox("run", "--json", *args, "-c", code)
    r = json.loads(p.stdout)
    assert r["outcome"] == outcome
    assert p.returncode == exit_code
    if outcome == "output_truncated":
        assert len(r["stdout"]) <= 100


def test_context_file(tmp_path):
    ctx = tmp_path / "ctx.txt"
    ctx.write_text("alpha beta gamma")
    p = rlmbox("run", "--context-file", str(ctx), "-c", "len(context.split())")
    assert p.stdout == "3\n"
    j = tmp_path / "ctx.json"
    j.write_text('{"k": [1, 2, 3]}')
    p = rlmbox("run", "--context-file", str(j), "--context-json", "-c", "sum(context['k'])")
    assert p.stdout == "6\n"


def test_bad_usage_is_a_clear_error():
    p = rlmbox("run", "-c", "   ")
    assert p.returncode == 2
    assert "Code is required" in p.stderr
    p = rlmbox("run", "--timeout", "-1", "-c", "1")
    assert p.returncode == 2
    assert "--timeout" in p.stderr
    p = rlmbox("run", "/no/such/file.py")
    assert p.returncode == 2
    assert "cannot read" in p.stderr
    p = rlmbox("frobnicate")
    assert p.returncode == 2


def test_llm_query_without_a_model_says_so():
    p = rlmbox("run", "-c", "llm_query('hi')")
    assert p.returncode == 1
    assert "not available" in p.stderr
