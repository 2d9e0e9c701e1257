"""The local-mesh library as ``asya dev`` uses it: no Pulumi SDK loaded, and the same handler and queue settings
as the pods and queues ``pulumi up`` creates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asya_pulumi.local.plan import MeshPlan, process_specs
from asya_pulumi.objects.pod import handler_container
from asya_pulumi.objects.queue_settings import queue_settings
from asya_pulumi.spec.actor import AsyncActorSpec
from asya_pulumi.spec.mesh import MeshSpec
from asya_runtime.handler_server import DEFAULT_SOCKET_PATH, HandlerServerConfig, StartupError
from asya_runtime.resiliency import Resiliency
from e2e.conftest import EXAMPLES

_IMPORT_LOCAL_MODE = """
import json, sys
import asya_pulumi.local, asya_pulumi.local.plan, asya_pulumi.local.processes, asya_pulumi.local.queues
import asya_pulumi.local.results, asya_pulumi.testing, asya_pulumi.objects.queue_settings
from asya_pulumi.cli import main
from asya_pulumi.cli.dev import command, run, session, setup
mesh, directory = setup.load_mesh(sys.argv[1], namespace=None)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0].startswith("pulumi"))))
"""


def test_local_mode_imports_no_pulumi_sdk() -> None:
    """The local library and the whole ``asya dev`` command path, imported in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_LOCAL_MODE, str(EXAMPLES / "text-chunking")],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_the_check_above_would_see_a_pulumi_import() -> None:
    code = _IMPORT_LOCAL_MODE.replace("import json, sys", "import json, sys, pulumi")
    done = subprocess.run(
        [sys.executable, "-c", code, str(EXAMPLES / "text-chunking")], capture_output=True, text=True, timeout=120
    )
    assert "pulumi" in json.loads(done.stdout.splitlines()[-1])


def _actor(**extra: object) -> AsyncActorSpec:
    return AsyncActorSpec.model_validate(
        {"name": "step", "image": "x:1", "handler": "steps.run", "concurrency": 3,
         "resiliency": {"actorTimeout": "45s"}, "env": {"MODEL": "small"}, **extra}
    )


def test_asya_dev_gives_a_handler_server_the_settings_a_pod_gives_it(tmp_path: Path) -> None:
    actor = _actor()
    plan = MeshPlan(
        mesh=MeshSpec(namespace="n", actors=[actor], routes={"r": ["step"]}), pipeline_dir=tmp_path,
        region="us-east-1", sqs_endpoint="http://127.0.0.1:1", s3_endpoint="http://127.0.0.1:1", bucket="b",
        replicas={}, socket_dir=tmp_path,
    )
    [handler] = [s for s in process_specs(plan) if s.name == "step-0-handler"]
    pod_env = {e["name"]: e["value"] for e in handler_container(spec=actor)["env"]}

    local = HandlerServerConfig.from_env(handler.env)
    in_pod = HandlerServerConfig.from_env(pod_env)
    assert local.drain_s == in_pod.drain_s == 55  # actorTimeout + 10: a call running at SIGTERM may finish
    assert local.concurrency == in_pod.concurrency == 3 and local.handler == in_pod.handler == "steps.run"
    assert (local.socket_path, in_pod.socket_path) == (str(tmp_path / "step-0.sock"), DEFAULT_SOCKET_PATH)
    assert local.search_path == (str(tmp_path),) and in_pod.search_path == ()
    assert handler.env["MODEL"] == pod_env["MODEL"] == "small"
    assert handler.health_socket == local.socket_path


def test_handler_server_config_round_trips_and_names_a_bad_value() -> None:
    config = HandlerServerConfig(handler="m.f", socket_path="/s", concurrency=4, drain_s=12.5, search_path=("/a", "/b"))
    assert HandlerServerConfig.from_env(config.to_env()) == config
    with pytest.raises(StartupError, match="ASYA_HANDLER_CONCURRENCY='0' must be a whole number >= 1"):
        HandlerServerConfig.from_env({**config.to_env(), "ASYA_HANDLER_CONCURRENCY": "0"})
    with pytest.raises(StartupError, match="ASYA_HANDLER is not set"):
        HandlerServerConfig.from_env({})


def test_queue_settings_are_the_deploy_formulas_in_sqs_form() -> None:
    resiliency = Resiliency.model_validate({"actorTimeout": "5m", "policies": {"default": {"maxAttempts": 4}}})
    settings = queue_settings(resiliency)
    dlq_arn = "arn:aws:sqs:us-east-1:1:d"
    attributes = settings.queue_attributes(dlq_arn=dlq_arn)
    assert attributes["VisibilityTimeout"] == "90"  # min(300, 60) + 30
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 6}
    assert attributes["ReceiveMessageWaitTimeSeconds"] == "20"
    assert int(settings.dlq_attributes()["MessageRetentionPeriod"]) > int(attributes["MessageRetentionPeriod"])
