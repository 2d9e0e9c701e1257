"""``fanIn`` renders for Kubernetes and IAM: the timeout reaches the sidecar as ``ASYA_FANIN_TIMEOUT``, the fan-in
actor's role (and no other) may keep state under its own ``fanin/{actor}/`` prefix of its mesh's bucket, and a bad
timeout or a fan-in actor without a bucket is refused with a message naming the field."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from infra_mocks import REGION, Deployment
from pydantic import ValidationError
from support.pods import plain_env

from asya_pulumi.components import ActorMesh, AsyncActor
from asya_pulumi.spec import AsyncActorSpec, MeshSpec
from asya_runtime.config import SidecarConfig

JOIN = {"name": "join", "image": "join:1", "handler": "handlers.join", "fanIn": {"timeout": "10m"}}
SPLIT = {"name": "split", "image": "split:1", "handler": "handlers.split"}
# Actor "join" and actor "join-b": the '/' after the name keeps the one's state prefix from matching the other's.
ACTORS = [SPLIT, JOIN, {**SPLIT, "name": "join-b"}]


@pytest.fixture
def mesh(deployment: Deployment) -> Deployment:
    spec = MeshSpec(namespace="m", region=REGION, actors=[AsyncActorSpec.model_validate(a) for a in ACTORS],
                    routes={"go": ["split", "join"]})
    deployment.run(lambda: ActorMesh("m", spec=spec, cluster_name="c1"))
    return deployment


def sidecar_env(deployment: Deployment, actor: str) -> dict[str, str]:
    [record] = [d for d in deployment.of_type("kubernetes:apps/v1:Deployment")
                if d.inputs["metadata"]["name"] == actor]
    [sidecar] = [c for c in record.inputs["spec"]["template"]["spec"]["containers"] if c["name"] == "sidecar"]
    env: dict[str, str] = plain_env(sidecar)
    return env


def policy_of(deployment: Deployment, actor: str) -> dict[str, Any]:
    [policy] = [p for p in deployment.of_type("aws:iam/rolePolicy:RolePolicy")
                if str(p.inputs["role"]).startswith(f"asya-m_{actor}_")]
    document: dict[str, Any] = json.loads(policy.inputs["policy"])
    return document


def test_the_fan_in_timeout_reaches_the_sidecar_and_reads_back(mesh: Deployment) -> None:
    env = sidecar_env(mesh, "join")
    assert env["ASYA_FANIN_TIMEOUT"] == "600s"
    assert SidecarConfig.from_env(env).fanin_timeout == 600
    assert env["ASYA_RESULT_BUCKET"]  # its state lives in the mesh's bucket
    assert "ASYA_FANIN_TIMEOUT" not in sidecar_env(mesh, "split")


def test_only_the_fan_in_actor_may_keep_state_and_only_under_its_own_prefix(mesh: Deployment) -> None:
    statements = {s["Sid"]: s for s in policy_of(mesh, "join")["Statement"]}
    state = statements["FanInState"]["Resource"]
    assert state.endswith("/fanin/join/*")
    assert statements["FanInListings"]["Condition"] == {"StringLike": {"s3:prefix": ["fanin/join/*", "failed/*"]}}
    assert statements["FanInErrorRecords"]["Action"] == ["s3:GetObject"]
    for other in ("split", "join-b"):
        assert "FanIn" not in json.dumps(policy_of(mesh, other))
    pattern = re.compile(re.escape(state).replace(r"\*", ".*") + r"\Z")
    assert pattern.match(state.replace("*", "p/000000.json"))
    assert not pattern.match(state.replace("/fanin/join/*", "/fanin/join-b/p/000000.json"))


@pytest.mark.parametrize(("timeout", "says"), [
    ("0s", "must be more than 0s"), ("soon", "not a duration"), ("200h", "over the limit of 168h"),
])
def test_a_bad_timeout_is_refused_naming_the_field(timeout: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AsyncActorSpec.model_validate({**JOIN, "fanIn": {"timeout": timeout}})
    assert "fanIn.timeout" in str(caught.value) and says in str(caught.value)


def test_a_fan_in_actor_without_a_bucket_is_refused(deployment: Deployment) -> None:
    spec = AsyncActorSpec.model_validate(JOIN)
    with pytest.raises(ValueError, match=r"fanIn.*result_bucket"):
        deployment.run(lambda: AsyncActor("m-join", spec=spec, namespace="m", region=REGION, cluster_name="c1"))


def test_fan_in_and_batch_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="fanIn and batch cannot both be set"):
        AsyncActorSpec.model_validate({**JOIN, "batch": {"maxSize": 4}})
