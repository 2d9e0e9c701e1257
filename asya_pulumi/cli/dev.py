"""``asya dev PIPELINE_DIR``: run a whole pipeline on this machine and wait for every input's final records.

Steps: load the manifests; read the inputs (all of them, before starting anything, so a bad line costs nothing);
start the embedded broker unless ``--sqs-endpoint``; create the queues, DLQs and bucket from the spec; start every
actor and both sinks under the supervisor; send the inputs; show progress until the run is complete (see
:mod:`asya_pulumi.local.results` for how completion is decided with fan-out); write the final envelopes to
``--results``; print a summary. Exit 0 only if every final record is a success.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import tempfile
from pathlib import Path
from types import FrameType

from asya_pulumi.cli.aws import Endpoints, s3_client, sqs_client
from asya_pulumi.cli.common import DEFAULT_REGION
from asya_pulumi.cli.dev_plan import DevPlan, process_specs
from asya_pulumi.cli.dev_run import RunOutcome, watch_run
from asya_pulumi.cli.dev_setup import load_mesh, parse_replicas, read_inputs
from asya_pulumi.cli.errors import EXIT_FAILED, EXIT_OK, UsageError
from asya_pulumi.cli.mesh_queues import MeshQueues
from asya_pulumi.cli.summary import print_summary, write_results
from asya_pulumi.local.queues import create_bucket, create_queues, mesh_queue_settings, result_bucket_name
from asya_pulumi.local.results import ResultCollector, with_trace
from asya_pulumi.local.supervisor import Supervisor
from asya_pulumi.spec.mesh import MeshSpec
from asya_runtime.envelope import Envelope

#: Exit statuses after a signal, as a shell reports them (128 + signal number).
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class _Terminated(Exception):
    """SIGTERM arrived: unwind like Ctrl-C so every process and the broker are stopped."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "dev",
        help="run a pipeline locally and wait for its results",
        description="Run every actor of PIPELINE_DIR locally against an embedded SQS/S3 broker, send the inputs, "
        "and wait until every envelope (fan-out children included) has a final record.",
    )
    parser.add_argument("pipeline_dir", metavar="PIPELINE_DIR", help="directory of AsyncActor + ActorMesh manifests")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", type=Path, metavar="FILE.jsonl", help='one {"route": ..., "payload": ...} per line')
    source.add_argument("--send", nargs=2, metavar=("ROUTE", "PAYLOAD_JSON"), help="send one envelope")
    parser.add_argument("--results", type=Path, metavar="FILE.jsonl", help="write every final envelope here")
    parser.add_argument(
        "--replicas",
        action="append",
        default=[],
        metavar="N | ACTOR=N",
        help="replicas of every actor (N) or of one actor (ACTOR=N, repeatable); default 1",
    )
    parser.add_argument("--sqs-endpoint", metavar="URL", help="use this SQS/S3 server instead of starting one")
    parser.add_argument("--s3-endpoint", metavar="URL", help="S3 endpoint (default: --sqs-endpoint)")
    parser.add_argument("--region", default=None, help="region (default: the mesh's)")
    parser.add_argument("--namespace", help="run under this namespace instead of the mesh's (isolates parallel runs)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S", help="give up after S seconds (600)")
    parser.add_argument("--keep-running", action="store_true", help="keep the mesh up after the run, until Ctrl-C")
    parser.add_argument("--logs", type=Path, metavar="DIR", help="write process logs here (default: a temp dir)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    mesh, pipeline_dir = load_mesh(args.pipeline_dir, namespace=args.namespace)
    envelopes = read_inputs(args, mesh)
    if not envelopes and not args.keep_running:
        raise UsageError("nothing to run: pass --input FILE.jsonl, --send ROUTE PAYLOAD_JSON or --keep-running")
    replicas = parse_replicas(args.replicas, mesh)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with contextlib.ExitStack() as stack:
            return _run_mesh(args, stack=stack, mesh=mesh, pipeline_dir=pipeline_dir, envelopes=envelopes,
                             replicas=replicas)
    except KeyboardInterrupt:
        print("asya dev: interrupted; stopped every process")
        return EXIT_SIGINT
    except _Terminated:
        print("asya dev: terminated; stopped every process")
        return EXIT_SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


def _run_mesh(
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

        print("starting the embedded broker (LocalStack: SQS + S3) ...", flush=True)
        broker = stack.enter_context(LocalBroker())
        endpoints = Endpoints(region=region, sqs_endpoint=broker.endpoint, s3_endpoint=broker.endpoint)
    sqs, s3 = sqs_client(endpoints), s3_client(endpoints)
    settings = mesh_queue_settings(mesh)
    urls = create_queues(sqs=sqs, settings=settings)
    bucket = result_bucket_name(namespace=mesh.namespace)
    create_bucket(s3=s3, bucket=bucket, region=region)
    collector = ResultCollector(s3=s3, bucket=bucket)

    work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="asya-dev-")))
    log_dir = args.logs or work_dir / "logs"
    plan = DevPlan(mesh=mesh, pipeline_dir=pipeline_dir, endpoints=endpoints, bucket=bucket,
                   replicas=replicas, socket_dir=work_dir)
    supervisor = stack.enter_context(Supervisor(specs=process_specs(plan), log_dir=log_dir))
    queues = MeshQueues(sqs=sqs, namespace=mesh.namespace)
    sent = [with_trace(e) for e in envelopes]
    queues.send(sent)
    print(f"sent {len(sent)} envelope(s) to mesh {mesh.namespace!r} at {endpoints.sqs_endpoint or 'AWS'}", flush=True)

    outcome = RunOutcome(inputs=sent, records=[], missing=[], problems=[])
    if sent:
        outcome = watch_run(
            queues=queues, collector=collector, supervisor=supervisor, settings=settings, urls=urls,
            inputs=sent, replicas=replicas, timeout_s=args.timeout,
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
