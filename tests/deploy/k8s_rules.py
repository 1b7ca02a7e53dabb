"""Our own rules over rendered Kubernetes manifests (deploy/k8s, deploy/helm).

check(docs, namespace) returns a list of problems, empty when every rule holds.
`docs` are the parsed objects of one topology; objects without a namespace are
in `namespace` (helm leaves it to the release). A pod's plane is told by what
its containers run: `rlmbox serve` is the inference plane, `rlmbox serve-exec`
the execution plane; a pod running both is a sidecar pod.

Rules (docs/deployment.md, design §7):
- every container: pinned image, non-root numeric user, read-only root fs, no
  privilege escalation, capabilities drop ALL, seccomp RuntimeDefault, CPU and
  memory requests and limits, liveness on /health and readiness on /ready,
  /tmp on an emptyDir, only env vars the binary reads;
- every namespace with pods has a default-deny policy (ingress and egress);
- the execution plane: no egress at all, ingress only from inference pods; a
  sidecar execution plane binds localhost only;
- the inference plane: egress only to DNS, HTTPS and the execution plane;
  ingress only from selected namespaces or pods, never from everywhere;
- LLM_API_KEY only in inference containers, from a Secret;
- Services, ServiceMonitors, HPAs, PDBs and WASM_SERVICE_URL point at things
  that exist.
"""
from __future__ import annotations

import re
from urllib.parse import urlparse

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}


def _ns(doc, namespace):
    return doc.get("metadata", {}).get("namespace") or namespace


def _name(doc):
    return f'{doc["kind"]}/{doc["metadata"]["name"]}'


def _selects(selector: dict | None, labels: dict) -> bool:
    """matchLabels semantics (all we use); an empty selector selects everything."""
    selector = selector or {}
    if selector.get("matchExpressions"):
        return False  # not used by our manifests; treat as not matching
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _role(container) -> str:
    args = list(container.get("command") or []) + list(container.get("args") or [])
    words = [a for a in args if not a.startswith("/")]  # skip an explicit binary path
    if "serve-exec" in words:
        return "execution"
    if "serve" in words:
        return "inference"
    return "other"


class Pod:
    """One pod template: its workload, labels, containers (init ones included)."""

    def __init__(self, workload, namespace):
        self.workload = workload
        self.namespace = _ns(workload, namespace)
        tmpl = workload["spec"]["template"]
        self.labels = tmpl.get("metadata", {}).get("labels", {}) or {}
        self.spec = tmpl["spec"]
        self.containers = list(self.spec.get("containers") or []) + list(self.spec.get("initContainers") or [])
        roles = {_role(c) for c in self.containers}
        if {"inference", "execution"} <= roles:
            self.kind = "sidecar"
        elif "execution" in roles:
            self.kind = "execution"
        elif "inference" in roles:
            self.kind = "inference"
        else:
            self.kind = "other"

    @property
    def name(self):
        return _name(self.workload)


def _probe_path(probe) -> str | None:
    if not probe:
        return None
    if "httpGet" in probe:
        return probe["httpGet"].get("path")
    cmd = (probe.get("exec") or {}).get("command") or []
    for i, word in enumerate(cmd):
        if word == "--path" and i + 1 < len(cmd):
            return cmd[i + 1]
    return None


def _image_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and last.rsplit(":", 1)[1] not in ("", "latest")


