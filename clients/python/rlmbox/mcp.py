"""rlmbox as an MCP server (the official `mcp` Python SDK, 2.x).

    python -m rlmbox.mcp                       # stdio (what MCP clients spawn)
    python -m rlmbox.mcp --http --port 8765    # streamable HTTP at /mcp
    rlmbox-mcp --timeout 10 --memory-mb 128 --allowed-imports json,math,re
    rlmbox-mcp --remote http://exec-plane:8000 # run the code on an execution plane

Tools: `run_python(code)` runs code in a sandbox whose state is kept for the MCP
client (variables, functions and imports survive between calls); `reset()`
throws that state away. Which client a call comes from: over stdio, the process
(an MCP client spawns one server for itself); over streamable HTTP, the client's
MCP session (the handshake-era protocol); the 2026-07-28 protocol over HTTP has
no sessions at all, so there a call without `session` gets a new sandbox and the
result names it (`[session: ID]`), and passing `session=ID` continues it (at
most MAX_NAMED sandboxes are kept; the least recently used is closed first). A result is text: what the code printed (and
the value of a last expression), its stderr, and the outcome, so a limit that
was hit (timeout, memory, output) reads as such.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import secrets
import threading
import weakref

from mcp.server.mcpserver import Context, MCPServer

from ._inprocess import Session

__all__ = ["build_server", "main"]

MAX_NAMED = 64  # sandboxes kept for stateless HTTP clients, by the name they pass
try:
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS
except ImportError:  # an SDK without the sessionless protocol
    MODERN_PROTOCOL_VERSIONS = ()

INSTRUCTIONS = (
    "run_python runs Python 3.13 code in an isolated WebAssembly sandbox (no network, no "
    "files outside it, limits on time and memory). State persists between calls in this "
    "session; call reset to start over. The value of a last expression is echoed.")


def format_result(r) -> str:
    """The text an MCP client sees for one execution."""
    parts = []
    if r.stdout:
        parts.append(r.stdout.rstrip("\n"))
    if r.stderr:
        parts.append("[stderr]\n" + r.stderr.rstrip("\n"))
    outcome = f"[outcome: {r.outcome}]"
    if r.outcome != "ok" and r.error:
        outcome += f" {r.error}"
    parts.append(outcome)
    return "\n".join(parts)


def build_server(timeout: float = 30.0, memory_mb: int = 256, allowed_imports=None,
                 remote: str | None = None, token: str | None = None,
                 transport: str = "stdio", **server_options):
    """The MCPServer with the run_python and reset tools; one rlmbox Session per MCP
    client (see the module's doc for how clients are told apart on each transport),
    made on its first run_python and closed when that client goes."""
    server = MCPServer("rlmbox", instructions=INSTRUCTIONS, **server_options)
    sessions: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
    named: "collections.OrderedDict[str, Session]" = collections.OrderedDict()
    stdio_client = type("StdioClient", (), {})()  # the one client of a stdio server
    lock = threading.Lock()

    def client_of(ctx: Context):
        """The key of the calling client, or None for a sessionless HTTP call."""
        if transport == "stdio":
            return stdio_client
        # The SDK makes a ServerSession per request; the per-client Connection
        # under it lives as long as the client's session (mcp 2.3 keeps it as
        # ServerSession._connection; no public accessor yet).
        conn = getattr(ctx.session, "_connection", None)
        if conn is None or getattr(conn, "protocol_version", None) in MODERN_PROTOCOL_VERSIONS:
            return None
        return conn

    def new_session() -> Session:
        options = {"timeout": timeout, "memory_mb": memory_mb, "profile": "default"}
        if remote:
            return Session(remote=remote, token=token, **options)
        return Session(allowed_imports=allowed_imports, **options)

    def session_for(ctx: Context, name: str):
        """(session, the name to report or None)."""
        key = client_of(ctx)
        evicted = []
        with lock:
            if key is not None:
                s = sessions.get(key)
                if s is None or s.closed:
                    s = sessions[key] = new_session()
                    weakref.finalize(key, s.close)
                return s, None, evicted
            s = named.get(name) if name else None
            if s is None or s.closed:
                name = secrets.token_hex(8)
                s = named[name] = new_session()
                while len(named) > MAX_NAMED:
                    evicted.append(named.popitem(last=False)[1])
            named.move_to_end(name)
            return s, name, evicted

    @server.tool()
    async def run_python(code: str, ctx: Context, session: str = "") -> str:
        """Run Python code in your sandbox and return its output and outcome. `session`
        is needed only when a result names one ("[session: ID]"): pass that ID back."""
        sandbox, name, evicted = session_for(ctx, session)
        for s in evicted:
            await asyncio.to_thread(s.close)
        try:
            result = await asyncio.to_thread(sandbox.execute, code)
        except Exception as e:  # a refused request (empty code, ...) is the client's answer
            text = f"[outcome: refused] {type(e).__name__}: {e}"
        else:
            text = format_result(result)
        if name is not None:
            text += f"\n[session: {name}]"
        return text

    @server.tool()
    async def reset(ctx: Context, session: str = "") -> str:
        """Throw away your sandbox's state (variables, imports, functions)."""
        key = client_of(ctx)
        with lock:
            s = sessions.pop(key, None) if key is not None else named.pop(session, None)
        if s is not None:
            await asyncio.to_thread(s.close)
        return "[reset: the next run_python starts from a fresh sandbox]"

    return server


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="rlmbox-mcp", description=__doc__.split("\n\n")[0])
    ap.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per run_python")
    ap.add_argument("--memory-mb", type=int, default=256, help="memory the code may allocate")
    ap.add_argument("--allowed-imports", help="comma-separated modules the code may import")
    ap.add_argument("--remote", help="URL of an execution plane (rlmbox serve-exec) to run on")
    ap.add_argument("--token", help="bearer token for --remote")
    a = ap.parse_args(argv)
    imports = [m for m in a.allowed_imports.split(",") if m] if a.allowed_imports else None
    if a.remote and imports is not None:
        ap.error("--allowed-imports needs the in-process engine (an execution plane takes it "
                 "from its profiles)")
    if not a.remote:
        from ._inprocess import Sandbox
        try:  # limits checked (and the engine started) before any client connects
            Sandbox(timeout=a.timeout, memory_mb=a.memory_mb, allowed_imports=imports)
        except ValueError as e:
            ap.error(str(e))
    server = build_server(a.timeout, a.memory_mb, imports, a.remote, a.token,
                          transport="http" if a.http else "stdio")
    if a.http:
        server.run("streamable-http", host=a.host, port=a.port)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
