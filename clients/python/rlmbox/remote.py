"""The interfaces of the original rlm-minimal documents (seeds 002 and 003), so their
examples run against rlmbox with only the import line changed:

    from rlmbox.remote import create_sidecar_repl_factory   # was: from rlm.remote import ...
    from rlmbox.remote import WASMREPLEnv                   # was: from rlm.repl_wasm import ...

The sidecar URL comes from WASM_MANAGER_SERVICE_URL (default http://localhost:8080);
WASMREPLEnv and RemoteREPLEnv use WASM_SERVICE_URL (default http://localhost:8000).
"""
from __future__ import annotations

import os
from typing import Optional

from .aio import AsyncExecClient, AsyncSession
from .client import ExecutionResult, LlmFn


def _sidecar_url() -> str:
    return os.environ.get("WASM_MANAGER_SERVICE_URL", "http://localhost:8080")


def _service_url() -> str:
    return os.environ.get("WASM_SERVICE_URL", "http://localhost:8000")


class SidecarREPLFactory:
    """Creates sessions on the sidecar and runs code in them (seed 003)."""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None,
                 llm_query: Optional[LlmFn] = None):
        self.url = url or _sidecar_url()
        self._client = AsyncExecClient(self.url, token)
        self._llm = llm_query
        self._sessions = {}

    async def create_session(self) -> str:
        s = await self._client.session(llm_query=self._llm)
        self._sessions[s.session_id] = s
        return s.session_id

    async def execute_in_session(self, session_id: str, code: str) -> ExecutionResult:
        s = self._sessions.get(session_id)
        if s is None:
            raise KeyError(f"unknown session {session_id}")
        return await s.execute(code)

    async def delete_session(self, session_id: str) -> None:
        s = self._sessions.pop(session_id, None)
        if s is not None:
            await s.close()

    def create_repl_env(self, **kwargs) -> "SidecarREPLEnv":
        return SidecarREPLEnv(url=self.url, **kwargs)


def create_sidecar_repl_factory(url: Optional[str] = None, token: Optional[str] = None,
                                llm_query: Optional[LlmFn] = None) -> SidecarREPLFactory:
    return SidecarREPLFactory(url, token, llm_query)


class RemoteREPLEnv:
    """One REPL session on an execution plane: code_execution(code), cleanup()."""

    default_url = staticmethod(_service_url)

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None,
                 context=None, llm_query: Optional[LlmFn] = None, timeout: float = 30.0):
        self.url = url or self.default_url()
        self._client = AsyncExecClient(self.url, token)
        self._context = context
        self._llm = llm_query
        self.timeout = timeout
        self._session: Optional[AsyncSession] = None

    async def initialize(self) -> None:
        if self._session is None:
            self._session = await self._client.session(context=self._context, llm_query=self._llm)

    async def code_execution(self, code: str) -> ExecutionResult:
        await self.initialize()
        return await self._session.execute(code, timeout=self.timeout)

    async def cleanup(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class SidecarREPLEnv(RemoteREPLEnv):
    default_url = staticmethod(_sidecar_url)


class WASMREPLEnv(RemoteREPLEnv):
    """Seed 002's WASMREPLEnv(max_depth, timeout) with initialize/code_execution/cleanup."""

    def __init__(self, max_depth: int = 3, timeout: float = 30.0, url: Optional[str] = None,
                 **kwargs):
        super().__init__(url=url, timeout=timeout, **kwargs)
        self.max_depth = max_depth
