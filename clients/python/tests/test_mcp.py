"""`python -m rlmbox.mcp` driven by the official MCP SDK's own client (mcp pinned
in tests/python_pkg/requirements.txt), over stdio and streamable HTTP."""
import asyncio
import os
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("mcp")
from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402


async def call(session, code):
    r = await session.call_tool("run_python", {"code": code})
    return r.content[0].text


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def test_stdio_run_python_keeps_state_until_reset():
    async def main():
        params = StdioServerParameters(command=sys.executable,
                                       args=["-m", "rlmbox.mcp", "--timeout", "1",
                                             "--memory-mb", "32"])
        async with stdio_client(params) as streams:
            async with ClientSession(streams[0], streams[1]) as s:
                await s.initialize()
                assert sorted(t.name for t in (await s.list_tools()).tools) == ["reset",
                                                                                 "run_python"]
                assert await call(s, "x = 41\ndef inc(v):\n    return v + 1") == "[outcome: ok]"
                assert await call(s, "print('value:')\ninc(x)") == "value:\n42\n[outcome: ok]"
                text = await call(s, "1 / 0")
                assert "ZeroDivisionError" in text and "[outcome: exception]" in text
                assert "[outcome: timeout]" in await call(s, "while True: pass")
                assert "[outcome: memory_exceeded]" in await call(s, "b = bytearray(64 << 20)")
                assert await call(s, "x") == "41\n[outcome: ok]"  # the limits kept the state
                assert "reset" in (await s.call_tool("reset", {})).content[0].text
                assert "NameError" in await call(s, "x")
                assert "[outcome: refused]" in await call(s, "")
    run(main())


def test_flags_are_checked_at_start():
    # The console script from the wheel, as MCP client configurations name it.
    p = subprocess.run([os.path.join(sys.prefix, "bin", "rlmbox-mcp"), "--memory-mb", "999999"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and "memory_mb" in p.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http_server():
    """(process, URL) of `python -m rlmbox.mcp --http` on a free port, accepting."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rlmbox.mcp", "--http", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_streamable_http_keeps_one_sandbox_per_client_session():
    proc, url = start_http_server()
    try:

        async def main():
            async with streamable_http_client(url) as a_streams, \
                    streamable_http_client(url) as b_streams:
                async with ClientSession(a_streams[0], a_streams[1]) as a, \
                        ClientSession(b_streams[0], b_streams[1]) as b:
                    await a.initialize()
                    await b.initialize()
                    await call(a, "secret = 'a'")
                    await call(b, "secret = 'b'")
                    assert await call(a, "secret") == "'a'\n[outcome: ok]"
                    assert await call(b, "secret") == "'b'\n[outcome: ok]"
        run(main())
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_pydantic_ai_agent_uses_the_server_as_a_toolset():
    """pydantic-ai (pinned in tests/python_pkg/requirements.txt) loads run_python from the
    server over stdio, as an agent configuration would; its FunctionModel scripts the calls."""
    pytest.importorskip("pydantic_ai")
    from fastmcp.client.transports import StdioTransport
    from pydantic_ai import Agent
    from pydantic_ai.mcp import MCPToolset
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import FunctionModel

    seen = []

    def model(messages, info):
        tools = [t.name for t in info.function_tools]
        seen.append(tools)
        returns = [p.content for m in messages for p in getattr(m, "parts", ())
                   if isinstance(p, ToolReturnPart)]
        steps = ["total = sum(range(10))\nprint('stored')", "total * 2", "while True: pass"]
        if len(returns) < len(steps):
            return ModelResponse(parts=[ToolCallPart("run_python", {"code": steps[len(returns)]})])
        return ModelResponse(parts=[TextPart("sandbox said: " + " | ".join(map(str, returns)))])

    toolset = MCPToolset(StdioTransport(command=sys.executable,
                                        args=["-m", "rlmbox.mcp", "--timeout", "1"]))
    agent = Agent(FunctionModel(model), toolsets=[toolset])

    async def main():
        async with agent:
            return await agent.run("use the sandbox")

    out = run(main()).output
    assert seen[0] == ["run_python", "reset"] or sorted(seen[0]) == ["reset", "run_python"]
    parts = out.removeprefix("sandbox said: ").split(" | ")
    assert parts[0] == "stored\n[outcome: ok]"
    assert parts[1] == "90\n[outcome: ok]"  # state kept between the agent's tool calls
    assert "[outcome: timeout]" in parts[2]  # the agent's code was cut at its limit


def test_sessionless_http_clients_name_their_sandbox():
    """The 2026-07-28 protocol (FastMCP 4's client speaks it) has no sessions over HTTP:
    a call without `session` gets a new sandbox and the result names it; passing the
    name back continues that state, and another name's state is not visible."""
    pytest.importorskip("fastmcp")
    from fastmcp import Client

    proc, url = start_http_server()
    try:
        async def main():
            async with Client(url) as c:
                async def py(code, **kw):
                    r = await c.call_tool("run_python", {"code": code, **kw})
                    return r.content[0].text
                first = await py("secret = 'a'")
                assert first.startswith("[outcome: ok]\n[session: ")
                a = first.rsplit("[session: ", 1)[1].rstrip("]")
                b = (await py("secret = 'b'")).rsplit("[session: ", 1)[1].rstrip("]")
                assert a != b
                assert (await py("secret", session=a)).startswith("'a'\n[outcome: ok]")
                assert (await py("secret", session=b)).startswith("'b'\n[outcome: ok]")
                await c.call_tool("reset", {"session": a})
                assert "NameError" in await py("secret", session=a)  # a fresh sandbox
        run(main())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
