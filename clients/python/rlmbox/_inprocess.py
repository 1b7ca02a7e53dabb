"""The engine in-process: Sandbox, Session and their asyncio twins.

No server: the wheel's extension module (rlmbox._native) runs the guest on
wasmtime inside this process, with the GIL released while code runs. Results
are the same ExecutionResult the HTTP clients return. Host callbacks
(llm_query, llm_query_batched, rlm_query and named tools) are plain Python
callables; each call runs in its own thread and is cut at the execution's
deadline.

    import rlmbox
    r = rlmbox.Sandbox(timeout=5, memory_mb=64).execute("print(1 + 1)")
    with rlmbox.Session(context=text, llm_query=ask, tools={"search": search}) as s:
        s.execute("hits = search(query='x')")

Give `remote="http://host:port"` to run the same calls on an execution plane
(`rlmbox serve-exec`) instead; tools need the in-process engine.
"""
from __future__ import annotations

import atexit
import copy
import contextvars
import json
import os
import threading

from collections.abc import Mapping

from ._common import ExecutionResult, HostCallError, RlmboxError, VarValue, _answer_call


def ExecClient(*args, **kwargs):  # noqa: N802 - the HTTP client, imported when first used
    from .client import ExecClient as client

    return client(*args, **kwargs)


async def _to_thread(fn, *args):
    import asyncio

    return await asyncio.to_thread(fn, *args)

__all__ = ["Sandbox", "Session", "AsyncSandbox", "AsyncSession", "LocalExecClient", "configure",
           "engine_info"]

_lock = threading.Lock()
_native = None  # the extension module, loaded on first use
_configured: Dict[str, Any] = {}
_HERE = os.path.dirname(os.path.abspath(__file__))


def _default_guest_dir() -> str:
    bundled = os.path.join(_HERE, "_guest")
    if os.path.exists(os.path.join(bundled, "guest.wasm")):
        return bundled
    return os.environ.get("RLMBOX_GUEST_DIR", bundled)


def _default_cache_dir() -> str:
    # The same places the rlmbox binary uses (src/cli/runtime_paths.h).
    if os.environ.get("RLMBOX_MODULE_CACHE"):
        return os.environ["RLMBOX_MODULE_CACHE"]
    if os.environ.get("RLMBOX_CACHE"):
        return os.path.join(os.environ["RLMBOX_CACHE"], "modules")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rlmbox", "modules")


def configure(guest_dir: Optional[str] = None, cache_dir: Optional[str] = None,
              warm_sandboxes: int = 2, max_sandboxes: int = 256, memory_budget_mb: int = 0,
              quiet: bool = False) -> None:
    """Settings for the in-process engine; call before the first sandbox.

    guest_dir: the guest image (default: the one in the wheel); cache_dir: where
    the machine-specific compiled guest is kept (default ~/.cache/rlmbox/modules);
    warm_sandboxes: fresh sandboxes kept ready; max_sandboxes: the most alive at
    once (sessions count); memory_budget_mb: linear memory all sandboxes together
    may hold (0: only each execution's own limit); quiet: no first-use message.
    """
    global _native
    if not 0 <= warm_sandboxes <= 64 or not 1 <= max_sandboxes <= 10000 or memory_budget_mb < 0:
        raise ValueError("warm_sandboxes must be in [0, 64], max_sandboxes in [1, 10000]")
    with _lock:
        native = _load()
        native.configure(guest_dir or _default_guest_dir(), cache_dir or _default_cache_dir(),
                         int(warm_sandboxes), int(max_sandboxes), int(memory_budget_mb),
                         bool(quiet))
        _configured["done"] = True


def _load():
    global _native
    if _native is None:
        try:
            from . import _native as native  # type: ignore[attr-defined]
        except ImportError as e:
            raise ImportError(
                "rlmbox's in-process engine is not in this install (the extension module "
                "rlmbox._native is missing): install the wheel (`make wheel`, then "
                "`pip install dist/rlmbox-*.whl`), or use ExecClient against a server") from e
        _native = native
        atexit.register(_shutdown)
    return _native


def _runtime():
    """The extension module, configured (with defaults unless configure() ran)."""
    with _lock:
        native = _load()
        if not _configured:
            native.configure(_default_guest_dir(), _default_cache_dir(), 2, 256, 0, False)
            _configured["done"] = True
        return native


