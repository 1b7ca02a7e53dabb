"""One backend's side of `make bench-python` (bench/python_bench.py runs it in a
venv of its own and reads one JSON line). argv: rlmbox|eryx MEASUREMENT [N]

Measurements: import (seconds to import the package), first (seconds from
import to the first fresh execute returning), fresh (per-call seconds of
`Sandbox().execute("x = 1")`), session (per-call seconds of a reused
session/sandbox's execute), threads N (fresh executes per second with N
threads), idle (private bytes per idle session, 50 sessions after one cell).
"""
import json
import sys
import threading
import time

CODE = "x = 1"


def load(backend):
    if backend == "rlmbox":
        import rlmbox

        return rlmbox
    import eryx

    return eryx


def fresh_call(mod, backend):
    if backend == "rlmbox":
        return lambda: mod.Sandbox().execute(CODE)
    return lambda: mod.Sandbox().execute(CODE)


def session_obj(mod, backend):
    if backend == "rlmbox":
        return mod.Session()
    # eryx: a Session keeps its interpreter state between executes.
    return mod.Session() if hasattr(mod, "Session") else mod.Sandbox()


def check(result, backend):
    if backend == "rlmbox":
        assert result.success, result
    return result


def private_bytes():
    total = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1]) * 1024
    return total


def main():
    backend, what = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    t0 = time.perf_counter()
    mod = load(backend)
    t1 = time.perf_counter()
    out = {"backend": backend, "what": what}
    if what == "import":
        out["seconds"] = t1 - t0
    elif what == "first":
        check(fresh_call(mod, backend)(), backend)
        out["seconds"] = time.perf_counter() - t1
    elif what == "fresh":
        call = fresh_call(mod, backend)
        for _ in range(20):
            call()
        samples = []
        for _ in range(n):
            s = time.perf_counter()
            call()
            samples.append(time.perf_counter() - s)
        out["samples"] = samples
    elif what == "session":
        s = session_obj(mod, backend)
        for _ in range(50):
            s.execute(CODE)
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            s.execute(CODE)
            samples.append(time.perf_counter() - t)
        out["samples"] = samples
    elif what == "threads":
        call = fresh_call(mod, backend)
        call()
        stop = time.perf_counter() + 3.0
        counts = [0] * n

        def work(i):
            while time.perf_counter() < stop:
                call()
                counts[i] += 1

        threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out["per_second"] = sum(counts) / (time.perf_counter() - start)
    elif what == "idle":
        warm = session_obj(mod, backend)
        warm.execute(CODE)
        time.sleep(0.5)
        before = private_bytes()
        keep = []
        for _ in range(50):
            s = session_obj(mod, backend)
            s.execute(CODE)
            keep.append(s)
        time.sleep(0.5)
        out["bytes_per_session"] = (private_bytes() - before) / 50
    print(json.dumps(out))


if __name__ == "__main__":
    main()
