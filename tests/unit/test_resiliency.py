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


# -- maxDuration, onExhausted, qualified-name rules (Asya's resiliency contract)


def test_max_duration_and_on_exhausted_parse_and_round_trip() -> None:
    r = Resiliency.model_validate(
        {"policies": {"default": {"maxDuration": "10m", "onExhausted": ["recover", "alert"]}, "x": {}}}
    )
    default = r.policies["default"]
    assert default.max_duration == 600 and default.on_exhausted == ["recover", "alert"]
    assert r.policies["x"].max_duration is None and r.policies["x"].on_exhausted == []
    assert r.recovery_actors == {"recover", "alert"}
    assert Resiliency.model_validate_json(r.to_json()) == r


def test_on_exhausted_may_be_one_name() -> None:
    r = Resiliency.model_validate({"policies": {"default": {"onExhausted": "recover"}}})
    assert r.policies["default"].on_exhausted == ["recover"]


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"onExhausted": ["error-sink"]}, "onExhausted names 'error-sink'.*reserved for the mesh's built-in sink"),
        ({"onExhausted": ["b-dlq"]}, "onExhausted names 'b-dlq'"),
        ({"onExhausted": ["Not_An_Actor"]}, "onExhausted names 'Not_An_Actor'"),
        ({"maxDuration": "0s"}, "maxDuration"),
        ({"maxDuration": "later"}, "is not a duration"),
    ],
)
def test_bad_policy_fields_fail_naming_the_field(policy: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Resiliency.model_validate({"policies": {"default": policy}})


def test_a_rule_entry_that_is_no_class_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="'requests exceptions' is not an exception class name"):
        Resiliency.model_validate(
            {"policies": {"x": {}}, "rules": [{"errors": ["requests exceptions"], "policy": "x"}]}
        )


def test_out_of_time_means_the_next_attempt_would_start_past_max_duration() -> None:
    p = RetryPolicy.model_validate({"maxDuration": "10s", "maxAttempts": 9})
    assert not p.out_of_time(elapsed_s=4, delay_s=5)
    assert p.out_of_time(elapsed_s=6, delay_s=4)
    assert p.out_of_time(elapsed_s=11, delay_s=0)
    assert not RetryPolicy().out_of_time(elapsed_s=1e9, delay_s=60), "no maxDuration: never out of time"


TIMEOUT_MRO = (["Timeout", "ConnectionError", "RequestException", "OSError", "Exception", "BaseException"])
TIMEOUT_QUALIFIED = [
    "requests.exceptions.Timeout",
    "requests.exceptions.ConnectionError",
    "requests.exceptions.RequestException",
    "builtins.OSError",
    "builtins.Exception",
    "builtins.BaseException",
]


@pytest.mark.parametrize(
    ("entry", "matches"),
    [
        ("Timeout", True),  # short name
        ("requests.exceptions.Timeout", True),  # exact qualified name
        ("requests.Timeout", True),  # the package that re-exports it
        ("builtins.OSError", True),  # a base class, qualified
        ("OSError", True),  # a base class, short
        ("requests.exceptions.RequestException", True),
        ("urllib3.exceptions.Timeout", False),  # same short name, another package
        ("requests.exceptions.Time", False),
        ("requests.exceptions", False),  # a module is no class
        ("builtins.ValueError", False),
        ("ValueError", False),
        ("ests.exceptions.Timeout", False),  # a module path matches by whole segments only
    ],
)
def test_rules_match_short_and_qualified_names(entry: str, matches: bool) -> None:
    r = Resiliency.model_validate(
        {"policies": {"default": {"maxAttempts": 2}, "hit": {"maxAttempts": 7}},
         "rules": [{"errors": [entry], "policy": "hit"}]}
    )
    policy = r.policy_for(TIMEOUT_MRO, TIMEOUT_QUALIFIED)
    assert (policy.max_attempts == 7) is matches


def test_a_qualified_rule_never_matches_an_error_reported_without_qualified_names() -> None:
    """A Node.js handler server reports short names only: dotted entries cannot match, short ones still do."""
    r = Resiliency.model_validate(
        {"policies": {"x": {"maxAttempts": 5}},
         "rules": [{"errors": ["builtins.TypeError"], "policy": "x"}, {"errors": ["RangeError"], "policy": "x"}]}
    )
    assert r.policy_for(["TypeError", "Error"]).max_attempts == r.policies["default"].max_attempts
    assert r.policy_for(["RangeError", "Error"]).max_attempts == 5


def test_builtins_value_error_matches_a_python_value_error() -> None:
    r = Resiliency.model_validate(
        {"policies": {"never": {"maxAttempts": 1}}, "rules": [{"errors": ["builtins.ValueError"], "policy": "never"}]}
    )
    assert r.policy_for(["ValueError", "Exception", "BaseException"],
                        ["builtins.ValueError", "builtins.Exception", "builtins.BaseException"]).max_attempts == 1
