"""Both deployment topologies on real network namespaces, with nftables rules that
mirror the Kubernetes NetworkPolicies (deploy/k8s), and real TCP connects to prove
what the policy lets through.

different pods: inference plane, execution plane and the model each in a namespace;
sidecar: `serve` and `serve-exec --sidecar` in one namespace (one pod), the model in
another. In both an RLM run whose code calls llm_query() completes through the policy:
the host call travels back from the execution plane to the inference plane over the
same HTTP exchange, and the execution plane never opens a connection of its own.
"""
import json
import os
import sys

from netns_cluster import BIN, GATEWAY, OUTSIDE, OUTSIDE_PORT

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from code_word_script import CODE_WORD_RULES  # noqa: E402

INFERENCE, EXECUTION, MODEL = "10.77.0.2", "10.77.0.3", "10.77.0.4"
POD = "10.77.0.2"          # the sidecar pod
PORT, SIDECAR_PORT, MODEL_PORT = 8000, 8080, 443
TOKEN = "netns-shared-token"

SCRIPT = {"rules": CODE_WORD_RULES}


# A dropped SYN gets no answer: the connect times out (a local egress drop too: TCP
# retransmits instead of failing). The counters tell which namespace's rule dropped it.
BLOCKED = "timeout"


def policy(ingress, egress, counter=True):
    """One pod's table: default deny both ways, loopback and replies allowed, then the
    given accept rules. New connections refused are counted (ingress_new, egress_new)."""
    lines = ["table inet rlmbox_policy {"]
    if counter:
        lines += ["  counter ingress_new { }", "  counter egress_new { }"]
    lines += ["  chain ingress {",
              "    type filter hook input priority filter; policy drop;",
              '    iif "lo" accept',
              "    ct state established,related accept"]
    lines += ["    " + r for r in ingress]
    if counter:
        lines.append('    ct state new counter name "ingress_new" drop')
    lines += ["  }"]
    if egress is not None:
        lines += ["  chain egress {",
                  "    type filter hook output priority filter; policy drop;",
                  '    oif "lo" accept',
                  "    ct state established,related accept"]
        lines += ["    " + r for r in egress]
        if counter:
            lines.append('    ct state new counter name "egress_new" drop')
        lines += ["  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


# kube-dns on the node: the inference plane's policy allows DNS, as in deploy/k8s.
DNS = [f"ip daddr {GATEWAY} udp dport 53 accept", f"ip daddr {GATEWAY} tcp dport 53 accept"]


def plain_env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("LLM_", "WASM_", "RLMBOX_TOKEN"))}


def assert_rlm_run(c, url, model_log, traj_dir, backend):
    """POST /completion from the Ingress side; the answer needs an llm_query host call."""
    def sub_calls():
        requests = ([json.loads(line) for line in open(model_log)]
                    if model_log.exists() else [])
        return requests, [q for q in requests
                          if "Sub-question:" in q["body"]["messages"][-1]["content"]]

    before = len(sub_calls()[1])
    status, ready = c.http(c.node, "GET", url + "/ready")
    assert status == 200 and ready["backend"] == backend, ready
    status, r = c.http(c.node, "POST", url + "/completion",
                       {"context": "The code word is kept by the model.",
                        "query": "What is the code word?"})
    assert status == 200, f"{r}\n{c.logs()}"
    assert r["success"] is True and r["answer"] == "SWORDFISH", f"{r}\n{c.logs()}"
    assert r["iterations"] == 1
    requests, sub = sub_calls()
    assert len(sub) == before + 1, "the llm_query host call never reached the model"
    assert all(q["headers"]["Authorization"] == "Bearer inference-only-key" for q in requests)
    lines = [json.loads(line) for line in open(traj_dir / (r["trajectory_id"] + ".jsonl"))]
    assert lines[0]["environment_type"] == "rlmbox_" + backend
    assert len(lines[1]["code_blocks"][0]["result"]["rlm_calls"]) == 1


