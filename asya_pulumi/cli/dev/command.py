"""``asya dev PIPELINE_DIR``: run a whole pipeline on this machine and wait for every input's final records.

Steps: load the manifests; read the inputs (all of them, before starting anything, so a bad line costs nothing);
import every handler in a throwaway process (a misspelled handler is one line, before anything starts);
start the embedded broker unless ``--sqs-endpoint``; create the queues, DLQs and bucket from the spec; start every
actor and both sinks under the supervisor; send the inputs; show progress until the run is complete (see
:mod:`asya_pulumi.local.results` for how completion is decided with fan-out); write the final envelopes to
``--results``; print a summary. Exit 0 only if every final record is a success.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from pathlib import Path
from types import FrameType

from asya_pulumi.cli.completion import completes_names
from asya_pulumi.cli.dev.json_summary import check_json_options, people_to_stderr
from asya_pulumi.cli.dev.setup import check_handlers_first, fired_inputs, load_mesh, parse_replicas, read_inputs
from asya_pulumi.cli.errors import UsageError
from asya_pulumi.cli.output import add_json_option
from asya_pulumi.extras import require
from asya_pulumi.links import docs
from asya_pulumi.local.broker import BROKER_KINDS

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
    completes_names(source.add_argument("--send", nargs=2, metavar=("ROUTE", "PAYLOAD_JSON"), help="send one envelope"))
    parser.add_argument(
        "--fire",
        action="append",
        default=[],
        metavar="TRIGGER",
        help="send what schedule trigger TRIGGER sends, now, as an input of the run (repeatable); schedules also "
        "fire on their own expression while the mesh is up, and S3 triggers on uploads (see docs/cli.md)",
    )
    parser.add_argument("--results", type=Path, metavar="FILE.jsonl", help="write every final envelope here")
    parser.add_argument(
        "--replicas",
        action="append",
        default=[],
        metavar="N | ACTOR=N",
        help="replicas of every actor (N) or of one actor (ACTOR=N, repeatable); default 1",
    )
    parser.add_argument("--sqs-endpoint", metavar="URL", help="use this SQS/S3 server instead of starting one")
    parser.add_argument(
        "--broker",
        choices=BROKER_KINDS,
        default=None,
        help="which embedded SQS/S3 server to start when there is no --sqs-endpoint "
        "(default: $ASYA_BROKER, else fauxqs; localstack runs on $ASYA_BROKER_PYTHON, a Python with localstack-core)",
    )
    parser.add_argument("--s3-endpoint", metavar="URL", help="S3 endpoint (default: --sqs-endpoint)")
    parser.add_argument("--region", default=None, help="region (default: the mesh's)")
    parser.add_argument("--namespace", help="run under this namespace instead of the mesh's (isolates parallel runs)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S", help="give up after S seconds (600)")
    parser.add_argument("--keep-running", action="store_true", help="keep the mesh up after the run, until Ctrl-C")
    parser.add_argument(
        "--watch",
        action="store_true",
        help="after the run keep the mesh up and reload an actor's handler server when its file changes "
        "(in-memory handler state is lost); Enter re-sends the inputs, N Enter the N-th; until Ctrl-C",
    )
    parser.add_argument("--resend", action="store_true", help="with --watch: re-send the inputs after every reload")
    parser.add_argument(
        "--ui",
        action="store_true",
        help="serve `asya ui` for this mesh on 127.0.0.1 from the start (opens a browser on a terminal) and keep "
        "the mesh up after the run, until Ctrl-C",
    )
    parser.add_argument(
        "--gateway",
        action="store_true",
        help="also start the front door on 127.0.0.1 without auth (Mesh API, SSE, MCP, A2A; a local DynamoDB as its "
        "status store) and print `gateway: URL`, for `asya send --wait/--follow`; see " + docs("gateway.md"),
    )
    parser.add_argument(
        "--kube",
        action="store_true",
        help="KEDA on the local control plane decides each actor's replicas (the one `asya kube up` started, or "
        "one started for this run): one handler server + sidecar per Running pod; see " + docs("kube.md"),
    )
    parser.add_argument(
        "--containers",
        action="store_true",
        help="every actor and sink as its pod, from images built here (podman, as root; see docs/runtime.md): "
        "what the cluster will run",
    )
    parser.add_argument("--logs", type=Path, metavar="DIR", help="write process logs here (default: a temp dir)")
    add_json_option(parser, what="the run's summary (every envelope's status, route, record key and error; totals)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_json_options(args)
    with people_to_stderr(args):  # --json: stdout holds the run's object alone
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    mesh, pipeline = load_mesh(args.pipeline_dir, namespace=args.namespace)
    pipeline_dir = pipeline.directory
    envelopes = read_inputs(args, mesh) + fired_inputs(args, mesh)
    if not envelopes and not (args.keep_running or args.watch or args.ui):
        raise UsageError(
            "nothing to run: pass --input FILE.jsonl, --send ROUTE PAYLOAD_JSON, --fire TRIGGER, --keep-running, "
            "--watch or --ui"
        )
    if args.resend and not args.watch:
        raise UsageError("--resend re-sends after a reload: it needs --watch")
    if args.kube and args.replicas:
        raise UsageError("--replicas and --kube: with --kube, KEDA decides each actor's replicas from its queue")
    if args.containers and (args.kube or args.replicas or args.watch):
        raise UsageError("--containers runs one pod per actor from built images: drop --kube, --replicas and --watch")
    if args.gateway:
        from asya_pulumi.cli.dev.gateway import check_gateway_args

        check_gateway_args(args)
    if args.kube:
        require("kube", needed_by="asya dev --kube")
    if args.containers:  # the pods are rendered by the components, as for `pulumi up`
        require("deploy", needed_by="asya dev --containers")
    replicas = parse_replicas(args.replicas, mesh)
    check_handlers_first(pipeline, strict=not args.containers)  # before the broker: a typo costs no wait
    from asya_pulumi.cli.dev.start import launch  # no boto3 yet: the broker and handlers start while it imports

    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with contextlib.ExitStack() as stack:
            launched = launch(args, stack=stack, mesh=mesh, pipeline_dir=pipeline_dir, replicas=replicas)
            from asya_pulumi.cli.dev.session import run_mesh  # boto3 + runtime, while the processes start

            return run_mesh(args, launched=launched, envelopes=envelopes)
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
