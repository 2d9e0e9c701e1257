"""The CRD schemas in asya_pulumi/schemas/ are upstream's CRDs at the pinned versions, generated, never hand-written;
their CEL rules are evaluated as the API server would."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from asya_pulumi.checks.validate import (
    KUBERNETES_CEL_FUNCTIONS,
    PROJECT_SCHEMAS,
    SCHEMA_DIR,
    InvalidObject,
    cel_problems,
    project_schema,
    validate_object,
)
from asya_pulumi.components.karpenter import KARPENTER_CHART
from asya_pulumi.components.keda import KEDA_CHART_VERSION
from asya_pulumi.components.observability import PROMETHEUS_OPERATOR_VERSION

ROOT = Path(__file__).resolve().parents[2]
OURS = {"grafana-dashboard.json"}  # the Grafana dashboard model: no CRD, our own subset


def _load_generator() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("crd_schemas", str(ROOT / "scripts" / "crd-schemas"))
    spec = importlib.util.spec_from_loader("crd_schemas", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crd_schemas"] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


generator = _load_generator()


def rules(node: Any) -> list[str]:
    if isinstance(node, list):
        return [r for item in node for r in rules(item)]
    if not isinstance(node, dict):
        return []
    own = [v["rule"] for v in node.get("x-kubernetes-validations", [])]
    return own + [r for k, v in node.items() if k != "x-kubernetes-validations" for r in rules(v)]


def test_every_schema_file_is_generated_from_a_pinned_crd_but_our_own() -> None:
    generated = {s.file for s in generator.sources()}
    assert {p.name for p in SCHEMA_DIR.glob("*.json")} == generated | OURS
    assert set(PROJECT_SCHEMAS.values()) == generated


def test_each_title_names_the_module_version_and_path_the_code_pins() -> None:
    pins = {
        "github.com/kedacore/keda/v2": f"v{KEDA_CHART_VERSION}",
        "github.com/aws/karpenter-provider-aws": f"v{KARPENTER_CHART[1]}",
        "github.com/prometheus-operator/prometheus-operator": f"v{PROMETHEUS_OPERATOR_VERSION}",
    }
    for src in generator.sources():
        assert src.version == pins[src.module]
        title = project_schema(src.file)["title"]
        assert f"({src.module}@{src.version} {src.path})" in title, src.file
        assert "scripts/crd-schemas; generated: do not edit" in title


def test_the_local_control_plane_installs_the_crds_the_schemas_come_from() -> None:
    from asya_pulumi.kube.versions import CRD_SOURCES

    installed = {(source.module, source.version, path) for source in CRD_SOURCES for path in source.paths}
    for src in generator.sources():
        assert (src.module, src.version, src.path) in installed, src.file


def test_the_docs_name_the_prometheus_operator_version_the_code_pins() -> None:
    doc = " ".join((ROOT / "docs" / "observability.md").read_text().split())
    assert f"`PROMETHEUS_OPERATOR_VERSION` (v{PROMETHEUS_OPERATOR_VERSION};" in doc


def test_regenerating_from_the_pinned_modules_gives_the_committed_files() -> None:
    try:
        files = generator.generate()
    except generator.ModuleUnavailable as exc:
        pytest.skip(f"the pinned CRDs cannot be fetched here (no go, or neither the Go module proxy nor the module "
                    f"cache has them): {exc}")
    stale = [name for name, text in files.items() if (SCHEMA_DIR / name).read_text(encoding="utf-8") != text]
    assert stale == [], f"run scripts/crd-schemas: {stale} differ from upstream's CRDs"


def test_every_cel_rule_compiles_and_calls_only_functions_we_have() -> None:
    import celpy

    standard = {"size", "has", "all", "exists", "exists_one", "filter", "map", "matches", "startsWith", "endsWith",
                "contains", "int", "uint", "double", "string", "bool", "duration", "timestamp", "type"}
    known = standard | set(KUBERNETES_CEL_FUNCTIONS)
    env = celpy.Environment()
    seen = []
    for file_name in PROJECT_SCHEMAS.values():
        for rule in rules(project_schema(file_name)):
            env.compile(rule)
            called = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", re.sub(r"'[^']*'|\"[^\"]*\"", "''", rule)))
            assert called <= known, f"{file_name}: {rule} calls {called - known}"
            assert "oldSelf" not in rule, "transition rules run on update only: the generator drops them"
            seen.append(rule)
    assert len(seen) > 50  # Karpenter's NodePool and EC2NodeClass carry most



def test_a_cel_rule_sees_defaulted_values_and_reports_its_message_at_its_node() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"mode": {"type": "string", "default": "a"}, "n": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "self.mode == 'a' ? has(self.n) : true", "message": "n needed"}],
            }
        },
    }
    assert cel_problems({"spec": {"n": 1}}, schema) == []
    rule = "self.mode == 'a' ? has(self.n) : true"
    assert cel_problems({"spec": {}}, schema) == [("spec", f"n needed (CEL rule: {rule})")]
    assert cel_problems({"spec": {"mode": "b"}}, schema) == []


def test_the_kubernetes_string_functions_behave_as_in_the_api_server() -> None:
    schema = {
        "type": "array",
        "items": {"type": "string"},
        "x-kubernetes-validations": [
            {"rule": "self.all(x, x.split('@')[0] in ['al2023', 'bottlerocket'])", "message": "family"},
            {"rule": "self.all(x, x.find('^[^@]+') != 'al2')", "message": "no al2"},
        ],
    }
    assert cel_problems(["al2023@latest", "bottlerocket@v1.2"], schema) == []
    split = {"type": "string", "x-kubernetes-validations": [{"rule": "self.split('') == ['a', 'b'] && "
                                                                     "self.split('', 1) == ['ab']"}]}
    assert cel_problems("ab", split) == []
    assert [m.split(" (")[0] for _, m in cel_problems(["al2@latest"], schema)] == ["family", "no al2"]


def test_a_rendered_nodeclass_with_both_role_and_instance_profile_fails_upstreams_rule() -> None:
    node_class = {
        "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "gpu"},
        "spec": {"amiSelectorTerms": [{"alias": "al2023@latest"}], "role": "r", "instanceProfile": "p",
                 "subnetSelectorTerms": [{"tags": {"k": "v"}}], "securityGroupSelectorTerms": [{"tags": {"k": "v"}}]},
    }
    with pytest.raises(InvalidObject, match=r"^EC2NodeClass gpu: spec: must specify exactly one of \['role', "
                                            r"'instanceProfile'\]"):
        validate_object(node_class)
    del node_class["spec"]["role"]
    validate_object(node_class)
    namespaced = json.loads(json.dumps(node_class))
    namespaced["metadata"]["namespace"] = "default"  # cluster-scoped in the CRD
    with pytest.raises(InvalidObject, match="'namespace' was unexpected"):
        validate_object(namespaced)
