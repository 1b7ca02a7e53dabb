"""rlmbox as DSPy's code interpreter (the `CodeInterpreter` protocol of dspy 3.4).

    import dspy
    from rlmbox.dspy import RlmboxInterpreter

    rlm = dspy.RLM("context, query -> answer", interpreter_factory=RlmboxInterpreter)
    # or: dspy.configure(interpreter_factory=lambda: RlmboxInterpreter(timeout=10))

Each interpreter is one in-process rlmbox Session (state kept across execute()
calls until shutdown()). `tools` is the mutable dict DSPy fills (llm_query and
llm_query_batched among them); every tool is a host function the guest calls
with JSON arguments. `output_fields` gives SUBMIT its typed signature; SUBMIT
stops the cell at once and execute() returns dspy's FinalOutput. Unlike DSPy's
default interpreter (Deno + Pyodide), each execute() has a timeout and a memory
cap, enforced by the engine, with clear errors.

Errors: SyntaxError for invalid code; CodeExecutionError for an exception in the
code or a tool, and for a limit it hit (the session keeps its state);
CodeInterpreterError when the interpreter cannot go on (set-up failed, the
sandbox had to be stopped hard and its state is gone, or after shutdown()).
"""
from __future__ import annotations

import keyword
import threading

from dspy.primitives.code_interpreter import CodeExecutionError, CodeInterpreterError, FinalOutput

from ._inprocess import Session

__all__ = ["RlmboxInterpreter"]

_SUBMIT_TOOL = "dspy_submit"  # the host tool SUBMIT hands its values to
_SYNTAX_ERRORS = ("SyntaxError:", "IndentationError:", "TabError:")
_TYPES = {"str", "int", "float", "bool", "list", "dict", "NoneType"}


class RlmboxInterpreter:
    """A DSPy CodeInterpreter backed by an rlmbox sandbox session.

    timeout: seconds per execute() (default 30); memory_mb: memory the code may
    allocate (default 256); max_output_bytes, profile, allowed_imports as for
    rlmbox.Session.
    """

    def __init__(self, tools=None, output_fields=None, timeout: float = 30.0,
                 memory_mb: int = 256, max_output_bytes=None, profile=None,
                 allowed_imports=None):
        self.tools = dict(tools) if tools else {}
        self.output_fields = output_fields
        self._options = {"timeout": timeout, "memory_mb": memory_mb,
                         "max_output_bytes": max_output_bytes, "profile": profile or "default",
                         "allowed_imports": allowed_imports}
        self._session = None
        self._ended = False
        self._lock = threading.Lock()
        self._final = None
        self._submit_defined = None  # the SUBMIT source now in the session

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self._ended:
            raise CodeInterpreterError("this interpreter was shut down; create a new one")
        if self._session is None:
            try:
                self._session = Session(**self._options)
            except (ValueError, TypeError, ImportError, RuntimeError) as e:
                raise CodeInterpreterError(f"rlmbox could not start a sandbox: {e}") from e

    def shutdown(self) -> None:
        self._ended = True
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.shutdown()

    def __call__(self, code: str, variables=None):
        return self.execute(code, variables)

    # -- execution ---------------------------------------------------------------------
    def execute(self, code: str, variables=None):
        with self._lock:
            self.start()
            session = self._session
            self._final = None
            try:
                session.set_tools({**self.tools, _SUBMIT_TOOL: self._record_submit})
            except (TypeError, ValueError) as e:
                raise CodeInterpreterError(f"bad tools: {e}") from e
            self._define_submit(session)
            try:
                r = session.execute(code, variables=dict(variables) if variables else None)
            except (TypeError, ValueError) as e:
                raise CodeInterpreterError(f"cannot pass the variables: {e}") from e
            return self._outcome(r)

    def _record_submit(self, values):
        self._final = values
        return None

    def _outcome(self, r):
        if self._final is not None:
            return FinalOutput(self._final)
        if r.sandbox_reset or r.outcome == "crashed":
            self.shutdown()
            raise CodeInterpreterError(
                f"{r.error or r.outcome}: the sandbox was stopped and its state is lost")
        if r.outcome == "ok":
            return r.stdout or None
        if r.outcome == "exception" and (r.error or "").startswith(_SYNTAX_ERRORS):
            raise SyntaxError(f"Invalid Python syntax. message: {r.error}")
        if r.outcome == "output_truncated":
            raise CodeExecutionError(f"OutputLimitExceeded: the output passed the limit; it began:\n"
                                     f"{r.stdout[:2000]}")
        # exception, timeout, memory_exceeded, fuel_exhausted: the code can be fixed.
        raise CodeExecutionError(r.error or r.outcome)

    def _submit_source(self) -> str:
        fields = self.output_fields or [{"name": "output"}]
        params, items = [], []
        for f in fields:
            name = f.get("name") if isinstance(f, dict) else None
            if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
                raise CodeInterpreterError(f"bad output field: {f!r}")
            kind = f.get("type")
            ann = "type(None)" if kind == "NoneType" else kind if kind in _TYPES else None
            params.append(f"{name}: {ann}" if ann else name)
            items.append(f"{name!r}: {name}")
        return (
            "class _DSPyFinalOutput(BaseException):\n"
            "    pass\n"
            f"def SUBMIT({', '.join(params)}):\n"
            f"    \"\"\"Submit the final output: {', '.join(p.split(':')[0] for p in params)}.\"\"\"\n"
            "    try:\n"
            f"        {_SUBMIT_TOOL}({{{', '.join(items)}}})\n"
            "    except TypeError as e:\n"
            "        raise TypeError('SUBMIT takes JSON data (str, int, float, bool, None, '\n"
            "                        'lists and dicts of them)') from None\n"
            "    raise _DSPyFinalOutput()\n")

    def _define_submit(self, session) -> None:
        source = self._submit_source()
        if source == self._submit_defined:
            return
        r = session.execute(source)
        if not r.success:
            raise CodeInterpreterError(f"defining SUBMIT failed: {r.error}")
        self._submit_defined = source
