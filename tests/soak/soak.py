"""A bounded soak run: mixed stateless, session and RLM traffic at steady
concurrency against real serve-exec and serve processes, with a share of hostile
payloads. Prints completed executions, errors by kind, p99 latency and the
execution plane's RSS over time; exits 1 if anything unexpected happened or RSS
kept growing.

    python3 tests/soak/soak.py --seconds 600      (make soak)
"""
import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("RLMBOX_BIN", os.path.join(ROOT, "build", "rlmbox"))
MODEL = os.path.join(ROOT, "tests", "fixtures", "scripted_model.py")

sys.path.insert(0, os.path.join(ROOT, "tests", "service"))
from service_process import free_port, wait_http  # noqa: E402

# (code, expected outcome, timeout s): the cells that end on their own get a
# generous deadline, so a loaded machine cannot turn their outcome into a timeout.
HOSTILE = [
    ("while True: pass", "timeout", 0.3),
    ("x = []\nwhile True: x.append(bytearray(1 << 20))", "memory_exceeded", 5),
    ("while True: print('A' * 1000)", "output_truncated", 5),
    ("import os\nos.system('id')", "exception", 5),
    ("def f(): f()\nf()", "exception", 5),
    # Issue 13: a forged deep reply, a swallowed stop, an oversized answer.
    ("import sys\n_r = sys.modules['rlmbox_runner']\n"
     "_r._encode_reply = lambda o, level: ['{\"success\": true, \"locals\": ' + '[' * 100000]",
     "crashed", 5),
    ("try:\n    while True: pass\nexcept BaseException:\n    pass", "timeout", 0.3),
    ("answer['content'] = 'a' * (1 << 20)\nanswer['ready'] = True", "output_truncated", 5),
    ("raise MemoryError('self-raised')", "exception", 5),
]

# Import-policy bypasses through reads the interpreter does on the code's behalf:
# each must end "exception" (PolicyViolation) on POST /nodes/execute.
POLICY_BYPASSES = [
    "class A(type):\n  def __instancecheck__(c, o): return True\nclass C(metaclass=A):\n"
    "  __match_args__ = ('__globals__',)\nimport json\nmatch json.dumps:\n  case C(g): g['sys']",
    "import functools, json\nclass W: pass\nw = W()\nd = {}\nsetattr(w, '__globals__', d)\n"
    "functools.update_wrapper(w, json.dumps, assigned=(), updated=('__globals__',))\nd['sys']",
    "import json\n'{0.__globals__}'.format(json.dumps)",
]


class Tricklers:
    """Slow clients for the whole run: `n` sockets sending a request head one
    byte every 0.5 s, reopened when the server's head deadline closes them."""

    HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"

    def __init__(self, port, n):
        self.port, self.stop, self.reopened = port, threading.Event(), 0
        self.socks = [self._open() for _ in range(n)]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _open(self):
        return [socket.create_connection(("127.0.0.1", self.port)), 0]

    def _run(self):
        while not self.stop.wait(0.5):
            for i, (c, at) in enumerate(self.socks):
                try:
                    c.send(self.HEAD[at % (len(self.HEAD) - 4):][:1])
                    self.socks[i][1] = at + 1
                except OSError:
                    c.close()
                    self.socks[i] = self._open()
                    self.reopened += 1

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for c, _ in self.socks:
            c.close()

# Raw bodies that must be refused with 400 (and change nothing else).
HOSTILE_BODIES = [
    '{"code": "1", "x": ' + "[" * 200_000 + "}",
    '{"code": "1", "context": ' + "[" * 300 + "]" * 300 + "}",
]






