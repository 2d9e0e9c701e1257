import random

import pytest
from pydantic import ValidationError

from asya_runtime.resiliency import (
    Resiliency,
    RetryPolicy,
    queue_max_receive_count,
    queue_visibility_timeout,
)


def test_manifest_block_parses_with_camel_case_and_durations() -> None:
    r = Resiliency.model_validate(
        {
            "actorTimeout": "120s",
            "policies": {"default": {"maxAttempts": 3, "backoff": "exponential", "initialInterval": "2s",
                                     "maxInterval": "30s"}},
        }
    )
    assert r.actor_timeout == 120
    assert r.policies["default"].initial_interval == 2
    assert r.policies["default"].max_interval == 30


def test_default_policy_is_added_when_omitted() -> None:
    r = Resiliency.model_validate({"policies": {"slow": {"maxAttempts": 5}}})
    assert set(r.policies) == {"default", "slow"}
    assert r.max_attempts == 5


@pytest.mark.parametrize(
    ("backoff", "delays"),
    [("constant", [2, 2, 2, 2]), ("linear", [2, 4, 6, 8]), ("exponential", [2, 4, 8, 10])],
)
def test_backoff_shapes_are_capped_at_max_interval(backoff: str, delays: list[float]) -> None:
    p = RetryPolicy.model_validate(
        {"backoff": backoff, "initialInterval": "2s", "maxInterval": "10s", "jitter": False, "maxAttempts": 9}
    )
    assert [p.delay_after(attempt=n) for n in range(1, 5)] == delays


def test_jitter_stays_within_half_to_full_delay() -> None:
    p = RetryPolicy.model_validate({"initialInterval": "4s", "maxInterval": "4s"})
    rng = random.Random(7)
    samples = [p.delay_after(attempt=1, rng=rng) for _ in range(200)]
    assert min(samples) >= 2 and max(samples) <= 4 and len(set(samples)) > 100


def test_rules_pick_a_policy_by_any_name_in_the_error_chain() -> None:
    r = Resiliency.model_validate(
        {
            "policies": {"default": {"maxAttempts": 2}, "patient": {"maxAttempts": 6}},
            "rules": [{"errors": ["ConnectionError"], "policy": "patient"}],
        }
    )
    assert r.policy_for(["ConnectionResetError", "ConnectionError", "OSError"]).max_attempts == 6
    assert r.policy_for(["ValueError", "Exception"]).max_attempts == 2


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"actorTimeout": "13h"}, "exceeds SQS's 12h visibility ceiling"),
        ({"policies": {"default": {"maxAttempts": 0}}}, "maxAttempts"),
        ({"policies": {"default": {"initialInterval": "40s", "maxInterval": "30s"}}},
         r"initialInterval \(40s\) is greater than maxInterval \(30s\)"),
        ({"policies": {"default": {"maxInterval": "20m"}}}, "15 min DelaySeconds limit"),
        ({"rules": [{"errors": ["X"], "policy": "nope"}]}, r"rules\[0\]\.policy 'nope' is not defined"),
        ({"actorTimeout": "soon"}, "is not a duration"),
        ({"policies": {"default": {"maxAtempts": 3}}}, "maxAtempts"),
    ],
)
def test_bad_blocks_fail_naming_the_field_and_fix(block: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Resiliency.model_validate(block)


@pytest.mark.parametrize(("timeout", "visibility"), [("5s", 35), ("60s", 90), ("10m", 90), ("11h58m30s", 90)])
def test_visibility_timeout_derivation(timeout: str, visibility: int) -> None:
    assert queue_visibility_timeout(Resiliency.model_validate({"actorTimeout": timeout})) == visibility


def test_max_receive_count_leaves_the_sidecar_room_to_error_end() -> None:
    r = Resiliency.model_validate({"policies": {"default": {"maxAttempts": 3}, "x": {"maxAttempts": 4}}})
    # Worst case: a retry message (attempt 2) is redelivered; the sidecar error-ends it once
    # attempt + receiveCount - 1 > max_attempts, i.e. at receive 4 — SQS must not dead-letter before receive 5.
    assert queue_max_receive_count(r) == 6


def test_serialised_form_parses_back_identically() -> None:
    r = Resiliency.model_validate({"actorTimeout": "1500ms", "policies": {"default": {"backoff": "linear"}}})
    assert Resiliency.model_validate_json(r.to_json()) == r
