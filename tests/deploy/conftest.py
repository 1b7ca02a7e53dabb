"""Fixtures for tests/deploy: the validation tools (scripts/deploy-tools.sh,
cached) and the rendered manifests of both topologies (kustomize and helm)."""
import glob
import os
import site
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NAMESPACE = "rlmbox"
TOPOLOGIES = ("different-pod", "sidecar")


class Tools:
    def __init__(self, path):
        self.path = path
        self.kubeconform = os.path.join(path, "bin", "kubeconform")
        self.helm = os.path.join(path, "bin", "helm")
        self.kustomize = os.path.join(path, "bin", "kustomize")
        self.hadolint = os.path.join(path, "venv", "bin", "hadolint")
        self.schemas = os.path.join(path, "schemas")
        with open(os.path.join(path, "k8s-versions")) as f:
            self.k8s_versions = f.read().split()

    def run(self, *args, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 300)
        return subprocess.run(list(args), **kw)

    def kubeconform_run(self, paths, version):
        location = os.path.join(self.schemas, "{{.NormalizedKubernetesVersion}}-local{{.StrictSuffix}}",
                                "{{.ResourceKind}}{{.KindSuffix}}.json")
        return self.run(self.kubeconform, "-strict", "-summary", "-output", "text",
                        "-kubernetes-version", version, "-schema-location", location, *paths)

    def helm_template(self, topology, version, *extra):
        env = dict(os.environ, HELM_CACHE_HOME="/tmp/rlmbox-helm/cache",
                   HELM_CONFIG_HOME="/tmp/rlmbox-helm/config", HELM_DATA_HOME="/tmp/rlmbox-helm/data")
        return self.run(self.helm, "template", "rlmbox", os.path.join(ROOT, "deploy", "helm", "rlmbox"),
                        "--namespace", NAMESPACE, "--kube-version", version,
                        "--set", f"topology={topology}", *extra, env=env)


@pytest.fixture(scope="session")
def tools():
    env = dict(os.environ, PYTHON=sys.executable)
    p = subprocess.run([os.path.join(ROOT, "scripts", "deploy-tools.sh")], env=env,
                       capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, f"scripts/deploy-tools.sh failed:\n{p.stderr[-4000:]}"
    t = Tools(p.stdout.strip().splitlines()[-1])
    # PyYAML comes from the tools' venv (same interpreter as this one).
    for sp in glob.glob(os.path.join(t.path, "venv", "lib", "python*", "site-packages")):
        site.addsitedir(sp)
    return t


@pytest.fixture(scope="session")
def rendered(tools, tmp_path_factory):
    """{(source, topology): path of the rendered YAML}, for kustomize and helm."""
    out = tmp_path_factory.mktemp("rendered")
    files = {}
    for topo in TOPOLOGIES:
        p = tools.run(tools.kustomize, "build", os.path.join(ROOT, "deploy", "k8s", "overlays", topo))
        assert p.returncode == 0, p.stderr
        files[("kustomize", topo)] = out / f"kustomize-{topo}.yaml"
        files[("kustomize", topo)].write_text(p.stdout)
        p = tools.helm_template(topo, tools.k8s_versions[0])
        assert p.returncode == 0, p.stderr
        files[("helm", topo)] = out / f"helm-{topo}.yaml"
        files[("helm", topo)].write_text(p.stdout)
    return files


def load_all(path):
    import yaml

    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


@pytest.fixture(scope="session")
def env_allowed():
    from k8s_rules import env_vars_read_by_binary

    names = env_vars_read_by_binary(os.path.join(ROOT, "src"))
    assert "LLM_API_KEY" in names and "RLMBOX_TOKEN" in names, names
    return names
