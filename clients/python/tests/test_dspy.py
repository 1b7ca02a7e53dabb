"""rlmbox.dspy.RlmboxInterpreter against the real dspy (pinned in
tests/python_pkg/requirements.txt): the CodeInterpreter protocol, SUBMIT, the
error types, limits DSPy's default lacks, and dspy.RLM end to end with a
scripted OpenAI-compatible model."""
import json
import os
import sys
import threading
import time

import pytest

dspy = pytest.importorskip("dspy")
from dspy.primitives.code_interpreter import (CodeExecutionError, CodeInterpreter,  # noqa: E402
                                              CodeInterpreterError, FinalOutput)

from rlmbox.dspy import RlmboxInterpreter  # noqa: E402


def test_it_is_a_code_interpreter_with_state_across_executes():
    with RlmboxInterpreter() as interp:
        assert isinstance(interp, CodeInterpreter)
        interp.start()
        interp.start()  # idempotent
        assert interp.execute("x = 40") is None
        assert interp.execute("print(x + 2)") == "42\n"
        assert interp.execute("x * 2") == "80\n"
        assert interp.execute("print(n * 2)", variables={"n": 21}) == "42\n"
        assert interp.execute("print(len(context), context[:3])",
                              variables={"context": "abc" * 1000}) == "3000 abc\n"
    with pytest.raises(CodeInterpreterError):
        interp.execute("1")


def test_submit_plain_and_typed_stops_the_cell_at_once():
    with RlmboxInterpreter() as interp:
        r = interp.execute("SUBMIT('done')\nprint('never')")
        assert r == FinalOutput({"output": "done"})
        interp.output_fields = [{"name": "answer", "type": "str"}, {"name": "score", "type": "int"},
                                {"name": "notes"}]
        r = interp.execute("SUBMIT(answer='yes', score=3, notes=[1, {'a': None}])\nx = 1 / 0")
        assert r == FinalOutput({"answer": "yes", "score": 3, "notes": [1, {"a": None}]})
        with pytest.raises(CodeExecutionError) as e:
            interp.execute("SUBMIT(answer='only one')")
        assert "missing" in str(e.value) and "score" in str(e.value)
        with pytest.raises(CodeExecutionError) as e:
            interp.execute("SUBMIT(answer={1, 2}, score=1, notes=None)")
        assert "SUBMIT takes JSON data" in str(e.value)
        # After a SUBMIT the next execute is an ordinary cell again.
        assert interp.execute("print('again')") == "again\n"


def test_errors_map_to_dspy_types():
    with RlmboxInterpreter(timeout=1, memory_mb=32) as interp:
        with pytest.raises(SyntaxError):
            interp.execute("def broken(:")
        with pytest.raises(CodeExecutionError) as e:
            interp.execute("kept = 7\n{}['missing']")
        assert str(e.value) == "KeyError: 'missing'"
        # Limits DSPy's default interpreter lacks; the session survives them.
        t = time.monotonic()
        with pytest.raises(CodeExecutionError) as e:
            interp.execute("while True: pass")
        assert "TimeoutError" in str(e.value) and time.monotonic() - t < 5
        with pytest.raises(CodeExecutionError) as e:
            interp.execute("big = bytearray(200 << 20)")
        assert "MemoryError" in str(e.value)
        assert interp.execute("print(kept)") == "7\n"
        with pytest.raises(CodeInterpreterError):
            interp.execute("print(1)", variables={"bad": object()})


def test_tools_are_called_with_keyword_arguments_and_may_change():
    calls = []

    def search(query: str, limit: int = 2) -> list:
        calls.append((query, limit))
        return [f"{query}{i}" for i in range(limit)]

    with RlmboxInterpreter(tools={"search": search}) as interp:
        assert interp.execute("print(search(query='q', limit=3))") == "['q0', 'q1', 'q2']\n"
        interp.tools["shout"] = lambda text: text.upper()  # DSPy mutates the dict
        interp.tools["llm_query"] = lambda prompt: "model says: " + prompt
        interp.tools["llm_query_batched"] = lambda prompts: [p[::-1] for p in prompts]
        assert interp.execute("print(shout(text='hi'), llm_query('x'))") == "HI model says: x\n"
        assert interp.execute("llm_query_batched(['ab', 'cd'])") == "['ba', 'dc']\n"

        def broken(**kw):
            raise ValueError("index offline")

        interp.tools["broken"] = broken
        with pytest.raises(CodeExecutionError) as e:
            interp.execute("broken(q=1)")
        assert "index offline" in str(e.value)
    assert calls == [("q", 3)]


def test_interpreters_from_a_factory_in_parallel_are_isolated():
    results, errors = {}, []

    def run(i):
        try:
            with RlmboxInterpreter() as interp:
                interp.execute(f"mine = {i}")
                time.sleep(0.05)
                results[i] = interp.execute("SUBMIT(mine)")
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == {i: FinalOutput({"output": i}) for i in range(6)}


FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "fixtures")
sys.path.insert(0, FIXTURES)
from model_fixture import model  # noqa: E402,F401  (fixture: the scripted OpenAI-compatible server)

REPLY = "[[ ## reasoning ## ]]\n{r}\n\n[[ ## code ## ]]\n```python\n{c}\n```\n\n[[ ## completed ## ]]"


