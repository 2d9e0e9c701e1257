"""An Asya-style manifest with maxDuration, onExhausted and qualified-name rules loads; its mistakes are named."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from asya_pulumi.spec import AsyncActorSpec, MeshSpec, SpecError

ASYA_MANIFEST = """
apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {name: fetch-page}
spec:
  image: fetcher:latest
  handler: handler.fetch
  resiliency:
    actorTimeout: 60s
    policies:
      default: {maxAttempts: 5, backoff: exponential, initialInterval: 1s, maxInterval: 30s, maxDuration: 10m,
                onExhausted: [fetch-fallback]}
      never: {maxAttempts: 1, onExhausted: [alert-devops]}
    rules:
      - errors: [requests.exceptions.Timeout, ConnectionError]
        policy: default
      - errors: [builtins.ValueError, openai.AuthenticationError]
        policy: never
"""


def actor(name: str) -> AsyncActorSpec:
    return AsyncActorSpec.from_manifest(
        {"apiVersion": "asya.sh/v1alpha1", "kind": "AsyncActor", "metadata": {"name": name},
         "spec": {"image": "x:1", "handler": "h.f"}}
    )


def test_the_asya_manifest_loads_with_its_values() -> None:
    spec = AsyncActorSpec.from_manifest(ASYA_MANIFEST)
    default, never = spec.resiliency.policies["default"], spec.resiliency.policies["never"]
    assert default.max_duration == 600 and default.on_exhausted == ["fetch-fallback"]
    assert never.on_exhausted == ["alert-devops"]
    assert spec.resiliency.rules[0].errors == ["requests.exceptions.Timeout", "ConnectionError"]
    assert spec.resiliency.policy_for(["Timeout"], ["requests.exceptions.Timeout"]) is default
    assert spec.resiliency.policy_for(["AuthenticationError"], ["openai._exceptions.AuthenticationError"]) is never


def test_a_mesh_with_the_recovery_actors_is_valid() -> None:
    mesh = MeshSpec(
        namespace="dev",
        actors=[AsyncActorSpec.from_manifest(ASYA_MANIFEST), actor("fetch-fallback"), actor("alert-devops")],
    )
    assert mesh.actor("fetch-page").resiliency.recovery_actors == {"fetch-fallback", "alert-devops"}


def test_on_exhausted_naming_no_actor_of_the_mesh_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError) as info:
        MeshSpec(namespace="dev", actors=[AsyncActorSpec.from_manifest(ASYA_MANIFEST), actor("fetch-fallback")])
    message = str(info.value)
    assert "actor 'fetch-page': resiliency.policies.never.onExhausted names 'alert-devops'" in message
    assert "not an actor of the mesh; add it or name one of: fetch-fallback, fetch-page" in message


def test_on_exhausted_naming_the_actor_itself_is_refused() -> None:
    document: dict[str, Any] = yaml.safe_load(ASYA_MANIFEST)
    document["spec"]["resiliency"]["policies"]["never"]["onExhausted"] = ["fetch-page"]
    spec = AsyncActorSpec.from_manifest(document)
    with pytest.raises(ValueError, match="onExhausted names 'fetch-page', the actor itself"):
        MeshSpec(namespace="dev", actors=[spec, actor("fetch-fallback")])


@pytest.mark.parametrize(
    ("policy_change", "fragment"),
    [
        ({"onExhausted": ["error-sink"]}, "spec.resiliency.policies.default.onExhausted"),
        ({"maxDuration": "soon"}, "spec.resiliency.policies.default.maxDuration"),
    ],
)
def test_bad_asya_fields_name_the_field(policy_change: dict[str, Any], fragment: str) -> None:
    document: dict[str, Any] = yaml.safe_load(ASYA_MANIFEST)
    document["spec"]["resiliency"]["policies"]["default"].update(policy_change)
    with pytest.raises(SpecError) as info:
        AsyncActorSpec.from_manifest(document)
    assert fragment in str(info.value)
