"""Every manifest, offline, against the Kubernetes API schemas (kubeconform
-strict with the schemas of scripts/deploy-schemas.py): the kustomize overlays
as built, their raw resource files, and the helm chart for both topologies, at
every Kubernetes version in scripts/deploy-tools.sh."""
import os

import pytest

from conftest import ROOT, TOPOLOGIES, load_all


def raw_resource_files():
    """The files each kustomization lists under resources (not patches)."""
    import yaml

    files = []
    for k in sorted(glob_kustomizations()):
        with open(k) as f:
            spec = yaml.safe_load(f)
        for r in spec.get("resources", []):
            path = os.path.normpath(os.path.join(os.path.dirname(k), r))
            if os.path.isfile(path):
                files.append(path)
    return files


def glob_kustomizations():
    for dirpath, _, names in os.walk(os.path.join(ROOT, "deploy", "k8s")):
        if "kustomization.yaml" in names:
            yield os.path.join(dirpath, "kustomization.yaml")


def assert_valid(tools, paths, version):
    p = tools.kubeconform_run([str(x) for x in paths], version)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Skipped: 0" in p.stdout and "Errors: 0" in p.stdout, p.stdout


def test_built_overlays_and_chart_are_valid(tools, rendered):
    for version in tools.k8s_versions:
        assert_valid(tools, rendered.values(), version)


def test_raw_resource_files_are_valid(tools):
    files = raw_resource_files()
    assert len(files) >= 15, files
    for version in tools.k8s_versions:
        assert_valid(tools, files, version)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_chart_renders_and_lints_at_each_version(tools, topology, tmp_path):
    for version in tools.k8s_versions:
        p = tools.helm_template(topology, version)
        assert p.returncode == 0, p.stderr
        out = tmp_path / f"{topology}-{version}.yaml"
        out.write_text(p.stdout)
        assert_valid(tools, [out], version)
    p = tools.run(tools.helm, "lint", "--strict", "--kube-version", tools.k8s_versions[0],
                  "--set", f"topology={topology}", os.path.join(ROOT, "deploy", "helm", "rlmbox"))
    assert p.returncode == 0, p.stdout + p.stderr


def test_chart_values_are_checked(tools):
    for bad in (["--set", "topology=same-pod"], ["--set", "image.tag=latest"], ["--set", "runAsUser=0"]):
        p = tools.helm_template("sidecar", tools.k8s_versions[0], *bad)
        assert p.returncode != 0, f"helm accepted {bad}"
        assert "schema" in p.stderr, p.stderr


def test_schema_validation_can_fail(tools, rendered, tmp_path):
    """Negative: a misspelt field, a wrong type and a bad ServiceMonitor are all caught."""
    import yaml

    docs = load_all(rendered[("kustomize", "different-pod")])
    for d in docs:
        if d["kind"] == "Deployment":
            d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
        if d["kind"] == "Service":
            d["spec"]["ports"][0]["port"] = "eight thousand"
        if d["kind"] == "ServiceMonitor":
            d["spec"]["endpoints"][0]["intervall"] = "30s"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump_all(docs))
    p = tools.kubeconform_run([str(bad)], tools.k8s_versions[-1])
    assert p.returncode != 0
    assert "readOnlyRootFileSystem" in p.stdout, p.stdout
    assert "eight thousand" in p.stdout or "want integer" in p.stdout, p.stdout
    assert "ServiceMonitor" in p.stdout and "intervall" in p.stdout, p.stdout
