"""Our own rules (k8s_rules.py) over every rendered topology, and proof that
each rule can fail: one mutation per rule, each must be reported."""
import copy
import os

import pytest

from conftest import NAMESPACE, ROOT, load_all
from k8s_rules import check

SOURCES = [("kustomize", "different-pod"), ("kustomize", "sidecar"), ("helm", "different-pod"), ("helm", "sidecar")]


@pytest.mark.parametrize("source", SOURCES, ids=["-".join(s) for s in SOURCES])
def test_rendered_manifests_follow_the_rules(rendered, env_allowed, source):
    docs = load_all(rendered[source])
    assert check(docs, NAMESPACE, env_allowed) == []
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "NetworkPolicy", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "ServiceMonitor", "Ingress", "Secret"} <= kinds


@pytest.mark.parametrize("source", SOURCES, ids=["-".join(s) for s in SOURCES])
def test_topology_shape(rendered, source):
    docs = load_all(rendered[source])
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    env = {e["name"]: e for d in deployments for c in d["spec"]["template"]["spec"]["containers"]
           for e in c.get("env", [])}
    if source[1] == "different-pod":
        assert len(deployments) == 2
        assert env["WASM_SERVICE_URL"]["value"].endswith("wasm-repl:8000")
        assert "secretKeyRef" in env["WASM_SERVICE_TOKEN"]["valueFrom"]
        assert "WASM_MANAGER_SERVICE_URL" not in env
    else:
        assert len(deployments) == 1
        pod = deployments[0]["spec"]["template"]["spec"]
        assert len(pod["containers"]) + len(pod.get("initContainers", [])) == 2
        assert env["WASM_MANAGER_SERVICE_URL"]["value"] == "http://localhost:8080"
        assert "WASM_SERVICE_URL" not in env


def _mutations():
    """(description, mutate(docs), expected words in one problem)."""

    def deployments(docs, component):
        return [d for d in docs if d["kind"] == "Deployment"
                and d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == component]

    def first_container(docs, component="execution"):
        return deployments(docs, component)[0]["spec"]["template"]["spec"]["containers"][0]

    def policy(docs, component):
        return [d for d in docs if d["kind"] == "NetworkPolicy"
                and d["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component") == component][0]

    def remove_default_deny(docs):
        docs[:] = [d for d in docs if not (d["kind"] == "NetworkPolicy" and d["spec"]["podSelector"] == {})]

    def set_(path_fn, key, value):
        def f(docs):
            path_fn(docs)[key] = value
        return f

    def exec_egress(docs):
        policy(docs, "execution")["spec"]["egress"] = [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]

    def exec_ingress_everyone(docs):
        policy(docs, "execution")["spec"]["ingress"] = [{"from": [{"namespaceSelector": {}}]}]

    def inference_egress_anywhere(docs):
        policy(docs, "inference")["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                                                            "ports": [{"protocol": "TCP", "port": 80}]})

    def key_on_exec(docs):
        first_container(docs)["env"].append(
            {"name": "LLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "rlmbox-llm", "key": "LLM_API_KEY"}}})

    def literal_key(docs):
        for e in first_container(docs, "inference")["env"]:
            if e["name"] == "LLM_API_KEY":
                e.pop("valueFrom")
                e["value"] = "sk-live"

    def invented_env(docs):
        first_container(docs, "inference")["env"].append({"name": "PYODIDE_URL", "value": "x"})

    def no_limits(docs):
        first_container(docs)["resources"].pop("limits")

    def no_readiness(docs):
        first_container(docs).pop("readinessProbe")

    def root_user(docs):
        first_container(docs)["securityContext"]["runAsUser"] = 0

    def writable_root(docs):
        first_container(docs)["securityContext"]["readOnlyRootFilesystem"] = False

    def keep_caps(docs):
        first_container(docs)["securityContext"]["capabilities"]["drop"] = ["NET_RAW"]

    def no_seccomp(docs):
        d = deployments(docs, "execution")[0]
        d["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile")
        first_container(docs)["securityContext"].pop("seccompProfile")

    def escalation(docs):
        first_container(docs)["securityContext"]["allowPrivilegeEscalation"] = True

    def latest_image(docs):
        first_container(docs)["image"] = "registry.example.com/rlmbox:latest"

    def wrong_service_url(docs):
        for e in first_container(docs, "inference")["env"]:
            if e["name"] == "WASM_SERVICE_URL":
                e["value"] = "http://wasm-repl-service:8000"

    def monitor_port(docs):
        [d for d in docs if d["kind"] == "ServiceMonitor"][0]["spec"]["endpoints"][0]["port"] = "metrics"

    def no_tls(docs):
        [d for d in docs if d["kind"] == "Ingress"][0]["spec"].pop("tls")

    return [
        ("default deny removed", remove_default_deny, "default-deny"),
        ("execution plane egress", exec_egress, "gives the execution plane egress"),
        ("execution ingress from any namespace", exec_ingress_everyone, "not the inference plane"),
        ("inference egress to port 80", inference_egress_anywhere, "is not DNS, HTTPS"),
        ("LLM key on the execution plane", key_on_exec, "LLM_API_KEY outside the inference plane"),
        ("LLM key as a literal", literal_key, "not taken from a Secret"),
        ("env var the binary does not read", invented_env, "PYODIDE_URL is not read by rlmbox"),
        ("no limits", no_limits, "no cpu limit"),
        ("no readiness probe", no_readiness, "readiness probe"),
        ("root user", root_user, "runAsUser"),
        ("writable root fs", writable_root, "readOnlyRootFilesystem"),
        ("capabilities kept", keep_caps, "drop ALL"),
        ("no seccomp", no_seccomp, "seccompProfile"),
        ("privilege escalation", escalation, "allowPrivilegeEscalation"),
        ("latest image", latest_image, "not pinned"),
        ("WASM_SERVICE_URL to nowhere", wrong_service_url, "names no Service port"),
        ("ServiceMonitor on a missing port", monitor_port, "is on no selected Service"),
        ("Ingress without TLS", no_tls, "no TLS"),
    ]


MUTATIONS = _mutations()


@pytest.mark.parametrize("name,mutate,expected", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_each_rule_can_fail(rendered, env_allowed, name, mutate, expected):
    docs = copy.deepcopy(load_all(rendered[("kustomize", "different-pod")]))
    assert check(copy.deepcopy(docs), NAMESPACE, env_allowed) == []
    mutate(docs)
    problems = check(docs, NAMESPACE, env_allowed)
    assert any(expected in p for p in problems), problems


def test_sidecar_execution_plane_must_stay_on_localhost(rendered, env_allowed):
    docs = load_all(rendered[("helm", "sidecar")])
    pod = [d for d in docs if d["kind"] == "Deployment"][0]["spec"]["template"]["spec"]
    sidecar = pod["initContainers"][0]
    sidecar["args"] = ["serve-exec", "--host", "0.0.0.0", "--port", "8080"]
    problems = check(docs, NAMESPACE, env_allowed)
    assert any("must bind localhost" in p for p in problems), problems


def test_every_env_var_the_manifests_set_is_documented(rendered, env_allowed):
    """docs/deployment.md's configuration reference names every variable the binary reads."""
    with open(os.path.join(ROOT, "docs", "deployment.md")) as f:
        doc = f.read()
    missing = sorted(n for n in env_allowed if f"`{n}`" not in doc)
    assert not missing, f"docs/deployment.md does not document {missing}"
