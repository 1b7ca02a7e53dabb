"""The runtime image's layout, reproduced with the real build: /opt/rlmbox as the
Dockerfile lays it out (binary, guest, module cache compiled by `rlmbox run` in
the build stage, all root-owned), then serve-exec started as the image's
non-root uid with no HOME. The read-only cache must be used as it is: the guest
is not recompiled and nothing is written."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import ROOT

BIN = os.path.abspath(os.environ.get("RLMBOX_BIN", os.path.join(ROOT, "build", "rlmbox")))
UID = 65532  # USER in deploy/docker/Dockerfile


def guest_dir():
    cache = os.path.join(os.path.dirname(BIN), "CMakeCache.txt")
    with open(cache) as f:
        m = re.search(r"^RLMBOX_GUEST_DIR:PATH=(.*)$", f.read(), re.M)
    return m.group(1)


@pytest.fixture(scope="module")
def image_root():
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run as the image's uid")
    top = tempfile.mkdtemp(prefix="rlmbox-image-")
    os.chmod(top, 0o755)
    opt = os.path.join(top, "opt", "rlmbox")
    os.makedirs(os.path.join(opt, "bin"))
    shutil.copy2(BIN, os.path.join(opt, "bin", "rlmbox"))
    shutil.copy2(os.path.join(ROOT, "deploy", "docker", "healthcheck.sh"), os.path.join(opt, "bin", "healthcheck"))
    src = guest_dir()
    os.makedirs(os.path.join(opt, "guest"))
    shutil.copy2(os.path.join(src, "guest.wasm"), os.path.join(opt, "guest"))
    shutil.copytree(os.path.join(src, "lib"), os.path.join(opt, "guest", "lib"))
    # The build stage: compile the guest once into the module cache.
    env = dict(os.environ, RLMBOX_GUEST_DIR=os.path.join(opt, "guest"),
               RLMBOX_MODULE_CACHE=os.path.join(opt, "modules"))
    p = subprocess.run([os.path.join(opt, "bin", "rlmbox"), "run", "-c", "pass"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    subprocess.run(["chmod", "-R", "a+rX,go-w", top], check=True)
    yield opt
    shutil.rmtree(top, ignore_errors=True)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readonly_module_cache_is_used_by_the_nonroot_user(image_root):
    modules = os.path.join(image_root, "modules")
    before = sorted(os.listdir(modules))
    assert any(n.endswith(".cwasm") for n in before), before
    st = os.stat(modules)
    assert st.st_uid == 0 and st.st_mode & 0o022 == 0  # root-owned, not writable by the service user
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", suffix=".log")
    env = {"PATH": "/usr/bin:/bin", "RLMBOX_GUEST_DIR": os.path.join(image_root, "guest"),
           "RLMBOX_MODULE_CACHE": modules}
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups",
         os.path.join(image_root, "bin", "rlmbox"), "serve-exec", "--port", str(port), "--warm", "1"],
        env=env, cwd="/", stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.time() + 30
        ready = False
        while time.time() < deadline and proc.poll() is None:
            r = subprocess.run([os.path.join(image_root, "bin", "healthcheck"), "--path", "/ready", str(port)])
            if r.returncode == 0:
                ready = True
                break
            time.sleep(0.2)
        log.seek(0)
        logs = log.read()
        assert ready, logs
        engine = [json.loads(line) for line in logs.splitlines() if '"engine_ready"' in line]
        assert engine and engine[0]["module_from_cache"] is True, logs
        req = urllib.request.Request(f"http://127.0.0.1:{port}/execute", method="POST",
                                     data=json.dumps({"code": "import os\nx = 6 * 7\nprint(x)"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            body = json.loads(r.read())
        assert body["success"] is True and body["stdout"] == "42\n", body
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert sorted(os.listdir(modules)) == before  # nothing written


def runtime_packages():
    """The packages the Dockerfile's runtime stage installs."""
    with open(os.path.join(ROOT, "deploy", "docker", "Dockerfile")) as f:
        text = f.read()
    stage = text[text.index(" AS runtime"):]
    stage = re.sub(r"\\\n", " ", stage)
    packages = set()
    for line in stage.splitlines():
        for cmd in line.split("&&"):
            words = cmd.split()
            if words[:2] == ["apt-get", "install"] or words[1:3] == ["apt-get", "install"]:
                skip = False
                for w in words[words.index("install") + 1:]:
                    if skip:
                        skip = False
                    elif w == "-t":
                        skip = True
                    elif not w.startswith("-"):
                        packages.add(w)
    return packages


def test_runtime_stage_installs_every_library_the_binary_links():
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                        subprocess.run(["readelf", "-d", BIN], capture_output=True, text=True,
                                       check=True).stdout)
    assert needed
    listed = runtime_packages()
    missing = {}
    for lib in needed:
        path = subprocess.run(["sh", "-c", f"ldconfig -p | grep -m1 '{lib} ' | sed 's/.*=> //'"],
                              capture_output=True, text=True).stdout.strip()
        owner = ""
        for candidate in (path, os.path.realpath(path) if path else "", f"*/{lib}"):
            if candidate and not owner:
                owner = subprocess.run(["dpkg", "-S", candidate], capture_output=True,
                                       text=True).stdout.split(":")[0].split(",")[0].strip()
        if owner in ("libc6", "libgcc-s1"):  # in every Debian image
            continue
        if owner not in listed:
            missing[lib] = owner
    assert not missing, f"libraries whose packages the runtime stage does not install: {missing}"
