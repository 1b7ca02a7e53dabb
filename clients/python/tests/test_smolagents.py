"""rlmbox.smolagents.RlmboxExecutor against the real smolagents (pinned in
tests/python_pkg/requirements.txt): the PythonExecutor protocol, final_answer,
the agent's authorized imports as the sandbox's policy, and CodeAgent end to end
with a scripted OpenAI-compatible model."""
import os
import sys

import pytest

smolagents = pytest.importorskip("smolagents")
from smolagents import CodeAgent, OpenAIServerModel, Tool, tool  # noqa: E402
from smolagents.local_python_executor import InterpreterError  # noqa: E402

from rlmbox.smolagents import RlmboxExecutor  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "fixtures"))
from model_fixture import model  # noqa: E402,F401  (fixture)


@tool
def add(a: int, b: int) -> int:
    """Adds two numbers.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


def test_executor_protocol_state_tools_and_final_answer():
    ex = RlmboxExecutor(additional_authorized_imports=["json"])
    ex.send_tools({"add": add, "final_answer": smolagents.default_tools.FinalAnswerTool()})
    ex.send_variables({"base": 10})
    out = ex("x = add(a=base, b=1)\nprint('x is', x)")
    assert (out.logs, out.is_final_answer) == ("x is 11\n", False)
    out = ex("import json\nfinal_answer(json.dumps({'x': x}))\nprint('never')")
    assert out.is_final_answer and out.output == '{"x": 11}' and "never" not in out.logs
    with pytest.raises(InterpreterError) as e:
        ex("import os")
    assert "Import of " in str(e.value) and " is not allowed" in str(e.value)
    with pytest.raises(InterpreterError) as e:
        ex("print('before')\n1 / 0")
    assert "before" in str(e.value) and "ZeroDivisionError" in str(e.value)
    assert ex("print(x)").logs == "11\n"  # state survived the errors
    ex.cleanup()


def test_authorized_star_turns_the_policy_off_and_limits_hold():
    ex = RlmboxExecutor(additional_authorized_imports=["*"], timeout=1)
    ex.send_tools({})
    assert ex("import os\nprint(os.sep)").logs == "/\n"
    with pytest.raises(InterpreterError) as e:
        ex("while True: pass")
    assert "TimeoutError" in str(e.value)
    ex.cleanup()


def test_code_agent_end_to_end_with_a_scripted_model(model):
    url, log = model({"rules": [
        {"reply": "Thought: add, then answer.\n<code>\nr = add(a=2, b=3)\n"
                  "final_answer(r * 10)\n</code>"},
    ]})
    agent = CodeAgent(tools=[add], model=OpenAIServerModel(model_id="scripted", api_base=url,
                                                            api_key="k"),
                      executor=RlmboxExecutor(), max_steps=3)
    try:
        assert agent.run("What is (2 + 3) * 10?") == 50
    finally:
        agent.cleanup()
