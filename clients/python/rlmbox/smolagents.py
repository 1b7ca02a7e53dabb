"""rlmbox as smolagents' code executor (smolagents 1.26):

    from smolagents import CodeAgent
    from rlmbox.smolagents import RlmboxExecutor

    agent = CodeAgent(tools=[...], model=model, additional_authorized_imports=["json"],
                      executor=RlmboxExecutor(additional_authorized_imports=["json"]))

The agent's code runs in one in-process rlmbox session (state kept between
steps). The authorized imports — smolagents' base modules plus the additional
ones, as the agent computes them — become the sandbox's `allowed_imports`,
enforced inside the interpreter ("*" turns the policy off). Tools run on the host
with JSON arguments and results; `final_answer(...)` stops the step at once and
marks the output as the final answer.
"""
from __future__ import annotations

from smolagents.local_python_executor import CodeOutput, InterpreterError, PythonExecutor
from smolagents.utils import BASE_BUILTIN_MODULES

from ._inprocess import Session

__all__ = ["RlmboxExecutor"]

_FINAL_TOOL = "smolagents_final_answer"
_FINAL_SOURCE = (
    "class _FinalAnswer(BaseException):\n"
    "    pass\n"
    "def final_answer(answer):\n"
    "    \"\"\"Provides a final answer to the given problem.\"\"\"\n"
    f"    {_FINAL_TOOL}(answer)\n"
    "    raise _FinalAnswer()\n")
_NOTHING = object()


class RlmboxExecutor(PythonExecutor):
    """A smolagents PythonExecutor backed by an rlmbox sandbox session.

    additional_authorized_imports: as for CodeAgent (base modules are added);
    timeout: seconds per step (default 30); memory_mb (default 256);
    max_print_outputs_length: characters of printed output kept per step.
    """

    def __init__(self, additional_authorized_imports=None, timeout: float = 30.0,
                 memory_mb: int = 256, max_print_outputs_length: int = 50_000):
        extra = list(additional_authorized_imports or [])
        self.authorized_imports = (None if "*" in extra
                                   else sorted(set(BASE_BUILTIN_MODULES) | set(extra)))
        self.max_print_outputs_length = max_print_outputs_length
        self._session = Session(timeout=timeout, memory_mb=memory_mb, profile="default",
                                allowed_imports=self.authorized_imports)
        self._final = _NOTHING
        self._final_tool = None
        self._tools = {}
        self._defined = False

    def send_tools(self, tools) -> None:
        host = {}
        for name, tool in tools.items():
            if name == "final_answer":
                self._final_tool = tool
                continue
            host[name] = tool
        host[_FINAL_TOOL] = self._record_final
        self._session.set_tools(host)
        if not self._defined:
            r = self._session.execute(_FINAL_SOURCE)
            if not r.success:
                raise InterpreterError(f"defining final_answer failed: {r.error}")
            self._defined = True

    def send_variables(self, variables) -> None:
        if not variables:
            return
        try:
            r = self._session.execute("pass", variables=dict(variables))
        except (TypeError, ValueError) as e:
            raise InterpreterError(f"the agent's state cannot enter the sandbox: {e}") from e
        if not r.success:
            raise InterpreterError(r.error or r.outcome)

    def _record_final(self, answer):
        self._final = self._final_tool(answer) if self._final_tool is not None else answer
        return None

    def __call__(self, code_action: str) -> CodeOutput:
        if not self._defined:
            self.send_tools({})
        self._final = _NOTHING
        r = self._session.execute(code_action)
        logs = r.stdout[-self.max_print_outputs_length:]
        if self._final is not _NOTHING:
            return CodeOutput(output=self._final, logs=logs, is_final_answer=True)
        if r.outcome == "ok":
            return CodeOutput(output=None, logs=logs, is_final_answer=False)
        error = r.error or r.outcome
        if error.startswith("PolicyViolation") or "not allowed" in error:
            error = f"Import of a module is not allowed here: {error}"
        raise InterpreterError(f"{logs}{error}" if logs else error)

    def cleanup(self) -> None:
        self._session.close()
