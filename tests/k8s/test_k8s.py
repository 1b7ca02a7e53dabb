"""rlmbox on a real single-node Kubernetes cluster (scripts/k8s-cluster.sh): the
image from deploy/docker/Dockerfile, the Helm chart in both topologies and both
kustomize overlays, each scaled down for 2 cores by tests/k8s/values-test.yaml or
tests/k8s/overlays (nothing else changed). Every check goes through the Services
as a client inside the cluster would: an RLM request whose code calls
llm_query() (the scripted model runs on the node), sessions pinned to their pod
by the advertised URL, an execution pod deleted in the middle of an RLM run, a
`helm upgrade` with /execute answering throughout, server-side dry runs and Pod
Security "restricted" admission. The host is checked unchanged afterwards."""
import base64
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from code_word_script import CODE_WORD_RULES  # noqa: E402
from cluster import (CLUSTER, IMAGE_SCRIPT, MODEL_PORT, NODE_IP, ROOT, TOOLS, Cluster,
                     pause_archive, run)

HERE = os.path.dirname(__file__)
CHART = os.path.join(ROOT, "deploy", "helm", "rlmbox")
VALUES = os.path.join(HERE, "values-test.yaml")
UID = 65532  # USER in deploy/docker/Dockerfile

SCRIPT = {"rules": [
    # The run whose execution pod is deleted: its second reply comes late, and the
    # test deletes the pod that holds the session meanwhile.
    {"match": "kept-step-one", "delay": 10, "reply": "```repl\nprint(kept)\n```"},
    {"match": "Query: Keep a value.", "reply": "```repl\nkept = 'kept-step-one'\nprint(kept)\n```"},
    *CODE_WORD_RULES,
]}

