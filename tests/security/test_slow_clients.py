"""Slow and idle clients (issue 13, class 7): a client that trickles its request,
or holds connections open, costs a socket, not an HTTP thread; /health keeps
answering. Against the real `rlmbox serve-exec` (64 HTTP threads) and `rlmbox
serve` (32), with the limits set small through the environment."""
import http.client
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "service"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "rlm"))
from service_process import BIN, Service, free_port, make_service, wait_http  # noqa: E402,F401


def health_within(port, seconds):
    """GET /health on a fresh connection; its status, or None if no answer in time."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds)
    try:
        c.request("GET", "/health")
        return c.getresponse().status
    except OSError:
        return None
    finally:
        c.close()


class Tricklers:
    """`n` sockets that each send `prefix` at once, then `data` one byte at a
    time (by default a request head, which then never completes)."""

    HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000 + b"\r\n\r\n"

    def __init__(self, port, n, every=0.5, data=HEAD, prefix=b""):
        self.socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
        for s in self.socks:
            if prefix:
                s.sendall(prefix)
        self.data = data
        self.stop = threading.Event()
        self.every = every
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        i = 0
        while not self.stop.is_set() and i < len(self.data):
            for s in self.socks:
                try:
                    s.send(self.data[i:i + 1])
                except OSError:
                    pass
            i += 1
            self.stop.wait(self.every)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for s in self.socks:
            s.close()


BODY_HEAD = (b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100000\r\n\r\n{")


# 80 connections (more than the 64 HTTP threads) each trickling a head, or a
# complete head and then a body, one byte every 0.5 s.
@pytest.mark.parametrize("trickled", [{}, {"data": b" " * 100000, "prefix": BODY_HEAD}],
                         ids=["heads", "bodies"])
def test_trickling_clients_do_not_hold_the_http_threads(make_service, trickled):
    s = make_service(env={"MAX_CONNECTIONS_PER_CLIENT": "0", "HEADER_TIMEOUT": "60"})
    t = Tricklers(s.port, 80, **trickled)
    try:
        time.sleep(1.5)
        assert health_within(s.port, 3) == 200
        status, r = s.execute("print(6 * 7)")
        assert status == 200 and r["stdout"] == "42\n"
    finally:
        t.close()


def test_one_address_cannot_take_every_thread_by_default(make_service):
    # No cap configured: half of serve-exec's 64 threads per address.
    s = make_service()
    held = []
    for _ in range(40):
        held.append(socket.create_connection(("127.0.0.1", s.port)))
    time.sleep(1)
    for c in held:
        c.settimeout(0.05)
    try:
        refused = 0
        for c in held:
            try:
                if c.recv(4096).startswith(b"HTTP/1.1 429"):
                    refused += 1
            except socket.timeout:
                pass
        assert 8 <= refused <= 40 - 30, refused  # about 32 accepted (start-up checks may linger)
    finally:
        for c in held:
            c.close()


def test_a_head_not_sent_in_time_is_408_and_closed(make_service):
    s = make_service(env={"HEADER_TIMEOUT": "1"})
    c = socket.create_connection(("127.0.0.1", s.port))
    c.sendall(b"GET /health HTTP/1.1\r\nHo")
    c.settimeout(10)
    t0 = time.time()
    data = b""
    while True:
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 408"), data
    assert b'"code":"request_timeout"' in data
    assert time.time() - t0 < 5
    assert health_within(s.port, 3) == 200


def test_connections_per_client_address_are_capped(make_service):
    s = make_service(env={"MAX_CONNECTIONS_PER_CLIENT": "4"})
    # Idle connections until one is refused; an accepted one hears nothing. (The
    # start-up health checks' connections may still count for a moment.)
    held, refused = [], None
    for _ in range(8):
        c = socket.create_connection(("127.0.0.1", s.port))
        c.settimeout(2)
        try:
            data = c.recv(4096)
        except socket.timeout:
            held.append(c)
            continue
        refused = data
        c.close()
        break
    try:
        assert refused is not None and len(held) <= 4, (len(held), refused)
        assert refused.startswith(b"HTTP/1.1 429"), refused
        assert b'"code":"too_many_connections"' in refused
        held.pop().close()
        time.sleep(0.3)
        assert health_within(s.port, 3) == 200
    finally:
        for h in held:
            h.close()
    status, body = s.get("/metrics")
    assert "http_connections_refused_total 0" not in body, body


def test_a_kept_alive_connection_cannot_trickle_its_next_request(make_service):
    s = make_service(env={"HEADER_TIMEOUT": "1"})
    c = socket.create_connection(("127.0.0.1", s.port))
    c.settimeout(10)
    c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.recv(4096).startswith(b"HTTP/1.1 200")
    t0 = time.time()
    closed = False
    for b in b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n":
        try:
            c.send(bytes([b]))
            time.sleep(0.3)
        except OSError:
            closed = True
            break
    if not closed:
        try:
            closed = c.recv(4096) == b""
        except OSError:
            closed = True
    assert closed, "the trickled second request was served"
    assert time.time() - t0 < 8
    c.close()
    assert health_within(s.port, 3) == 200


def test_idle_kept_alive_connections_give_their_threads_up(make_service):
    # 70 clients each make one request and keep the connection open, idle: more
    # connections than threads, so a new client must get a thread anyway.
    s = make_service(env={"MAX_CONNECTIONS_PER_CLIENT": "0"})
    idle = []
    for _ in range(70):
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        c.request("GET", "/health")
        c.getresponse().read()
        idle.append(c)
    try:
        time.sleep(1.5)
        t0 = time.time()
        assert health_within(s.port, 10) == 200
        assert time.time() - t0 < 5
    finally:
        for c in idle:
            c.close()
    status, body = s.get("/metrics")
    assert "http_connections_idle_closed_total 0" not in body, body


def test_serve_keeps_answering_under_trickling_heads(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "WASM_", "RLMBOX_TOKEN"))}
    env.update(LLM_BASE_URL="http://127.0.0.1:9", LLM_MODEL="m", MAX_CONNECTIONS_PER_CLIENT="0")
    proc = subprocess.Popen([BIN, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(port)
        t = Tricklers(port, 48)  # serve has 32 HTTP threads
        try:
            time.sleep(1.5)
            assert health_within(port, 3) == 200
        finally:
            t.close()
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
