"""``asya status``: per actor, messages waiting, in flight, delayed (retry backoff) and dead-lettered, as a table."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from asya_pulumi.cli.aws import sqs_client
from asya_pulumi.cli.common import add_mesh_options, endpoints_from, namespace_from
from asya_pulumi.cli.errors import EXIT_OK, UsageError
from asya_pulumi.cli.mesh_queues import MeshQueues


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "status",
        help="queue depth, in flight and DLQ depth per actor",
        description="Show every actor queue of the namespace: waiting, in flight, delayed and DLQ depth.",
    )
    add_mesh_options(parser)
    parser.set_defaults(run=run)


def status_table(queues: MeshQueues) -> Table:
    """One row per actor queue of the namespace (sinks included, since a stuck sink blocks results)."""
    actors = queues.actors()
    if not actors:
        raise UsageError(f"no queues found for namespace {queues.namespace!r}; check --namespace and the endpoint")
    depths = queues.depths([queues.actor_url(a) for a in actors])
    dlqs = queues.depths([queues.dlq_url(a) for a in actors])
    table = Table(title=f"mesh {queues.namespace}")
    for column in ("actor", "waiting", "in flight", "delayed", "DLQ"):
        table.add_column(column, justify="left" if column == "actor" else "right")
    for actor, depth, dlq in zip(actors, depths, dlqs, strict=True):
        table.add_row(actor, str(depth.visible), str(depth.in_flight), str(depth.delayed), str(dlq.visible))
    return table


def run(args: argparse.Namespace) -> int:
    queues = MeshQueues(sqs=sqs_client(endpoints_from(args)), namespace=namespace_from(args))
    Console().print(status_table(queues))
    return EXIT_OK