# A minimal ServiceMonitor CRD (the chart and the base render one; the
# prometheus-operator is not part of this cluster).
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
             "names": {"plural": "servicemonitors", "singular": "servicemonitor",
                       "kind": "ServiceMonitor", "listKind": "ServiceMonitorList"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {
                               "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}


def podman_env():
    out = run([IMAGE_SCRIPT, "env"]).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        k, _, v = line.partition("=")
        env[k] = v
    return env


def host_state():
    """What the cluster could leave behind on the host (other tests may run beside)."""
    def read(cmd):
        return subprocess.run(cmd, capture_output=True, text=True).stdout

    def sysctl(name):
        with open("/proc/sys/" + name) as f:
            return f.read().strip()
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(line.split()[4] for line in f if "rlmbox-k8s" in line or "k8s-" in line)
    return {
        "links": sorted(l.split(":")[1].strip() for l in read(["ip", "-o", "link"]).splitlines()),
        "routes": read(["ip", "route"]),
        "nft": hashlib.sha256(read(["nft", "list", "ruleset"]).encode()).hexdigest(),
        "sysctls": {n: sysctl(n) for n in ("net/ipv4/ip_forward", "kernel/panic",
                                           "kernel/panic_on_oops", "vm/overcommit_memory",
                                           "vm/panic_on_oom", "kernel/keys/root_maxkeys",
                                           "kernel/keys/root_maxbytes")},
        "netns": sorted(n for n in os.listdir("/run/netns") if n.startswith("rlmbox-k8s"))
        if os.path.isdir("/run/netns") else [],
        "cgroups": sorted(glob.glob("/sys/fs/cgroup/*/**/rlmbox-k8s-*", recursive=True)),
        "mounts": mounts,
        "paths": {p: os.path.exists(p) for p in ("/var/lib/kubelet", "/var/lib/containerd",
                                                 "/run/containerd", "/var/lib/cni",
                                                 "/etc/cni/net.d", "/var/log/pods")},
    }


@pytest.fixture(scope="module")
def k8s(tmp_path_factory):
    for script, what in ((CLUSTER, "the test cluster"), (IMAGE_SCRIPT, "the image")):
        check = subprocess.run([script, "check"], capture_output=True, text=True)
        if check.returncode == 3:
            pytest.skip(f"{what} cannot run here: {check.stdout.strip()}")
    before = host_state()
    t0 = time.time()
    built = run([IMAGE_SCRIPT, "build"], timeout=3600)
    image = built.stdout.strip().splitlines()[-1]
    t_image = time.time() - t0
    tools = run([TOOLS], timeout=3600).stdout.strip().splitlines()[-1]
    t_tools = time.time() - t0 - t_image
    workdir = tmp_path_factory.mktemp("cluster")
    c = Cluster(workdir)
    try:
        c.up()
        archive = os.path.join(c.dir, "rlmbox.tar")
        run(["podman", "save", "--format", "docker-archive", "-o", archive, image],
            env=podman_env(), timeout=600)
        pause = os.path.join(c.dir, "pause.tar")
        pause_archive(os.path.join(tools, "pause"), pause)
        t1 = time.time()
        c.load_image(pause)
        c.load_image(archive)
        os.remove(archive)
        print(f"image {t_image:.0f} s, cluster binaries {t_tools:.0f} s, cluster up "
              f"{c.up_seconds:.1f} s, images loaded {time.time() - t1:.1f} s")
        c.model_log = c.start_model(SCRIPT)
        c.kubectl("apply", "-f", "-", input=json.dumps(SERVICE_MONITOR_CRD))
        c.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                  "crd/servicemonitors.monitoring.coreos.com")
        yield c
    except Exception:
        print(c.logs())
        raise
    finally:
        c.down()
        run([IMAGE_SCRIPT, "cleanup"], check=False)
        shutil.rmtree(workdir, ignore_errors=True)
    assert host_state() == before, "the cluster tests changed the host"


def namespace(c, name):
    """A namespace that enforces Pod Security "restricted" (as deploy/k8s's own does)."""
    c.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest"}}}))
    # Pods are admitted once the namespace's default service account exists.
    deadline = time.time() + 60
    while c.kubectl("get", "serviceaccount", "-n", name, "default", check=False).returncode:
        assert time.time() < deadline, f"no default service account in {name}"
        time.sleep(0.5)


def delete_namespace(c, name):
    c.kubectl("delete", "namespace", name, "--wait=true", "--timeout=180s", check=False)


def ready_pods(c, ns, selector):
    pods = c.get("pods", "-n", ns, "-l", selector)["items"]
    return [p for p in pods if p["metadata"].get("deletionTimestamp") is None and
            any(cond["type"] == "Ready" and cond["status"] == "True"
                for cond in p["status"].get("conditions", []))]


def wait_ready(c, ns, selector, count, timeout=180):
    """The pods, once `count` of them are Ready (the HPA raises a Deployment to its
    minReplicas only after helm --wait has seen the first one)."""
    deadline = time.time() + timeout
    while len(pods := ready_pods(c, ns, selector)) < count:
        assert time.time() < deadline, f"{len(pods)} of {count} pods Ready in {ns}\n{c.logs(5)}"
        time.sleep(0.5)
    return pods


def service_url(c, ns, name, port=8000):
    svc = c.get("service", "-n", ns, name)
    return f"http://{svc['spec']['clusterIP']}:{port}"


def secret_value(c, ns, name, key):
    return base64.b64decode(c.get("secret", "-n", ns, name)["data"][key]).decode()


def sub_calls(c):
    if not os.path.exists(c.model_log):
        return []
    with open(c.model_log) as f:
        return [q for q in map(json.loads, f)
                if "Sub-question:" in q["body"]["messages"][-1]["content"]]


def assert_rlm_answer(c, url, backend):
    """An RLM request through the inference Service whose code calls llm_query()."""
    status, ready = c.http("GET", url + "/ready")
    assert status == 200 and ready["backend"] == backend, ready
    before = len(sub_calls(c))
    status, r = c.http("POST", url + "/completion",
                       {"context": "The code word is kept by the model.",
                        "query": "What is the code word?"}, timeout=120)
    assert status == 200 and r["success"] is True and r["answer"] == "SWORDFISH", r
    assert len(sub_calls(c)) == before + 1, "the llm_query host call never reached the model"
    assert all(q["headers"]["Authorization"] == "Bearer inference-only-key"
               for q in sub_calls(c))


def container_facts(c, ns):
    """uid, capabilities, seccomp and root filesystem of every rlmbox container
    process of the namespace's pods, read from /proc on the node."""
    pods = {p["metadata"]["uid"] for p in c.get("pods", "-n", ns)["items"]}
    tasks = c.ctr("tasks", "ls").stdout.splitlines()[1:]
    facts = []
    for line in tasks:
        cid, pid = line.split()[0], int(line.split()[1])
        info = json.loads(c.ctr("containers", "info", cid).stdout)
        labels = info.get("Labels", {})
        if labels.get("io.kubernetes.pod.uid") not in pods or \
                labels.get("io.cri-containerd.kind") != "container":
            continue
        with open(f"/proc/{pid}/status") as f:
            status = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
        with open(f"/proc/{pid}/mountinfo") as f:
            root = next(l.split() for l in f if l.split()[4] == "/")
        facts.append({"container": labels.get("io.kubernetes.container.name"),
                      "uid": int(status["Uid"].split()[0]), "CapEff": status["CapEff"],
                      "Seccomp": status["Seccomp"], "NoNewPrivs": status["NoNewPrivs"],
                      "root_ro": "ro" in root[5].split(",")})
    return facts


def assert_locked_down(c, ns, expected_containers):
    facts = container_facts(c, ns)
    assert sorted(f["container"] for f in facts) == sorted(expected_containers), facts
    for f in facts:
        assert f["uid"] == UID and f["CapEff"] == "0000000000000000", f
        assert f["Seccomp"] == "2" and f["NoNewPrivs"] == "1" and f["root_ro"], f


def helm_install(c, release, ns, topology, *extra):
    namespace(c, ns)
    t0 = time.time()
    c.helm("install", release, CHART, "-n", ns, "-f", VALUES, "--set", f"topology={topology}",
           "--wait", "--timeout", "5m", *extra)
    return time.time() - t0


def test_helm_different_pod(k8s):
    c, ns = k8s, "rlmbox-helm-dp"
    t0 = time.time()
    took = helm_install(c, "rlmbox", ns, "different-pod")
    print(f"helm install --wait (different-pod): {took:.1f} s")
    exec_sel = "app.kubernetes.io/component=execution"
    assert len(wait_ready(c, ns, exec_sel, 2)) == 2
    print(f"both execution pods Ready: {time.time() - t0:.1f} s after helm install")
    assert_locked_down(c, ns, ["inference", "execution", "execution"])
    inference = service_url(c, ns, "rlmbox-inference")
    assert_rlm_answer(c, inference, "remote")

    # Sessions: the pod that holds one names itself; its later cells go there.
    token = secret_value(c, ns, "rlmbox-exec-token", "token")
    auth = {"Authorization": f"Bearer {token}"}
    wasm = service_url(c, ns, "rlmbox-wasm-repl")
    pod_urls = {f"http://{p['status']['podIP']}:8000" for p in ready_pods(c, ns, exec_sel)}
    seen = set()
    for i in range(12):
        status, s = c.http("POST", wasm + "/session", {}, headers=auth)
        assert status == 200, s
        assert s["endpoint"] in pod_urls, (s, pod_urls)
        seen.add(s["endpoint"])
        url = f"{s['endpoint']}/session/{s['session_id']}"
        assert c.http("POST", url + "/execute", {"code": f"x = {i}"}, headers=auth)[0] == 200
        status, r = c.http("POST", url + "/execute", {"code": "print(x * 10)"}, headers=auth)
        assert status == 200 and r["stdout"] == f"{i * 10}\n", r
        c.http("DELETE", url, headers=auth)
    assert seen == pod_urls, "new sessions did not spread over both execution pods"

    # An execution pod deleted in the middle of an RLM run: its session is lost
    # and the run says so; the next request succeeds on another pod.
    result = {}
    run_thread = threading.Thread(target=lambda: result.update(r=c.http(
        "POST", inference + "/completion", {"context": "x", "query": "Keep a value."},
        timeout=120)))
    run_thread.start()
    holder = None
    deadline = time.time() + 30
    while holder is None and time.time() < deadline:
        for p in ready_pods(c, ns, exec_sel):
            status, s = c.http("GET", f"http://{p['status']['podIP']}:8000/sessions",
                               headers=auth)
            if status == 200 and s["sessions"]:
                holder = p["metadata"]["name"]
        time.sleep(0.2)
    assert holder, "the RLM run's session was never opened"
    before = {p["metadata"]["name"] for p in ready_pods(c, ns, exec_sel)}
    c.kubectl("delete", "pod", "-n", ns, holder, "--wait=false")
    run_thread.join(timeout=120)
    status, r = result["r"]
    assert status == 200 and r["success"] is False, r
    assert "session was lost" in r["error"], r
    assert_rlm_answer(c, inference, "remote")
    # The Deployment replaces the pod, and new sessions reach the new one too.
    pods = wait_ready(c, ns, exec_sel, 2)
    assert holder not in [p["metadata"]["name"] for p in pods]
    fresh = [p for p in pods if p["metadata"]["name"] not in before]
    assert len(fresh) == 1, (before, [p["metadata"]["name"] for p in pods])
    fresh_url = f"http://{fresh[0]['status']['podIP']}:8000"
    for _ in range(40):
        status, s = c.http("POST", wasm + "/session", {}, headers=auth)
        assert status == 200, s
        url = f"{s['endpoint']}/session/{s['session_id']}"
        status, r = c.http("POST", url + "/execute", {"code": "print('on', 6 * 7)"}, headers=auth)
        assert status == 200 and r["stdout"] == "on 42\n", r
        c.http("DELETE", url, headers=auth)
        if s["endpoint"] == fresh_url:
            break
    else:
        raise AssertionError(f"no new session reached the replacement pod {fresh_url}")

    # helm upgrade to a changed value: the rollout replaces both execution pods
    # (maxUnavailable 0) while /execute keeps answering through the Service.
    counts = {"ok": 0, "failed": 0}
    failures = []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                status, r = c.http("POST", wasm + "/execute", {"code": "print(6 * 7)"},
                                   headers=auth, timeout=30)
            except OSError as e:  # refused, reset, timed out
                status, r = None, repr(e)
            if status == 200 and isinstance(r, dict) and r.get("stdout") == "42\n":
                counts["ok"] += 1
            else:
                counts["failed"] += 1
                failures.append((status, str(r)[:200]))
    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1)
    old = {p["metadata"]["name"] for p in ready_pods(c, ns, exec_sel)}
    t0 = time.time()
    c.helm("upgrade", "rlmbox", CHART, "-n", ns, "-f", VALUES, "--set", "topology=different-pod",
           "--set", "execution.warm=2", "--wait", "--timeout", "5m")
    deadline = time.time() + 120
    while time.time() < deadline:
        now = {p["metadata"]["name"] for p in ready_pods(c, ns, exec_sel)}
        pods = c.get("pods", "-n", ns, "-l", exec_sel)["items"]
        if len(now) == 2 and not (now & old) and len(pods) == 2:
            break
        time.sleep(0.5)
    took = time.time() - t0
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join()
    print(f"helm upgrade: {took:.1f} s, /execute during it: {counts}")
    assert not (now & old), "the upgrade did not replace the execution pods"
    assert counts["failed"] == 0, failures[:5]
    assert counts["ok"] > 10
    c.helm("uninstall", "rlmbox", "-n", ns, "--wait")
    delete_namespace(c, ns)


