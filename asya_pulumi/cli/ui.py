"""``asya ui``: serve the operations page for one mesh on 127.0.0.1 and print its URL; Ctrl-C stops it.

Same location options as ``asya status`` (``--sqs-endpoint`` for ``asya dev``'s broker, else AWS). ``--mesh
PIPELINE_DIR`` adds the declared routes (and the namespace, unless ``--namespace``); without it the graph shows the
actors found from the namespace's queues and the hops the recent records took.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import webbrowser
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from asya_pulumi.cli.common import add_mesh_options, endpoints_from
from asya_pulumi.cli.errors import EXIT_OK, UsageError

if TYPE_CHECKING:  # the server and boto3 are imported only when the command runs
    from asya_pulumi.ui.backend import UiBackend
    from asya_pulumi.ui.inflight import InFlightReader
    from asya_pulumi.ui.server import UiServer


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ui",
        help="a local web page: the mesh graph, records, traces, replay",
        description="Serve a page on 127.0.0.1 showing the mesh as a graph with live queue depths, recent final "
        "records (searchable), one envelope's trace as a timeline, and replay of failed envelopes.",
    )
    add_mesh_options(parser, pipeline="draw its declared routes")
    parser.add_argument(
        "--bucket", metavar="NAME", help="the mesh's result bucket (default: found from the namespace; on AWS the "
        "stack output bucketName if several match)",
    )
    parser.add_argument(
        "--status-table", metavar="NAME", help="the mesh's status table, to list envelopes in flight (default: "
        "asya-{namespace}_status when it exists; a mesh with a front door has one, docs/gateway.md)",
    )
    parser.add_argument(
        "--dynamodb-endpoint", metavar="URL", default=os.environ.get("ASYA_DYNAMODB_ENDPOINT") or None,
        help="DynamoDB endpoint of the status table (a local server; env ASYA_DYNAMODB_ENDPOINT; default: AWS)",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--no-browser", action="store_true", help="print the URL only; do not open a browser")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    routes: Mapping[str, Sequence[str]] = {}
    declared: list[str] = []
    namespace = args.namespace
    if args.mesh:
        from asya_pulumi.cli.dev.setup import load_mesh

        mesh, _ = load_mesh(args.mesh, namespace=args.namespace)
        routes, declared, namespace = mesh.routes, [a.name for a in mesh.actors], mesh.namespace
    if not namespace:
        raise UsageError("no mesh namespace; pass --namespace NAME, --mesh PIPELINE_DIR or set ASYA_NAMESPACE")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: a port is 0..65535 (0 picks a free one)")
    from asya_pulumi.cli.aws import reachable, s3_client, sqs_client
    from asya_pulumi.ops.mesh_queues import MeshQueues
    from asya_pulumi.ui.backend import UiBackend

    endpoints = endpoints_from(args)
    sqs, s3 = reachable(sqs_client(endpoints)), reachable(s3_client(endpoints))
    backend = UiBackend(
        queues=MeshQueues(sqs=sqs, namespace=namespace), s3=s3, bucket=args.bucket, routes=routes,
        declared_actors=declared,
    )
    _check_reachable(backend)
    backend.status = _status_store(args, namespace=namespace)
    try:  # Ctrl-C is the documented way to stop the page (even the moment its URL is printed): exit 0
        server = start_ui(backend=backend, port=args.port, open_browser=not args.no_browser)
        try:
            signal.pause()
        finally:
            server.close()
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _check_reachable(backend: UiBackend) -> None:
    """Refuse to serve a page that could only show errors: no queues under the namespace (a typo, the wrong
    endpoint) is one line before the server starts, and so is no way to ask (credentials, endpoint: what boto3
    raises goes to the entry point, which words it and exits 4, as for every command)."""
    found = backend.queues.actors()
    if not found:
        raise UsageError(
            f"no queues found for namespace {backend.namespace!r}; check --namespace and the endpoint "
            "(is the mesh running? `asya dev ... --ui` serves a local run)"
        )


def _status_store(args: argparse.Namespace, *, namespace: str) -> InFlightReader | None:
    """The mesh's status store when it has one: ``--status-table``, else its derived name if that table exists.
    Without one the page lists final records only (one line on stderr says so). A local mesh (``--sqs-endpoint``)
    has its store only where ``--dynamodb-endpoint`` says (``asya dev --gateway --ui`` passes its own)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    from asya_pulumi.ui.inflight import InFlightReader
    from asya_runtime.naming import status_table_name

    if args.sqs_endpoint and not args.dynamodb_endpoint:
        if args.status_table:
            raise UsageError("--status-table of a local mesh: pass --dynamodb-endpoint URL too")
        return None
    table = args.status_table or status_table_name(namespace)
    local = {"aws_access_key_id": "test", "aws_secret_access_key": "test"} if args.dynamodb_endpoint and not (
        os.environ.get("AWS_ACCESS_KEY_ID")) else {}
    dynamodb = boto3.session.Session().client(
        "dynamodb", region_name=args.region, endpoint_url=args.dynamodb_endpoint,
        config=Config(connect_timeout=2, read_timeout=10, retries={"total_max_attempts": 2}), **local,
    )
    try:
        dynamodb.describe_table(TableName=table)
    except (ClientError, BotoCoreError) as exc:
        if args.status_table:
            raise UsageError(f"--status-table {table}: cannot read it ({' '.join(str(exc).split())})") from None
        print(f"asya ui: no status table {table!r} ({type(exc).__name__}); listing final records only",
              file=sys.stderr, flush=True)
        return None
    return InFlightReader(dynamodb=dynamodb, table=table)


def start_ui(*, backend: UiBackend, port: int = 0, open_browser: bool) -> UiServer:
    """Start the page's server in the background, print its URL, open a browser when asked and on a terminal."""
    from asya_pulumi.ui.server import UiServer

    try:
        server = UiServer(backend=backend, port=port).start()
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; pick another --port or 0") from None
    print(f"asya ui: {server.url} (mesh {backend.namespace!r}; Ctrl-C stops it)", flush=True)
    if open_browser and sys.stdout.isatty():
        webbrowser.open(server.url)
    return server
