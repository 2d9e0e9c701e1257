"""``asya dlq redrive ACTOR``: move an actor's dead-lettered messages back to its queue (SQS StartMessageMoveTask).

The DLQ holds only what the sidecar could not process at all (poison messages, crash loops). After the cause is
fixed, a redrive gives those envelopes another run; SQS moves them server-side, so nothing is lost if the CLI exits.
"""

from __future__ import annotations

import argparse
import time

from asya_pulumi.cli.aws import sqs_client
from asya_pulumi.cli.common import add_mesh_options, endpoints_from, namespace_from
from asya_pulumi.cli.errors import EXIT_FAILED, EXIT_OK
from asya_pulumi.cli.mesh_queues import MeshQueues

_POLL_S = 0.5


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("dlq", help="dead-letter queue operations", description="Dead-letter queues.")
    dlq_commands = parser.add_subparsers(dest="dlq_command", metavar="COMMAND", required=True)
    redrive = dlq_commands.add_parser(
        "redrive",
        help="move ACTOR's dead-lettered messages back to its queue",
        description="Move messages from asya-{namespace}-{ACTOR}-dlq back to asya-{namespace}-{ACTOR} (SQS move task).",
    )
    redrive.add_argument("actor", metavar="ACTOR")
    redrive.add_argument("--no-wait", action="store_true", help="return once the task started, without waiting")
    redrive.add_argument("--timeout", type=float, default=300.0, metavar="S", help="longest wait (default 300 s)")
    add_mesh_options(redrive)
    redrive.set_defaults(run=run_redrive)


def run_redrive(args: argparse.Namespace) -> int:
    queues = MeshQueues(sqs=sqs_client(endpoints_from(args)), namespace=namespace_from(args))
    source_arn = _arn(queues, queues.dlq_url(args.actor))
    destination_arn = _arn(queues, queues.actor_url(args.actor))
    waiting = queues.depth(queues.dlq_url(args.actor)).visible
    if waiting == 0:
        print(f"DLQ of {args.actor} is empty; nothing to redrive")
        return EXIT_OK
    handle = queues.sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn)["TaskHandle"]
    print(f"redriving {waiting} message(s) from the DLQ of {args.actor} (task {handle})")
    if args.no_wait:
        return EXIT_OK
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        tasks = queues.sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=10).get("Results", [])
        task = next((t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else {})
        status = task.get("Status")
        if status == "COMPLETED":
            print(f"moved {task.get('ApproximateNumberOfMessagesMoved', waiting)} message(s) back to {args.actor}")
            return EXIT_OK
        if status in ("FAILED", "CANCELLED"):
            print(f"redrive {status.lower()}: {task.get('FailureReason', 'no reason given')}")
            return EXIT_FAILED
        time.sleep(_POLL_S)
    print(f"redrive still running after {args.timeout:g} s; check `asya status`")
    return EXIT_FAILED


def _arn(queues: MeshQueues, url: str) -> str:
    attributes = queues.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attributes["QueueArn"])
