"""An actor's ``OTEL_*`` env reaches its sidecar too (what switches on the sidecar's spans), recorded under mocks."""

from __future__ import annotations

from typing import Any

import pulumi
from infra_mocks import Deployment
from support.pods import plain_env

from asya_pulumi.components import ActorMesh
from asya_pulumi.spec import MeshSpec

ENDPOINT = "http://otel-collector.observability:4317"


def _env(deployment: Deployment, name: str, container: str) -> dict[str, Any]:
    template = deployment.one("kubernetes:apps/v1:Deployment", f"traced-{name}-deployment").inputs["spec"]["template"]
    [found] = [c for c in template["spec"]["containers"] if c["name"] == container]
    return plain_env(found)


def test_the_actors_otel_env_goes_to_its_sidecar_as_well_as_its_handler(deployment: Deployment) -> None:
    actor = {
        "name": "worker",
        "image": "worker:1",
        "handler": "h.run",
        "env": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
            # A Pulumi output (say, a collector's address from another resource) arrives resolved.
            "OTEL_RESOURCE_ATTRIBUTES": pulumi.Output.from_input("deployment.environment=prod"),
            "MODEL": "small",
        },
    }
    spec = MeshSpec.model_validate({"namespace": "traced", "actors": [actor], "routes": {"go": ["worker"]}})
    deployment.run(lambda: ActorMesh("traced", spec=spec, cluster_name="c1").namespace)

    sidecar, handler = _env(deployment, "worker", "sidecar"), _env(deployment, "worker", "handler")
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod"}
    assert sidecar | otel == sidecar and handler | otel == handler
    assert "MODEL" not in sidecar and handler["MODEL"] == "small"
    assert sidecar["ASYA_ACTOR"] == "worker"  # the sidecar's own settings are still all there
    assert not any(k.startswith("OTEL_") for k in _env(deployment, "success-sink", "sidecar"))