def test_helm_sidecar(k8s):
    c, ns = k8s, "rlmbox-helm-sc"
    took = helm_install(c, "rlmbox", ns, "sidecar")
    print(f"helm install --wait (sidecar): {took:.1f} s")
    assert_locked_down(c, ns, ["inference", "wasm-manager"])
    assert_rlm_answer(c, service_url(c, ns, "rlmbox-inference"), "sidecar")
    c.helm("uninstall", "rlmbox", "-n", ns, "--wait")
    delete_namespace(c, ns)


@pytest.mark.parametrize("topology", ["different-pod", "sidecar"])
def test_kustomize_overlay(k8s, topology):
    c = k8s
    ns = f"rlmbox-kustomize-{topology}"
    overlay = os.path.join(HERE, "overlays", topology)
    t0 = time.time()
    c.kubectl("apply", "-k", overlay)
    wait_ready(c, ns, "app.kubernetes.io/component=inference", 1)
    if topology == "different-pod":
        wait_ready(c, ns, "app.kubernetes.io/component=execution", 2)
    print(f"kubectl apply -k ({topology}) to Ready: {time.time() - t0:.1f} s")
    assert_locked_down(c, ns, ["inference", "execution", "execution"]
                       if topology == "different-pod" else ["inference", "wasm-manager"])
    assert_rlm_answer(c, service_url(c, ns, "rlm-inference"),
                      "remote" if topology == "different-pod" else "sidecar")
    c.kubectl("delete", "-k", overlay, "--wait=true", "--timeout=180s", check=False)


