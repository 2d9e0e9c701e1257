"""Options shared by the commands that talk to a running mesh: where it is (endpoint/region) and which namespace."""

from __future__ import annotations

import argparse
import os

from asya_pulumi.cli.aws import Endpoints
from asya_pulumi.cli.errors import UsageError

DEFAULT_REGION = "us-east-1"


def add_mesh_options(parser: argparse.ArgumentParser, *, namespace_required: bool = True) -> None:
    """``--sqs-endpoint``, ``--s3-endpoint``, ``--region`` and (unless the command knows it) ``--namespace``."""
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
        "--region",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        help=f"AWS region (default: $AWS_REGION or {DEFAULT_REGION})",
    )
    if namespace_required:
        group.add_argument(
            "--namespace",
            default=os.environ.get("ASYA_NAMESPACE") or None,
            help="the mesh namespace: queues are asya-{namespace}_{actor} (env ASYA_NAMESPACE)",
        )


def endpoints_from(args: argparse.Namespace) -> Endpoints:
    return Endpoints(
        region=args.region, sqs_endpoint=args.sqs_endpoint, s3_endpoint=args.s3_endpoint or args.sqs_endpoint
    )


def namespace_from(args: argparse.Namespace) -> str:
    if not args.namespace:
        raise UsageError("no mesh namespace; pass --namespace NAME or set ASYA_NAMESPACE")
    return str(args.namespace)
