"""rlmbox: LLM-written Python in a WebAssembly sandbox (see docs/python.md).

In-process (the wheel's engine, no server): Sandbox, Session, AsyncSandbox,
AsyncSession, LocalExecClient, configure(). Over HTTP: ExecClient /
AsyncExecClient talk to the execution plane (`rlmbox serve-exec`), RLMClient to
the inference plane (`rlmbox serve`); rlmbox.remote offers the interfaces of the
original rlm-minimal sidecar/WASM documents. Both return the same results, so
code moves between them by changing one constructor.

Names are imported on first use (PEP 562), so `import rlmbox` costs next to
nothing and the in-process API never loads the HTTP client's modules.
"""
from ._common import ExecutionResult, HostCallError, RlmboxError, VarValue

__version__ = "0.1.0"

_LAZY = {
    "Sandbox": "._inprocess", "Session": "._inprocess", "AsyncSandbox": "._inprocess",
    "AsyncSession": "._inprocess", "LocalExecClient": "._inprocess",
    "configure": "._inprocess", "engine_info": "._inprocess",
    "ExecClient": ".client", "RLMClient": ".client", "RLMResult": ".client", "Snapshot": ".client",
    "AsyncExecClient": ".aio",
}
_RENAMED = {"RemoteSession": (".client", "Session"), "AsyncRemoteSession": (".aio", "AsyncSession")}

__all__ = ["Sandbox", "Session", "AsyncSandbox", "AsyncSession", "LocalExecClient",
           "configure", "engine_info", "ExecClient", "AsyncExecClient", "RemoteSession",
           "AsyncRemoteSession", "ExecutionResult", "VarValue", "RLMClient", "RLMResult",
           "RlmboxError", "HostCallError", "Snapshot"]


def __getattr__(name):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _RENAMED:
        module, attr = _RENAMED[name]
        value = getattr(importlib.import_module(module, __name__), attr)
    else:
        raise AttributeError(f"module 'rlmbox' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
