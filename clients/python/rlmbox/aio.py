"""The asyncio client: the same API as ExecClient, awaitable. Each call runs the
blocking client in a worker thread (asyncio.to_thread), so many calls proceed
concurrently without an HTTP library beyond the standard one."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

from .client import ExecClient, ExecutionResult, LlmFn, Session, Snapshot, VarValue


class AsyncSession:
    def __init__(self, session: Session):
        self._s = session
        self.session_id = session.session_id

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def execute(self, code: str, timeout: Optional[float] = None,
                      limits: Optional[Dict[str, Any]] = None) -> ExecutionResult:
        return await asyncio.to_thread(self._s.execute, code, timeout, limits)

    async def set_context(self, context: Any) -> None:
        await asyncio.to_thread(self._s.set_context, context)

    async def get_var(self, name: str) -> VarValue:
        return await asyncio.to_thread(self._s.get_var, name)

    async def snapshot(self) -> Snapshot:
        return await asyncio.to_thread(self._s.snapshot)

    async def fork(self, n: int) -> List["AsyncSession"]:
        return [AsyncSession(s) for s in await asyncio.to_thread(self._s.fork, n)]

    async def close(self) -> None:
        await asyncio.to_thread(self._s.close)


class AsyncExecClient:
    def __init__(self, url: str = "http://localhost:8000", token: Optional[str] = None,
                 timeout: float = 300.0, batch_parallelism: int = 8):
        self._c = ExecClient(url, token, timeout, batch_parallelism)

    async def health(self) -> Dict[str, Any]:
        return await asyncio.to_thread(self._c.health)

    async def ready(self) -> bool:
        return await asyncio.to_thread(self._c.ready)

    async def execute(self, code: str, context: Any = None, timeout: Optional[float] = None,
                      profile: Optional[str] = None,
                      limits: Optional[Dict[str, Any]] = None) -> ExecutionResult:
        return await asyncio.to_thread(self._c.execute, code, context, timeout, profile, limits)

    async def session(self, context: Any = None, profile: Optional[str] = None,
                      ttl: Optional[float] = None, llm_query: Optional[LlmFn] = None,
                      llm_query_batched=None, rlm_query: Optional[LlmFn] = None) -> AsyncSession:
        s = await asyncio.to_thread(self._c.session, context, profile, ttl, llm_query,
                                    llm_query_batched, rlm_query)
        return AsyncSession(s)

    async def run_node(self, node: Dict[str, Any], llm_query: Optional[LlmFn] = None,
                       rlm_query: Optional[LlmFn] = None) -> Dict[str, Any]:
        return await asyncio.to_thread(self._c.run_node, node, llm_query, rlm_query)

    async def run_workflow(self, workflow: Any, inputs: Optional[Dict[str, Any]] = None,
                           llm_query: Optional[LlmFn] = None,
                           rlm_query: Optional[LlmFn] = None) -> Dict[str, Any]:
        return await asyncio.to_thread(self._c.run_workflow, workflow, inputs, llm_query,
                                       rlm_query)

    async def restore(self, snapshot: Any, ttl: Optional[float] = None,
                      llm_query: Optional[LlmFn] = None, llm_query_batched=None,
                      rlm_query: Optional[LlmFn] = None) -> AsyncSession:
        s = await asyncio.to_thread(self._c.restore, snapshot, ttl, llm_query, llm_query_batched,
                                    rlm_query)
        return AsyncSession(s)

    async def delete_snapshot(self, snapshot: Any) -> None:
        await asyncio.to_thread(self._c.delete_snapshot, snapshot)

    async def sessions(self) -> List[Dict[str, Any]]:
        return await asyncio.to_thread(self._c.sessions)