def _shutdown() -> None:
    if _native is not None:
        _native.shutdown()


def engine_info() -> Dict[str, Any]:
    """The in-process engine: wasmtime version, guest hash, whether the compiled
    guest came from the cache, its load time, a fresh sandbox's memory."""
    return dict(_runtime().info())


# ---------------------------------------------------------------- limits and callbacks


def _limits_request(profile, timeout, memory_mb, fuel, max_output_bytes, cpu_time=None,
                    extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    limits: Dict[str, Any] = dict(extra or {})
    for k, v in (("memory_mb", memory_mb), ("fuel", fuel), ("max_output_bytes", max_output_bytes),
                 ("cpu_time", cpu_time)):
        if v is not None:
            limits[k] = v
    body: Dict[str, Any] = {"profile": profile or "default"}
    if timeout is not None:
        body["timeout"] = timeout
    if limits:
        body["limits"] = limits
    return body


def _resolve(body: Dict[str, Any]):
    try:
        text = json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"limits must be numbers: {e}") from None
    return _runtime().resolve_limits(text)


def _check_tools(tools: Optional[Mapping[str, Callable[..., Any]]]) -> Dict[str, Callable[..., Any]]:
    out: Dict[str, Callable[..., Any]] = {}
    for name, fn in (tools or {}).items():
        if not isinstance(name, str) or not callable(fn):
            raise TypeError("tools must map names (str) to callables")
        out[name] = fn
    return out


def _call_tool(fn: Optional[Callable[..., Any]], args: Dict[str, Any]) -> Dict[str, Any]:
    name = args.get("name")
    if fn is None:
        return {"error": f"no tool named {name!r}"}
    try:
        value = fn(*args.get("args", []), **args.get("kwargs", {}))
    except HostCallError as e:
        return {"error": str(e)}
    except Exception as e:  # the guest sees the failure as ToolError; the host keeps going
        return {"error": f"{type(e).__name__}: {e}"}
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        return {"error": f"tool {name!r} returned a value that is not JSON data ({e})"}
    return {"result": value}


def _with_deadline(work: Callable[[], Dict[str, Any]], seconds: float, what: str) -> Dict[str, Any]:
    """Runs `work` in its own thread and waits at most `seconds` for it: a callback
    that hangs costs a thread, never the execution's deadline."""
    box: List[Dict[str, Any]] = []
    # The callback sees the caller's context variables (dspy.context, tracing, ...)
    # although it runs in a thread of its own.
    ctx = contextvars.copy_context()

    def run():
        try:
            box.append(ctx.run(work))
        except BaseException as e:  # noqa: BLE001 - reported to the guest
            box.append({"error": f"{type(e).__name__}: {e}"})

    t = threading.Thread(target=run, name=f"rlmbox-{what}", daemon=True)
    t.start()
    t.join(max(0.0, seconds))
    if not box:
        return {"error": f"{what} did not return before the execution's deadline"}
    return box[0]


class _Callbacks:
    """What answers one sandbox's host calls."""

    def __init__(self, llm_query, llm_query_batched, rlm_query, tools, batch_parallelism):
        if batch_parallelism < 1:
            raise ValueError("batch_parallelism must be at least 1")
        self.explicit = (llm_query, llm_query_batched, rlm_query)
        self.parallelism = batch_parallelism
        self.set_tools(tools)

    def set_tools(self, tools) -> None:
        """Tools by name; a tool named llm_query, llm_query_batched or rlm_query answers
        those calls unless a callback was given for them (DSPy hands its own over so)."""
        tools = _check_tools(tools)
        llm, batched, rlm = self.explicit
        self.llm = llm if llm is not None else tools.pop("llm_query", None)
        self.llm_batched = batched if batched is not None else tools.pop("llm_query_batched", None)
        self.rlm = rlm if rlm is not None else tools.pop("rlm_query", None)
        self.tools = tools

    @property
    def any_model(self) -> bool:
        return self.llm is not None or self.llm_batched is not None or self.rlm is not None

    @property
    def handler(self):
        """What the native layer calls back (None: nothing to answer with)."""
        return self.dispatch if self.any_model or self.tools else None

    def dispatch(self, kind: str, args_json: str, seconds_left: float) -> str:
        args = json.loads(args_json)
        if kind == "tool":
            fn = self.tools.get(args.get("name"))
            reply = _with_deadline(lambda: _call_tool(fn, args), seconds_left,
                                   f"tool {args.get('name')!r}")
        elif not self.any_model:
            reply = {"error": f"{kind} is not available: no llm_query callback was given"}
        else:
            reply = _with_deadline(
                lambda: _answer_call(self.llm, self.llm_batched, self.rlm, kind, args,
                                     self.parallelism), seconds_left, kind)
        try:
            return json.dumps(reply, allow_nan=False)
        except (TypeError, ValueError) as e:
            return json.dumps({"error": f"{kind}: the callback's answer is not JSON data ({e})"})


