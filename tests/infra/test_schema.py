"""The cross-language package schema is typed field by field from the spec models, and the YAML example fits it."""

from __future__ import annotations

import copy
import importlib.metadata
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from infra_mocks import Deployment

from asya_pulumi.checks.schema_check import check_resource
from asya_pulumi.package.provider import COMPONENTS, AsyaProvider, schema
from asya_pulumi.spec import ClusterSpec, MeshSpec

ROOT = Path(__file__).resolve().parents[2]
YAML_PROGRAM = ROOT / "examples" / "yaml-program" / "Pulumi.yaml"


@pytest.fixture(scope="module")
def package() -> dict[str, Any]:
    return schema()


def type_of(package: dict[str, Any], name: str) -> dict[str, Any]:
    return package["types"][f"asya:index:{name}"]


def walk(value: Any) -> list[dict[str, Any]]:
    """Every dict nested in ``value`` (to look at every type reference of the schema)."""
    if isinstance(value, dict):
        return [value, *(d for v in value.values() for d in walk(v))]
    if isinstance(value, list):
        return [d for v in value for d in walk(v)]
    return []


def property_specs(package: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, resource in package["resources"].items():
        for section in ("inputProperties", "properties"):
            found += [(f"{name}.{section}.{k}", v) for k, v in resource[section].items()]
    for name, definition in package["types"].items():
        found += [(f"{name}.{k}", v) for k, v in definition.get("properties", {}).items()]
    return found


def test_the_provider_serves_the_generated_schema(package: dict[str, Any]) -> None:
    assert json.loads(AsyaProvider().schema or "{}") == package
    assert sorted(package["resources"]) == sorted(COMPONENTS)
    assert "pulumi.json#/Any" not in json.dumps(package)


def test_the_version_is_the_distributions_and_each_language_sdk_is_named(package: dict[str, Any]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert package["version"] == pyproject["version"] == importlib.metadata.version("asya-pulumi")
    language = package["language"]
    assert language["nodejs"]["packageName"] == "@asya-sh/pulumi"
    assert language["go"]["importBasePath"] == "github.com/asya-sh/asya-pulumi/sdk/go/asya"
    csharp = language["csharp"]  # .NET namespace: rootNamespace + the package's entry in namespaces
    assert f"{csharp['rootNamespace']}.{csharp['namespaces'][package['name']]}" == "Asya.Pulumi"
    assert package["repository"] == "https://github.com/asya-sh/asya-pulumi"


def test_descriptions_are_markdown_with_no_restructuredtext_left(package: dict[str, Any]) -> None:
    """Pulumi reads descriptions as Markdown (its metaschema): a docstring's ``x`` or :class:`X` must arrive as `x`."""
    descriptions = [d["description"] for d in walk(package) if isinstance(d.get("description"), str)]
    assert len(descriptions) > 150
    for text in descriptions:
        assert "``" not in text and not re.search(r":[a-z]+:`", text), text
    summary = package["resources"]["asya:index:AsyncActor"]["description"]
    assert summary.startswith("`AsyncActor`: one actor on EKS") and "no `spec.replicas`" in summary


def test_every_property_is_typed_and_every_reference_resolves(package: dict[str, Any]) -> None:
    for where, spec in property_specs(package):
        assert {"type", "$ref", "oneOf"} & set(spec), f"{where} has no type"
    for spec in walk(package):
        ref = spec.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/types/"):
            assert ref.removeprefix("#/types/") in package["types"], ref
        elif isinstance(ref, str):
            assert ref.removeprefix("#/resources/") in package["resources"], ref


def test_component_inputs_are_typed_with_required_and_optional(package: dict[str, Any]) -> None:
    resources = package["resources"]
    mesh = resources["asya:index:ActorMesh"]
    assert mesh["inputProperties"]["spec"]["$ref"] == "#/types/asya:index:MeshSpec"
    assert mesh["requiredInputs"] == ["spec", "clusterName"]
    assert mesh["inputProperties"]["dependsOnKeda"]["items"] == {"$ref": "#/resources/asya:index:Keda"}
    actor = resources["asya:index:AsyncActor"]
    assert actor["inputProperties"]["spec"]["$ref"] == "#/types/asya:index:AsyncActorSpec"
    assert actor["requiredInputs"] == ["spec", "namespace", "region", "clusterName"]
    assert resources["asya:index:AsyaCluster"]["properties"]["kubeconfig"]["secret"] is True
    assert resources["asya:index:TeamActors"]["inputProperties"]["spec"]["$ref"] == "#/types/asya:index:TeamSpec"
    assert resources["asya:index:Keda"]["properties"]["releaseName"]["type"] == "string"


def test_spec_fields_have_their_model_types_defaults_and_descriptions(package: dict[str, Any]) -> None:
    actor = type_of(package, "AsyncActorSpec")
    assert actor["required"] == ["name", "image", "handler"]
    props = actor["properties"]
    assert props["scaling"]["$ref"] == "#/types/asya:index:ScalingSpec"
    assert props["resiliency"]["$ref"] == "#/types/asya:index:Resiliency"
    assert props["gpu"]["$ref"] == "#/types/asya:index:GpuSpec"
    assert props["tolerations"] == {"type": "array", "items": {"$ref": "#/types/asya:index:Toleration"}}
    assert props["env"]["additionalProperties"] == {"type": "string"}
    assert props["image"]["type"] == "string"  # text or an Output: Pulumi inputs are Outputs in every language
    assert props["secretEnv"]["secret"] is True and "secret" not in props["env"]
    assert props["concurrency"]["type"] == "integer" and "default" not in props["concurrency"]  # 10, or 1 with gpu
    assert props["image"]["description"].startswith("The user's image")
    assert actor["description"].startswith("One actor: its image and handler")

    scaling = type_of(package, "ScalingSpec")
    assert "required" not in scaling
    assert scaling["properties"]["maxReplicaCount"]["type"] == "integer"
    assert scaling["properties"]["maxReplicaCount"]["default"] == 10
    operator = type_of(package, "Toleration")["properties"]["operator"]
    assert type_of(package, operator["$ref"].rsplit(":", 1)[1])["enum"] == [{"value": "Equal"}, {"value": "Exists"}]

    policy = type_of(package, "RetryPolicy")["properties"]
    assert policy["initialInterval"]["oneOf"] == [{"type": "number"}, {"type": "string"}]
    assert policy["onExhausted"]["oneOf"] == [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
    assert policy["maxAttempts"]["type"] == "integer"
    resiliency = type_of(package, "Resiliency")["properties"]
    assert resiliency["policies"]["additionalProperties"] == {"$ref": "#/types/asya:index:RetryPolicy"}
    assert resiliency["rules"]["items"] == {"$ref": "#/types/asya:index:RetryRule"}
    assert type_of(package, "RetryRule")["required"] == ["errors", "policy"]

    pool = type_of(package, "GpuNodePoolSpec")
    assert pool["required"] == ["name"]
    capacity = type_of(package, pool["properties"]["capacityType"]["$ref"].rsplit(":", 1)[1])
    assert [e["value"] for e in capacity["enum"]] == ["ON_DEMAND", "SPOT"]
    assert type_of(package, "ClusterSpec")["properties"]["gpuPools"]["items"] == {
        "$ref": "#/types/asya:index:GpuNodePoolSpec"
    }
    mesh = type_of(package, "MeshSpec")
    assert mesh["required"] == ["namespace", "actors"]
    assert mesh["properties"]["routes"] == {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
        "description": MeshSpec.model_fields["routes"].description,
    }


def yaml_resources() -> dict[str, dict[str, Any]]:
    program = yaml.safe_load(YAML_PROGRAM.read_text())
    assert program["runtime"] == "yaml"
    return program["resources"]


def asya_resources() -> dict[str, dict[str, Any]]:
    return {name: r for name, r in yaml_resources().items() if r["type"].startswith("asya:")}


def test_the_yaml_program_fits_the_schema(package: dict[str, Any]) -> None:
    resources = asya_resources()
    assert sorted(r["type"] for r in resources.values()) == [
        "asya:index:ActorMesh", "asya:index:AsyaCluster", "asya:index:Keda"
    ]
    for name, resource in resources.items():
        assert check_resource(package, resource_type=resource["type"], properties=resource["properties"]) == [], name


def test_the_yaml_programs_outputs_name_outputs_the_schema_lists(package: dict[str, Any]) -> None:
    program = yaml.safe_load(YAML_PROGRAM.read_text())
    for name, value in program["outputs"].items():
        resource, prop = re.fullmatch(r"\$\{(\w+)\.(\w+)\}", value).groups()  # type: ignore[union-attr]
        token = program["resources"][resource]["type"]
        assert prop in package["resources"][token]["properties"], f"outputs.{name}: {token} has no output {prop}"


def test_the_yaml_programs_specs_are_what_the_models_accept() -> None:
    resources = asya_resources()
    mesh = MeshSpec.model_validate(resources["mesh"]["properties"]["spec"])
    assert [a.name for a in mesh.actors] == ["preprocess", "score-image"]
    assert mesh.actor("score-image").resiliency.policies["transient"].max_attempts == 6
    assert ClusterSpec.model_validate(resources["cluster"]["properties"]["spec"]).gpu_pools[0].name == "gpu"


def mesh_properties() -> dict[str, Any]:
    return copy.deepcopy(asya_resources()["mesh"]["properties"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: p["spec"]["actors"][0]["scaling"].update(maxReplicas=4),
         "asya:index:ActorMesh.spec.actors[0].scaling.maxReplicas: unknown property; known: activationQueueLength,"),
        (lambda p: p["spec"]["actors"][0]["scaling"].update(maxReplicaCount="4"),
         "asya:index:ActorMesh.spec.actors[0].scaling.maxReplicaCount: expected integer, got str '4'"),
        (lambda p: p["spec"]["actors"][1]["scaling"].update(cooldownPeriod=True),
         "asya:index:ActorMesh.spec.actors[1].scaling.cooldownPeriod: expected integer, got bool True"),
        (lambda p: p.pop("clusterName"), "asya:index:ActorMesh.clusterName: required, missing"),
        (lambda p: p["spec"]["actors"][0].pop("image"), "asya:index:ActorMesh.spec.actors[0].image: required, missing"),
        (lambda p: p["spec"]["actors"][1]["resiliency"]["policies"]["default"].update(backoff="fibonacci"),
         "asya:index:ActorMesh.spec.actors[1].resiliency.policies.default.backoff: 'fibonacci' is not one of "
         "['constant', 'linear', 'exponential']"),
        (lambda p: p["spec"].update(routes={"score": "preprocess"}),
         "asya:index:ActorMesh.spec.routes.score: expected an array, got str"),
        (lambda p: p.update(dependsOnKeda=["keda"]),
         "asya:index:ActorMesh.dependsOnKeda[0]: expected a reference to a asya:index:Keda resource"),
        (lambda p: p.update(keda="${keda}"), "asya:index:ActorMesh.keda: unknown property"),
    ],
)
def test_a_property_the_schema_refuses_is_named_with_its_path(
    package: dict[str, Any], change: Any, expected: str
) -> None:
    properties = mesh_properties()
    change(properties)
    errors = check_resource(package, resource_type="asya:index:ActorMesh", properties=properties)
    assert len(errors) == 1 and errors[0].startswith(expected), errors


def test_shorthand_forms_the_models_accept_fit_the_schema(package: dict[str, Any]) -> None:
    properties = mesh_properties()
    policies = properties["spec"]["actors"][1]["resiliency"]["policies"]
    policies["default"].update(initialInterval=2, maxInterval="1m", onExhausted="preprocess")
    policies["transient"]["onExhausted"] = ["preprocess"]
    assert check_resource(package, resource_type="asya:index:ActorMesh", properties=properties) == []
    MeshSpec.model_validate(properties["spec"])


def test_the_yaml_programs_mesh_builds_through_the_provider(deployment: Deployment) -> None:
    inputs = {**mesh_properties(), "clusterName": "asya-yaml", "dependsOnKeda": []}
    deployment.run(lambda: AsyaProvider().construct("mesh", "asya:index:ActorMesh", inputs).state["queueUrls"])
    scaled = deployment.one("kubernetes:keda.sh/v1alpha1:ScaledObject", "mesh-score-image-scaled-object")
    assert scaled.inputs["spec"]["maxReplicaCount"] == 2
    assert scaled.inputs["spec"]["cooldownPeriod"] == 600
