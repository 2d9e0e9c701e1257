"""Options shared by the commands that talk to a running mesh: where it is (endpoint/region, or a Pulumi stack's
config) and which namespace.

Each value is settled once, before the command runs (:func:`settle_mesh_options`), in this order: the option on the
command line, then the stack file (``--stack``), then the environment (``ASYA_NAMESPACE``, ``AWS_REGION``), then
the default region. The command and the error report then read the same ``args.region`` and ``args.namespace``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from asya_pulumi.cli.aws import COMMAND_ATTEMPTS, Endpoints, reachable, sqs_client
from asya_pulumi.cli.errors import UsageError

DEFAULT_REGION = "us-east-1"


def add_mesh_options(
    parser: argparse.ArgumentParser, *, namespace_required: bool = True, pipeline: str | None = None
) -> None:
    """``--sqs-endpoint``, ``--s3-endpoint``, ``--region``, ``--stack``/``--program-dir``, (unless the command
    knows it) ``--namespace`` and, when ``pipeline`` says what the command reads from it, ``--mesh PIPELINE_DIR``
    (the stack's ``asya:pipeline`` by default)."""
    group = parser.add_argument_group("mesh location (default: real AWS with the default credential chain)")
    group.add_argument(
        "--sqs-endpoint",
        default=os.environ.get("ASYA_SQS_ENDPOINT") or None,
        metavar="URL",
        help="SQS-compatible endpoint, e.g. the one `asya dev --keep-running` prints (env ASYA_SQS_ENDPOINT)",
    )
    group.add_argument(
        "--s3-endpoint",
        default=os.environ.get("ASYA_S3_ENDPOINT") or None,
        metavar="URL",
        help="S3 endpoint (default: --sqs-endpoint, since local servers serve both)",
    )
    group.add_argument(
        "--region", default=None, help=f"AWS region (default: the stack's aws:region, $AWS_REGION or {DEFAULT_REGION})"
    )
    group.add_argument(
        "--stack",
        metavar="NAME",
        help="read namespace (asya:namespace) and region (aws:region) from the Pulumi stack's Pulumi.NAME.yaml "
        "(or a path to that file)",
    )
    group.add_argument(
        "--program-dir",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="where --stack's file is: DIR, or the stackConfigDir of DIR/Pulumi.yaml (default: .)",
    )
    if pipeline is not None:
        group.add_argument(
            "--mesh", metavar="PIPELINE_DIR", help=f"pipeline directory: {pipeline}; its namespace is the default "
            "for --namespace (default: the stack's asya:pipeline)",
        )
    if namespace_required:
        group.add_argument(
            "--namespace",
            default=None,
            help="the mesh namespace: queues are asya-{namespace}_{actor} (default: the stack's, $ASYA_NAMESPACE)",
        )
    parser.set_defaults(settle=settle_mesh_options)


def settle_mesh_options(args: argparse.Namespace) -> None:
    """Fill ``args.region`` and ``args.namespace`` from the stack file and the environment where the command line
    left them out."""
    from_stack_namespace = from_stack_region = None
    if args.stack:
        from asya_pulumi.cli.stack_config import mesh_location, stack_config_path

        location = mesh_location(stack_config_path(args.program_dir, args.stack))
        from_stack_namespace, from_stack_region = location.namespace, location.region
        if hasattr(args, "mesh") and args.mesh is None and location.pipeline is not None:
            args.mesh = str(location.pipeline)
    args.region = (
        args.region or from_stack_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )
    if hasattr(args, "namespace"):
        args.namespace = args.namespace or from_stack_namespace or os.environ.get("ASYA_NAMESPACE") or None


def endpoints_from(args: argparse.Namespace) -> Endpoints:
    return Endpoints(
        region=args.region, sqs_endpoint=args.sqs_endpoint, s3_endpoint=args.s3_endpoint or args.sqs_endpoint
    )


def command_sqs(args: argparse.Namespace) -> Any:
    """The SQS client of a one-shot command (status, send, dlq, replay): fewer attempts than a running mesh's, and
    its endpoint checked first, so an unreachable one is reported in under two seconds."""
    return reachable(sqs_client(endpoints_from(args), attempts=COMMAND_ATTEMPTS))


def namespace_from(args: argparse.Namespace) -> str:
    if not args.namespace:
        raise UsageError("no mesh namespace; pass --namespace NAME, --stack NAME, or set ASYA_NAMESPACE")
    return str(args.namespace)