def json_stream(text):
    """The objects of kubectl's -o json output for several objects (one after another)."""
    decoder, i, out = json.JSONDecoder(), 0, []
    while (i := len(text) - len(text[i:].lstrip())) < len(text):
        obj, i = decoder.raw_decode(text, i)
        out.extend(obj.get("items", [obj]))
    return out


def test_server_dry_run_and_pod_security(k8s):
    """Every object of both charts and both overlays, as the API server itself
    validates it, in namespaces that enforce Pod Security "restricted"."""
    c = k8s
    tools = run([TOOLS]).stdout.strip().splitlines()[-1]
    renders = {}
    for topology in ("different-pod", "sidecar"):
        ns = f"rlmbox-dry-{topology}"
        namespace(c, ns)
        renders[f"helm {topology}"] = (ns, run(
            [os.path.join(tools, "bin", "helm"), "template", "rlmbox", CHART, "-n", ns,
             "-f", VALUES, "--set", f"topology={topology}", "--kube-version", "1.36.3"]).stdout)
        # The overlay's own Namespace must exist for a dry run of what goes in it.
        namespace(c, f"rlmbox-kustomize-{topology}")
        renders[f"kustomize {topology}"] = (None, c.kubectl(
            "kustomize", os.path.join(HERE, "overlays", topology)).stdout)
    for what, (ns, manifest) in renders.items():
        args = ["apply", "--dry-run=server", "-f", "-"] + (["-n", ns] if ns else [])
        r = c.kubectl(*args, input=manifest, check=False)
        assert r.returncode == 0, f"{what}: {r.stderr}"
        assert "PodSecurity" not in r.stderr and "Warning" not in r.stderr, f"{what}: {r.stderr}"
        assert r.stdout.count("(server dry run)") == manifest.count("\nkind: ") + \
            manifest.startswith("kind: "), f"{what}: {r.stdout}"
    # The pods themselves against "restricted": a server dry run of each pod template.
    for what, (ns, manifest) in renders.items():
        for obj in json_stream(c.kubectl("create", "--dry-run=client", "-o", "json", "-f", "-",
                                         input=manifest).stdout):
            if obj["kind"] != "Deployment":
                continue
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "dry-" + obj["metadata"]["name"],
                                "namespace": obj["metadata"].get("namespace", ns)},
                   "spec": obj["spec"]["template"]["spec"]}
            r = c.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod),
                          check=False)
            assert r.returncode == 0 and "Warning" not in r.stderr, f"{what}: {r.stderr}"
    for topology in ("different-pod", "sidecar"):
        delete_namespace(c, f"rlmbox-dry-{topology}")
        delete_namespace(c, f"rlmbox-kustomize-{topology}")
