"""The seeds' own snippets (seeds 002, 003), with only the import line changed."""
import asyncio
import io
import contextlib
import os

import pytest

from service_process import Service


@pytest.fixture(scope="module")
def sidecar():
    s = Service(args=("--sidecar",))
    old = os.environ.get("WASM_MANAGER_SERVICE_URL")
    os.environ["WASM_MANAGER_SERVICE_URL"] = f"http://127.0.0.1:{s.port}"
    os.environ["WASM_SERVICE_URL"] = f"http://127.0.0.1:{s.port}"
    yield s
    s.stop()


def test_seed_003_state_persistence(sidecar):
    from rlmbox.remote import create_sidecar_repl_factory   # was: from rlm.remote import ...

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        # --- seed 003, unchanged ---
        async def test_state():
            factory = create_sidecar_repl_factory()

            # Create session
            session_id = await factory.create_session()

            try:
                # Step 1: Define variable
                await factory.execute_in_session(session_id, "x = 42")

                # Step 2: Use variable (persists!)
                result = await factory.execute_in_session(session_id, "x * 2")
                print(f"Result: {result}")  # Output: 84

                # Step 3: Modify variable
                await factory.execute_in_session(session_id, "x = x + 10")

                # Step 4: Verify change (persists!)
                result = await factory.execute_in_session(session_id, "x")
                print(f"New x: {result}")  # Output: 52

            finally:
                # Cleanup session
                await factory.delete_session(session_id)

        # Run
        asyncio.run(test_state())
        # --- end of seed ---
    assert out.getvalue() == "Result: 84\nNew x: 52\n"


def test_seed_002_wasm_repl_env(sidecar):
    from rlmbox.remote import WASMREPLEnv   # was: from rlm.repl_wasm import WASMREPLEnv

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        # --- seed 002, unchanged ---
        async def main():
            wasm_env = WASMREPLEnv(max_depth=3, timeout=30)
            await wasm_env.initialize()

            result = await wasm_env.code_execution("x = 42")
            print(result.stdout)

            await wasm_env.cleanup()
        # --- end of seed ---
        asyncio.run(main())
    assert out.getvalue() == "\n"  # `x = 42` prints nothing


def test_sidecar_repl_env(sidecar):
    from rlmbox.remote import SidecarREPLEnv

    async def main():
        env = SidecarREPLEnv()
        await env.code_execution("x = 42")
        r = await env.code_execution("x + 1")
        await env.cleanup()
        return r
    assert str(asyncio.run(main())) == "43"