def _context_arg(context: Any):
    """(text, is_json) for the native layer."""
    if context is None:
        return None, False
    if isinstance(context, str):
        return context, False
    try:
        return json.dumps(context, allow_nan=False), True
    except (TypeError, ValueError) as e:
        raise ValueError(f"context must be a str or JSON data: {e}") from None


def _imports_arg(allowed_imports: Optional[Iterable[str]]) -> Optional[List[str]]:
    if allowed_imports is None:
        return None
    if isinstance(allowed_imports, str):
        raise TypeError("allowed_imports must be a list of module names")
    return [str(m) for m in allowed_imports]


def _settings(profile, timeout, memory_mb, fuel, max_output_bytes, allowed_imports, llm_query,
              llm_query_batched, rlm_query, tools, batch_parallelism, cpu_time=None):
    """(callbacks, allowed imports, limits request) from a constructor's arguments."""
    return (_Callbacks(llm_query, llm_query_batched, rlm_query, tools, batch_parallelism),
            _imports_arg(allowed_imports),
            _limits_request(profile, timeout, memory_mb, fuel, max_output_bytes, cpu_time))


def _vars_arg(variables) -> Optional[bytes]:
    """Variables bound before a cell, as JSON text for the native layer."""
    if variables is None:
        return None
    if not isinstance(variables, Mapping) or not all(isinstance(k, str) for k in variables):
        raise TypeError("variables must be a dict with str keys")
    try:
        text = json.dumps(dict(variables), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"variables must be JSON data: {e}") from None
    try:  # UTF-8 as it is (not \\uXXXX escapes, six times the size of non-ASCII text)
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"variables must be Unicode text without lone surrogates: {e}") from None


def _result(text: str) -> ExecutionResult:
    return ExecutionResult.from_json(json.loads(text))


# ---------------------------------------------------------------- the API


