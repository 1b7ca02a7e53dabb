"""rlmbox as an MCP server (the official `mcp` Python SDK, 2.x).

    python -m rlmbox.mcp                       # stdio (what MCP clients spawn)
    python -m rlmbox.mcp --http --port 8765    # streamable HTTP at /mcp
    rlmbox-mcp --timeout 10 --memory-mb 128 --allowed-imports json,math,re
    rlmbox-mcp --remote http://exec-plane:8000 # run the code on an execution plane

Tools: `run_python(code)` runs code in a sandbox whose state is kept for the MCP
client's session (variables, functions and imports survive between calls);
`reset()` throws that state away. A result is text: what the code printed (and
the value of a last expression), its stderr, and the outcome, so a limit that
was hit (timeout, memory, output) reads as such.
"""
from __future__ import annotations

import argparse
import asyncio
import threading
import weakref

from mcp.server.mcpserver import Context, MCPServer

from ._inprocess import Session

__all__ = ["build_server", "main"]

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
                 remote: str | None = None, token: str | None = None, **server_options):
    """The MCPServer with the run_python and reset tools; one rlmbox Session per MCP
    client session, made on its first run_python and closed when that session goes."""
    server = MCPServer("rlmbox", instructions=INSTRUCTIONS, **server_options)
    sessions: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
    lock = threading.Lock()

    def client_of(ctx: Context):
        # The SDK makes a ServerSession per request; the per-client Connection
        # under it is what lives as long as the client's session (mcp 2.3 keeps
        # it as ServerSession._connection; no public accessor yet).
        return getattr(ctx.session, "_connection", None) or ctx.session

    def session_for(ctx: Context) -> Session:
        key = client_of(ctx)
        with lock:
            s = sessions.get(key)
            if s is None or s.closed:
                options = {"timeout": timeout, "memory_mb": memory_mb, "profile": "default"}
                if remote:
                    s = Session(remote=remote, token=token, **options)
                else:
                    s = Session(allowed_imports=allowed_imports, **options)
                sessions[key] = s
                weakref.finalize(key, s.close)
            return s

    @server.tool()
    async def run_python(code: str, ctx: Context) -> str:
        """Run Python code in this session's sandbox and return its output and outcome."""
        session = session_for(ctx)
        try:
            result = await asyncio.to_thread(session.execute, code)
        except Exception as e:  # a refused request (empty code, ...) is the client's answer
            return f"[outcome: refused] {type(e).__name__}: {e}"
        return format_result(result)

    @server.tool()
    async def reset(ctx: Context) -> str:
        """Throw away this session's sandbox state (variables, imports, functions)."""
        with lock:
            s = sessions.pop(client_of(ctx), None)
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
    server = build_server(a.timeout, a.memory_mb, imports, a.remote, a.token)
    if a.http:
        server.run("streamable-http", host=a.host, port=a.port)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
