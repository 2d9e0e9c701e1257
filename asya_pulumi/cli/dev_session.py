"""The body of an ``asya dev`` run once its inputs are checked: broker, queues, processes, sending, waiting.

Kept apart from :mod:`asya_pulumi.cli.dev` so that ``asya --help`` and usage errors do not pay for importing boto3
and the runtime.
"""

from __future__ import annotations

import argparse
import signal
import time

from asya_pulumi.cli.dev_run import RunOutcome, watch_run
from asya_pulumi.cli.dev_start import Launch, finish_start
from asya_pulumi.cli.errors import EXIT_FAILED, EXIT_OK
from asya_pulumi.cli.mesh_queues import MeshQueues
from asya_pulumi.cli.summary import print_summary, write_results
from asya_pulumi.local.results import ResultCollector, with_trace
from asya_runtime.envelope import Envelope


def run_mesh(args: argparse.Namespace, *, launched: Launch, envelopes: list[Envelope]) -> int:
    """Finish starting the mesh :func:`launch` began, send ``envelopes``, wait for their final records, report."""
    started = finish_start(launched)
    if started.problems:
        for problem in started.problems:
            print(f"asya dev: {problem}")
        return EXIT_FAILED
    mesh, supervisor, log_dir, settings = launched.mesh, launched.supervisor, launched.log_dir, launched.settings
    sqs, urls = started.sqs, started.urls
    replicas = dict(launched.plan.replicas)
    collector = ResultCollector(s3=started.s3, bucket=launched.plan.bucket)
    queues = MeshQueues(sqs=sqs, namespace=mesh.namespace)
    sent = [with_trace(e) for e in envelopes]
    sent_at = time.monotonic()
    queues.send(sent)
    print(f"sent {len(sent)} envelope(s) to mesh {mesh.namespace!r} at {launched.sqs_endpoint or 'AWS'}", flush=True)

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
        _wait_forever(mesh.namespace, launched.sqs_endpoint)
    return EXIT_OK if outcome.succeeded else EXIT_FAILED


def _wait_forever(namespace: str, endpoint: str | None) -> None:
    print(
        f"mesh {namespace!r} keeps running; try `asya status --sqs-endpoint {endpoint} "
        f"--namespace {namespace}` or `asya send ... --sqs-endpoint {endpoint} --namespace {namespace}`;"
        " Ctrl-C stops it",
        flush=True,
    )
    signal.pause()