class Sandbox:
    """Runs code in a fresh sandbox per execute(): nothing survives between calls.

    Limits (the HTTP API's names and ceilings): timeout (wall seconds), cpu_time
    (CPU seconds; default as much as the timeout), memory_mb, fuel (a deterministic
    budget), max_output_bytes, on top of `profile` (default "default": 256 MB, 30 s).
    allowed_imports: the modules code may import (None: no import policy).
    Callbacks: llm_query(prompt, model=None) -> str, llm_query_batched(prompts,
    model=None) -> [str] (default: llm_query on each prompt, in parallel),
    rlm_query(prompt, model=None) -> str, tools {name: callable} reachable from
    the code as functions with JSON arguments and a JSON result.
    remote: the URL of an execution plane to run on instead of in-process.
    """

    def __init__(self, timeout: Optional[float] = None, memory_mb: Optional[int] = None,
                 fuel: Optional[int] = None, max_output_bytes: Optional[int] = None,
                 profile: Optional[str] = None, allowed_imports: Optional[Iterable[str]] = None,
                 llm_query=None, llm_query_batched=None, rlm_query=None,
                 tools: Optional[Mapping[str, Callable[..., Any]]] = None,
                 batch_parallelism: int = 8, remote: Optional[str] = None,
                 token: Optional[str] = None, cpu_time: Optional[float] = None):
        self._callbacks, self._imports, self._request = _settings(
            profile, timeout, memory_mb, fuel, max_output_bytes, allowed_imports, llm_query,
            llm_query_batched, rlm_query, tools, batch_parallelism, cpu_time)
        self._remote = ExecClient(remote, token, batch_parallelism=batch_parallelism) if remote else None
        if self._remote is not None:
            if self._callbacks.tools or self._imports is not None:
                raise ValueError("tools and allowed_imports need the in-process engine "
                                 "(an execution plane takes allowed_imports from its profiles)")
            self._limits = None
        else:
            self._limits = _resolve(self._request)

    @property
    def limits(self) -> Dict[str, Any]:
        """The limits each execution gets, after the profile and the ceilings."""
        if self._limits is None:
            return dict(self._request)
        lim = self._limits
        return {"timeout": lim.timeout, "cpu_time": lim.cpu_time, "memory_mb": lim.memory_mb,
                "fuel": lim.fuel,
                "max_output_bytes": lim.max_output_bytes}

    def execute(self, code: str, context: Any = None,
                variables: Optional[Mapping[str, Any]] = None) -> ExecutionResult:
        """Runs `code` in a fresh sandbox, with `context` bound and `variables` (JSON
        data by name) defined first, if given."""
        if self._remote is not None:
            if variables is not None:
                raise ValueError("variables= needs the in-process engine")
            return self._execute_remote(code, context)
        text, is_json = _context_arg(context)
        cb = self._callbacks
        return _result(_runtime().execute(code, text, is_json, self._limits, cb.handler,
                                          list(cb.tools), self._imports, _vars_arg(variables)))

    def _execute_remote(self, code: str, context: Any) -> ExecutionResult:
        req = self._request
        if not self._callbacks.any_model:
            return self._remote.execute(code, context=context, timeout=req.get("timeout"),
                                        profile=req.get("profile"), limits=req.get("limits"))
        cb = self._callbacks  # callbacks travel over a session's execute stream
        with self._remote.session(context=context, profile=req.get("profile"),
                                  llm_query=cb.llm, llm_query_batched=cb.llm_batched,
                                  rlm_query=cb.rlm) as s:
            return s.execute(code, timeout=req.get("timeout"), limits=req.get("limits"))


