"""RLMClient against `rlmbox serve` with the scripted model."""
from rlmbox import RLMClient, RlmboxError

from test_serve import call, stack  # noqa: F401  (fixtures: a serve on a scripted model)
from test_complete import model  # noqa: F401

import pytest


def test_completion_and_infer(stack):
    port, _ = stack("in_process", {"rules": [
        {"match": "Query: add", "reply": "```repl\nanswer['content'] = str(2 + 3)\nanswer['ready'] = True\n```"},
    ]})
    c = RLMClient(f"http://127.0.0.1:{port}")
    r = c.completion(context="numbers", query="add 2 and 3")
    assert r.success and r.answer == "5" and r.iterations == 1
    r = c.infer(query="add again", context="x", model="other", max_depth=2)
    assert r.answer == "5" and r.model == "other" and r.max_depth == 2
    with pytest.raises(RlmboxError) as e:
        c.completion(context="x", query="")
    assert e.value.status == 400
