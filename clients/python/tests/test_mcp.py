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


def test_streamable_http_keeps_one_sandbox_per_client_session():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rlmbox.mcp", "--http", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/mcp"

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