class Session:
    """A sandbox whose namespace persists across execute() calls; `context` is bound
    once. Arguments as for Sandbox, but the default profile is "rlm" (512 MB, 30 s),
    as for the HTTP API's sessions. Use as a context manager, or call close()."""

    def __init__(self, context: Any = None, timeout: Optional[float] = None,
                 memory_mb: Optional[int] = None, fuel: Optional[int] = None,
                 max_output_bytes: Optional[int] = None, profile: Optional[str] = None,
                 allowed_imports: Optional[Iterable[str]] = None, llm_query=None,
                 llm_query_batched=None, rlm_query=None,
                 tools: Optional[Mapping[str, Callable[..., Any]]] = None,
                 batch_parallelism: int = 8, remote: Optional[str] = None,
                 token: Optional[str] = None, cpu_time: Optional[float] = None):
        # Sessions default to the "rlm" profile, as POST /session does.
        self._callbacks, self._imports, self._request = _settings(
            profile or "rlm", timeout, memory_mb, fuel, max_output_bytes, allowed_imports,
            llm_query, llm_query_batched, rlm_query, tools, batch_parallelism, cpu_time)
        self._remote = None
        self._native = None
        if remote:
            if self._callbacks.tools or self._imports is not None:
                raise ValueError("tools and allowed_imports need the in-process engine")
            cb = self._callbacks
            client = ExecClient(remote, token, batch_parallelism=batch_parallelism)
            self._remote = client.session(context=context, profile=self._request["profile"],
                                          llm_query=cb.llm, llm_query_batched=cb.llm_batched,
                                          rlm_query=cb.rlm)
            self.session_id = self._remote.session_id
            return
        self._limits = _resolve(self._request)
        self._native = _runtime().Session(fuel=self._limits.fuel > 0)
        self.session_id = f"local-{id(self):x}"
        if context is not None:
            self.set_context(context)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter teardown
            pass

    @property
    def closed(self) -> bool:
        if self._remote is not None:
            return self._remote.closed
        return self._native is None or self._native.closed

    def _limits_for(self, timeout, limits):
        if timeout is None and not limits:
            return self._limits
        body = dict(self._request)
        if timeout is not None:
            body["timeout"] = timeout
        if limits:
            body["limits"] = {**body.get("limits", {}), **limits}
        return _resolve(body)

    def execute(self, code: str, timeout: Optional[float] = None,
                limits: Optional[Dict[str, Any]] = None,
                variables: Optional[Mapping[str, Any]] = None) -> ExecutionResult:
        """Runs one cell; `timeout`/`limits` override the session's for this cell;
        `variables` (JSON data by name) are defined before it runs."""
        if self._remote is not None:
            if variables is not None:
                raise ValueError("variables= needs the in-process engine")
            return self._remote.execute(code, timeout=timeout,
                                        limits={**self._request.get("limits", {}), **(limits or {})}
                                        or None)
        cb = self._callbacks
        return _result(self._handle().execute(code, self._limits_for(timeout, limits), cb.handler,
                                              list(cb.tools), self._imports, _vars_arg(variables)))


    def set_tools(self, tools: Optional[Mapping[str, Callable[..., Any]]]) -> None:
        """Replaces the host tools from the next cell on (names checked then)."""
        if self._remote is not None and tools:
            raise ValueError("tools need the in-process engine")
        self._callbacks.set_tools(tools)

    def set_context(self, context: Any) -> None:
        """Binds `context` (a str, or JSON data) for the rest of the session."""
        if self._remote is not None:
            return self._remote.set_context(context)
        text, is_json = _context_arg(context)
        if text is None:
            raise ValueError("context must not be None")
        self._handle().set_context(text, is_json, self._limits)

    def get_var(self, name: str) -> VarValue:
        """A variable's value (JSON data, or a summary) and str(). KeyError if undefined."""
        if self._remote is not None:
            return self._remote.get_var(name)
        text = self._handle().get_var(name, self._limits)
        if text is None:
            raise KeyError(name)
        j = json.loads(text)
        return VarValue(name=name, value=j.get("value"), text=j.get("text", ""),
                        type=j.get("type", ""))

    def memory_bytes(self) -> int:
        """Linear memory the session's sandbox holds."""
        if self._remote is not None:
            raise NotImplementedError("memory_bytes() is for in-process sessions")
        return self._handle().memory_bytes()

    def snapshot(self):
        """The session's state between cells: sealed bytes (in-process; they restore
        in this process, whose engine holds the key) or, for a remote session, a
        Snapshot kept by the service. Refused while a cell runs."""
        if self._remote is not None:
            return self._remote.snapshot()
        return self._handle().snapshot()

    def fork(self, n: int) -> List["Session"]:
        """`n` new sessions with this one's state and settings, each with its own
        randomness; they share nothing with it or each other afterwards."""
        if self._remote is not None:
            return [self._adopt(remote=child) for child in self._remote.fork(n)]
        return [self._adopt(native=child) for child in self._handle().fork(n)]

    @classmethod
    def restore(cls, snapshot, remote: Optional[str] = None, token: Optional[str] = None,
                **settings: Any) -> "Session":
        """A session from Session.snapshot()'s result; `settings` as for Session()
        (callbacks, tools, limits for later cells; the snapshot's context is kept)."""
        if settings.get("context") is not None:
            raise ValueError("a restored session keeps the snapshot's context")
        settings.pop("context", None)
        shell = cls.__new__(cls)
        shell._callbacks, shell._imports, shell._request = _settings(
            settings.get("profile") or "rlm", settings.get("timeout"), settings.get("memory_mb"),
            settings.get("fuel"), settings.get("max_output_bytes"), settings.get("allowed_imports"),
            settings.get("llm_query"), settings.get("llm_query_batched"), settings.get("rlm_query"),
            settings.get("tools"), settings.get("batch_parallelism", 8), settings.get("cpu_time"))
        shell._remote = None
        shell._native = None
        if remote or not isinstance(snapshot, (bytes, bytearray)):
            if not remote:
                raise ValueError("a service's Snapshot restores with remote=URL")
            cb = shell._callbacks
            client = ExecClient(remote, token)
            shell._remote = client.restore(snapshot, llm_query=cb.llm,
                                           llm_query_batched=cb.llm_batched, rlm_query=cb.rlm)
            shell.session_id = shell._remote.session_id
            return shell
        shell._limits = _resolve(shell._request)
        shell._native = _runtime().Session.restore(bytes(snapshot))
        shell.session_id = f"local-{id(shell):x}"
        return shell

    def _adopt(self, native=None, remote=None) -> "Session":
        child = type(self).__new__(type(self))
        # Its own callbacks object, so set_tools() on one does not change the other.
        child._callbacks = copy.copy(self._callbacks)
        child._imports, child._request = self._imports, self._request
        child._remote, child._native = remote, native
        if remote is not None:
            child.session_id = remote.session_id
        else:
            child._limits = self._limits
            child.session_id = f"local-{id(child):x}"
        return child

    def close(self) -> None:
        if self._remote is not None:
            self._remote.close()
            return
        native, self._native = self._native, None
        if native is not None:
            native.close()

    def _handle(self):
        if self._native is None:
            raise RlmboxError(409, "session_closed", "the session is closed")
        return self._native


