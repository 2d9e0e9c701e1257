"""``spec.rateLimit`` rendered: the field's checks, its place in the cross-language schema, the sidecar env, the
status table it makes the mesh create (gateway or not), and the IAM statement that lets a rate-limited actor
update its own bucket item and nothing else (docs/sidecar.md, "Rate limit")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from infra_mocks import ACCOUNT, REGION, Deployment
from support.pods import plain_env
from test_spec_errors import error_of, manifest

from asya_pulumi.components import ActorMesh, AsyncActor, Keda
from asya_pulumi.objects.iam import actor_policy
from asya_pulumi.package.provider import schema
from asya_pulumi.spec import AsyncActorSpec, MeshSpec
from asya_runtime.config import SidecarConfig
from asya_runtime.status.schema import rate_limit_key

TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/asya-rl_status"


def actor(name: str, **fields: Any) -> AsyncActorSpec:
    return AsyncActorSpec(name=name, image="img:1", handler="handlers.run", **fields)


def test_a_rate_limit_reads_from_a_manifest_with_its_default_burst() -> None:
    spec = AsyncActorSpec.from_manifest(manifest(rateLimit={"perSecond": 2.5}))
    assert spec.rate_limit is not None and (spec.rate_limit.per_second, spec.rate_limit.burst) == (2.5, 1)
    assert AsyncActorSpec.from_manifest(manifest()).rate_limit is None


@pytest.mark.parametrize(
    ("rate_limit", "expected"),
    [
        ({"perSecond": 0}, ["spec.rateLimit.perSecond", "perSecond 0 is outside (0, 1000]", "0.5 for one every 2 s"]),
        ({"perSecond": -3}, ["spec.rateLimit.perSecond", "outside (0, 1000]"]),
        ({"perSecond": 5000}, ["spec.rateLimit.perSecond", "split the work over several actors"]),
        ({"perSecond": 5, "burst": 0}, ["spec.rateLimit.burst", "greater than or equal to 1"]),
        ({"burst": 3}, ["spec.rateLimit.perSecond", "Field required"]),
        ({"perSecond": 5, "rate": 1}, ["spec.rateLimit", "rate"]),
    ],
)
def test_a_bad_rate_limit_names_the_field_and_the_limit(rate_limit: dict[str, Any], expected: list[str]) -> None:
    message = error_of(manifest(rateLimit=rate_limit))
    for text in expected:
        assert text in message, message


def test_the_schema_types_the_rate_limit_with_its_default() -> None:
    types = schema()["types"]
    (actor_type,) = [t for name, t in types.items() if name.endswith(":AsyncActorSpec")]
    reference = actor_type["properties"]["rateLimit"]["$ref"]
    limit = types[reference.removeprefix("#/types/")]
    assert limit["properties"]["perSecond"]["type"] == "number"
    assert limit["properties"]["burst"]["type"] == "integer" and limit["properties"]["burst"]["default"] == 1
    assert limit["required"] == ["perSecond"]


def render(deployment: Deployment, *, gateway: bool) -> None:
    def program() -> None:
        keda = Keda("keda", cluster_name="c1", region=REGION, mesh_namespaces=["rl"])
        spec = MeshSpec(
            namespace="rl", region=REGION, routes={"go": ["api", "plain"]},
            actors=[actor("api", rate_limit={"perSecond": 5, "burst": 2}), actor("plain")],
            gateway={"auth": {"issuer": "https://issuer.example.com", "audience": "asya-gateway"}} if gateway else None,
        )
        ActorMesh("rl", spec=spec, cluster_name="c1", keda=keda)

    deployment.run(program)


def sidecar_env(deployment: Deployment, actor: str) -> dict[str, str]:
    pod = deployment.one("kubernetes:apps/v1:Deployment", f"rl-{actor}-deployment").inputs["spec"]["template"]
    (sidecar,) = [c for c in pod["spec"]["containers"] if c["name"] == "sidecar"]
    return plain_env(sidecar)


def statements(deployment: Deployment, name: str) -> dict[str, dict[str, Any]]:
    policy = json.loads(deployment.one("aws:iam/rolePolicy:RolePolicy", f"rl-{name}-policy").inputs["policy"])
    return {s["Sid"]: s for s in policy["Statement"]}


def test_without_a_gateway_a_rate_limited_actor_gets_the_table_and_only_its_own_bucket(deployment: Deployment) -> None:
    render(deployment, gateway=False)

    (table,) = deployment.of_type("aws:dynamodb/table:Table")
    assert table.inputs["name"] == "asya-rl_status" and table.inputs["deletionProtectionEnabled"] is False
    assert not [d for d in deployment.of_type("kubernetes:apps/v1:Deployment") if "gateway" in d.name]
    config = SidecarConfig.from_env(sidecar_env(deployment, "api"))
    assert (config.rate_limit_per_second, config.rate_limit_burst, config.status_table) == (5.0, 2, "asya-rl_status")
    api = statements(deployment, "api")
    assert "TrackStatus" not in api  # no status reports without the front door
    assert api["RateLimitBucket"] == {
        "Sid": "RateLimitBucket", "Effect": "Allow", "Action": ["dynamodb:UpdateItem"],
        "Resource": table.outputs["arn"],
        "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["rate-limit/api"]}},
    }
    # the actor without a limit, and the sinks, get neither the table nor any DynamoDB right
    for other in ("plain", "success-sink", "error-sink"):
        assert "ASYA_STATUS_TABLE" not in sidecar_env(deployment, other)
        assert not [s for s in statements(deployment, other).values() if any("dynamodb" in a for a in s["Action"])]
    assert "ASYA_RATE_LIMIT_PER_SECOND" not in sidecar_env(deployment, "plain")


def test_with_the_gateway_the_bucket_statement_rides_along(deployment: Deployment) -> None:
    render(deployment, gateway=True)

    (table,) = deployment.of_type("aws:dynamodb/table:Table")
    api, plain = statements(deployment, "api"), statements(deployment, "plain")
    assert "TrackStatus" in api and "TrackStatus" in plain
    assert api["RateLimitBucket"]["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"] == [
        "rate-limit/api"]
    assert "RateLimitBucket" not in plain
    assert sidecar_env(deployment, "plain")["ASYA_STATUS_TABLE"] == sidecar_env(deployment, "api")[
        "ASYA_STATUS_TABLE"] == table.inputs["name"]


def test_an_actor_on_its_own_with_a_rate_limit_needs_the_table(deployment: Deployment) -> None:
    with pytest.raises(ValueError, match=r"rateLimit.*status table.*rate_limit_table_arn"):
        AsyncActor("solo", spec=actor("solo", rate_limit={"perSecond": 1}), namespace="rl", region=REGION,
                   cluster_name="c1")


def test_the_bucket_key_is_exact_for_prefix_related_actor_names() -> None:
    """``x`` and ``b-x`` (and ``x`` of another mesh, whose table differs): StringEquals on one key, no wildcard."""
    keys = {}
    for name in ("x", "b-x", "x-1"):
        policy = actor_policy(queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:asya-rl_{name}", namespace="rl",
                              rate_limit=(TABLE_ARN, name))
        (statement,) = [s for s in policy["Statement"] if s["Sid"] == "RateLimitBucket"]
        (keys[name],) = statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
        assert "*" not in keys[name] and "?" not in keys[name]
    assert keys == {name: rate_limit_key(name) for name in keys} and len(set(keys.values())) == 3


def test_a_team_stack_actor_with_a_rate_limit_is_refused_naming_the_field() -> None:
    from asya_pulumi.spec.team import TeamSpec

    with pytest.raises(ValueError, match=r"'api' has rateLimit.*platform stack"):
        TeamSpec(namespace="rl", region=REGION, actors=[actor("api", rate_limit={"perSecond": 2})])
