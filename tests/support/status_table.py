"""A DynamoDB endpoint (moto's server, over HTTP) and a fresh status table per test, for every suite that needs the
status store (the store's own tests, the sidecar's, the gateway's, ``asya dev --gateway``'s).

Use the fixtures by importing them into a test module or a conftest::

    from support.status_table import dynamodb_server, status_table  # noqa: F401  (pytest fixtures)

``status_table`` is a :class:`StatusTable`: its ``env`` is what a sidecar or the gateway is given, its ``store()``
opens an async :class:`~asya_runtime.status.StatusStore` on it, and ``client`` is a boto3 client for looking inside.
The table is created from :func:`asya_runtime.status.table_definition`, as ``asya dev`` and the Pulumi component do.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from asya_pulumi.local.broker import LOCAL_CREDENTIALS
from asya_runtime.status import StatusStore, status_table_name, table_definition, time_to_live
from asya_runtime.status.client import open_store
from support.moto_server import MotoServer

REGION = LOCAL_CREDENTIALS["region_name"]


@dataclass(frozen=True)
class StatusTable:
    """One created status table on the session's DynamoDB server."""

    endpoint: str
    namespace: str
    client: Any  # a boto3 DynamoDB client

    @property
    def name(self) -> str:
        return status_table_name(self.namespace)

    @property
    def env(self) -> dict[str, str]:
        """What a sidecar (or the gateway) is given to use this table (with the broker's credentials)."""
        return {"ASYA_STATUS_TABLE": self.name, "ASYA_DYNAMODB_ENDPOINT": self.endpoint}

    def store(self, **kwargs: Any) -> AbstractAsyncContextManager[StatusStore]:
        """``async with table.store() as store:`` — a store of its own connection on this table."""
        keys = (LOCAL_CREDENTIALS["aws_access_key_id"], LOCAL_CREDENTIALS["aws_secret_access_key"])
        return open_store(table=self.name, region=REGION, endpoint=self.endpoint, access_key=keys, **kwargs)

    def item(self, id: str) -> dict[str, Any] | None:
        """The raw item (DynamoDB's typed JSON), read strongly consistent; None when absent."""
        answer = self.client.get_item(TableName=self.name, Key={"id": {"S": id}}, ConsistentRead=True)
        item: dict[str, Any] | None = answer.get("Item")
        return item


def create_status_table(*, endpoint: str, namespace: str) -> StatusTable:
    client = boto3.client("dynamodb", endpoint_url=endpoint, **LOCAL_CREDENTIALS)
    name = status_table_name(namespace)
    client.create_table(**table_definition(table_name=name))
    client.update_time_to_live(TableName=name, TimeToLiveSpecification=time_to_live())
    return StatusTable(endpoint=endpoint, namespace=namespace, client=client)


@pytest.fixture(scope="session")
def dynamodb_server() -> Iterator[MotoServer]:
    """moto's server for the session: DynamoDB (and IAM, STS) over HTTP on a loopback port."""
    with MotoServer(region=REGION) as server:
        yield server


@pytest.fixture
def status_table(dynamodb_server: MotoServer) -> StatusTable:
    """A fresh status table (its own namespace) on the session's server."""
    return create_status_table(endpoint=dynamodb_server.url, namespace=f"st{uuid.uuid4().hex[:10]}")
