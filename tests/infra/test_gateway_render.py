"""What the mesh's gateway section renders into the processes: ``statusRetentionDays`` into the gateway's and every
sidecar's ``ASYA_STATUS_RETENTION_DAYS``, and ``ASYA_GATEWAY_MESH`` built by one function for the Deployment and
``asya dev --gateway`` alike (issue 21)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from asya_pulumi.local.gateway import gateway_config as local_gateway_config
from asya_pulumi.local.gateway import status_retention_days
from asya_pulumi.local.gateway import status_settings as local_status_settings
from asya_pulumi.objects.gateway import gateway_config, gateway_mesh
from asya_pulumi.objects.sidecar import sidecar_config, status_settings
from asya_pulumi.spec import MeshSpec, load_pipeline_dir
from asya_runtime.config import SidecarConfig
from asya_runtime.gateway.config import GatewayConfig

SCHEMA = {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}


def mesh(tmp_path: Path, gateway: Any) -> MeshSpec:
    for name in ("fetch", "score"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({
            "apiVersion": "asya.sh/v1alpha1", "kind": "AsyncActor", "metadata": {"name": name},
            "spec": {"image": "scoring:1.0", "handler": f"handlers.{name}"}}))
    spec: dict[str, Any] = {"routes": {"score": ["fetch", "score"], "fetch-only": ["fetch"]}}
    if gateway is not ...:
        spec["gateway"] = gateway
    (tmp_path / "mesh.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "asya.sh/v1alpha1", "kind": "ActorMesh", "metadata": {"name": "scoring"}, "spec": spec}))
    return load_pipeline_dir(tmp_path)


def deployed(spec: MeshSpec) -> GatewayConfig:
    assert spec.gateway is not None
    return gateway_config(spec, spec.gateway, issuer="https://issuer.example/", audience="asya-gateway",
                          result_bucket="asya-scoring-results")


def local(spec: MeshSpec) -> GatewayConfig:
    return local_gateway_config(mesh=spec, region="us-east-1", sqs_endpoint="http://127.0.0.1:1",
                                s3_endpoint="http://127.0.0.1:1", dynamodb_endpoint="http://127.0.0.1:2",
                                bucket="asya-scoring-results", port=8089)


@pytest.mark.parametrize(("gateway", "days"), [({}, 7), ({"statusRetentionDays": 30}, 30)])
def test_status_retention_days_reaches_the_gateway_and_every_sidecar(
    tmp_path: Path, gateway: dict[str, Any], days: int
) -> None:
    spec = mesh(tmp_path, {**gateway, "auth": {"audience": "asya-gateway"}})
    for config in (deployed(spec), local(spec)):
        assert GatewayConfig.from_env(config.to_env()).status_retention_days == days
    rendered = sidecar_config(spec.actors[0], namespace=spec.namespace, region=spec.region,
                              **status_settings(namespace=spec.namespace, retention_days=days))
    env = rendered.to_env()
    assert env["ASYA_STATUS_TABLE"] == f"asya-{spec.namespace}_status"
    assert SidecarConfig.from_env(env).status_retention_days == days
    assert ("ASYA_STATUS_RETENTION_DAYS" in env) is (days != 7)  # the default is left out, as every default is
    local_env = local_status_settings(table="t", endpoint="http://127.0.0.1:2",
                                      retention_days=status_retention_days(spec))
    assert local_env["ASYA_STATUS_RETENTION_DAYS"] == str(days)


def test_a_mesh_without_a_gateway_section_keeps_the_default_retention_locally(tmp_path: Path) -> None:
    spec = mesh(tmp_path, ...)
    assert status_retention_days(spec) == 7 and local(spec).status_retention_days == 7


def test_the_gateways_mesh_is_built_once_for_the_deployment_and_asya_dev(tmp_path: Path) -> None:
    spec = mesh(tmp_path, {"auth": {"audience": "asya-gateway"},
                           "tools": {"score": {"description": "Score a page.", "inputSchema": SCHEMA}}})
    built = gateway_mesh(spec)
    assert deployed(spec).mesh == local(spec).mesh == built
    assert deployed(spec).to_env()["ASYA_GATEWAY_MESH"] == local(spec).to_env()["ASYA_GATEWAY_MESH"]
    assert built.namespace == spec.namespace and built.actors == ["fetch", "score"]
    score, fetch_only = built.routes["score"], built.routes["fetch-only"]
    assert (score.actors, score.description, score.input_schema) == (["fetch", "score"], "Score a page.", SCHEMA)
    assert (fetch_only.actors, fetch_only.description, fetch_only.input_schema) == (["fetch"], "", {"type": "object"})


def test_without_a_gateway_section_every_route_is_a_tool_taking_any_object(tmp_path: Path) -> None:
    built = gateway_mesh(mesh(tmp_path, ...))
    assert set(built.routes) == {"score", "fetch-only"}
    assert all(r.description == "" and r.input_schema == {"type": "object"} for r in built.routes.values())
