"""The body of an ``asya dev`` run once its inputs are checked: broker, queues, processes, sending, waiting.

Kept apart from :mod:`asya_pulumi.cli.dev.command` so that ``asya --help`` and usage errors do not pay for importing
boto3 and the runtime.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import time
from collections.abc import Iterator

from asya_pulumi.cli.dev.json_summary import emit_run
from asya_pulumi.cli.dev.run import RunOutcome, watch_run
from asya_pulumi.cli.dev.start import Launch, Started, finish_start
from asya_pulumi.cli.summary import print_summary, write_results
from asya_pulumi.local.results import ResultCollector
from asya_pulumi.ops.mesh_queues import MeshQueues
from asya_pulumi.records import with_trace
from asya_runtime.envelope import Envelope


def run_mesh(args: argparse.Namespace, *, launched: Launch, envelopes: list[Envelope]) -> int:
    """Finish starting the mesh :func:`launch` began, send ``envelopes``, wait for their final records, report;
    then keep the mesh up (``--watch``: reloading handlers, ``--keep-running``: as it is) until Ctrl-C."""
    started = finish_start(launched)
    if started.problems:
        for problem in started.problems:
            print(f"asya dev: {problem}")
        unsent = RunOutcome(inputs=envelopes, records=[], missing=list(envelopes), problems=started.problems)
        return emit_run(args, outcome=unsent, namespace=launched.mesh.namespace, endpoint=launched.sqs_endpoint,
                        log_dir=launched.log_dir)
    if launched.dynamodb is not None:
        from asya_pulumi.cli.dev.gateway import start_gateway

        failure = start_gateway(launched=launched)
        if failure:
            print(f"asya dev: {failure}")
            unsent = RunOutcome(inputs=envelopes, records=[], missing=list(envelopes), problems=[failure])
            return emit_run(args, outcome=unsent, namespace=launched.mesh.namespace,
                            endpoint=launched.sqs_endpoint, log_dir=launched.log_dir)
    runner = MeshRunner(args=args, launched=launched, started=started)
    if args.ui:
        with _serve_ui(runner=runner, launched=launched, started=started):
            return _run_and_stay(args, launched=launched, runner=runner, envelopes=envelopes)
    return _run_and_stay(args, launched=launched, runner=runner, envelopes=envelopes)


def _run_and_stay(args: argparse.Namespace, *, launched: Launch, runner: MeshRunner, envelopes: list[Envelope]) -> int:
    """Send the inputs and report; then keep the mesh up as ``--watch``, ``--keep-running`` or ``--ui`` ask."""
    outcome = RunOutcome(inputs=[], records=[], missing=[], problems=[])
    if envelopes:
        outcome = runner.run(envelopes)
        print_summary(
            outcome=outcome, results_path=args.results, log_dir=launched.log_dir if outcome.problems else None
        )
        _report_broker_restarts(launched)
    if args.watch:
        from asya_pulumi.cli.dev.watch import watch

        return watch(args, launched=launched, runner=runner, last=outcome if envelopes else None)
    if args.keep_running or args.ui:
        _wait_forever(launched)
    return emit_run(  # the exit status; with --json, the run's object on stdout too
        args, outcome=outcome, namespace=launched.mesh.namespace, endpoint=launched.sqs_endpoint,
        log_dir=launched.log_dir if outcome.problems else None,
    )


def _report_broker_restarts(launched: Launch) -> None:
    """One line when the embedded broker died and was started again from its state file during the run: the records
    above are complete (nothing queued was lost), and the user learns why the run may have paused for a moment."""
    broker = launched.broker
    if broker is not None and broker.restarts:
        print(
            f"the embedded broker exited and was restarted {broker.restarts} time(s) from its state file; "
            "nothing queued was lost"
        )


@contextlib.contextmanager
def _serve_ui(*, runner: MeshRunner, launched: Launch, started: Started) -> Iterator[None]:
    """``--ui``: the operations page for this mesh (declared routes, its bucket), served while the mesh runs."""
    from asya_pulumi.cli.ui import start_ui
    from asya_pulumi.ui.backend import UiBackend

    mesh = launched.mesh
    backend = UiBackend(
        queues=runner.queues, s3=started.s3, bucket=launched.plan.bucket, routes=mesh.routes,
        declared_actors=[a.name for a in mesh.actors],
    )
    if launched.dynamodb is not None:  # --gateway: the envelopes in flight, from the status store
        from asya_pulumi.local.gateway import local_status_table
        from asya_pulumi.ui.inflight import InFlightReader

        backend.status = InFlightReader(dynamodb=launched.dynamodb.client(),
                                        table=local_status_table(mesh.namespace))
    server = start_ui(backend=backend, open_browser=True)
    try:
        yield
    finally:
        server.close()


class MeshRunner:
    """Sends inputs into the started mesh and waits for their final records; once, or once per ``--watch`` resend."""

    def __init__(self, *, args: argparse.Namespace, launched: Launch, started: Started) -> None:
        self.args = args
        self.launched = launched
        self.queues = MeshQueues(sqs=started.sqs, namespace=launched.mesh.namespace)
        self.urls = started.urls
        # One collector for every run: each run reads only the records stored since the previous one.
        self.collector = ResultCollector(s3=started.s3, bucket=launched.plan.bucket)

    def run(self, envelopes: list[Envelope]) -> RunOutcome:
        """Send ``envelopes`` (with trace headers), wait until each has its final records, write ``--results``."""
        launched = self.launched
        sent = [with_trace(e) for e in envelopes]
        sent_at = time.monotonic()
        self.queues.send(sent)
        print(f"sent {len(sent)} envelope(s) to mesh {launched.mesh.namespace!r} at "
              f"{launched.sqs_endpoint or 'AWS'}", flush=True)
        outcome = watch_run(
            queues=self.queues, collector=self.collector, supervisor=launched.supervisor, settings=launched.settings,
            urls=self.urls, inputs=sent, timeout_s=self.args.timeout,
            replicas=launched.replicas,
            sent_at=sent_at,
        )
        if self.args.results:
            write_results(path=self.args.results, records=outcome.records)
        return outcome


def _wait_forever(launched: Launch) -> None:
    namespace, endpoint = launched.mesh.namespace, launched.sqs_endpoint
    through = (f"asya send ROUTE '{{...}}' --gateway {launched.gateway_url} --wait" if launched.gateway_url
               else f"asya send ... --sqs-endpoint {endpoint} --namespace {namespace}")
    print(
        f"mesh {namespace!r} keeps running; try `asya status --sqs-endpoint {endpoint} "
        f"--namespace {namespace}` or `{through}`; Ctrl-C stops it",
        flush=True,
    )
    signal.pause()