def _check_container(pod: Pod, c, env_allowed: set[str], problems: list[str]):
    where = f'{pod.name} container {c["name"]}'
    psc = pod.spec.get("securityContext") or {}
    sc = c.get("securityContext") or {}

    def eff(key):
        return sc.get(key, psc.get(key))

    if not _image_pinned(c.get("image", "")):
        problems.append(f"{where}: image {c.get('image')!r} is not pinned to a tag or digest")
    if eff("runAsNonRoot") is not True:
        problems.append(f"{where}: runAsNonRoot is not true")
    uid = eff("runAsUser")
    if not isinstance(uid, int) or uid <= 0:
        problems.append(f"{where}: runAsUser must be a numeric non-root uid (got {uid!r})")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if sc.get("privileged"):
        problems.append(f"{where}: privileged")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        problems.append(f"{where}: capabilities do not drop ALL")
    if (sc.get("capabilities") or {}).get("add"):
        problems.append(f"{where}: adds capabilities")
    if (eff("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: seccompProfile is not RuntimeDefault")
    res = c.get("resources") or {}
    for part in ("requests", "limits"):
        for key in ("cpu", "memory"):
            if key not in (res.get(part) or {}):
                problems.append(f"{where}: no {key} {part[:-1]}")
    if _probe_path(c.get("livenessProbe")) != "/health":
        problems.append(f"{where}: liveness probe is not GET /health")
    if _probe_path(c.get("readinessProbe")) != "/ready":
        problems.append(f"{where}: readiness probe is not GET /ready")
    volumes = {v["name"]: v for v in pod.spec.get("volumes") or []}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
    tmp = mounts.get("/tmp")
    if not tmp or "emptyDir" not in volumes.get(tmp["name"], {}):
        problems.append(f"{where}: /tmp is not an emptyDir (the root fs is read-only)")
    for m in mounts.values():
        v = volumes.get(m["name"], {})
        if not m.get("readOnly") and not ({"emptyDir", "secret", "configMap"} & v.keys()):
            problems.append(f"{where}: writable mount {m['mountPath']} is not an emptyDir")
    role = _role(c)
    # A variable may also exist only to be expanded into another one
    # (RLMBOX_ADVERTISE_URL: http://$(POD_IP):8000).
    expanded = {name for e in c.get("env") or [] for name in
                re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", str(e.get("value", "")))}
    for e in c.get("env") or []:
        if e["name"] not in env_allowed and e["name"] not in expanded:
            problems.append(f"{where}: env {e['name']} is not read by rlmbox")
        if e["name"] == "LLM_API_KEY":
            if role != "inference":
                problems.append(f"{where}: LLM_API_KEY outside the inference plane")
            if "secretKeyRef" not in (e.get("valueFrom") or {}):
                problems.append(f"{where}: LLM_API_KEY is not taken from a Secret")
        if role == "execution" and "secretKeyRef" in (e.get("valueFrom") or {}) and e["name"] != "RLMBOX_TOKEN":
            problems.append(f"{where}: the execution plane gets secret {e['name']}")
    if role == "execution" and any("secretRef" in f for f in c.get("envFrom") or []):
        problems.append(f"{where}: the execution plane gets a whole Secret through envFrom")


def _policies_for(pod: Pod, policies):
    return [p for p in policies if _ns(p, None) == pod.namespace and _selects(p["spec"].get("podSelector"), pod.labels)]


def _port_set(rule):
    return {(p.get("protocol", "TCP"), p.get("port")) for p in rule.get("ports") or []}


def check(docs: list[dict], namespace: str, env_allowed: set[str]) -> list[str]:
    problems: list[str] = []
    docs = [d for d in docs if d]
    for d in docs:
        d.setdefault("metadata", {})
        if d["kind"] != "Namespace" and not d["metadata"].get("namespace"):
            d["metadata"]["namespace"] = namespace
    pods = [Pod(d, namespace) for d in docs if d["kind"] in WORKLOAD_KINDS]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    services = [d for d in docs if d["kind"] == "Service"]
    if not pods:
        problems.append("no workloads rendered")

    for pod in pods:
        if pod.spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{pod.name}: automountServiceAccountToken is not false")
        if pod.spec.get("hostNetwork") or pod.spec.get("hostPID") or pod.spec.get("hostIPC"):
            problems.append(f"{pod.name}: shares a host namespace")
        for c in pod.containers:
            _check_container(pod, c, env_allowed, problems)

    # Default deny in every namespace that runs pods.
    for ns in sorted({p.namespace for p in pods}):
        deny = [p for p in policies if _ns(p, None) == ns and p["spec"].get("podSelector") in ({}, None)
                and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes") or [])
                and not p["spec"].get("ingress") and not p["spec"].get("egress")]
        if not deny:
            problems.append(f"namespace {ns}: no default-deny NetworkPolicy (ingress and egress)")

    inference = [p for p in pods if p.kind in ("inference", "sidecar")]
    execution = [p for p in pods if p.kind == "execution"]

    def peer_is_pod_of(peer, group):
        return (set(peer) == {"podSelector"} and peer["podSelector"].get("matchLabels")
                and any(_selects(peer["podSelector"], p.labels) for p in group))

    for pod in execution:
        mine = _policies_for(pod, policies)
        if not any("Egress" in (p["spec"].get("policyTypes") or []) for p in mine):
            problems.append(f"{pod.name}: no policy restricts the execution plane's egress")
        for p in mine:
            if p["spec"].get("egress"):
                problems.append(f"{_name(p)}: gives the execution plane egress")
            for rule in p["spec"].get("ingress") or []:
                peers = rule.get("from") or []
                if not peers:
                    problems.append(f"{_name(p)}: execution plane ingress from anywhere")
                for peer in peers:
                    if not peer_is_pod_of(peer, inference):
                        problems.append(f"{_name(p)}: execution plane ingress from {peer} (not the inference plane)")

    for pod in inference:
        mine = _policies_for(pod, policies)
        if not any("Egress" in (p["spec"].get("policyTypes") or []) for p in mine):
            problems.append(f"{pod.name}: no policy restricts the inference plane's egress")
        for p in mine:
            for rule in p["spec"].get("egress") or []:
                ports = _port_set(rule)
                peers = rule.get("to") or []
                if not ports:
                    problems.append(f"{_name(p)}: inference egress on every port")
                elif ports <= {("UDP", 53), ("TCP", 53)}:
                    if not peers:
                        problems.append(f"{_name(p)}: DNS egress to anywhere")
                elif ports == {("TCP", 443)}:
                    pass  # the LLM provider
                elif all(peer_is_pod_of(peer, execution) for peer in peers) and peers:
                    pass  # the execution plane
                else:
                    problems.append(f"{_name(p)}: inference egress {sorted(ports)} to {peers} is not DNS, HTTPS or the execution plane")
            for rule in p["spec"].get("ingress") or []:
                if not rule.get("from"):
                    problems.append(f"{_name(p)}: inference ingress from anywhere")
        if pod.kind == "sidecar":
            for c in pod.containers:
                if _role(c) == "execution":
                    args = c.get("args") or []
                    if "--sidecar" not in args or "--host" in args:
                        problems.append(f"{pod.name} container {c['name']}: sidecar execution plane must bind localhost (--sidecar, no --host)")
                    if c.get("ports"):
                        problems.append(f"{pod.name} container {c['name']}: sidecar execution plane exposes a port")

    # Cross references.
    for s in services:
        sel = s["spec"].get("selector") or {}
        if not any(_selects({"matchLabels": sel}, p.labels) and p.namespace == _ns(s, None) for p in pods):
            problems.append(f"{_name(s)}: selects no pod")
    for d in docs:
        if d["kind"] == "ServiceMonitor":
            match = [s for s in services if _selects(d["spec"].get("selector"), s["metadata"].get("labels") or {})]
            if not match:
                problems.append(f"{_name(d)}: selects no Service")
            for ep in d["spec"].get("endpoints") or []:
                if not any(ep.get("port") in {p.get("name") for p in s["spec"]["ports"]} for s in match):
                    problems.append(f"{_name(d)}: endpoint port {ep.get('port')!r} is on no selected Service")
        if d["kind"] == "HorizontalPodAutoscaler":
            ref = d["spec"]["scaleTargetRef"]
            if not any(p.workload["kind"] == ref["kind"] and p.workload["metadata"]["name"] == ref["name"] for p in pods):
                problems.append(f"{_name(d)}: scales {ref['kind']}/{ref['name']}, which is not rendered")
            for p in pods:
                if p.workload["metadata"]["name"] == ref["name"]:
                    for c in p.containers:
                        if "cpu" not in ((c.get("resources") or {}).get("requests") or {}):
                            problems.append(f"{_name(d)}: CPU utilisation needs CPU requests on every container")
        if d["kind"] == "PodDisruptionBudget":
            if not any(_selects(d["spec"].get("selector"), p.labels) for p in pods):
                problems.append(f"{_name(d)}: selects no pod")
        if d["kind"] == "Ingress":
            if not d["spec"].get("tls"):
                problems.append(f"{_name(d)}: no TLS")
    for pod in inference:
        for c in pod.containers:
            for e in c.get("env") or []:
                if e["name"] == "WASM_SERVICE_URL":
                    url = urlparse(e.get("value", ""))
                    svc = [s for s in services if s["metadata"]["name"] == url.hostname]
                    if not svc or url.port not in {p["port"] for p in svc[0]["spec"]["ports"]}:
                        problems.append(f"{pod.name}: WASM_SERVICE_URL {e.get('value')} names no Service port")
                    elif not any(_selects({"matchLabels": svc[0]["spec"]["selector"]}, p.labels) for p in execution):
                        problems.append(f"{pod.name}: WASM_SERVICE_URL's Service selects no execution pod")
    return problems


ENV_PATTERN = re.compile(r'(?:getenv|Env|EnvInt|EnvNumber)\(\s*"([A-Z][A-Z0-9_]*)"')


def env_vars_read_by_binary(src_dir: str) -> set[str]:
    """Every environment variable name rlmbox's sources read (getenv and helpers)."""
    import pathlib

    names = set()
    for f in pathlib.Path(src_dir).rglob("*.cc"):
        if f.name.endswith("_test.cc"):
            continue
        names |= set(ENV_PATTERN.findall(f.read_text(errors="replace")))
    return names
