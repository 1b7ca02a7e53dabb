"""The behaviours the official rlms library's LocalREPL tests expect (ported as
behaviours, not code), checked against an rlmbox session. Deliberate differences are
asserted as such and listed in docs/integrations.md."""
import pytest

# `client` (conftest.py): a session-capable client on a real serve-exec, or the
# in-process engine with RLMBOX_SDK_BACKEND=inprocess.


def test_simple_execution_and_print(client):
    with client.session() as s:
        r = s.execute("x = 1 + 2")
        assert r.stderr == "" and r.locals["x"] == 3
        assert "Hello, World!" in s.execute("print('Hello, World!')").stdout


def test_errors_and_syntax_errors_go_to_stderr(client):
    with client.session() as s:
        assert "ZeroDivisionError" in s.execute("1 / 0").stderr
        assert "SyntaxError" in s.execute("def broken(").stderr


def test_persistence_of_variables_functions_and_comprehensions(client):
    with client.session() as s:
        assert s.execute("x = 42").locals["x"] == 42
        assert s.execute("y = x + 8").locals["y"] == 50
        assert "50" in s.execute("print(y)").stdout
        s.execute("def add(a, b):\n    return a + b")
        assert s.execute("z = add(2, 3)").locals["z"] == 5
        assert s.execute("sq = [i * i for i in range(5)]").locals["sq"] == [0, 1, 4, 9, 16]


def test_builtins_and_imports(client):
    with client.session() as s:
        r = s.execute("x = len([1, 2, 3])\ny = sum([1, 2, 3, 4])\nz = sorted([3, 1, 2])")
        assert (r.locals["x"], r.locals["y"], r.locals["z"]) == (3, 10, [1, 2, 3])
        r = s.execute("import math\nx = math.pi")
        assert r.stderr == "" and abs(r.locals["x"] - 3.14159) < 0.001


def test_answer_dict(client):
    with client.session() as s:
        assert s.get_var("answer").value == {"content": "", "ready": False}
        assert s.execute('answer["content"] = "still working"').final_answer is None
        r = s.execute('answer["content"] = "the result"\nanswer["ready"] = True')
        assert r.final_answer == "the result"
    with client.session() as s:
        assert s.execute('answer = {"content": "rebound", "ready": True}').final_answer == "rebound"
    with client.session() as s:
        s.execute('answer = {"content": "intermediate", "ready": False}')
        assert s.execute('answer["content"] = "done"; answer["ready"] = True').final_answer == "done"


@pytest.mark.parametrize("payload, check", [
    ("This is the context data.", "context == 'This is the context data.'"),
    ({"key": "value", "number": 42}, "context['key'] == 'value' and context['number'] == 42"),
    ([1, 2, 3, "four"], "context == [1, 2, 3, 'four']"),
])
def test_context_kinds(client, payload, check):
    with client.session(context=payload) as s:
        assert s.execute(check).stdout == "True\n"


def test_scaffold_restored_after_overwrite(client):
    with client.session(context="original context content") as s:
        s.execute('context = "hijacked"')
        assert "original context content" in s.execute("print(context)").stdout
        s.execute("llm_query = lambda x: 'hijacked'")
        r = s.execute("r = llm_query('test')")
        # rlms: the real llm_query returns "Error: No LM handler configured".
        # rlmbox (deliberate): the real llm_query raises LLMQueryError without a model.
        assert r.outcome == "exception" and "LLMQueryError" in r.error


def test_separate_sessions_are_fresh(client):
    with client.session() as s:
        s.execute("x = 1\ndef f(): return 1")
    with client.session() as s:
        assert s.execute("'x' in globals(), 'f' in globals()").stdout == "(False, False)\n"
