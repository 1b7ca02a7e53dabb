"""Python client for rlmbox (https://... see docs/python.md).

ExecClient / AsyncExecClient talk to the execution plane (`rlmbox serve-exec`);
RLMClient talks to the inference plane (`rlmbox serve`); rlmbox.remote offers the
interfaces of the original rlm-minimal sidecar/WASM documents.
"""
from .client import (ExecClient, ExecutionResult, HostCallError, RLMClient, RLMResult,
                     RlmboxError, Session, VarValue)
from .aio import AsyncExecClient, AsyncSession

__all__ = ["ExecClient", "AsyncExecClient", "Session", "AsyncSession", "ExecutionResult",
           "VarValue", "RLMClient", "RLMResult", "RlmboxError", "HostCallError"]