def post(port, path, body, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else {}


def threads_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--hostile", type=float, default=0.1)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="rlmbox-soak-")
    script = os.path.join(tmp, "script.json")
    with open(script, "w") as f:
        json.dump({"rules": [
            {"match": "Query:", "reply": "```repl\nparts = llm_query_batched(['a', 'b'])\n"
                                          "answer['content'] = '+'.join(parts)\nanswer['ready'] = True\n```"},
            {"reply": "ok"}]}, f)
    procs = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "WASM_"))}
    try:
        mport, eport, sport = free_port(), free_port(), free_port()
        procs.append(subprocess.Popen([sys.executable, MODEL, "--port", str(mport), "--script", script],
                                      stderr=subprocess.DEVNULL))
        exec_proc = subprocess.Popen([BIN, "serve-exec", "--port", str(eport)], env=dict(env, LOG_LEVEL="error"),
                                     stderr=subprocess.DEVNULL)
        procs.append(exec_proc)
        wait_http(eport)
        procs.append(subprocess.Popen(
            [BIN, "serve", "--port", str(sport)],
            env=dict(env, LLM_BASE_URL=f"http://127.0.0.1:{mport}/v1", LLM_API_KEY="k",
                     WASM_SERVICE_URL=f"http://127.0.0.1:{eport}", LOG_LEVEL="error"),
            stderr=subprocess.DEVNULL))
        wait_http(sport)

        lock = threading.Lock()
        counts = {"stateless": 0, "session": 0, "rlm": 0, "hostile": 0}
        errors = {}
        latencies = []
        end = time.time() + a.seconds

        def error(kind):
            with lock:
                errors[kind] = errors.get(kind, 0) + 1

        def client(n):
            rng = random.Random(n)
            _, s = post(eport, "/session", {})
            sid = s.get("session_id")
            total = 0
            while time.time() < end:
                roll = rng.random()
                t0 = time.time()
                try:
                    if roll < a.hostile / 4:
                        c = http.client.HTTPConnection("127.0.0.1", eport, timeout=60)
                        c.request("POST", "/execute", body=rng.choice(HOSTILE_BODIES),
                                  headers={"Content-Type": "application/json"})
                        st = c.getresponse().status
                        c.close()
                        if st != 400:
                            error(f"hostile-body:{st}")
                        kind = "hostile"
                    elif roll < a.hostile / 3:
                        code = rng.choice(POLICY_BYPASSES)
                        st, r = post(eport, "/nodes/execute", {"type": "code", "code": code,
                                                               "allowed_imports": ["json", "functools"]})
                        if st != 200 or r.get("outcome") != "exception" or "not allowed" not in (r.get("error") or ""):
                            error(f"policy-bypass:{st}:{r.get('outcome')}")
                        kind = "hostile"
                    elif roll < a.hostile:
                        code, expect, timeout = rng.choice(HOSTILE)
                        st, r = post(eport, "/execute", {"code": code, "timeout": timeout,
                                                         "limits": {"memory_mb": 64, "max_output_bytes": 10000}})
                        if st != 200 or r.get("outcome") != expect:
                            error(f"hostile:{expect}->{r.get('outcome', st)}")
                        kind = "hostile"
                    elif roll < 0.55:
                        v = rng.randint(0, 10 ** 6)
                        st, r = post(eport, "/execute", {"code": f"{v} + 1"})
                        if st != 200 or r.get("stdout") != f"{v + 1}\n":
                            error(f"stateless:{st}")
                        kind = "stateless"
                    elif roll < 0.95:
                        total += 1
                        st, r = post(eport, f"/session/{sid}/execute",
                                     {"code": "n = globals().get('n', 0) + 1\nn"})
                        if st != 200 or r.get("stdout") != f"{total}\n":
                            error(f"session:{st}:{r.get('stdout', '')[:20]}")
                        kind = "session"
                    else:
                        st, r = post(sport, "/completion", {"context": "c", "query": "q"})
                        if st != 200 or r.get("answer") != "ok+ok":
                            error(f"rlm:{st}:{r.get('error', '')[:60]}")
                        kind = "rlm"
                except (OSError, ValueError) as e:
                    error(f"transport:{type(e).__name__}")
                    continue
                with lock:
                    counts[kind] += 1
                    if kind != "hostile":
                        latencies.append(time.time() - t0)

        time.sleep(1)
        slow = Tricklers(eport, 8)
        rss = [(0.0, rss_mb(exec_proc.pid), threads_of(exec_proc.pid))]
        threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
        for t in threads:
            t.start()
        start = time.time()
        while any(t.is_alive() for t in threads):
            time.sleep(min(5, max(0.5, a.seconds / 12)))
            rss.append((time.time() - start, rss_mb(exec_proc.pid), threads_of(exec_proc.pid)))
        for t in threads:
            t.join()
        slow.close()

        # Some threads start lazily on first use (e.g. the first stopped cell);
        # growth is counted from one third into the run, like RSS. Idle tokio
        # blocking-pool threads (WASI file reads) exit after 10 s.
        threads_start = rss[len(rss) // 3][2]
        settle = time.time() + 15
        threads_end = threads_of(exec_proc.pid)
        while threads_end > threads_start and time.time() < settle:
            time.sleep(0.5)
            threads_end = threads_of(exec_proc.pid)
        _, listing = (lambda c: (c.request("GET", "/sessions"), json.loads(c.getresponse().read())))(
            http.client.HTTPConnection("127.0.0.1", eport, timeout=10))
        sessions_left = len(listing["sessions"])
        done = sum(counts.values())
        p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 100 else float("nan")
        third = rss[len(rss) // 3][1]
        growth = rss[-1][1] - third
        print(f"soak: {a.seconds:.0f} s, {a.clients} clients, {a.hostile:.0%} hostile")
        print(f"  completed: {done} ({json.dumps(counts)}), {done / a.seconds:.0f}/s")
        print(f"  errors: {json.dumps(errors) if errors else 'none'}")
        print(f"  slow clients: 8 trickling request heads throughout, reopened {slow.reopened} times")
        print(f"  p99 latency (non-hostile): {p99:.1f} ms")
        print(f"  serve-exec RSS: start {rss[0][1]:.0f} MiB, at 1/3 {third:.0f} MiB, "
              f"end {rss[-1][1]:.0f} MiB (growth after 1/3: {growth:+.0f} MiB)")
        print(f"  serve-exec threads: {rss[0][2]} at start, {threads_start} at 1/3, {threads_end} at the end; "
              f"sessions left open: {sessions_left} (one per client, by design)")
        bounded = growth < 64
        threads_ok = threads_end <= threads_start
        sessions_ok = sessions_left <= a.clients
        if errors or not bounded or not threads_ok or not sessions_ok:
            print("soak: FAILED" + ("" if bounded else " (RSS kept growing)") +
                  ("" if threads_ok else " (threads leaked)") + ("" if sessions_ok else " (sessions leaked)"))
            return 1
        print("soak: ok")
        return 0
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