def test_different_pods(cluster, tmp_path):
    c = cluster("pods")
    inference = c.pod("inference", INFERENCE)
    execution = c.pod("execution", EXECUTION)
    model = c.pod("model", MODEL)
    model_log = c.start_model(model, MODEL, SCRIPT, MODEL_PORT)

    c.start(execution, [BIN, "serve-exec", "--host", EXECUTION, "--port", str(PORT),
                        "--warm", "2"], "serve-exec", env=dict(plain_env(), RLMBOX_TOKEN=TOKEN))
    c.wait_http(execution, f"http://{EXECUTION}:{PORT}/health")
    traj = tmp_path / "trajectories"
    traj.mkdir()
    c.start(inference, [BIN, "serve", "--host", INFERENCE, "--port", str(PORT)], "serve",
            env=dict(plain_env(), LLM_BASE_URL=f"http://{MODEL}:{MODEL_PORT}/v1",
                     LLM_API_KEY="inference-only-key", LLM_MODEL="root-model",
                     WASM_SERVICE_URL=f"http://{EXECUTION}:{PORT}", WASM_SERVICE_TOKEN=TOKEN,
                     RLM_TRAJECTORY_DIR=str(traj)))
    c.wait_http(c.node, f"http://{INFERENCE}:{PORT}/ready")

    # Without the policy every path is open: what fails below fails because of the rules.
    open_paths = {
        "execution -> model": c.probe(execution, MODEL, MODEL_PORT),
        "execution -> inference": c.probe(execution, INFERENCE, PORT),
        "execution -> node": c.probe(execution, GATEWAY, OUTSIDE_PORT),
        "execution -> outside": c.probe(execution, OUTSIDE, OUTSIDE_PORT),
        "model -> execution": c.probe(model, EXECUTION, PORT),
    }
    assert set(open_paths.values()) == {"ok"}, open_paths

    # The NetworkPolicies, one nftables table per pod.
    c.nft(execution, policy(ingress=[f"ip saddr {INFERENCE} tcp dport {PORT} accept"],
                            egress=[]))  # no egress at all
    c.nft(inference, policy(
        ingress=[f"ip saddr {GATEWAY} tcp dport {PORT} accept"],  # the Ingress controller
        egress=[f"ip daddr {EXECUTION} tcp dport {PORT} accept",
                f"ip daddr {MODEL} tcp dport {MODEL_PORT} accept", *DNS]))
    c.nft(model, policy(ingress=[f"ip saddr {INFERENCE} tcp dport {MODEL_PORT} accept"],
                        egress=None, counter=False))

    # An RLM run end to end through the policy, with a host call.
    assert_rlm_run(c, f"http://{INFERENCE}:{PORT}", model_log, traj, "remote")
    # ...during which the execution plane did not try a single connection of its own.
    assert c.counter(execution, "rlmbox_policy", "egress_new") == 0, c.ruleset(execution)

    paths = {
        # The execution plane reaches nothing (its own egress rule drops: see below).
        "execution -> model": (c.probe(execution, MODEL, MODEL_PORT), BLOCKED),
        "execution -> inference": (c.probe(execution, INFERENCE, PORT), BLOCKED),
        "execution -> node": (c.probe(execution, GATEWAY, OUTSIDE_PORT), BLOCKED),
        "execution -> outside": (c.probe(execution, OUTSIDE, OUTSIDE_PORT), BLOCKED),
        # The inference plane reaches both, and nothing else.
        "inference -> model": (c.probe(inference, MODEL, MODEL_PORT), "ok"),
        "inference -> execution": (c.probe(inference, EXECUTION, PORT), "ok"),
        "inference -> outside": (c.probe(inference, OUTSIDE, OUTSIDE_PORT), BLOCKED),
        # The execution plane accepts only the inference plane (dropped: no answer).
        "model -> execution": (c.probe(model, EXECUTION, PORT), BLOCKED),
        "node -> execution": (c.probe(c.node, EXECUTION, PORT), BLOCKED),
        "model -> inference": (c.probe(model, INFERENCE, PORT), BLOCKED),
        # The model's namespace has no egress rules: the outside is routable.
        "model -> outside": (c.probe(model, OUTSIDE, OUTSIDE_PORT), "ok"),
    }
    wrong = {k: v for k, v in paths.items() if v[0] != v[1]}
    assert not wrong, f"(got, expected): {wrong}"
    # Which rule dropped what: the execution plane's own egress (4 connects) and
    # ingress (2), the inference plane's egress (1).
    assert c.counter(execution, "rlmbox_policy", "egress_new") >= 4
    assert c.counter(execution, "rlmbox_policy", "ingress_new") >= 2
    assert c.counter(inference, "rlmbox_policy", "egress_new") >= 1
    # The run still works after all that.
    assert_rlm_run(c, f"http://{INFERENCE}:{PORT}", model_log, traj, "remote")