class AsyncSandbox:
    """Sandbox for asyncio: execute() is awaitable and runs in a worker thread, so
    many executions proceed at once (the GIL is released while code runs)."""

    def __init__(self, *args, **kwargs):
        self._s = Sandbox(*args, **kwargs)

    @property
    def limits(self) -> Dict[str, Any]:
        return self._s.limits

    async def execute(self, code: str, context: Any = None) -> ExecutionResult:
        return await _to_thread(self._s.execute, code, context)


class AsyncSession:
    """Session for asyncio; `async with rlmbox.AsyncSession(...) as s`."""

    def __init__(self, *args, **kwargs):
        self._s = Session(*args, **kwargs)
        self.session_id = self._s.session_id

    async def __aenter__(self) -> "AsyncSession":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def execute(self, code: str, timeout: Optional[float] = None,
                      limits: Optional[Dict[str, Any]] = None) -> ExecutionResult:
        return await _to_thread(self._s.execute, code, timeout, limits)

    async def set_context(self, context: Any) -> None:
        await _to_thread(self._s.set_context, context)

    async def get_var(self, name: str) -> VarValue:
        return await _to_thread(self._s.get_var, name)

    async def close(self) -> None:
        await _to_thread(self._s.close)


class LocalExecClient:
    """ExecClient's interface on the in-process engine: code written against
    `ExecClient(url)` runs in-process with `LocalExecClient()` instead. Refusals
    raise RlmboxError with the status the HTTP API would give."""

    def __init__(self, batch_parallelism: int = 8, **_ignored: Any):
        self.batch_parallelism = batch_parallelism

    def health(self) -> Dict[str, Any]:
        return {"status": "healthy"}

    def ready(self) -> bool:
        return True

    def execute(self, code: str, context: Any = None, timeout: Optional[float] = None,
                profile: Optional[str] = None, limits: Optional[Dict[str, Any]] = None
                ) -> ExecutionResult:
        with _http_errors():
            s = Sandbox(timeout=timeout, profile=profile, batch_parallelism=self.batch_parallelism,
                        **_limit_kwargs(limits))
            return s.execute(code, context=context)

    def session(self, context: Any = None, profile: Optional[str] = None,
                ttl: Optional[float] = None, llm_query=None, llm_query_batched=None,
                rlm_query=None, tools=None) -> "Session":
        with _http_errors():
            return _LocalSession(context=context, profile=profile, llm_query=llm_query,
                                 llm_query_batched=llm_query_batched, rlm_query=rlm_query,
                                 tools=tools, batch_parallelism=self.batch_parallelism)


class _LocalSession(Session):
    def execute(self, code, timeout=None, limits=None):
        with _http_errors():
            return super().execute(code, timeout, limits)

    def get_var(self, name):
        try:
            return super().get_var(name)
        except KeyError:
            raise RlmboxError(404, "not_found", f"no variable {name!r}") from None


def _limit_kwargs(limits: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in (limits or {}).items():
        if k not in ("memory_mb", "fuel", "max_output_bytes", "cpu_time"):
            raise RlmboxError(400, "invalid_argument", f"unknown limit '{k}'")
        out[k] = v
    return out


class _http_errors:
    """ValueError (a refused request) as RlmboxError 400, like the HTTP API."""

    def __enter__(self):
        return self

    def __exit__(self, typ, value, tb):
        if typ is not None and issubclass(typ, ValueError):
            raise RlmboxError(400, "invalid_argument", str(value)) from value
        return False
