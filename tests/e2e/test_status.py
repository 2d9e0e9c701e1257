"""``asya status`` for scripts and cron: ``--json`` with stable keys, exit 3 while a DLQ holds messages, and the
namespace and region read from a Pulumi stack's config file (``--stack``), against the real local broker.

``asya --version`` is here too: it prints the one version the distribution declares (pyproject.toml).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

import asya_pulumi
from asya_pulumi.cli.errors import EXIT_DLQ_NOT_EMPTY, EXIT_OK, EXIT_USAGE
from asya_pulumi.local.broker import LOCAL_CREDENTIALS, LocalBroker
from asya_pulumi.local.queues import create_queues, mesh_queue_settings
from asya_pulumi.spec import load_pipeline_dir
from asya_runtime.naming import SINKS, dlq_name, queue_name
from e2e.conftest import EXAMPLES, REPO, run_asya

#: The keys of ``asya status --json``, as docs/cli.md lists them: scripts depend on exactly these.
DOCUMENT_KEYS = {"namespace", "region", "endpoint", "actors", "dlq_total"}
LOCAL_REGION = LOCAL_CREDENTIALS["region_name"]
ACTOR_KEYS = {"actor", "queue", "waiting", "in_flight", "delayed", "dlq_queue", "dlq"}


def _queues(sqs: Any, namespace: str) -> list[str]:
    mesh = load_pipeline_dir(EXAMPLES / "text-chunking").model_copy(update={"namespace": namespace})
    create_queues(sqs=sqs, settings=mesh_queue_settings(mesh))
    return [a.name for a in mesh.actors]


def test_version_is_the_distribution_version():
    run = run_asya("--version", timeout=60)
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"asya {declared}" == f"asya {asya_pulumi.__version__}"


def test_json_keys_counts_and_exit_status(broker: LocalBroker, sqs: Any, namespace: str):
    actors = _queues(sqs, namespace)
    where = ["--sqs-endpoint", broker.endpoint, "--namespace", namespace, "--json"]

    clean = run_asya("status", *where, timeout=60)
    assert clean.returncode == EXIT_OK, clean.stderr
    document = json.loads(clean.stdout)
    assert set(document) == DOCUMENT_KEYS
    assert (document["namespace"], document["endpoint"], document["dlq_total"]) == (namespace, broker.endpoint, 0)
    assert [row["actor"] for row in document["actors"]] == sorted([*actors, *SINKS])
    assert all(set(row) == ACTOR_KEYS for row in document["actors"])

    chunk = sqs.get_queue_url(QueueName=queue_name(namespace=namespace, actor="chunk"))["QueueUrl"]
    sqs.send_message_batch(QueueUrl=chunk, Entries=[{"Id": str(i), "MessageBody": "{}"} for i in range(2)])
    dlq = sqs.get_queue_url(QueueName=dlq_name(namespace=namespace, actor="summarize"))["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody="{}")

    dirty = run_asya("status", *where, timeout=60)
    assert dirty.returncode == EXIT_DLQ_NOT_EMPTY, dirty.stderr
    rows = {row["actor"]: row for row in json.loads(dirty.stdout)["actors"]}
    assert rows["chunk"]["waiting"] == 2 and rows["chunk"]["queue"] == queue_name(namespace=namespace, actor="chunk")
    assert rows["summarize"]["dlq"] == 1
    assert rows["summarize"]["dlq_queue"] == dlq_name(namespace=namespace, actor="summarize")
    assert json.loads(dirty.stdout)["dlq_total"] == 1


def test_stack_config_gives_namespace_and_region(broker: LocalBroker, sqs: Any, namespace: str, tmp_path: Path):
    _queues(sqs, namespace)
    (tmp_path / "Pulumi.yaml").write_text("name: ops\nruntime: python\nstackConfigDir: envs\n")
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "Pulumi.staging.yaml").write_text(
        f"config:\n  aws:region: {LOCAL_REGION}\n  asya:namespace: {namespace}\n"
    )
    where = ["--sqs-endpoint", broker.endpoint, "--program-dir", str(tmp_path), "--json"]

    run = run_asya("status", "--stack", "staging", *where, timeout=60)
    assert run.returncode == EXIT_OK, run.stderr
    document = json.loads(run.stdout)
    assert (document["namespace"], document["region"]) == (namespace, LOCAL_REGION)

    by_path = run_asya("status", "--stack", str(tmp_path / "envs" / "Pulumi.staging.yaml"), *where, timeout=60)
    assert json.loads(by_path.stdout)["namespace"] == namespace

    missing = run_asya("status", "--stack", "prod", *where, timeout=60)
    assert missing.returncode == EXIT_USAGE
    assert missing.stderr.strip() == (
        f"asya: error: no stack config '{tmp_path}/envs/Pulumi.prod.yaml'; stacks here: staging"
    )


def test_an_option_beats_the_stack_which_beats_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from asya_pulumi.cli.main import build_parser

    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  aws:region: eu-west-1\n  asya:namespace: from-stack\n")
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.setenv("ASYA_NAMESPACE", "from-env")

    def settled(*options: str) -> tuple[str, str]:
        argv = ["status", "--program-dir", str(tmp_path), *options]
        args = build_parser(argv).parse_args(argv)
        args.settle(args)
        return args.namespace, args.region

    assert settled() == ("from-env", "ap-south-1")
    assert settled("--stack", "dev") == ("from-stack", "eu-west-1")
    assert settled("--stack", "dev", "--region", "us-west-2", "--namespace", "cli") == ("cli", "us-west-2")


def test_the_repository_stacks_name_their_mesh():
    """The repo's own stacks, from its root (Pulumi.yaml's stackConfigDir: stacks) and from a program directory;
    read offline, so this runs without any broker (an unreachable endpoint only proves the values were used)."""
    from asya_pulumi.cli.stack_config import mesh_location, stack_config_path

    dev = mesh_location(stack_config_path(REPO, "dev"))
    assert (dev.namespace, dev.region, dev.path) == ("scoring-dev", "us-east-1", REPO / "stacks" / "Pulumi.dev.yaml")
    team = mesh_location(stack_config_path(REPO / "stacks" / "team", "dev"))
    assert (team.namespace, team.region) == ("scoring-dev", "us-east-1")


def test_without_asya_namespace_the_pipeline_mesh_name_is_used(tmp_path: Path):
    """As the programs do (stacks/__main__.py): no asya:namespace → the ActorMesh name of asya:pipeline, found
    relative to the repository root above the stack file."""
    from asya_pulumi.cli.stack_config import mesh_location

    stack = tmp_path / "infra" / "Pulumi.dev.yaml"
    stack.parent.mkdir()
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "chunking").symlink_to(EXAMPLES / "text-chunking")
    stack.write_text("config:\n  aws:region: us-east-2\n  asya:pipeline: pipelines/chunking\n")
    assert mesh_location(stack).namespace == "text-chunking"
