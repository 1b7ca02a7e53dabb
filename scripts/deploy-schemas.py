#!/usr/bin/env python3
"""Lays out offline JSON schemas for kubeconform (run by scripts/deploy-tools.sh).

usage: deploy-schemas.py OUT_DIR K8S_VERSION...

- Kubernetes API: the strict schemas that the kubernetes-validate package ships
  (v<version>-local-strict/<kind>-<group>-<version>.json, additionalProperties
  false). They refer to a shared _definitions.json by an absolute path and carry
  an https $id; both are rewritten so that the references resolve to the file
  beside them, with no network.
- ServiceMonitor (monitoring.coreos.com/v1, a CRD): the JSON schema of the
  prometheus-operator models in cloudcoil-models-prometheus-operator (generated
  from the operator's CRDs), made strict the same way: every object that lists
  its properties rejects any other.
Writes OUT_DIR/v<version>-local-strict/ for each version.
"""
import json
import os
import shutil
import sys

import kubernetes_validate


def copy_kubernetes(src: str, dst: str) -> int:
    os.makedirs(dst, exist_ok=True)
    n = 0
    for name in os.listdir(src):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(src, name), encoding="utf-8") as f:
            text = f.read()
        text = text.replace('"/api/_definitions.json#', '"_definitions.json#')
        doc = json.loads(text)
        if isinstance(doc, dict):
            doc.pop("$id", None)
        with open(os.path.join(dst, name), "w", encoding="utf-8") as f:
            json.dump(doc, f)
        n += 1
    return n


def strict(node):
    """Closes every object schema that lists properties (like the -strict schemas)."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)
    return node


def service_monitor_schema() -> dict:
    from cloudcoil.models.prometheus_operator.v1 import ServiceMonitor

    schema = strict(ServiceMonitor.model_json_schema(by_alias=True, mode="validation"))
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "spec"})
    return schema


def main() -> int:
    out, versions = sys.argv[1], sys.argv[2:]
    base = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
    monitor = service_monitor_schema()
    for v in versions:
        src = os.path.join(base, f"v{v}-local-strict")
        if not os.path.isdir(src):
            print(f"deploy-schemas: kubernetes-validate has no schemas for {v}", file=sys.stderr)
            return 1
        dst = os.path.join(out, f"v{v}-local-strict")
        shutil.rmtree(dst, ignore_errors=True)
        n = copy_kubernetes(src, dst)
        # kubeconform names a CRD's schema <kind>-<first label of the group>-<version>.
        with open(os.path.join(dst, "servicemonitor-monitoring-v1.json"), "w", encoding="utf-8") as f:
            json.dump(monitor, f)
        print(f"deploy-schemas: {n} Kubernetes {v} schemas + ServiceMonitor -> {dst}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
