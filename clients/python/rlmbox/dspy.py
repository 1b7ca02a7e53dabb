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

Input variables: DSPy passes the RLM's inputs to every execute(). A value sent
once (the same str/int/float/bool/None object) is re-bound from the copy the
sandbox keeps instead of being sent again, so a 200 MB context costs one copy,
not one per iteration; re-binding keeps DSPy's rule that each execute() starts
from the inputs as given. memory_mb is what the code may allocate on top of its
inputs: the sandbox's cap is memory_mb plus three times the inputs' JSON size
(their text in transit and their value), at most the engine's 3 GiB ceiling.

Errors: SyntaxError for invalid code; CodeExecutionError for an exception in the
code or a tool, and for a limit it hit (the session keeps its state);
CodeInterpreterError when the interpreter cannot go on (set-up failed, the
sandbox had to be stopped hard and its state is gone, or after shutdown()).
"""
from __future__ import annotations

import json
import keyword
import math
import sys
import threading

from dspy.primitives.code_interpreter import CodeExecutionError, CodeInterpreterError, FinalOutput

from ._inprocess import Session

__all__ = ["RlmboxInterpreter"]

_SUBMIT_TOOL = "dspy_submit"  # the host tool SUBMIT hands its values to
_SYNTAX_ERRORS = ("SyntaxError:", "IndentationError:", "TabError:")
_TYPES = {"str", "int", "float", "bool", "list", "dict", "NoneType"}
_INPUTS = "_rlmbox_dspy_inputs"  # the sandbox's copy of the inputs, by name
_IMMUTABLE = (str, int, float, bool, type(None))
_CEILING_MB = 3072  # the engine's memory ceiling


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
        self._sent = {}  # input name -> (the value sent, its JSON size in bytes)
        self.input_bytes_sent = 0  # the inputs' size sent into the sandbox (not re-bound ones)

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
        self._sent = {}
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
            self._bind_inputs(session, dict(variables) if variables else {})
            r = session.execute(code, limits=self._memory_limit())
            return self._outcome(r)

    def _memory_limit(self, extra_bytes: int = 0):
        inputs = sum(size for _, size in self._sent.values()) + extra_bytes
        if not inputs:
            return None
        mb = self._options["memory_mb"] + math.ceil(3 * inputs / (1 << 20))
        return {"memory_mb": min(mb, _CEILING_MB)}

    def _bind_inputs(self, session, variables) -> None:
        """Defines the inputs before the cell: new values are sent, values already sent
        are re-bound from the sandbox's copy (a cell of its own, so the code's line
        numbers and errors stay its own)."""
        if not variables and not self._sent:
            return
        for name in variables:
            if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
                raise CodeInterpreterError(f"bad variable name: {name!r}")
        fresh, sizes = {}, {}
        lines = ["try:", f"    {_INPUTS}", "except NameError:", f"    {_INPUTS} = {{}}"]
        for name, value in variables.items():
            sent = self._sent.get(name)
            if sent is not None and sent[0] is value and isinstance(value, _IMMUTABLE):
                lines.append(f"{name} = {_INPUTS}[{name!r}]")
                continue
            try:
                sizes[name] = (sys.getsizeof(value) if isinstance(value, str) else
                               len(json.dumps(value, ensure_ascii=False, allow_nan=False)))
            except (TypeError, ValueError) as e:
                raise CodeInterpreterError(f"cannot pass the variable {name!r}: it must be JSON "
                                           f"data ({e})") from None
            fresh[name] = value
            lines.append(f"{_INPUTS}[{name!r}] = {name}")
        timeout = self._options["timeout"] + sum(sizes.values()) / (10 << 20)  # >= 10 MB/s
        try:
            r = session.execute("\n".join(lines), timeout=timeout, variables=fresh or None,
                                limits=self._memory_limit(sum(sizes.values())))
        except (TypeError, ValueError) as e:
            raise CodeInterpreterError(f"cannot pass the variables: {e}") from e
        if r.outcome != "ok":
            if r.sandbox_reset or r.outcome == "crashed":
                self.shutdown()
                raise CodeInterpreterError(f"passing the variables stopped the sandbox: "
                                           f"{r.error or r.outcome}")
            if any(n not in fresh for n in variables) and self._sent:
                self._sent = {}  # the code removed the sandbox's copy: send everything again
                return self._bind_inputs(session, variables)
            raise CodeExecutionError(f"passing the variables failed: {r.error or r.outcome}")
        for name, value in fresh.items():
            self._sent[name] = (value, sizes[name])
        self.input_bytes_sent += sum(sizes.values())

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
        # exception, timeout, cpu_exceeded, memory_exceeded, fuel_exhausted: the code can be fixed.
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