def test_sidecar_pod(cluster, tmp_path):
    c = cluster("sidecar")
    pod = c.pod("pod", POD)
    model = c.pod("model", MODEL)
    model_log = c.start_model(model, MODEL, SCRIPT, MODEL_PORT)

    c.start(pod, [BIN, "serve-exec", "--sidecar", "--warm", "2"], "serve-exec", env=plain_env())
    c.wait_http(pod, f"http://127.0.0.1:{SIDECAR_PORT}/health")
    traj = tmp_path / "trajectories"
    traj.mkdir()
    c.start(pod, [BIN, "serve", "--host", POD, "--port", str(PORT)], "serve",
            env=dict(plain_env(), LLM_BASE_URL=f"http://{MODEL}:{MODEL_PORT}/v1",
                     LLM_API_KEY="inference-only-key", LLM_MODEL="root-model",
                     WASM_MANAGER_SERVICE_URL=f"http://127.0.0.1:{SIDECAR_PORT}",
                     RLM_TRAJECTORY_DIR=str(traj)))
    c.wait_http(c.node, f"http://{POD}:{PORT}/ready")

    # Before any rule: the pod's address is routable from the model's namespace and
    # the pod reaches the outside, but the sidecar listens on loopback only.
    before = {
        "model -> pod:8000": (c.probe(model, POD, PORT), "ok"),
        "model -> pod:8080": (c.probe(model, POD, SIDECAR_PORT), "refused"),
        "pod -> outside": (c.probe(pod, OUTSIDE, OUTSIDE_PORT), "ok"),
    }
    wrong = {k: v for k, v in before.items() if v[0] != v[1]}
    assert not wrong, f"(got, expected): {wrong}"

    c.nft(pod, policy(
        ingress=[f"ip saddr {GATEWAY} tcp dport {PORT} accept"],  # the Ingress controller
        egress=[f"ip daddr {MODEL} tcp dport {MODEL_PORT} accept", *DNS]))
    c.nft(model, policy(ingress=[f"ip saddr {POD} tcp dport {MODEL_PORT} accept"],
                        egress=None, counter=False))

    assert_rlm_run(c, f"http://{POD}:{PORT}", model_log, traj, "sidecar")
    assert c.counter(pod, "rlmbox_policy", "egress_new") == 0, c.ruleset(pod)

    listening = c.exec_in(pod, "ss", "-Hltn", f"sport = :{SIDECAR_PORT}").stdout.split()
    assert f"127.0.0.1:{SIDECAR_PORT}" in listening, listening
    paths = {
        # The sidecar is bound to 127.0.0.1: only the pod itself reaches it.
        "pod -> 127.0.0.1:8080": (c.probe(pod, "127.0.0.1", SIDECAR_PORT), "ok"),
        "pod -> pod-ip:8080": (c.probe(pod, POD, SIDECAR_PORT), "refused"),
        "model -> pod:8080": (c.probe(model, POD, SIDECAR_PORT), BLOCKED),
        "node -> pod:8080": (c.probe(c.node, POD, SIDECAR_PORT), BLOCKED),
        "model -> pod:8000": (c.probe(model, POD, PORT), BLOCKED),
        # The pod reaches the model and nothing else.
        "pod -> model": (c.probe(pod, MODEL, MODEL_PORT), "ok"),
        "pod -> node": (c.probe(pod, GATEWAY, OUTSIDE_PORT), BLOCKED),
        "pod -> outside": (c.probe(pod, OUTSIDE, OUTSIDE_PORT), BLOCKED),
        "model -> outside": (c.probe(model, OUTSIDE, OUTSIDE_PORT), "ok"),
    }
    wrong = {k: v for k, v in paths.items() if v[0] != v[1]}
    assert not wrong, f"(got, expected): {wrong}"
    assert c.counter(pod, "rlmbox_policy", "egress_new") >= 2
    assert c.counter(pod, "rlmbox_policy", "ingress_new") >= 3
