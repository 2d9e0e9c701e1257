"""``asya send ROUTE PAYLOAD``: start one envelope on a running mesh (local or AWS) and print its id.

Two ways in. Directly (the default): the envelope goes to its first actor's SQS queue; it carries a W3C
``traceparent`` rooted at its id (the trace id is the id without dashes), as ``asya dev``'s inputs do, so its spans
and its records share one trace id (docs/observability.md). Through the front door (``--gateway URL`` or
``$ASYA_GATEWAY_URL``; ``--wait`` and ``--follow`` need it): the gateway submits it with a status record, and the
command can then wait for its final payload (``--wait``) or print every status and FLY event until then
(``--follow``), through :mod:`asya_runtime.client` (:mod:`asya_pulumi.cli.send_gateway`).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

from asya_pulumi.cli.common import add_mesh_options, command_sqs, namespace_from
from asya_pulumi.cli.completion import completes_names
from asya_pulumi.cli.errors import EXIT_OK, UsageError
from asya_pulumi.cli.inputs import envelope_from_arguments
from asya_pulumi.cli.output import add_json_option, emit
from asya_pulumi.ops.errors import OpsError
from asya_pulumi.ops.mesh_queues import MeshQueues
from asya_pulumi.records import with_trace


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "send",
        help="send one envelope to a running mesh",
        description="Send one envelope whose route is ROUTE (a,b,c or a JSON list) with PAYLOAD (a JSON object).",
    )
    completes_names(parser.add_argument(
        "route", metavar="ROUTE", help="a route of the mesh, or actors to visit: preprocess,score or '[\"a\",\"b\"]'"
    ))
    parser.add_argument("payload", metavar="PAYLOAD", help="the payload, a JSON object")
    add_json_option(parser, what="the envelope's id and route (with --wait: its final status and payload; with "
                    "--follow: one object per event, then the final one)")
    from asya_pulumi.cli.send_gateway import add_gateway_options

    add_gateway_options(parser)
    add_mesh_options(parser, pipeline="ROUTE may name one of its routes, and every actor is checked against it")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.gateway or args.wait or args.follow:
        from asya_pulumi.cli.send_gateway import send_through_gateway

        return send_through_gateway(args)
    routes: Mapping[str, Sequence[str]] = {}
    actors: list[str] | None = None
    if args.mesh:
        from asya_pulumi.cli.dev.setup import load_mesh

        mesh, _ = load_mesh(args.mesh, namespace=args.namespace)
        routes, actors, args.namespace = mesh.routes, [a.name for a in mesh.actors], mesh.namespace
    namespace = namespace_from(args)
    envelope = with_trace(envelope_from_arguments(route=args.route, payload=args.payload, actors=actors,
                                                  routes=routes))
    queues = MeshQueues(sqs=command_sqs(args), namespace=namespace)
    try:
        for actor in [envelope.route.curr, *envelope.route.next]:  # fail before sending if any hop has no queue
            queues.actor_url(actor)
    except OpsError as exc:
        if args.mesh or "," in args.route or args.route.lstrip().startswith("["):
            raise
        raise UsageError(f"{exc}; if {args.route!r} is a route of the mesh, pass --mesh PIPELINE_DIR (or --stack) "
                         "so that its routes are known") from None
    queues.send([envelope])
    route = [envelope.route.curr, *envelope.route.next]
    emit(args, data={"id": envelope.id, "route": route, "namespace": namespace}, text=envelope.id)
    return EXIT_OK
