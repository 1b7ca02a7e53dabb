"""A small "cluster" made of network namespaces on this machine (shared by the
netns tests; conftest.py exposes its fixtures).

`node` plays the Kubernetes node: a bridge (10.77.0.1/24, the pods' gateway, where the
Ingress controller's requests come from) and an "outside" address (198.51.100.1, the
internet). Each pod is its own namespace with one veth (eth0) on the bridge, loopback
up and a default route via the node. Policy is enforced inside each pod's namespace by
its own nftables table, as a CNI does per pod. Nothing touches the host's namespace:
deleting the namespaces removes everything (veths, bridge, rules).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

BIN = os.environ.get("RLMBOX_BIN", "build/rlmbox")
HERE = os.path.dirname(os.path.abspath(__file__))
NSCLIENT = os.path.join(HERE, "nsclient.py")
MODEL_SERVER = os.path.join(HERE, "..", "fixtures", "scripted_model.py")

PREFIX = "rlmnt-"          # every namespace these tests create starts with this
GATEWAY = "10.77.0.1"      # the node's bridge address (Ingress controller, kube-dns)
OUTSIDE = "198.51.100.1"   # an address beyond the node (TEST-NET-2): "the internet"
OUTSIDE_PORT = 9000        # something listens there, on both node addresses


def sh(*args, check=True):
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def _netns_list():
    out = sh("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _delete_netns(name):
    """Kills what still runs in a namespace of ours, then deletes it."""
    for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    sh("ip", "netns", "delete", name, check=False)


def _clean_stale():
    """Namespaces left by a killed earlier run (its pid, in the name, is gone)."""
    for name in _netns_list():
        if not name.startswith(PREFIX):
            continue
        try:
            pid = int(name[len(PREFIX):].split("-")[0])
        except ValueError:
            pid = -1
        if pid == os.getpid():
            continue
        if pid > 0 and os.path.exists(f"/proc/{pid}"):
            continue  # another run in progress
        _delete_netns(name)


def _why_not_runnable():
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    probe = f"{PREFIX}{os.getpid()}-probe"
    r = sh("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return "`ip netns add` does not work here: " + r.stderr.strip()
    sh("ip", "netns", "delete", probe, check=False)
    return None


class Cluster:
    def __init__(self, tag, tmp_path):
        self.tag = tag
        self.tmp = tmp_path
        self.namespaces = []
        self.procs = []
        self.node = self._netns("node")
        self.exec_in(self.node, "ip", "link", "add", "br0", "type", "bridge")
        self.exec_in(self.node, "ip", "addr", "add", GATEWAY + "/24", "dev", "br0")
        self.exec_in(self.node, "ip", "link", "set", "br0", "up")
        self.exec_in(self.node, "ip", "addr", "add", OUTSIDE + "/32", "dev", "lo")
        # An outside host: anything a pod should not reach.
        self.start(self.node, [sys.executable, NSCLIENT, "listen", "0.0.0.0", str(OUTSIDE_PORT)],
                   "outside")
        self.wait_port(self.node, OUTSIDE, OUTSIDE_PORT)

    # ---- namespaces and links -------------------------------------------------------
    def _netns(self, role):
        name = f"{PREFIX}{os.getpid()}-{self.tag}-{role}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        # IPv4 only: no IPv6 neighbour discovery noise in the counters.
        self.exec_in(name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        self.exec_in(name, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        self.exec_in(name, "ip", "link", "set", "lo", "up")
        return name

    def exec_in(self, ns, *args, check=True):
        return sh("ip", "netns", "exec", ns, *args, check=check)

    def pod(self, role, address):
        """A pod: its own namespace, eth0 on the node's bridge, default route via it."""
        ns = self._netns(role)
        host_end = "v-" + role[:12]
        self.exec_in(self.node, "ip", "link", "add", host_end, "type", "veth",
                 "peer", "name", "eth0", "netns", ns)
        self.exec_in(self.node, "ip", "link", "set", host_end, "master", "br0")
        self.exec_in(self.node, "ip", "link", "set", host_end, "up")
        self.exec_in(ns, "ip", "addr", "add", address + "/24", "dev", "eth0")
        self.exec_in(ns, "ip", "link", "set", "eth0", "up")
        self.exec_in(ns, "ip", "route", "add", "default", "via", GATEWAY)
        return ns

    def nft(self, ns, ruleset):
        """Loads an nftables ruleset inside a namespace (its own table, like a CNI)."""
        path = self.tmp / f"{ns}.nft"
        path.write_text(ruleset)
        r = self.exec_in(ns, "nft", "-f", str(path), check=False)
        assert r.returncode == 0, f"nft -f failed in {ns}:\n{r.stderr}\n{ruleset}"

    def counter(self, ns, table, name):
        out = self.exec_in(ns, "nft", "-j", "list", "counter", "inet", table, name).stdout
        for item in json.loads(out)["nftables"]:
            if "counter" in item:
                return item["counter"]["packets"]
        raise AssertionError(f"no counter {name} in {ns}")

    def ruleset(self, ns):
        return self.exec_in(ns, "nft", "list", "ruleset").stdout

    # ---- processes --------------------------------------------------------------------
    def start(self, ns, args, name, env=None):
        log = open(self.tmp / f"{name}.log", "w")
        p = subprocess.Popen(["ip", "netns", "exec", ns, *args], env=env,
                             stdout=log, stderr=subprocess.STDOUT)
        p.name, p.log_path = name, self.tmp / f"{name}.log"
        self.procs.append(p)
        return p

    def logs(self):
        out = []
        for p in self.procs:
            try:
                out.append(f"--- {p.name} (exit {p.poll()}) ---\n" + p.log_path.read_text()[-4000:])
            except OSError:
                pass
        return "\n".join(out)

    def start_model(self, ns, address, script, port=443):
        """The scripted OpenAI-compatible model, listening on address:port in ns."""
        script_path = self.tmp / "model-script.json"
        script_path.write_text(json.dumps(script))
        log = self.tmp / "model-requests.jsonl"
        self.start(ns, [sys.executable, MODEL_SERVER, "--host", address, "--port", str(port),
                        "--script", str(script_path), "--log", str(log)], "model")
        self.wait_port(ns, address, port)
        return log

    def probe(self, ns, host, port, timeout=1.0):
        """A real TCP connect from inside ns: ok | refused | timeout | denied | ..."""
        return self.exec_in(ns, sys.executable, NSCLIENT, "probe", host, str(port),
                        str(timeout)).stdout.strip()

    def wait_port(self, ns, host, port, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.probe(ns, host, port, 0.5) == "ok":
                return
            time.sleep(0.1)
        raise AssertionError(f"{host}:{port} not listening in {ns}\n{self.logs()}")

    def http(self, ns, method, url, body=None):
        """One HTTP request from inside ns; returns (status, parsed body)."""
        args = [sys.executable, NSCLIENT, "http", method, url]
        if body is not None:
            path = self.tmp / f"body-{time.monotonic_ns()}.json"
            path.write_text(json.dumps(body))
            args.append(str(path))
        r = json.loads(self.exec_in(ns, *args).stdout)
        return r["status"], r.get("body", r.get("error"))

    def wait_http(self, ns, url, timeout=60):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            for p in self.procs:
                assert p.poll() is None, f"{p.name} exited\n{self.logs()}"
            last = self.http(ns, "GET", url)
            if last[0] == 200:
                return last[1]
            time.sleep(0.2)
        raise AssertionError(f"{url} from {ns}: {last}\n{self.logs()}")

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for ns in reversed(self.namespaces):  # pods first, the node (bridge) last
            _delete_netns(ns)


@pytest.fixture(scope="session", autouse=True)
def netns_runnable():
    why = _why_not_runnable()
    if why:
        pytest.skip(why)
    _clean_stale()
    if not shutil.which("nft"):
        pytest.fail("nft is missing: run scripts/install-system-deps.sh (Debian package nftables)")
    yield
    _clean_stale()


@pytest.fixture
def cluster(tmp_path):
    """Returns a function(tag) -> Cluster; every namespace is deleted afterwards."""
    made = []

    def make(tag):
        c = Cluster(tag, tmp_path)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.close()
        # Also what a Cluster() that failed half way had already made.
        for name in _netns_list():
            if name.startswith(f"{PREFIX}{os.getpid()}-"):
                _delete_netns(name)
