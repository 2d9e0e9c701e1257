"""``asya trace ID``: an envelope's path through the mesh — every hop, attempt, duration, outcome, and the error.

A thin layer over :mod:`asya_pulumi.ops.trace`: find the mesh's bucket, build the trace, print it as a table per
final record (``--json`` prints :meth:`~asya_pulumi.ops.trace.Trace.to_json`). Exit status 0 when the envelope
succeeded (replays included) or is still in flight, 1 when it failed, is dead-lettered or was not found.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from asya_pulumi.cli.aws import COMMAND_ATTEMPTS, reachable, s3_client
from asya_pulumi.cli.common import add_mesh_options, command_sqs, endpoints_from, namespace_from
from asya_pulumi.cli.errors import EXIT_FAILED, EXIT_OK
from asya_pulumi.ops.mesh_queues import MeshQueues
from asya_pulumi.ops.records import find_bucket
from asya_pulumi.ops.trace import Trace, trace

#: States that exit 0.
_GOOD_STATES = {"succeeded", "replayed", "in flight"}


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "trace",
        help="an envelope's hops, timings and errors",
        description="Show envelope ID's path through the mesh from its final records: every hop with attempt, "
        "duration and outcome, the error with its traceback, fan-out children and replays. An envelope without a "
        "record is looked for in the DLQs; otherwise the busy queues are named.",
    )
    parser.add_argument("envelope_id", metavar="ID", help="the envelope id (as `asya send` printed it)")
    parser.add_argument("--json", action="store_true", help="print the trace as JSON")
    add_bucket_option(parser)
    add_mesh_options(parser)
    parser.set_defaults(run=run)


def add_bucket_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bucket",
        metavar="NAME",
        help="the mesh's result bucket (default: found from --namespace: asya-{namespace}-results locally, "
        "asya-{namespace}-results-<digits> on AWS)",
    )


class MeshRecords(NamedTuple):
    """What ``trace`` and ``replay`` read: the mesh's queues, and the S3 client and bucket of its final records."""

    queues: MeshQueues
    s3: Any
    bucket: str


def open_mesh_records(args: argparse.Namespace) -> MeshRecords:
    """The queues and result bucket of the mesh the command line names (``--bucket``, else found from the namespace)."""
    namespace = namespace_from(args)
    endpoints = endpoints_from(args)
    s3 = reachable(s3_client(endpoints, attempts=COMMAND_ATTEMPTS))
    bucket = find_bucket(s3=s3, namespace=namespace, bucket=args.bucket)
    return MeshRecords(queues=MeshQueues(sqs=command_sqs(args), namespace=namespace), s3=s3, bucket=bucket)


def run(args: argparse.Namespace) -> int:
    queues, s3, bucket = open_mesh_records(args)
    found = trace(s3=s3, bucket=bucket, envelope_id=args.envelope_id, queues=queues)
    if args.json:
        print(json.dumps(found.to_json(), indent=2))
    else:
        print_trace(found, console=Console(width=160))
    return EXIT_OK if found.state in _GOOD_STATES else EXIT_FAILED


def print_trace(found: Trace, *, console: Console) -> None:
    """The trace as text: a header line, then per final record a table of its hops and the error below it."""
    console.print(f"envelope {found.id}: [bold]{found.state}[/bold]")
    location = found.location
    if location is not None:
        if location.dlq is not None:
            console.print(
                f"no final record: it is in the DLQ of {location.dlq!r} (SQS gave up on it: crashes or a poison "
                f"message). Send it again with `asya replay --from-dlq {location.dlq} --id {found.id}`.",
                soft_wrap=True,
            )
        elif location.busy:
            queued = ", ".join(
                f"{d.actor} ({d.waiting} waiting, {d.in_flight} in flight, {d.delayed} delayed)" for d in location.busy
            )
            console.print(
                "no final record yet: it is in flight. Queues holding messages now: "
                f"{queued}. (asya does not read an actor's queue: a receive would cost the envelope an attempt.)",
                soft_wrap=True,
            )
        else:
            console.print(
                "no final record, not in any DLQ, and every queue is empty: unknown id, or its records expired "
                "(the bucket's retention rule).",
                soft_wrap=True,
            )
    for branch in found.branches:
        title = f"{branch.envelope_id} — {branch.status} ({branch.key})"
        if branch.parent_id:
            title += f", fan-out child of {branch.parent_id}"
        if branch.replay_of:
            title += f", replay of {branch.replay_of}"
        table = Table(title=escape(title), title_justify="left")
        for column in ("#", "actor", "attempt", "start (UTC)", "waited", "duration", "outcome", "replica", "error"):
            table.add_column(column, justify="right" if column in ("#", "attempt", "waited", "duration") else "left")
        for number, step in enumerate(branch.steps, start=1):
            table.add_row(
                str(number),
                escape(step.actor or (f"({step.folded} earlier hops)" if step.folded else "?")),
                "" if step.attempt is None else str(step.attempt),
                _clock(step.start),
                _seconds(step.waited_s),
                _seconds(step.duration_s),
                escape(step.outcome),
                escape(step.replica or ""),
                escape(_error_line(step.error) if step.error else step.error_type or ""),
            )
        console.print(table)
        for step in branch.steps:
            if step.error and step.error.get("traceback"):
                console.print(f"traceback of {escape(step.actor or '?')}, attempt {step.attempt}:")
                console.print(escape(str(step.error["traceback"]).rstrip()), highlight=False, soft_wrap=True)
        if branch.replayed_as is not None:
            console.print(f"replayed as {branch.replayed_as.replay_id} into {branch.replayed_as.to}", soft_wrap=True)


def _error_line(error: dict[str, object]) -> str:
    text = f"{error.get('type')}: {error.get('message')}"
    reason = error.get("reason")
    return f"{text} ({reason})" if reason else text


def _clock(moment: float | None) -> str:
    if moment is None:
        return ""
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f} s"
