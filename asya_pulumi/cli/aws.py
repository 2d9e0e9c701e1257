"""SQS and S3 clients for the CLI: a local endpoint (``--sqs-endpoint``) or real AWS (the default credential chain).

A local server accepts any credentials, so when an endpoint is given and the environment holds none, the clients use
``test``/``test`` instead of failing on a missing profile. Against AWS nothing is invented: boto3's own chain decides.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

#: Room for every sidecar poll, sink read and status call of a local mesh at once without pool warnings.
_POOL_SIZE = 32


@dataclass(frozen=True)
class Endpoints:
    """Where the mesh's queues and bucket live; ``None`` endpoints mean real AWS in ``region``."""

    region: str
    sqs_endpoint: str | None = None
    s3_endpoint: str | None = None

    @property
    def is_local(self) -> bool:
        return self.sqs_endpoint is not None


def _credentials(endpoint: str | None) -> dict[str, str]:
    if endpoint is None or os.environ.get("AWS_ACCESS_KEY_ID"):
        return {}
    return {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def sqs_client(endpoints: Endpoints) -> Any:
    """A boto3 SQS client for ``endpoints``."""
    return boto3.session.Session().client(
        "sqs",
        region_name=endpoints.region,
        endpoint_url=endpoints.sqs_endpoint,
        config=Config(max_pool_connections=_POOL_SIZE, retries={"max_attempts": 5, "mode": "standard"}),
        **_credentials(endpoints.sqs_endpoint),
    )


def _session_without_timestamp_parsing() -> boto3.session.Session:
    """A session whose responses keep timestamps as text: parsing ``LastModified`` of every key of a bucket listing
    with dateutil was the largest CPU cost of polling for results (measured with cProfile during a 2,000 burst)."""
    session = botocore.session.Session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return boto3.session.Session(botocore_session=session)


def s3_client(endpoints: Endpoints) -> Any:
    """A boto3 S3 client for ``endpoints`` (path-style addressing, which local servers need); timestamps as text."""
    return _session_without_timestamp_parsing().client(
        "s3",
        region_name=endpoints.region,
        endpoint_url=endpoints.s3_endpoint,
        config=Config(
            max_pool_connections=_POOL_SIZE,
            retries={"max_attempts": 5, "mode": "standard"},
            s3={"addressing_style": "path"} if endpoints.s3_endpoint else {},
        ),
        **_credentials(endpoints.s3_endpoint),
    )
