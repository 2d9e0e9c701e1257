"""Upstream Asya's AsyncActor manifests (``asyncactor-crd.md``'s fields and examples) load, keep their meaning,
and render to objects the Kubernetes and KEDA schemas accept.

``manifests/pipeline/`` is a pipeline directory of upstream-format actors (plus this project's ``ActorMesh`` file,
which upstream has no counterpart of); ``asya dev`` runs it in ``tests/e2e/test_dev_upstream_manifests.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import settings

from asya_pulumi.checks.mocked import MockedDeployment
from asya_pulumi.checks.validate import validate_objects
from asya_pulumi.components import ActorMesh
from asya_pulumi.spec import AsyncActorSpec, SpecError, load_pipeline_dir
from asya_runtime.config import SidecarConfig

PIPELINE = Path(__file__).parent / "manifests" / "pipeline"
ACTOR_FILES = sorted(path for path in PIPELINE.glob("*.yaml") if path.name != "mesh.yaml")


@pytest.fixture(scope="module")
def rendered() -> Any:
    """The pipeline as `pulumi up` would deploy it, under mocks (one render for every check here)."""
    deployment = MockedDeployment.start(stack="conformance")
    mesh = load_pipeline_dir(PIPELINE)
    deployment.run(lambda: ActorMesh("up", spec=mesh, cluster_name="c1").namespace)
    yield deployment
    settings.ROOT.set(None)


def pod_of(rendered: MockedDeployment, actor: str) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.one("kubernetes:apps/v1:Deployment", f"up-{actor}-deployment").inputs["spec"]
    return spec


def containers(rendered: MockedDeployment, actor: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod_of(rendered, actor)["template"]["spec"]["containers"]}


def scaled_object(rendered: MockedDeployment, actor: str) -> dict[str, Any] | None:
    found = [r for r in rendered.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
             if r.name == f"up-{actor}-scaled-object"]
    return found[0].inputs["spec"] if found else None


@pytest.mark.parametrize("path", ACTOR_FILES, ids=[p.stem for p in ACTOR_FILES])
def test_each_upstream_manifest_loads_on_its_own(path: Path) -> None:
    spec = AsyncActorSpec.from_manifest(path)
    assert spec.name == path.stem and spec.handler == "echo_handler.process"


def test_every_rendered_object_passes_the_kubernetes_and_keda_schemas(rendered: MockedDeployment) -> None:
    objects = rendered.kubernetes_objects()
    assert {o["kind"] for o in objects} >= {"Deployment", "ScaledObject", "ConfigMap", "ServiceAccount"}
    assert validate_objects(objects) == []


def test_the_minimal_example_keeps_its_resources(rendered: MockedDeployment) -> None:
    handler = containers(rendered, "echo-actor")["handler"]
    assert handler["image"] == "python:3.13-slim"
    assert handler["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                    "limits": {"cpu": "500m", "memory": "256Mi"}}


def test_python_executable_image_pull_policy_initial_delay_and_the_sidecar_block(rendered: MockedDeployment) -> None:
    pod = containers(rendered, "retrying")
    assert pod["handler"]["command"] == ["/opt/conda/bin/python", "/opt/asya/handler_server.py"]
    assert pod["handler"]["livenessProbe"]["exec"]["command"][0] == "/opt/conda/bin/python"
    assert pod["handler"]["imagePullPolicy"] == "IfNotPresent"
    sidecar = pod["sidecar"]
    assert (sidecar["image"], sidecar["imagePullPolicy"]) == ("ghcr.io/example/asya-sidecar:1.0", "Always")
    assert sidecar["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["LOG_FORMAT"] == "json"
    policies = json.loads(env[SidecarConfig.model_fields["resiliency"].alias or ""])["policies"]
    assert policies["default"]["initialInterval"] == "1s" and policies["rate-limit"]["initialInterval"] == "10s"
    assert policies["rate-limit"]["onExhausted"] == ["fallback-actor"]


def test_list_env_secret_refs_and_volume_mounts_keep_their_meaning(rendered: MockedDeployment) -> None:
    handler = containers(rendered, "with-secrets")["handler"]
    env = {e["name"]: e for e in handler["env"]}
    assert env["MODEL_NAME"]["value"] == "gpt-4o"
    assert env["REGION_NAME"]["valueFrom"] == {"configMapKeyRef": {"name": "settings", "key": "region"}}
    assert env["OPENAI_API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "api-credentials", "key": "api-key"}}
    assert env["OPENAI_ORG_ID"]["valueFrom"] == {"secretKeyRef": {"name": "api-credentials", "key": "api-org"}}
    assert "envFrom" not in handler, "keys name single variables, not the whole Secret"
    assert {"name": "model-cache", "mountPath": "/models"} in handler["volumeMounts"]
    assert {"name": "prompts", "mountPath": "/etc/prompts", "readOnly": True} in handler["volumeMounts"]
    volumes = {v["name"]: v for v in pod_of(rendered, "with-secrets")["template"]["spec"]["volumes"]}
    assert volumes["prompts"] == {"name": "prompts", "configMap": {"name": "prompts"}}


def test_gpus_under_resources_tolerations_and_advanced_scaling(rendered: MockedDeployment) -> None:
    handler = containers(rendered, "gpu-scaled")["handler"]
    assert handler["resources"]["limits"]["nvidia.com/gpu"] == "1"
    spec = pod_of(rendered, "gpu-scaled")["template"]["spec"]
    assert spec["nodeSelector"]["team"] == "ml"
    assert {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"} in spec["tolerations"]
    scaled = scaled_object(rendered, "gpu-scaled")
    assert scaled is not None
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"], scaled["pollingInterval"],
            scaled["cooldownPeriod"]) == (0, 4, 15, 600)
    assert scaled["advanced"] == {
        "restoreToOriginalReplicaCount": True,
        "scalingModifiers": {"formula": "max(queue, cron)", "target": "2", "metricType": "AverageValue"},
    }
    queue, cron = scaled["triggers"]
    assert (queue["name"], queue["metadata"]["queueLength"]) == ("queue", "2")
    assert cron["type"] == "cron" and cron["metadata"]["desiredReplicas"] == "1"


def test_scaling_disabled_runs_a_fixed_number_of_replicas(rendered: MockedDeployment) -> None:
    assert pod_of(rendered, "fixed-replicas")["replicas"] == 2
    assert scaled_object(rendered, "fixed-replicas") is None
    assert "replicas" not in pod_of(rendered, "echo-actor"), "KEDA owns the count of a scaled actor"


ACTOR = "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: a}\nspec: {image: x, handler: h.f, "


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("flavors: [gpu-small]", "flavors: flavors are Crossplane EnvironmentConfigs"),
        ("stateProxy: [{name: s, mount: {path: /state}, connector: {image: c}}]",
         "stateProxy: the state proxy is upstream's own sidecar"),
        ("actor: b", "spec.actor 'b' differs from metadata.name 'a'"),
        ("env: [{name: A}]", "give exactly one of value and valueFrom"),
        ("secretRefs: [{secretName: s, keys: [{key: k}]}]", "each of keys is {key, envVar}"),
        ("volumeMounts: [{name: v, mountPath: /v}]", "name no volume"),
        ("scaling: {advanced: {formula: 'queue'}}", "advanced.formula and advanced.target go together"),
        ("sidecar: {env: [{name: ASYA_X, value: '1'}]}", "the ASYA_* names are rendered from the spec"),
        ("pythonExecutable: 'python3 -u'", "neither a command name"),
    ],
)
def test_what_cannot_mean_anything_here_is_refused_in_one_line(extra: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        AsyncActorSpec.from_manifest(ACTOR + extra + "}\n")
    problems = info.value.problems
    assert len(problems) == 1 and fragment in problems[0], problems


def test_an_actor_in_another_namespace_than_its_mesh_is_refused(tmp_path: Path) -> None:
    for path in PIPELINE.glob("*"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "echo-actor.yaml").write_text(
        (PIPELINE / "echo-actor.yaml").read_text().replace("namespace: my-project", "namespace: other")
    )
    with pytest.raises(SpecError, match=r"metadata\.namespace 'other' is not the mesh's namespace 'my-project'"):
        load_pipeline_dir(tmp_path)
