"""The body of an ``asya dev`` run once its inputs are checked: broker, queues, processes, sending, waiting.

Kept apart from :mod:`asya_pulumi.cli.dev` so that ``asya --help`` and usage errors do not pay for importing boto3
and the runtime.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import tempfile
import time
from pathlib import Path

from asya_pulumi.cli.aws import Endpoints, s3_client, sqs_client
from asya_pulumi.cli.common import DEFAULT_REGION
from asya_pulumi.cli.dev_run import RunOutcome, watch_run
from asya_pulumi.cli.errors import EXIT_FAILED, EXIT_OK, UsageError
from asya_pulumi.cli.mesh_queues import MeshQueues
from asya_pulumi.cli.summary import print_summary, write_results
from asya_pulumi.local.plan import MeshPlan, process_specs
from asya_pulumi.local.processes import Supervisor
from asya_pulumi.local.queues import create_bucket, create_queues, mesh_queue_settings, result_bucket_name
from asya_pulumi.local.results import ResultCollector, with_trace
from asya_pulumi.spec.mesh import MeshSpec
from asya_runtime.envelope import Envelope

#: How long the actors may take to start (imports of the handler and the AWS SDK, on a busy 2-core machine).
STARTUP_TIMEOUT_S = 120.0


def run_mesh(
    args: argparse.Namespace,
    *,
    stack: contextlib.ExitStack,
    mesh: MeshSpec,
    pipeline_dir: Path,
    envelopes: list[Envelope],
    replicas: dict[str, int],
) -> int:
    region = args.region or mesh.region or DEFAULT_REGION
    if args.sqs_endpoint:
        endpoints = Endpoints(
            region=region, sqs_endpoint=args.sqs_endpoint, s3_endpoint=args.s3_endpoint or args.sqs_endpoint
        )
    else:
        from asya_pulumi.local.broker import LocalBroker

        broker = LocalBroker(kind=args.broker)
        print(f"starting the embedded broker, {broker.label} ...", flush=True)
        stack.enter_context(broker)
        endpoints = Endpoints(region=region, sqs_endpoint=broker.endpoint, s3_endpoint=broker.endpoint)
    sqs, s3 = sqs_client(endpoints), s3_client(endpoints)
    settings = mesh_queue_settings(mesh)
    urls = create_queues(sqs=sqs, settings=settings)
    bucket = result_bucket_name(namespace=mesh.namespace)
    create_bucket(s3=s3, bucket=bucket, region=region)
    collector = ResultCollector(s3=s3, bucket=bucket)

    work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="asya-dev-")))
    log_dir = args.logs or work_dir / "logs"
    plan = MeshPlan(mesh=mesh, pipeline_dir=pipeline_dir, region=region, sqs_endpoint=endpoints.sqs_endpoint,
                    s3_endpoint=endpoints.s3_endpoint, bucket=bucket, replicas=replicas, socket_dir=work_dir)
    try:
        specs = process_specs(plan)
    except RuntimeError as exc:  # a handler server that cannot run on this machine (no `node`)
        raise UsageError(str(exc)) from None
    supervisor = stack.enter_context(Supervisor(specs=specs, log_dir=log_dir))
    print(f"starting {len(supervisor.pids())} processes (logs: {log_dir}) ...", flush=True)
    not_ready = supervisor.wait_ready(timeout_s=STARTUP_TIMEOUT_S)
    broken = supervisor.crash_loops()
    if broken:
        for problem in broken:
            print(f"asya dev: {problem}")
        return EXIT_FAILED
    if not_ready:
        print(f"asya dev: still starting after {STARTUP_TIMEOUT_S:g} s: {', '.join(not_ready)}; sending anyway")
    queues = MeshQueues(sqs=sqs, namespace=mesh.namespace)
    sent = [with_trace(e) for e in envelopes]
    sent_at = time.monotonic()
    queues.send(sent)
    print(f"sent {len(sent)} envelope(s) to mesh {mesh.namespace!r} at {endpoints.sqs_endpoint or 'AWS'}", flush=True)

    outcome = RunOutcome(inputs=sent, records=[], missing=[], problems=[])
    if sent:
        outcome = watch_run(
            queues=queues, collector=collector, supervisor=supervisor, settings=settings, urls=urls,
            inputs=sent, replicas=replicas, timeout_s=args.timeout, sent_at=sent_at,
        )
        if args.results:
            write_results(path=args.results, records=outcome.records)
        print_summary(outcome=outcome, results_path=args.results, log_dir=log_dir if outcome.problems else None)
    if args.keep_running:
        _wait_forever(mesh.namespace, endpoints)
    return EXIT_OK if outcome.succeeded else EXIT_FAILED


def _wait_forever(namespace: str, endpoints: Endpoints) -> None:
    print(
        f"mesh {namespace!r} keeps running; try `asya status --sqs-endpoint {endpoints.sqs_endpoint} "
        f"--namespace {namespace}` or `asya send ... --sqs-endpoint {endpoints.sqs_endpoint} --namespace {namespace}`;"
        " Ctrl-C stops it",
        flush=True,
    )
    signal.pause()
