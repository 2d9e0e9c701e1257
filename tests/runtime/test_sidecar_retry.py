"""Retries follow the resiliency policy: attempts, spacing, and the error sink when they run out."""

from __future__ import annotations

import itertools

from support.mesh import MeshHarness

from asya_runtime.envelope import new_envelope
from asya_runtime.resiliency import Resiliency

TRACEPARENT = "00-11111111111111111111111111111111-2222222222222222-01"
#: A loaded 2-core machine may be late (never early) by this much per attempt.
LATE_TOLERANCE_S = 1.0
EARLY_TOLERANCE_S = 0.05


def test_exponential_backoff_spaces_three_attempts_and_the_third_failure_is_error_ended(mesh: MeshHarness) -> None:
    resiliency = Resiliency.model_validate(
        {
            "actorTimeout": "10s",
            "policies": {
                "default": {
                    "maxAttempts": 3,
                    "backoff": "exponential",
                    "initialInterval": "200ms",
                    "maxInterval": "800ms",
                    "jitter": False,
                }
            },
        }
    )
    mesh.standard("flaky", resiliency=resiliency)
    mesh.start_actor("flaky", handler="fail_seeing_status", resiliency=resiliency)
    envelope = new_envelope(route=["flaky"], payload={"key": "r"}, headers={"traceparent": TRACEPARENT})
    mesh.send("flaky", envelope)

    [record] = mesh.take("error-sink", 1)

    seen = [(c["status"]["phase"], c["status"]["actor"], c["status"]["attempt"]) for c in mesh.calls()]
    assert seen == [("pending", "flaky", 1), ("retrying", "flaky", 2), ("retrying", "flaky", 3)], "upstream's phases"
    times = [c["t"] for c in mesh.calls()]
    assert len(times) == 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for gap, expected in zip(gaps, [0.2, 0.4], strict=True):
        assert expected - EARLY_TOLERANCE_S <= gap <= expected + LATE_TOLERANCE_S, gaps
    error = record["status"]["error"]
    assert error["type"] == "ValueError" and error["reason"] == "retries exhausted" and error["actor"] == "flaky"
    assert "refusing r" in error["message"] and "ValueError" in error["traceback"]
    assert record["status"]["attempt"] == 3
    status = record["status"]
    assert (status["phase"], status["actor"], status["reason"]) == ("failed", "flaky", "PolicyExhausted")
    assert record["id"] == envelope.id and record["headers"] == {"traceparent": TRACEPARENT}
    mesh.assert_quiet("flaky", "error-sink", "success-sink", wait_s=1)


def test_a_rule_gives_matching_errors_their_own_policy(mesh: MeshHarness) -> None:
    resiliency = Resiliency.model_validate(
        {
            "policies": {
                "default": {"maxAttempts": 3, "initialInterval": "100ms", "jitter": False},
                "never": {"maxAttempts": 1},
            },
            "rules": [{"errors": ["ValueError"], "policy": "never"}],
        }
    )
    mesh.standard("strict", resiliency=resiliency)
    mesh.start_actor("strict", handler="fail", resiliency=resiliency)
    mesh.send("strict", new_envelope(route=["strict"], payload={"key": "once"}))

    [record] = mesh.take("error-sink", 1)

    assert record["status"]["error"]["reason"] == "retries exhausted"
    assert record["status"]["attempt"] == 1
    assert len(mesh.calls()) == 1


def test_a_delay_over_a_second_is_honoured_through_delay_seconds_plus_an_in_process_hold(mesh: MeshHarness) -> None:
    resiliency = Resiliency.model_validate(
        {
            "policies": {
                "default": {"maxAttempts": 2, "backoff": "constant", "initialInterval": "1500ms", "jitter": False}
            }
        }
    )
    mesh.standard("slowretry", resiliency=resiliency)
    mesh.start_actor("slowretry", handler="fail", resiliency=resiliency)
    mesh.send("slowretry", new_envelope(route=["slowretry"], payload={"key": "d"}))

    [record] = mesh.take("error-sink", 1)

    first, second = (c["t"] for c in mesh.calls())
    assert 1.5 - EARLY_TOLERANCE_S <= second - first <= 1.5 + LATE_TOLERANCE_S, second - first
    assert record["status"]["attempt"] == 2 and record["status"]["error"]["reason"] == "retries exhausted"
