"""The real image: deploy/docker/Dockerfile built with podman (scripts/container-image.sh)
and run locked down as a user runs it — read-only root, every capability dropped,
no new privileges — then /health, /ready, /execute, the process facts inside
(uid 65532, no capabilities, seccomp on), the image's HEALTHCHECK and a SIGTERM
stop. The host is checked unchanged afterwards (links, nftables, ip_forward,
mounts, containers)."""
import glob
import hashlib
import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "container-image.sh")
UID = 65532  # USER in deploy/docker/Dockerfile
ENV = None  # podman's settings (scripts/container-image.sh env), set by the image fixture


def podman_env():
    out = subprocess.run([SCRIPT, "env"], capture_output=True, text=True, check=True).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        k, _, v = line.partition("=")
        env[k] = v
    return env


def podman(*args, check=True, timeout=120):
    return subprocess.run(["podman", *args], env=ENV, capture_output=True, text=True,
                          check=check, timeout=timeout)


def host_state():
    """What a container run could leave behind on the host."""
    def read(cmd):
        return subprocess.run(cmd, capture_output=True, text=True).stdout
    # Only what podman makes: other tests may run beside this one.
    links = sorted(name for name in (l.split(":")[1].strip().split("@")[0]
                                     for l in read(["ip", "-o", "link"]).splitlines())
                   if name.startswith(("cni", "veth", "podman")))
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forward = f.read().strip()
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(l.split()[4] for l in f
                        if "podman" in l or "containers" in l or " overlay " in l)
    paths = {p: os.path.exists(p) for p in
             ("/run/libpod", "/var/lib/containers", "/var/tmp/buildah-cache")}
    paths["/run/rlmbox-podman-*"] = sorted(glob.glob("/run/rlmbox-podman-*"))
    return {"links": links, "ip_forward": forward,
            "nft": hashlib.sha256(read(["nft", "list", "ruleset"]).encode()).hexdigest(),
            "mounts": mounts, "paths": paths, "cni": sorted(os.listdir("/etc/cni/net.d"))
            if os.path.isdir("/etc/cni/net.d") else []}


@pytest.fixture(scope="module")
def image():
    check = subprocess.run([SCRIPT, "check"], capture_output=True, text=True)
    if check.returncode == 3:
        pytest.skip("the image cannot be built here: " + check.stdout.strip())
    global ENV
    ENV = podman_env()
    before = host_state()
    started = time.time()
    built = subprocess.run([SCRIPT, "build"], capture_output=True, text=True, timeout=3600)
    assert built.returncode == 0, built.stderr[-4000:]
    ref = built.stdout.strip().splitlines()[-1]
    print(f"image {ref} ready in {time.time() - started:.0f} s")
    yield ref
    subprocess.run([SCRIPT, "cleanup"], check=True, timeout=120)
    after = host_state()
    assert after == before, "the image tests changed the host"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, method, path, body=None, timeout=10):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


LOCKED_DOWN = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
               "--security-opt", "no-new-privileges"]


@pytest.fixture
def running(image):
    """serve-exec in the image, locked down, on a free host port."""
    port = free_port()
    name = f"rlmbox-test-{port}"
    podman("run", "-d", "--name", name, "--network", "host", *LOCKED_DOWN, image,
           "serve-exec", "--host", "127.0.0.1", "--port", str(port), "--warm", "1")
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if http(port, "GET", "/ready")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.3)
    else:
        logs = podman("logs", name, check=False)
        pytest.fail("serve-exec in the image never became ready:\n" + logs.stdout + logs.stderr)
    yield name, port
    podman("rm", "-f", "-t", "0", name, check=False)


def test_the_image_is_configured_as_the_dockerfile_says(image):
    info = json.loads(podman("image", "inspect", image).stdout)[0]
    cfg = info["Config"]
    assert cfg["User"] == f"{UID}:{UID}"
    assert cfg["Entrypoint"] == ["/opt/rlmbox/bin/rlmbox"]
    assert cfg["Cmd"] == ["serve-exec", "--host", "0.0.0.0", "--port", "8000"]
    assert cfg["StopSignal"] == "SIGTERM"
    # Docker format keeps the HEALTHCHECK (an OCI image would drop it).
    assert info["Healthcheck"]["Test"] == ["CMD", "/opt/rlmbox/bin/healthcheck"]
    assert "RLMBOX_MODULE_CACHE=/opt/rlmbox/modules" in cfg["Env"]


def test_serves_locked_down_as_the_unprivileged_user(running):
    name, port = running
    assert http(port, "GET", "/health")[0] == 200
    status, body = http(port, "POST", "/execute", {"code": "import json\nprint(json.dumps([6 * 7]))"},
                        timeout=30)
    assert status == 200 and body["success"] is True and body["stdout"] == "[42]\n", body
    status, body = http(port, "POST", "/execute", {"code": "open('/etc/passwd').read()"}, timeout=30)
    assert body["success"] is False  # the guest sees no host file system
    # The server process inside: uid/gid 65532, no capabilities, seccomp, no new privileges.
    proc = podman("exec", name, "cat", "/proc/1/status").stdout
    fields = dict(line.split(":", 1) for line in proc.splitlines() if ":" in line)
    assert fields["Uid"].split()[:2] == [str(UID), str(UID)]
    assert fields["Gid"].split()[:2] == [str(UID), str(UID)]
    assert int(fields["CapEff"], 16) == 0 and int(fields["CapPrm"], 16) == 0
    assert fields["Seccomp"].strip() == "2"
    assert fields["NoNewPrivs"].strip() == "1"
    # The root file system is read-only; the module cache was used, not rebuilt.
    wrote = podman("exec", name, "touch", "/opt/rlmbox/x", check=False)
    assert wrote.returncode != 0 and "Read-only file system" in wrote.stderr
    logs = podman("logs", name).stderr + podman("logs", name).stdout
    ready = [json.loads(l) for l in logs.splitlines() if '"engine_ready"' in l]
    assert ready and ready[0]["module_from_cache"] is True, logs[-2000:]


def test_default_command_healthcheck_and_sigterm(image):
    """The image as shipped (its CMD: serve-exec on 0.0.0.0:8000) in a network
    namespace of its own with loopback only: its HEALTHCHECK turns healthy, and
    SIGTERM stops it cleanly."""
    name = "rlmbox-test-default"
    podman("run", "-d", "--name", name, "--network", "none", *LOCKED_DOWN, image)
    try:
        deadline = time.time() + 60
        while podman("healthcheck", "run", name, check=False).returncode != 0:
            assert time.time() < deadline, podman("logs", name, check=False).stderr[-2000:]
            time.sleep(0.5)
        _stop_and_check(name)
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def _stop_and_check(name):
    t = time.time()
    podman("stop", "-t", "20", name)
    took = time.time() - t
    state = json.loads(podman("inspect", name).stdout)[0]["State"]
    # Stopped by SIGTERM on its own (podman would SIGKILL after 20 s: exit 137).
    assert state["ExitCode"] == 0 and took < 10, (state, took)