def test_dspy_rlm_end_to_end_with_a_scripted_model(model):
    """dspy.RLM's own loop: the model's code runs in rlmbox, its llm_query reaches the
    (scripted) model through DSPy's tool, and SUBMIT ends the run."""
    url, log = model({"rules": [
        {"match": "how many?", "reply": "eleven"},  # the sub-call made from the sandbox
        {"match": "LEN=11", "reply": REPLY.format(
            r="I know the length.",
            c="reply = llm_query('how many?')\nSUBMIT(answer=f'{n} chars, model said {reply}')")},
        {"reply": REPLY.format(r="Look at the context.",
                               c="n = len(context)\nprint(f'LEN={n}')")},
    ]})
    lm = dspy.LM("openai/scripted", api_base=url, api_key="k", cache=False)
    with dspy.context(lm=lm):
        rlm = dspy.RLM("context -> answer", max_iters=4, interpreter_factory=RlmboxInterpreter)
        out = rlm(context="hello world")
    assert out.answer == "11 chars, model said eleven"
    bodies = [json.loads(line)["body"] for line in open(log)]
    assert any(b["messages"][-1]["content"] == "how many?" for b in bodies)


def lookup(key: str) -> str:
    """Looks a key up in the host's table."""
    return {"alpha": "the first letter"}.get(key, "unknown")


def test_dspy_rlm_survives_a_forever_cell_and_takes_a_200_mb_context(model):
    """A cell that never ends is cut by the interpreter's timeout and the RLM goes on
    with the error in its history; a 200 MB context (DSPy's default interpreter
    crashes past 128 MB) is sent once, not once per iteration; a user tool is
    called from the sandbox; typed SUBMIT ends the run."""
    url, log = model({"rules": [
        {"match": "TimeoutError", "reply": REPLY.format(
            r="That loop was cut; measure instead.",
            c="SUBMIT(size=len(context), tail=context[-6:], note=lookup(key='alpha'))")},
        {"reply": REPLY.format(r="Spin first.", c="while True:\n    pass")},
    ]})
    context = "x" * (200 << 20) + "-END-!"
    made = []

    def factory():
        made.append(RlmboxInterpreter(timeout=2))
        return made[-1]

    lm = dspy.LM("openai/scripted", api_base=url, api_key="k", cache=False)
    t = time.monotonic()
    with dspy.context(lm=lm):
        rlm = dspy.RLM("context -> size: int, tail: str, note: str", max_iters=4,
                       tools=[lookup], interpreter_factory=factory)
        out = rlm(context=context)
    assert (out.size, out.tail, out.note) == (len(context), "-END-!", "the first letter")
    assert time.monotonic() - t < 120
    assert len(made) == 1  # the context went over once, not once per iteration:
    assert len(context) < made[0].input_bytes_sent < 2 * len(context)
    bodies = [json.loads(line)["body"] for line in open(log)]
    assert len(bodies) == 2  # spin, then measure: the RLM went on after the timeout
    assert "TimeoutError" in bodies[1]["messages"][-1]["content"]
    assert all(len(json.dumps(b)) < 1 << 20 for b in bodies)  # the model saw a preview only


def test_four_concurrent_rlm_calls_through_interpreter_factory(model):
    """dspy's own parallel batch: 4 RLM calls at once, each with its own rlmbox
    interpreter from the factory, none seeing another's state."""
    url, _ = model({"rules": [
        {"match": "LEN=", "reply": REPLY.format(
            r="Done.", c="SUBMIT(answer=f'{context.split()[0]} {n}')")},
        {"delay": 0.5, "reply": REPLY.format(r="Measure.", c="n = len(context)\nprint(f'LEN={n}')")},
    ]})
    live, peak, lock = [0], [0], threading.Lock()

    class Counted(RlmboxInterpreter):
        def __init__(self):
            super().__init__()
            with lock:
                live[0] += 1
                peak[0] = max(peak[0], live[0])

        def shutdown(self):
            if not self._ended:
                with lock:
                    live[0] -= 1
            super().shutdown()

    lm = dspy.LM("openai/scripted", api_base=url, api_key="k", cache=False)
    docs = [f"doc{i} " * (i + 1) for i in range(4)]
    with dspy.context(lm=lm):
        rlm = dspy.RLM("context -> answer", max_iters=3, interpreter_factory=Counted)
        outs = rlm.batch([dspy.Example(context=d).with_inputs("context") for d in docs],
                         num_threads=4, max_errors=0)
    assert [o.answer for o in outs] == [f"doc{i} {len(d)}" for i, d in enumerate(docs)]
    assert peak[0] == 4 and live[0] == 0  # all four at once, all shut down


from llama_fixture import MODEL_NAME, llama_server, metrics  # noqa: E402,F401  (fixture)


def test_dspy_rlm_against_llama_cpp(llama_server):
    """dspy.RLM with rlmbox against a real OpenAI-compatible server (llama.cpp with
    SmolLM2-135M): the model cannot solve the task, so this checks plumbing only —
    DSPy's requests are served, the run ends within its limits whatever the model
    writes, and any code DSPy parsed out of a reply ran in rlmbox."""
    from dspy.utils.exceptions import AdapterParseError

    ran = []

    class Recording(RlmboxInterpreter):
        def execute(self, code, variables=None):
            ran.append(code)
            return super().execute(code, variables)

    before = metrics(llama_server)
    lm = dspy.LM(f"openai/{MODEL_NAME}", api_base=llama_server, api_key="unused", cache=False,
                 max_tokens=96, temperature=0.0)
    t = time.monotonic()
    with dspy.context(lm=lm):
        rlm = dspy.RLM("context -> answer", max_iters=2, max_llm_calls=2,
                       interpreter_factory=lambda: Recording(timeout=5))
        try:
            out = rlm(context="hello world")
            assert isinstance(out.answer, str)
        except AdapterParseError:  # DSPy's own verdict on a reply it cannot parse
            pass
    assert time.monotonic() - t < 300
    after = metrics(llama_server)
    assert after["prompt_tokens_total"] > before["prompt_tokens_total"]  # DSPy's prompts served
    assert after["tokens_predicted_total"] > before["tokens_predicted_total"]
    print(f"llama: {len(ran)} code block(s) ran in rlmbox")
