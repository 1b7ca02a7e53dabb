"""rlmbox as a REPL environment for the official `rlms` library.

The one-line switch (after `import rlmbox.rlms`):

    rlm = RLM(backend="openai", backend_kwargs={...},
              environment="rlmbox", environment_kwargs={"url": "http://localhost:8000"})

The model's code runs in an rlmbox sandbox session (a `rlmbox serve-exec`); its
llm_query / llm_query_batched / rlm_query calls come back over the execute stream
and are served by rlms's own LM handler on the user's side, so keys never reach the
sandbox. Importing this module registers the "rlmbox" environment name with rlms.

environment_kwargs: url (default $WASM_SERVICE_URL or http://localhost:8000),
token, timeout (seconds per code block, default 30), profile (default "rlm"),
in_process (default False: True runs the code in this process's own engine, from
the `rlmbox` wheel, with no server; `url` is then unused).
"""
from __future__ import annotations

import os
import time
from typing import Any, Optional

from rlm.core.comms_utils import LMRequest, send_lm_request, send_lm_request_batched
from rlm.core.types import REPLResult
from rlm.environments.base_env import IsolatedEnv

from .client import ExecClient, HostCallError


class RlmboxREPL(IsolatedEnv):
    """An rlms environment backed by an rlmbox session."""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None,
                 lm_handler_address: Optional[tuple] = None, context_payload: Any = None,
                 setup_code: Optional[str] = None, persistent: bool = False, depth: int = 1,
                 subcall_fn=None, timeout: float = 30.0, profile: str = "rlm",
                 max_concurrent_subcalls: int = 4, in_process: bool = False, **kwargs):
        super().__init__(persistent=persistent, depth=depth,
                         max_concurrent_subcalls=max_concurrent_subcalls, **kwargs)
        self.url = url or os.environ.get("WASM_SERVICE_URL", "http://localhost:8000")
        self.token = token
        self.timeout = timeout
        self.profile = profile
        self.in_process = in_process
        self.lm_handler_address = lm_handler_address
        self.subcall_fn = subcall_fn
        self._pending = []
        self._context_count = 0
        self.setup()
        if context_payload is not None:
            self.load_context(context_payload)
        if setup_code:
            self.execute_code(setup_code)

    # -- host calls, answered by rlms's LM handler ----------------------------------
    def _llm(self, prompt, model=None):
        if not self.lm_handler_address:
            raise HostCallError("no LM handler configured")
        r = send_lm_request(self.lm_handler_address,
                            LMRequest(prompt=prompt, model=model, depth=self.depth))
        if not r.success:
            raise HostCallError(str(r.error))
        self._pending.append(r.chat_completion)
        return r.chat_completion.response

    def _llm_batched(self, prompts, model=None):
        if not self.lm_handler_address:
            raise HostCallError("no LM handler configured")
        out = []
        for r in send_lm_request_batched(self.lm_handler_address, prompts, model=model,
                                         depth=self.depth):
            if r.success:
                self._pending.append(r.chat_completion)
                out.append(r.chat_completion.response)
            else:
                out.append({"error": str(r.error)})
        return out

    def _rlm(self, prompt, model=None):
        if self.subcall_fn is None:
            return self._llm(prompt, model)
        completion = self.subcall_fn(prompt, model)
        self._pending.append(completion)
        return completion.response

    # -- BaseEnv ------------------------------------------------------------------------
    def setup(self):
        if self.in_process:
            from ._inprocess import LocalExecClient
            self._client = LocalExecClient(batch_parallelism=self.max_concurrent_subcalls)
        else:
            self._client = ExecClient(self.url, self.token,
                                      batch_parallelism=self.max_concurrent_subcalls)
        self._session = self._client.session(profile=self.profile, llm_query=self._llm,
                                             llm_query_batched=self._llm_batched,
                                             rlm_query=self._rlm)

    def load_context(self, context_payload):
        self._session.set_context(context_payload)
        self._context_count = max(self._context_count, 1)

    def execute_code(self, code: str) -> REPLResult:
        start = time.perf_counter()
        self._pending = []
        r = self._session.execute(code, timeout=self.timeout)
        stderr = r.stderr
        return REPLResult(stdout=r.stdout, stderr=stderr, locals=dict(r.locals),
                          execution_time=time.perf_counter() - start,
                          rlm_calls=list(self._pending), final_answer=r.final_answer)

    def update_handler_address(self, address):
        self.lm_handler_address = address

    def get_context_count(self) -> int:
        return self._context_count

    def cleanup(self):
        session = getattr(self, "_session", None)
        if session is not None:
            session.close()
            self._session = None

    def __del__(self):
        try:
            self.cleanup()
        except Exception:
            pass


def register() -> None:
    """Makes environment="rlmbox" work in rlms (called on import)."""
    import rlm.core.rlm as core
    import rlm.environments as envs

    if getattr(envs.get_environment, "_rlmbox", False):
        return
    original = envs.get_environment

    def get_environment(environment, environment_kwargs):
        if environment == "rlmbox":
            return RlmboxREPL(**environment_kwargs)
        return original(environment, environment_kwargs)

    get_environment._rlmbox = True
    envs.get_environment = get_environment
    core.get_environment = get_environment


register()
