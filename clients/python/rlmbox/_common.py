"""What the in-process engine and the HTTP clients share: results, errors, and the
answering of host calls by Python callables. Kept free of heavy imports (no
http.client, dataclasses or asyncio) so `import rlmbox` and the first in-process
sandbox stay quick."""
from __future__ import annotations

# No runtime import of typing: the annotations below are strings
# (`from __future__ import annotations`), and typing alone would double the
# cost of `import rlmbox`.


class RlmboxError(Exception):
    """The service refused or failed a request (never a Python error in the guest:
    that is an ExecutionResult with success=False)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class HostCallError(Exception):
    """Raise from an llm_query callable to make the guest's call fail with this message."""


class _Record:
    """A plain value type: fields by keyword, equality and repr over them."""

    __slots__ = ()
    _repr_fields = ()

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __repr__(self):
        fields = self._repr_fields or self.__slots__
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in fields)
        return f"{type(self).__name__}({inner})"


class ExecutionResult(_Record):
    """How one execution ended: the same fields in-process and over HTTP. `raw` is
    the whole result as the engine reported it."""

    __slots__ = ("success", "stdout", "stderr", "locals", "execution_time", "error", "outcome",
                 "execution_id", "fuel_used", "memory_peak_bytes", "host_calls", "final_answer",
                 "sandbox_reset", "cpu_time", "raw")
    _repr_fields = __slots__[:-1]

    def __init__(self, success: bool, stdout: str, stderr: str, locals: Dict[str, Any],
                 execution_time: float, error: Optional[str], outcome: str,
                 execution_id: str = "", fuel_used: int = 0, memory_peak_bytes: int = 0,
                 host_calls: int = 0, final_answer: Optional[str] = None,
                 sandbox_reset: bool = False, raw: Optional[Dict[str, Any]] = None,
                 cpu_time: float = 0.0):
        self.success = success
        self.stdout = stdout
        self.stderr = stderr
        self.locals = locals
        self.execution_time = execution_time
        self.error = error
        self.outcome = outcome
        self.execution_id = execution_id
        self.fuel_used = fuel_used
        self.memory_peak_bytes = memory_peak_bytes
        self.host_calls = host_calls
        self.final_answer = final_answer
        self.sandbox_reset = sandbox_reset
        self.cpu_time = cpu_time  # seconds of CPU the execution used
        self.raw = {} if raw is None else raw

    @classmethod
    def from_json(cls, j: Dict[str, Any]) -> "ExecutionResult":
        g = j.get
        return cls(g("success", False), g("stdout", ""), g("stderr", ""), g("locals", {}),
                   g("execution_time", 0.0), g("error"), g("outcome", ""), g("execution_id", ""),
                   g("fuel_used", 0), g("memory_peak_bytes", 0), g("host_calls", 0),
                   g("final_answer"), g("sandbox_reset", False), j, g("cpu_time", 0.0))

    def __str__(self) -> str:
        """What the cell printed (the seeds print results directly)."""
        return self.stdout.rstrip("\n") if self.success or self.stdout else (self.error or "")


class VarValue(_Record):
    """A session variable: its value (JSON data or a summary), str() and type name."""

    __slots__ = ("name", "value", "text", "type")

    def __init__(self, name: str, value: Any, text: str, type: str):
        self.name = name
        self.value = value
        self.text = text
        self.type = type


def _answer_call(fn_single: Optional[LlmFn], fn_batched: Optional[Callable[..., List[str]]],
                 fn_rlm: Optional[LlmFn], kind: str, args: Dict[str, Any], pool_size: int) -> Dict[str, Any]:
    """Runs the user's callable for one host_call event; returns the answer body."""
    model = args.get("model")
    kwargs: Dict[str, Any] = {} if model is None else {"model": model}
    if "context" in args:  # an agent node's call carries the node's context
        kwargs["context"] = args["context"]

    def one(fn, prompt):
        try:
            return fn(prompt, **kwargs)
        except HostCallError as e:
            return {"error": str(e)}
        except Exception as e:  # the guest sees the failure; the client keeps going
            return {"error": f"{type(e).__name__}: {e}"}

    single = fn_rlm if kind.startswith("rlm_query") and fn_rlm else fn_single
    if single is None:
        return {"error": f"this client has no handler for {kind}"}
    if kind in ("llm_query", "rlm_query"):
        r = one(single, args["prompt"])
        return r if isinstance(r, dict) else {"result": str(r)}
    prompts = args.get("prompts", [])
    if kind == "llm_query_batched" and fn_batched is not None:
        try:
            out = fn_batched(prompts, model=model) if model is not None else fn_batched(prompts)
            return {"result": [o if isinstance(o, dict) else str(o) for o in out]}
        except Exception as e:
            return {"error": f"{type(e).__name__}: {e}"}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(pool_size, len(prompts) or 1))) as ex:
        results = list(ex.map(lambda p: one(single, p), prompts))
    return {"result": [r if isinstance(r, dict) else str(r) for r in results]}
