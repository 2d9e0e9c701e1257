"""``asya dlq redrive ACTOR``: move an actor's dead-lettered messages back to its queue (SQS StartMessageMoveTask).

The DLQ holds only what the sidecar could not process at all (poison messages, crash loops). After the cause is
fixed, a redrive gives those envelopes another run; SQS moves them server-side, so nothing is lost if the CLI exits.

A server without move tasks (the embedded fauxqs broker, older emulators) answers ``InvalidAction``; then the CLI
moves the messages itself: receive a batch from the DLQ, send it to the actor's queue, and only then delete it from
the DLQ. An interruption between the send and the delete leaves a message in both queues (delivered twice, never
lost), the same at-least-once promise the rest of the mesh makes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import Any

from botocore.exceptions import ClientError

from asya_pulumi.cli.common import add_mesh_options, command_sqs, namespace_from
from asya_pulumi.cli.completion import completes_names
from asya_pulumi.cli.errors import EXIT_FAILED, EXIT_OK
from asya_pulumi.cli.output import add_json_option, emit
from asya_pulumi.ops.mesh_queues import MeshQueues

_POLL_S = 0.5
#: Error codes of a server that has no StartMessageMoveTask (fauxqs says InvalidAction).
_NO_MOVE_TASKS = {"InvalidAction", "UnsupportedOperation", "UnknownOperationException", "NotImplemented"}
#: How long a message received for a hand move stays hidden: ample time to send and delete a batch of 10.
_HAND_MOVE_VISIBILITY_S = 60


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("dlq", help="dead-letter queue operations", description="Dead-letter queues.")
    dlq_commands = parser.add_subparsers(dest="dlq_command", metavar="COMMAND", required=True)
    redrive = dlq_commands.add_parser(
        "redrive",
        help="move ACTOR's dead-lettered messages back to its queue",
        description="Move messages from asya-{namespace}_{ACTOR}_dlq back to asya-{namespace}_{ACTOR} (SQS move task).",
    )
    completes_names(redrive.add_argument("actor", metavar="ACTOR"))
    redrive.add_argument("--no-wait", action="store_true", help="return once the task started, without waiting")
    redrive.add_argument("--timeout", type=float, default=300.0, metavar="S", help="longest wait (default 300 s)")
    add_json_option(redrive, what="what was moved")
    add_mesh_options(redrive)
    redrive.set_defaults(run=run_redrive)


def run_redrive(args: argparse.Namespace) -> int:
    queues = MeshQueues(sqs=command_sqs(args), namespace=namespace_from(args))
    source_arn = _arn(queues, queues.dlq_url(args.actor))
    destination_arn = _arn(queues, queues.actor_url(args.actor))
    waiting = queues.depth(queues.dlq_url(args.actor)).visible
    result: dict[str, Any] = {"actor": args.actor, "waiting": waiting, "moved": 0, "state": "empty", "task": None}

    def done(state: str, text: str, *, code: int = EXIT_OK, **more: Any) -> int:
        emit(args, data={**result, "state": state, **more}, text=text)
        return code

    if waiting == 0:
        return done("empty", f"DLQ of {args.actor} is empty; nothing to redrive")
    try:
        handle = queues.sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn)["TaskHandle"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in _NO_MOVE_TASKS:
            raise
        notice(f"this SQS server has no move tasks; moving {waiting} message(s) from the DLQ of {args.actor} by hand")
        moved, refused = _move_by_hand(
            queues.sqs, source=queues.dlq_url(args.actor), destination=queues.actor_url(args.actor),
            deadline=time.monotonic() + args.timeout,
        )
        text = f"moved {moved} message(s) back to {args.actor}"
        if refused:
            codes = ", ".join(f"{code} × {n}" for code, n in sorted(refused.items()))
            text += f"\n{refused.total()} message(s) stay in the DLQ: {args.actor}'s queue refused them ({codes})"
            return done("failed", text, code=EXIT_FAILED, moved=moved, refused=dict(refused))
        return done("completed", text, moved=moved)
    result["task"] = handle
    started = f"redriving {waiting} message(s) from the DLQ of {args.actor} (task {handle})"
    if args.no_wait:
        return done("started", started)
    notice(started)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        tasks = queues.sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=10).get("Results", [])
        task = next((t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else {})
        status = task.get("Status")
        if status == "COMPLETED":
            moved = task.get("ApproximateNumberOfMessagesMoved", waiting)
            return done("completed", f"moved {moved} message(s) back to {args.actor}", moved=moved)
        if status in ("FAILED", "CANCELLED"):
            reason = task.get("FailureReason", "no reason given")
            return done(status.lower(), f"redrive {status.lower()}: {reason}", code=EXIT_FAILED, reason=reason)
        time.sleep(_POLL_S)
    return done("running", f"redrive still running after {args.timeout:g} s; check `asya status`", code=EXIT_FAILED)


def notice(text: str) -> None:
    """A progress line: on stderr, so that stdout holds only the result (the ``--json`` object)."""
    print(text, file=sys.stderr, flush=True)


def _move_by_hand(sqs: Any, *, source: str, destination: str, deadline: float) -> tuple[int, Counter[str]]:
    """Receive → send → delete, 10 at a time, until the DLQ reads empty or the deadline passes.

    Returns how many were moved and, by error code, how many the destination refused: those stay in the DLQ
    (hidden for the move's visibility timeout, so the loop does not take them again) and the command fails.
    """
    moved, refused = 0, Counter[str]()
    while time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=source, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=_HAND_MOVE_VISIBILITY_S,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        entries = [
            {"Id": str(i), "MessageBody": m["Body"], **({"MessageAttributes": m["MessageAttributes"]}
                                                        if m.get("MessageAttributes") else {})}
            for i, m in enumerate(messages)
        ]
        result = sqs.send_message_batch(QueueUrl=destination, Entries=entries)
        refused.update(str(entry.get("Code")) for entry in result.get("Failed", []))
        done = [messages[int(entry["Id"])] for entry in result.get("Successful", [])]
        if done:
            sqs.delete_message_batch(
                QueueUrl=source,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        moved += len(done)
    return moved, refused


def _arn(queues: MeshQueues, url: str) -> str:
    attributes = queues.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attributes["QueueArn"])
