"""rlmbox: LLM-written Python in a WebAssembly sandbox (see docs/python.md).

In-process (the wheel's engine, no server): Sandbox, Session, AsyncSandbox,
AsyncSession, LocalExecClient, configure(). Over HTTP: ExecClient /
AsyncExecClient talk to the execution plane (`rlmbox serve-exec`), RLMClient to
the inference plane (`rlmbox serve`); rlmbox.remote offers the interfaces of the
original rlm-minimal sidecar/WASM documents. Both return the same results, so
code moves between them by changing one constructor.
"""
from .client import (ExecClient, ExecutionResult, HostCallError, RLMClient, RLMResult,
                     RlmboxError, Session as RemoteSession, VarValue)
from .aio import AsyncExecClient, AsyncSession as AsyncRemoteSession
from ._inprocess import (AsyncSandbox, AsyncSession, LocalExecClient, Sandbox, Session,
                         configure, engine_info)

__version__ = "0.1.0"

__all__ = ["Sandbox", "Session", "AsyncSandbox", "AsyncSession", "LocalExecClient",
           "configure", "engine_info", "ExecClient", "AsyncExecClient", "RemoteSession",
           "AsyncRemoteSession", "ExecutionResult", "VarValue", "RLMClient", "RLMResult",
           "RlmboxError", "HostCallError"]
