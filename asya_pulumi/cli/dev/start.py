"""The first moments of ``asya dev``: start the broker and the handler servers before anything heavy is imported.

Starting is what a short run mostly waits for, so it overlaps as much as it can on a small machine:

1. :func:`launch` (this module imports neither boto3 nor the sidecar) spawns the embedded broker, every handler
   server and the sidecar processes (one per replica index, hosting every actor's sidecar:
   :func:`asya_pulumi.local.plan.process_specs`) at once, and returns without waiting;
2. meanwhile the command imports boto3 and the sidecar processes import aiobotocore; :func:`finish_start` then
   waits for the broker, creates the queues and the bucket (several at once), and creates the start file the
   sidecar processes wait for: their sidecars find their queues and consume them at once.

The broker is registered on the exit stack first, so it stops last: every sidecar has drained and returned what it
held before the queues go away.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asya_pulumi.cli.errors import UsageError
from asya_pulumi.local.broker import LocalBroker
from asya_pulumi.local.plan import MeshPlan, process_specs
from asya_pulumi.local.processes import Supervisor
from asya_pulumi.local.queues import MeshQueue, mesh_members, mesh_queue_settings
from asya_pulumi.records import result_bucket_name
from asya_pulumi.spec.mesh import MeshSpec

if TYPE_CHECKING:
    from asya_pulumi.images.dev_mesh import ContainerMesh
    from asya_pulumi.kube.dev_mesh import KubeMesh
    from asya_pulumi.local.dynamodb import LocalDynamoDB

#: How long the actors may take to start (imports of the handler and the AWS SDK, on a busy 2-core machine).
STARTUP_TIMEOUT_S = 120.0


@dataclass
class Launch:
    """A mesh whose broker and handler servers are starting; its sidecars wait for :func:`finish_start`."""

    mesh: MeshSpec
    region: str
    sqs_endpoint: str | None
    s3_endpoint: str | None
    broker: LocalBroker | None
    plan: MeshPlan
    supervisor: Supervisor
    log_dir: Path
    settings: list[MeshQueue]
    #: ``--kube``: the control plane decides which processes run (one pair per Running pod).
    kube: KubeMesh | None = None
    #: ``--containers``: each actor and sink is a podman pod, played once the queues exist.
    containers: ContainerMesh | None = None
    #: ``--gateway``: the local DynamoDB of the status store (the gateway starts once the queues exist).
    dynamodb: LocalDynamoDB | None = None
    #: ``--gateway``: where it listens, once started.
    gateway_url: str | None = None

    @property
    def replicas(self) -> Mapping[str, int]:
        """Replicas per actor now, for the progress line: the pods' when something else decides them (KEDA's
        live view with ``--kube``)."""
        if self.kube is not None:
            return self.kube.replicas
        if self.containers is not None:
            return self.containers.replicas
        return dict(self.plan.replicas)


def launch(
    args: argparse.Namespace,
    *,
    stack: contextlib.ExitStack,
    mesh: MeshSpec,
    pipeline_dir: Path,
    replicas: dict[str, int],
) -> Launch:
    """Spawn the broker (unless ``--sqs-endpoint``) and the handler servers; returns at once."""
    region = args.region or mesh.region  # the spec's region has a default
    broker: LocalBroker | None = None
    work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="asya-dev-")))  # removed after the broker
    if args.sqs_endpoint:
        sqs_endpoint, s3_endpoint = args.sqs_endpoint, args.s3_endpoint or args.sqs_endpoint
    else:
        # Its state file (and log) in the run's directory: a broker that dies is restarted from it, losing nothing.
        broker = LocalBroker(kind=args.broker, state_dir=work_dir / "broker")
        print(f"starting the embedded broker, {broker.label} ...", flush=True)
        stack.callback(broker.stop)  # registered before everything that uses it: stopped after them
        broker.spawn()
        sqs_endpoint = s3_endpoint = broker.endpoint
    log_dir = args.logs or work_dir / "logs"
    dynamodb: LocalDynamoDB | None = None
    status_env: dict[str, str] = {}
    if getattr(args, "gateway", False):
        from asya_pulumi.cli.dev.gateway import spawn_status_store

        dynamodb, status_env = spawn_status_store(stack=stack, mesh=mesh, region=region, work_dir=work_dir)
    if args.kube or args.containers:  # no process: pods run them (kube: one pair per Running pod; containers: podman)
        replicas = {member.name: 0 for member in mesh_members(mesh)}
    plan = MeshPlan(
        mesh=mesh, pipeline_dir=pipeline_dir, region=region, sqs_endpoint=sqs_endpoint, s3_endpoint=s3_endpoint,
        bucket=result_bucket_name(namespace=mesh.namespace), replicas=replicas, socket_dir=work_dir,
        shared_sidecars=not args.kube, sidecar_start_file=work_dir / "queues-created", status_env=status_env,
    )
    try:
        specs = process_specs(plan)
    except RuntimeError as exc:  # a handler server that cannot run on this machine (no `node`)
        raise UsageError(str(exc)) from None
    supervisor = Supervisor(specs=specs, log_dir=log_dir)
    stack.callback(supervisor.stop)
    supervisor.start()
    kube = None
    if args.kube:
        from asya_pulumi.kube.dev_mesh import KubeMesh

        kube = KubeMesh(plan=plan, supervisor=supervisor, notice=sys.stdout)
        stack.callback(kube.close)  # before the supervisor stops: pods drain, then the namespace goes
    elif not args.containers:
        print(f"starting {len(specs)} processes (logs: {log_dir}) ...", flush=True)
    containers = None
    if args.containers:
        from asya_pulumi.images.dev_mesh import ContainerMesh

        containers = ContainerMesh(plan=plan, notice=sys.stdout)
        stack.callback(containers.close)  # pods drain before the broker stops
    return Launch(
        mesh=mesh, region=region, sqs_endpoint=sqs_endpoint, s3_endpoint=s3_endpoint, broker=broker, plan=plan,
        supervisor=supervisor, log_dir=log_dir, settings=mesh_queue_settings(mesh), kube=kube,
        containers=containers, dynamodb=dynamodb,
    )


@dataclass
class Started:
    """A running mesh: clients, queue URLs, and what kept it from starting (``problems``; empty when it runs)."""

    sqs: Any
    s3: Any
    urls: dict[str, str]
    problems: list[str]


def finish_start(launched: Launch) -> Started:
    """Wait for the broker, create the queues and the bucket, start the sidecars, wait until every process is ready.

    ``problems`` names each process that keeps exiting (an import error in a handler): the run cannot work.
    """
    from asya_pulumi.cli.aws import Endpoints, s3_client, sqs_client
    from asya_pulumi.local.queues import create_bucket, create_queues

    endpoints = Endpoints(
        region=launched.region, sqs_endpoint=launched.sqs_endpoint, s3_endpoint=launched.s3_endpoint
    )
    sqs = sqs_client(endpoints)
    if launched.broker is not None:
        launched.broker.wait_healthy()
    urls = create_queues(sqs=sqs, settings=launched.settings)
    assert launched.plan.sidecar_start_file is not None
    launched.plan.sidecar_start_file.touch()  # the sidecars start now, while the S3 side is made ready
    s3 = s3_client(endpoints)  # the S3 model is the largest botocore parses: off the sidecars' critical path
    create_bucket(s3=s3, bucket=launched.plan.bucket, region=launched.region)  # before any input is sent
    print(f"created {2 * len(urls)} queues and the result bucket; starting the sidecars ...", flush=True)
    supervisor = launched.supervisor
    not_ready = supervisor.wait_ready(timeout_s=STARTUP_TIMEOUT_S)
    problems = supervisor.crash_loops()
    if not problems and not_ready:
        print(f"asya dev: still starting after {STARTUP_TIMEOUT_S:g} s: {', '.join(not_ready)}; sending anyway")
    if launched.kube is not None and not problems:
        from asya_pulumi.kube.errors import KubeError

        try:
            launched.kube.start(urls=urls, settings=launched.settings)
        except KubeError as exc:
            problems = [f"--kube: {exc}"]
    if launched.containers is not None and not problems:
        from asya_pulumi.images.errors import ImageError

        assert launched.sqs_endpoint is not None and launched.s3_endpoint is not None
        try:
            launched.containers.start(sqs_endpoint=launched.sqs_endpoint, s3_endpoint=launched.s3_endpoint)
        except ImageError as exc:
            problems = [f"--containers: {exc}"]
    return Started(sqs=sqs, s3=s3, urls=urls, problems=problems)
