"""An Asya-style AsyncActor manifest (maxDuration, onExhausted, qualified-name rules) loads and behaves as
docs/sidecar.md says, on the real local broker."""

from __future__ import annotations

from support.mesh import MeshHarness

from asya_pulumi.spec import AsyncActorSpec
from asya_runtime.envelope import new_envelope

MANIFEST = """
apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {name: fetch}
spec:
  image: fetcher:latest
  handler: handler.fetch
  resiliency:
    actorTimeout: 10s
    policies:
      default: {maxAttempts: 50, backoff: constant, initialInterval: 300ms, jitter: false, maxDuration: 1s,
                onExhausted: [recover]}
      never: {maxAttempts: 1}
    rules:
      - errors: [json.JSONDecodeError]
        policy: never
"""


def test_max_duration_ends_retries_and_on_exhausted_routes_to_the_recovery_actor(mesh: MeshHarness) -> None:
    resiliency = AsyncActorSpec.from_manifest(MANIFEST).resiliency
    mesh.standard("fetch", resiliency=resiliency)
    mesh.standard("recover")
    mesh.start_actor("fetch", handler="fail", resiliency=resiliency)
    mesh.start_actor("recover", handler="recover")
    mesh.send("fetch", new_envelope(route=["fetch"], payload={"key": "m"}))

    [done] = mesh.take("success-sink", 1)

    failing = [c["t"] for c in mesh.calls()][:-1]
    assert 2 <= len(failing) <= 4, "maxAttempts 50, but maxDuration 1s: retries stop after ~1 s"
    error = done["payload"]["recovered_from"]
    assert error["reason"] == "retries exhausted" and error["type"] == "ValueError" and error["actor"] == "fetch"
    mesh.assert_quiet("error-sink", wait_s=1)


def test_a_qualified_rule_picks_its_policy(mesh: MeshHarness) -> None:
    resiliency = AsyncActorSpec.from_manifest(MANIFEST).resiliency
    mesh.standard("fetch", resiliency=resiliency)
    mesh.start_actor("fetch", handler="bad_json", resiliency=resiliency)
    mesh.send("fetch", new_envelope(route=["fetch"], payload={"key": "q"}))

    [record] = mesh.take("error-sink", 1)

    assert record["status"]["error"]["type"] == "JSONDecodeError"
    assert record["status"]["attempt"] == 1 and len(mesh.calls()) == 1, "json.JSONDecodeError chose 'never'"
