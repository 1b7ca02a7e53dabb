"""The synchronous client (standard library only)."""
from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from ._common import (ExecutionResult, HostCallError, RlmboxError, VarValue, _Record,  # noqa: F401
                      _answer_call)

LlmFn = Callable[..., str]


@dataclass
class RLMResult:
    success: bool
    answer: Optional[str]
    model: str
    max_depth: int
    iterations: int
    usage: Dict[str, Any]
    execution_time: float
    error: Optional[str] = None
    trajectory_id: Optional[str] = None


def _fields(**kw: Any) -> Dict[str, Any]:
    """A request body of the given fields, leaving out those that are None."""
    return {k: v for k, v in kw.items() if v is not None}


class _Http:
    """One base URL, JSON in and out, clear errors, safe retries."""

    def __init__(self, url: str, token: Optional[str], timeout: float, retries: int = 3):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self.https = u.scheme == "https"
        self.host = u.hostname
        self.port = u.port or (443 if self.https else 80)
        self.prefix = u.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries

    def conn(self, timeout=None):
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout or self.timeout)

    def headers(self, extra=None):
        h = {"Content-Type": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        h.update(extra or {})
        return h

    def request(self, method: str, path: str, body: Any = None, raw: Optional[bytes] = None,
                content_type: Optional[str] = None, timeout: Optional[float] = None) -> Any:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        extra = {"Content-Type": content_type} if content_type else None
        delay = 0.2
        for attempt in range(self.retries + 1):
            c = self.conn(timeout)
            try:
                c.request(method, self.prefix + path, body=data, headers=self.headers(extra))
            except (ConnectionRefusedError, socket.gaierror) as e:
                # Nothing reached the service: always safe to try again. (A reset
                # after sending is not retried: the request may have run.)
                c.close()
                if attempt == self.retries:
                    raise RlmboxError(0, "unreachable", f"{self.host}:{self.port}: {e}") from e
                time.sleep(delay)
                delay *= 2
                continue
            r = c.getresponse()
            payload = r.read()
            c.close()
            # 429/503: the request was refused before anything ran, so a retry is safe.
            if r.status in (429, 503) and attempt < self.retries:
                time.sleep(delay)
                delay *= 2
                continue
            return _decode(r.status, payload)
        raise AssertionError("unreachable")


def _decode(status: int, payload: bytes) -> Any:
    try:
        j = json.loads(payload) if payload else {}
    except ValueError:
        j = {"error": payload.decode("utf-8", "replace"), "code": "bad_response"}
    if status != 200:
        if isinstance(j, dict):
            err = j.get("error")
            if isinstance(err, dict):  # OpenAI-style
                err = err.get("message")
            raise RlmboxError(status, str(j.get("code", "error")), str(err))
        raise RlmboxError(status, "error", str(j))
    return j


def _stream(h: "_Http", path: str, body: Dict[str, Any],
            answer: Callable[[Dict[str, Any]], Dict[str, Any]],
            answer_path: Callable[[Dict[str, Any]], str]) -> Dict[str, Any]:
    """POSTs `body` asking for NDJSON, answers each host_call event with
    answer(event) at answer_path(event), and returns the final result event."""
    c = h.conn(timeout=h.timeout)
    c.request("POST", h.prefix + path, body=json.dumps(body).encode(),
              headers=h.headers({"Accept": "application/x-ndjson"}))
    r = c.getresponse()
    if r.status != 200:
        payload = r.read()
        c.close()
        return _decode(r.status, payload)
    try:
        while True:
            line = r.readline()
            if not line:
                raise RlmboxError(502, "stream_ended", "the stream ended without a result")
            ev = json.loads(line)
            kind = ev.get("event")
            if kind == "result":
                if "status" in ev and "success" not in ev:  # refused while running
                    raise RlmboxError(ev["status"], ev.get("code", "error"), ev.get("error", ""))
                if "success" not in ev:
                    raise RlmboxError(500, ev.get("code", "internal"), ev.get("error", ""))
                return ev
            if kind == "host_call":
                try:
                    h.request("POST", answer_path(ev), answer(ev))
                except RlmboxError:
                    pass  # refused (late): the call ends on its own
    finally:
        c.close()


class Snapshot(_Record):
    """A sealed session state kept by the service (Session.snapshot())."""

    __slots__ = ("snapshot_id", "bytes", "endpoint")

    def __init__(self, snapshot_id: str, bytes: int, endpoint: Optional[str] = None):
        self.snapshot_id = snapshot_id
        self.bytes = bytes
        self.endpoint = endpoint


class Session:
    """A stateful REPL on the service. Use as a context manager; close() deletes it."""

    def __init__(self, client: "ExecClient", session_id: str, llm_query: Optional[LlmFn],
                 llm_query_batched, rlm_query: Optional[LlmFn], endpoint: Optional[str] = None):
        self._client = client
        self.session_id = session_id
        # Behind a load balancer the instance holding the session names itself
        # (RLMBOX_ADVERTISE_URL): the session's requests go there.
        http = client._http
        self._http = _Http(endpoint, http.token, http.timeout, http.retries) if endpoint else http
        self._llm = llm_query
        self._llm_batched = llm_query_batched
        self._rlm = rlm_query
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def execute(self, code: str, timeout: Optional[float] = None,
                limits: Optional[Dict[str, Any]] = None) -> ExecutionResult:
        body = _fields(code=code, timeout=timeout, limits=limits or None)
        if self._llm is None and self._rlm is None and self._llm_batched is None:
            j = self._http.request("POST", f"/session/{self.session_id}/execute", body)
            return ExecutionResult.from_json(j)
        return self._execute_streaming(body)

    def _execute_streaming(self, body: Dict[str, Any]) -> ExecutionResult:
        ev = _stream(self._http, f"/session/{self.session_id}/execute", body,
                     lambda e: _answer_call(self._llm, self._llm_batched, self._rlm, e["kind"],
                                            e.get("args", {}), self._client.batch_parallelism),
                     lambda e: f"/session/{self.session_id}/calls/{e['call_id']}")
        return ExecutionResult.from_json(ev)

    def set_context(self, context: Any) -> None:
        if isinstance(context, str):
            self._http.request("PUT", f"/session/{self.session_id}/context",
                                       raw=context.encode(), content_type="text/plain")
        else:
            self._http.request("PUT", f"/session/{self.session_id}/context", {"context": context})

    def get_var(self, name: str) -> VarValue:
        j = self._http.request("GET", f"/session/{self.session_id}/vars/{urllib.parse.quote(name)}")
        return VarValue(name=j.get("name", name), value=j.get("value"), text=j.get("text", ""),
                        type=j.get("type", ""))

    def snapshot(self) -> "Snapshot":
        """Seals the session's state between cells on the service (POST
        /session/{id}/snapshot); ExecClient.restore() makes sessions from it."""
        j = self._http.request("POST", f"/session/{self.session_id}/snapshot", {})
        endpoint = self._http.url if self._http is not self._client._http else None
        return Snapshot(snapshot_id=j["snapshot_id"], bytes=j["bytes"], endpoint=endpoint)

    def fork(self, n: int) -> List["Session"]:
        """`n` new sessions with this one's state, each with its own randomness
        (POST /session/{id}/fork); they share nothing with it afterwards."""
        j = self._http.request("POST", f"/session/{self.session_id}/fork", {"count": n})
        endpoint = j.get("endpoint") or (self._http.url if self._http is not self._client._http else None)
        return [Session(self._client, sid, self._llm, self._llm_batched, self._rlm, endpoint=endpoint)
                for sid in j["session_ids"]]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._http.request("DELETE", f"/session/{self.session_id}")
        except RlmboxError as e:
            if e.status != 404:
                raise


class ExecClient:
    """The execution plane (`rlmbox serve-exec`)."""

    def __init__(self, url: str = "http://localhost:8000", token: Optional[str] = None,
                 timeout: float = 300.0, batch_parallelism: int = 8):
        self._http = _Http(url, token, timeout)
        self.batch_parallelism = batch_parallelism

    def health(self) -> Dict[str, Any]:
        return self._http.request("GET", "/health")

    def ready(self) -> bool:
        try:
            return self._http.request("GET", "/ready").get("status") == "ready"
        except RlmboxError:
            return False

    def metrics(self) -> str:
        c = self._http.conn()
        c.request("GET", self._http.prefix + "/metrics", headers=self._http.headers())
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        if r.status != 200:
            raise RlmboxError(r.status, "error", text)
        return text

    def execute(self, code: str, context: Any = None, timeout: Optional[float] = None,
                profile: Optional[str] = None, limits: Optional[Dict[str, Any]] = None) -> ExecutionResult:
        body = _fields(code=code, context=context, timeout=timeout, profile=profile,
                       limits=limits or None)
        return ExecutionResult.from_json(self._http.request("POST", "/execute", body))

    def session(self, context: Any = None, profile: Optional[str] = None, ttl: Optional[float] = None,
                llm_query: Optional[LlmFn] = None, llm_query_batched=None,
                rlm_query: Optional[LlmFn] = None) -> Session:
        j = self._http.request("POST", "/session", _fields(context=context, profile=profile, ttl=ttl))
        return Session(self, j["session_id"], llm_query, llm_query_batched, rlm_query,
                       endpoint=j.get("endpoint"))

    def restore(self, snapshot: Any, ttl: Optional[float] = None,
                llm_query: Optional[LlmFn] = None, llm_query_batched=None,
                rlm_query: Optional[LlmFn] = None) -> Session:
        """A new session from a Snapshot (or its id): POST /session {"from_snapshot"}."""
        sid, http = self._snapshot_target(snapshot)
        j = http.request("POST", "/session", _fields(from_snapshot=sid, ttl=ttl))
        return Session(self, j["session_id"], llm_query, llm_query_batched, rlm_query,
                       endpoint=j.get("endpoint") or getattr(snapshot, "endpoint", None))

    def delete_snapshot(self, snapshot: Any) -> None:
        sid, http = self._snapshot_target(snapshot)
        http.request("DELETE", f"/snapshots/{urllib.parse.quote(sid)}")

    def _snapshot_target(self, snapshot: Any):
        if isinstance(snapshot, Snapshot):
            http = self._http
            if snapshot.endpoint:
                http = _Http(snapshot.endpoint, http.token, http.timeout, http.retries)
            return snapshot.snapshot_id, http
        return str(snapshot), self._http

    def sessions(self) -> List[Dict[str, Any]]:
        return self._http.request("GET", "/sessions")["sessions"]

    def run_node(self, node: Dict[str, Any], llm_query: Optional[LlmFn] = None,
                 rlm_query: Optional[LlmFn] = None) -> Dict[str, Any]:
        """POST /nodes/execute (docs/nodes.md): the node result as a dict
        ({"success", "output", "error", "outcome", "usage", ...}). `llm_query`
        answers llm nodes (prompt, model=...), `rlm_query` agent nodes."""
        return self._run("/nodes/execute", node, llm_query, rlm_query)

    def run_workflow(self, workflow: Any, inputs: Optional[Dict[str, Any]] = None,
                     llm_query: Optional[LlmFn] = None,
                     rlm_query: Optional[LlmFn] = None) -> Dict[str, Any]:
        """POST /workflows/run: `workflow` is a dict or YAML/JSON text; returns
        {"success", "output", "outputs", "nodes", "failed_node", "error", ...}."""
        return self._run("/workflows/run", _fields(workflow=workflow, inputs=inputs),
                         llm_query, rlm_query)

    def _run(self, path: str, body: Dict[str, Any], llm_query, rlm_query) -> Dict[str, Any]:
        if llm_query is None and rlm_query is None:
            return self._http.request("POST", path, body)
        return _stream(self._http, path, body,
                       lambda e: _answer_call(llm_query, None, rlm_query, e["kind"],
                                              e.get("args", {}), self.batch_parallelism),
                       lambda e: f"/runs/{e['run_id']}/calls/{e['call_id']}")


class RLMClient:
    """The inference plane (`rlmbox serve`)."""

    def __init__(self, url: str = "http://localhost:8000", token: Optional[str] = None,
                 timeout: float = 900.0):
        self._http = _Http(url, token, timeout)

    def completion(self, context: Any, query: str) -> RLMResult:
        return self._result(self._http.request("POST", "/completion", {"context": context, "query": query}))

    def infer(self, query: str, context: Any = None, model: Optional[str] = None,
              max_depth: Optional[int] = None) -> RLMResult:
        body = {"query": query, "context": context, **_fields(model=model, max_depth=max_depth)}
        return self._result(self._http.request("POST", "/infer", body))

    def run_workflow(self, workflow: Any, inputs: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """POST /workflows/run on the inference plane: llm and agent nodes use its
        model. Returns the workflow result as a dict (docs/nodes.md)."""
        return self._http.request("POST", "/workflows/run", _fields(workflow=workflow, inputs=inputs))

    @staticmethod
    def _result(j: Dict[str, Any]) -> RLMResult:
        return RLMResult(success=j.get("success", False), answer=j.get("answer"),
                         model=j.get("model", ""), max_depth=j.get("max_depth", 0),
                         iterations=j.get("iterations", 0), usage=j.get("usage", {}),
                         execution_time=j.get("execution_time", 0.0), error=j.get("error"),
                         trajectory_id=j.get("trajectory_id"))
