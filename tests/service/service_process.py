"""The real `rlmbox serve-exec` as a child process on a free port, with a tiny
stdlib HTTP client; shared by the service and SDK tests."""
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

BIN = os.environ.get("RLMBOX_BIN", "build/rlmbox")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A running serve-exec and a tiny HTTP client for it (stdlib only)."""

    def __init__(self, env=None, args=()):
        self.port = free_port()
        full_env = dict(os.environ)
        full_env.update(env or {})
        # Logs go to a file: an unread pipe would fill up and stall the server.
        self.log = tempfile.NamedTemporaryFile("w+", prefix="serve-exec-", suffix=".log")
        self.proc = subprocess.Popen(
            [BIN, "serve-exec", "--port", str(self.port), "--warm", "2", *args],
            env=full_env, stdout=subprocess.DEVNULL, stderr=self.log, text=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("serve-exec exited: " + self.logs())
            try:
                status, _ = self.request("GET", "/health")
                if status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("serve-exec did not start")
        self.token = full_env.get("RLMBOX_TOKEN")

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=None, timeout=60):
        c = self.conn(timeout)
        h = dict(headers or {})
        if getattr(self, "token", None) and "Authorization" not in h:
            h["Authorization"] = "Bearer " + self.token
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        c.close()
        ctype = r.getheader("Content-Type", "")
        if "json" in ctype:
            return r.status, json.loads(payload)
        return r.status, payload.decode("utf-8", "replace")

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body if body is not None else {}, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def execute(self, code, **fields):
        return self.post("/execute", {"code": code, **fields})

    def new_session(self, **fields):
        status, body = self.post("/session", fields)
        assert status == 200, body
        return body["session_id"]

    def run(self, sid, code, **fields):
        return self.post(f"/session/{sid}/execute", {"code": code, **fields})

    def stream(self, sid, code, timeout=None):
        """Starts a streamed session execute; returns (connection, response)."""
        c = self.conn()
        h = {"Content-Type": "application/json", "Accept": "application/x-ndjson"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        body = {"code": code}
        if timeout is not None:
            body["timeout"] = timeout
        c.request("POST", f"/session/{sid}/execute", body=json.dumps(body), headers=h)
        return c, c.getresponse()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def logs(self):
        with open(self.log.name) as f:
            return f.read()



def read_event(resp):
    """The next event of an NDJSON stream, skipping heartbeats."""
    while True:
        line = resp.readline()
        assert line, "stream ended early"
        event = json.loads(line)
        if event.get("event") != "heartbeat":
            return event


@pytest.fixture
def make_service():
    """Starts services with given env/args; stops them after the test."""
    started = []

    def make(**kw):
        s = Service(**kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def wait_http(port, path="/health", timeout=30):
    """Waits until GET path answers 200 on 127.0.0.1:port."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not come up")
