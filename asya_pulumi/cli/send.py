"""``asya send ROUTE PAYLOAD``: start one envelope on a running mesh (local or AWS) and print its id.

The envelope carries a W3C ``traceparent`` rooted at its id (the trace id is the id without dashes), as ``asya dev``'s
inputs do, so its spans and its records share one trace id (docs/observability.md).
"""

from __future__ import annotations

import argparse

from asya_pulumi.cli.common import add_mesh_options, command_sqs, namespace_from
from asya_pulumi.cli.errors import EXIT_OK
from asya_pulumi.cli.inputs import envelope_from_arguments
from asya_pulumi.cli.output import add_json_option, emit
from asya_pulumi.ops.mesh_queues import MeshQueues
from asya_pulumi.records import with_trace


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "send",
        help="send one envelope to a running mesh",
        description="Send one envelope whose route is ROUTE (a,b,c or a JSON list) with PAYLOAD (a JSON object).",
    )
    parser.add_argument("route", metavar="ROUTE", help="actors to visit, e.g. preprocess,score or '[\"a\",\"b\"]'")
    parser.add_argument("payload", metavar="PAYLOAD", help="the payload, a JSON object")
    add_json_option(parser, what="the envelope's id and route")
    add_mesh_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    namespace = namespace_from(args)
    envelope = with_trace(envelope_from_arguments(route=args.route, payload=args.payload, actors=None, routes={}))
    queues = MeshQueues(sqs=command_sqs(args), namespace=namespace)
    for actor in envelope.route.next:  # fail before sending when a later hop has no queue either
        queues.actor_url(actor)
    queues.send([envelope])
    route = [envelope.route.curr, *envelope.route.next]
    emit(args, data={"id": envelope.id, "route": route, "namespace": namespace}, text=envelope.id)
    return EXIT_OK
