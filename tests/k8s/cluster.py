"""The single-node test cluster of scripts/k8s-cluster.sh, driven from pytest.

Everything the cluster serves (API server, Services, pod IPs, the scripted model)
lives in the cluster's own network namespace: kubectl and helm run there through
nsenter, and HTTP requests are made from threads that entered that namespace
(setns(2) moves only the calling thread), so the test talks to the Services the
way a client inside the cluster would.
"""
import concurrent.futures
import ctypes
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLUSTER = os.path.join(ROOT, "scripts", "k8s-cluster.sh")
TOOLS = os.path.join(ROOT, "scripts", "k8s-tools.sh")
IMAGE_SCRIPT = os.path.join(ROOT, "scripts", "container-image.sh")
MODEL_SERVER = os.path.join(ROOT, "tests", "fixtures", "scripted_model.py")
NODE_IP = "10.201.0.1"
MODEL_PORT = 8443
PAUSE_IMAGE = "localhost/rlmbox-pause:1"  # sandbox_image in scripts/k8s-cluster.sh
CLONE_NEWNET = 0x40000000


def run(args, check=True, timeout=600, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args[:4])}... failed ({r.returncode}):\n"
                             f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def pause_archive(binary, out):
    """A docker-archive holding the static pause binary as /pause (ctr imports it)."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        info = t.gettarinfo(binary, arcname="pause")
        info.uid = info.gid = 0
        info.mode = 0o755
        with open(binary, "rb") as f:
            t.addfile(info, f)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [PAUSE_IMAGE],
                            "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(out, "w") as t:
        for name, data in (("layer.tar", layer_bytes), (config_name, config),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


class Cluster:
    def __init__(self, workdir):
        self.dir = str(workdir)
        self.netns = None
        self.procs = []
        self._pool = None

    # --- lifecycle -------------------------------------------------------------------
    def up(self):
        started = time.time()
        r = run([CLUSTER, "up", self.dir], check=False, timeout=1200)
        if r.returncode != 0:
            raise AssertionError("the cluster did not come up:\n" + r.stderr[-6000:])
        self.netns = r.stdout.strip().splitlines()[-1]
        self.up_seconds = time.time() - started
        fd = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
        libc = ctypes.CDLL("libc.so.6", use_errno=True)

        def enter():
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=16, initializer=enter)

    def down(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if self._pool:
            self._pool.shutdown(wait=False, cancel_futures=True)
        run([CLUSTER, "down", self.dir], check=False, timeout=300)

    def logs(self, lines=30):
        out = []
        logdir = os.path.join(self.dir, "logs")
        for name in sorted(os.listdir(logdir)) if os.path.isdir(logdir) else []:
            with open(os.path.join(logdir, name), errors="replace") as f:
                tail = f.readlines()[-lines:]
            out.append(f"--- {name}\n" + "".join(tail))
        return "\n".join(out)

    # --- tools -------------------------------------------------------------------------
    def kubectl(self, *args, check=True, input=None, timeout=300):
        return run([CLUSTER, "kubectl", self.dir, *args], check=check, input=input,
                   timeout=timeout)

    def helm(self, *args, check=True, timeout=600):
        return run([CLUSTER, "helm", self.dir, *args], check=check, timeout=timeout)

    def ctr(self, *args, check=True, timeout=600):
        return run([CLUSTER, "ctr", self.dir, *args], check=check, timeout=timeout)

    def get(self, *args):
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def load_image(self, archive):
        self.ctr("images", "import", "--all-platforms", archive)

    # --- inside the cluster's network namespace ---------------------------------------
    def in_netns(self, fn, *args):
        return self._pool.submit(fn, *args).result()

    def spawn(self, args, log):
        """A process in the cluster's network namespace (e.g. the scripted model)."""
        f = open(log, "w")
        p = subprocess.Popen(["nsenter", f"--net=/run/netns/{self.netns}", *args],
                             stdout=f, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def start_model(self, script):
        script_path = os.path.join(self.dir, "model-script.json")
        with open(script_path, "w") as f:
            json.dump(script, f)
        log = os.path.join(self.dir, "model-requests.jsonl")
        self.spawn([sys.executable, MODEL_SERVER, "--host", NODE_IP, "--port", str(MODEL_PORT),
                    "--script", script_path, "--log", log],
                   os.path.join(self.dir, "logs", "model.out"))
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.in_netns(self.connects, NODE_IP, MODEL_PORT):
                return log
            time.sleep(0.2)
        raise AssertionError("the scripted model did not start")

    @staticmethod
    def connects(host, port, timeout=1.0):
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return True
        except OSError:
            return False

    def http(self, method, url, body=None, headers=None, timeout=60):
        """(status, parsed JSON or text) of one request made inside the cluster."""
        def call():
            data = json.dumps(body).encode() if body is not None else None
            req = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json",
                                                  **(headers or {})})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    status, raw = r.status, r.read()
            except urllib.error.HTTPError as e:
                status, raw = e.code, e.read()
            try:
                return status, json.loads(raw)
            except ValueError:
                return status, raw.decode(errors="replace")
        return self.in_netns(call)
