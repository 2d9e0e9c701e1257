import pytest
from pydantic import ValidationError

from asya_runtime.config import SidecarConfig
from asya_runtime.resiliency import Resiliency, queue_visibility_timeout


def test_env_round_trip_keeps_every_setting() -> None:
    cfg = SidecarConfig(
        actor="score",
        namespace="dev",
        mode="actor",
        region="eu-west-1",
        sqs_endpoint="http://127.0.0.1:4566",
        concurrency=4,
        resiliency=Resiliency.model_validate({"actorTimeout": "2m", "policies": {"default": {"maxAttempts": 5}}}),
        log_payloads=True,
    )
    env = cfg.to_env()
    assert env["ASYA_CONCURRENCY"] == "4"
    assert env["ASYA_LOG_PAYLOADS"] == "true"
    assert all(isinstance(v, str) for v in env.values())
    assert SidecarConfig.from_env({**env, "UNRELATED": "x"}) == cfg


def test_defaults_are_left_out_of_the_environment_but_resiliency_is_explicit() -> None:
    env = SidecarConfig(actor="a", namespace="n").to_env()
    assert set(env) == {"ASYA_ACTOR", "ASYA_NAMESPACE", "ASYA_RESILIENCY"}
    assert Resiliency.model_validate_json(env["ASYA_RESILIENCY"]) == Resiliency()


def test_queue_and_visibility_are_derived_not_configured() -> None:
    cfg = SidecarConfig(actor="judge", namespace="prod", resiliency=Resiliency.model_validate({"actorTimeout": "10s"}))
    assert cfg.queue_name == "asya-prod_judge"
    assert queue_visibility_timeout(cfg.resiliency) == 40  # the queue's; the sidecar reads it back from SQS


def test_bad_environment_names_the_variable() -> None:
    with pytest.raises(ValidationError, match="ASYA_CONCURRENCY"):
        SidecarConfig.from_env({"ASYA_ACTOR": "a", "ASYA_NAMESPACE": "n", "ASYA_CONCURRENCY": "lots"})
