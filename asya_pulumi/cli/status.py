"""``asya status``: per actor, messages waiting, in flight, delayed (retry backoff) and dead-lettered.

A table for people, ``--json`` for scripts (the keys are listed in docs/cli.md and kept stable). The exit status
makes it a cron check: 0 when every DLQ is empty, :data:`EXIT_DLQ_NOT_EMPTY` (3) when any holds messages, 4 when
the queues could not be read at all (credentials, network; see :func:`asya_pulumi.cli.aws.describe_aws_error`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from asya_pulumi.cli.common import add_mesh_options, command_sqs, namespace_from
from asya_pulumi.cli.errors import EXIT_DLQ_NOT_EMPTY, EXIT_OK, UsageError
from asya_pulumi.cli.mesh_queues import MeshQueues
from asya_runtime.naming import dlq_name, queue_name


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "status",
        help="queue depth, in flight and DLQ depth per actor",
        description="Show every actor queue of the namespace: waiting, in flight, delayed and DLQ depth. "
        f"Exit status {EXIT_DLQ_NOT_EMPTY} when any DLQ holds messages (for cron checks).",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object (keys: see docs/cli.md)")
    add_mesh_options(parser)
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class ActorStatus:
    """One actor's (or sink's) queue and DLQ, as ``--json`` prints it."""

    actor: str
    queue: str
    waiting: int
    in_flight: int
    delayed: int
    dlq_queue: str
    dlq: int


def mesh_status(queues: MeshQueues) -> list[ActorStatus]:
    """One entry per actor queue of the namespace (sinks included, since a stuck sink blocks results)."""
    actors = queues.actors()
    if not actors:
        raise UsageError(
            f"no queues found for namespace {queues.namespace!r}; check --namespace (or --stack) and the endpoint"
        )
    depths = queues.depths([queues.actor_url(a) for a in actors])
    dlqs = queues.depths([queues.dlq_url(a) for a in actors])
    return [
        ActorStatus(
            actor=actor,
            queue=queue_name(namespace=queues.namespace, actor=actor),
            waiting=depth.visible,
            in_flight=depth.in_flight,
            delayed=depth.delayed,
            dlq_queue=dlq_name(namespace=queues.namespace, actor=actor),
            dlq=dlq.visible,
        )
        for actor, depth, dlq in zip(actors, depths, dlqs, strict=True)
    ]


def status_table(*, namespace: str, rows: list[ActorStatus]) -> Table:
    table = Table(title=f"mesh {namespace}")
    for column in ("actor", "waiting", "in flight", "delayed", "DLQ"):
        table.add_column(column, justify="left" if column == "actor" else "right")
    for row in rows:
        table.add_row(row.actor, str(row.waiting), str(row.in_flight), str(row.delayed), str(row.dlq))
    return table


def status_document(*, args: argparse.Namespace, namespace: str, rows: list[ActorStatus]) -> dict[str, Any]:
    """What ``--json`` prints: where the mesh is, one object per actor, and the DLQ total the exit status reflects."""
    return {
        "namespace": namespace,
        "region": args.region,
        "endpoint": args.sqs_endpoint,
        "actors": [asdict(row) for row in rows],
        "dlq_total": sum(row.dlq for row in rows),
    }


def run(args: argparse.Namespace) -> int:
    namespace = namespace_from(args)
    rows = mesh_status(MeshQueues(sqs=command_sqs(args), namespace=namespace))
    if args.json:
        print(json.dumps(status_document(args=args, namespace=namespace, rows=rows), indent=2))
    else:
        Console().print(status_table(namespace=namespace, rows=rows))
        dead = [f"{row.actor} ({row.dlq})" for row in rows if row.dlq]
        if dead:
            print(f"dead-lettered messages: {', '.join(dead)}; see `asya dlq redrive ACTOR` (docs/operations.md)")
    return EXIT_DLQ_NOT_EMPTY if any(row.dlq for row in rows) else EXIT_OK
