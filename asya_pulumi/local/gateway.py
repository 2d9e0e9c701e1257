"""The front door of a local mesh: its status table in the local DynamoDB and the gateway process that serves it.

``asya dev --gateway`` (:mod:`asya_pulumi.cli.dev.gateway`) uses these; the tests start the same pieces. Every
setting is rendered from the typed configs the cluster uses too: the table from the runtime's
:func:`~asya_runtime.status.schema.table_definition`, its name from :func:`~asya_runtime.naming.status_table_name`,
the gateway's environment from :class:`~asya_runtime.gateway.config.GatewayConfig` (its mesh from
:func:`asya_pulumi.objects.gateway.gateway_mesh`, the Deployment's own), the sidecars' status settings
from :class:`~asya_runtime.config.SidecarConfig`'s fields.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asya_pulumi.local.broker import free_port
from asya_pulumi.local.plan import LOCAL_AWS_ENV, base_env
from asya_pulumi.local.processes import ProcessSpec

if TYPE_CHECKING:
    from asya_pulumi.spec.mesh import MeshSpec
    from asya_runtime.gateway.config import GatewayConfig

__all__ = [
    "GATEWAY_PROCESS",
    "create_status_table",
    "gateway_config",
    "gateway_process",
    "local_status_table",
    "status_retention_days",
    "status_settings",
    "wait_gateway",
]

#: The gateway's process (and log file) name under the mesh's supervisor.
GATEWAY_PROCESS = "gateway"


def local_status_table(namespace: str) -> str:
    """The mesh's status table name, as on AWS."""
    from asya_runtime.naming import status_table_name

    return status_table_name(namespace)


def status_settings(*, table: str, endpoint: str, retention_days: int | None = None) -> dict[str, str]:
    """The sidecar's environment for the status store, named by :class:`SidecarConfig`'s own fields: the table, the
    local DynamoDB and, when given, how many days a record lives (``statusRetentionDays``)."""
    from asya_runtime.config import SidecarConfig

    fields = SidecarConfig.model_fields
    env = {str(fields["status_table"].alias): table, str(fields["dynamodb_endpoint"].alias): endpoint}
    if retention_days is not None:
        env[str(fields["status_retention_days"].alias)] = str(retention_days)
    return env


def create_status_table(*, dynamodb: Any, table: str) -> None:
    """Create the status table (keys, the ``by_status`` index, TTL) as the deployment does, and wait until active.
    An existing table (a re-run against the same server) is kept."""
    from asya_runtime.status.schema import table_definition, time_to_live

    try:
        dynamodb.create_table(**table_definition(table_name=table))
    except dynamodb.exceptions.ResourceInUseException:
        return
    dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=time_to_live())


def gateway_config(
    *,
    mesh: MeshSpec,
    region: str,
    sqs_endpoint: str,
    s3_endpoint: str,
    dynamodb_endpoint: str,
    bucket: str,
    port: int | None = None,
) -> GatewayConfig:
    """The local gateway's settings: loopback, no authentication, this mesh's queues, table and bucket."""
    from asya_pulumi.objects.gateway import gateway_mesh as deployed_mesh
    from asya_runtime.gateway.config import GatewayConfig

    chosen = port or free_port()
    return GatewayConfig(
        namespace=mesh.namespace, mesh=deployed_mesh(mesh), region=region, sqs_endpoint=sqs_endpoint,
        s3_endpoint=s3_endpoint, dynamodb_endpoint=dynamodb_endpoint, status_table=local_status_table(mesh.namespace),
        status_retention_days=status_retention_days(mesh), result_bucket=bucket, host="127.0.0.1", port=chosen,
        auth="none",
    )


def status_retention_days(mesh: MeshSpec) -> int:
    """The manifest's ``spec.gateway.statusRetentionDays``, else the default (``asya dev --gateway`` on a mesh
    whose manifest has no gateway section)."""
    from asya_runtime.retention import DEFAULT_RETENTION_DAYS

    return mesh.gateway.status_retention_days if mesh.gateway is not None else DEFAULT_RETENTION_DAYS


def gateway_process(*, config: GatewayConfig, cwd: Path, env: Mapping[str, str] | None = None) -> ProcessSpec:
    """``python -m asya_runtime.gateway`` with ``config``'s environment and the local broker's credentials;
    restarted when it exits (its state is in the store)."""
    return ProcessSpec(
        name=GATEWAY_PROCESS,
        argv=[sys.executable, "-m", "asya_runtime.gateway"],
        env=base_env() | LOCAL_AWS_ENV | {"AWS_DEFAULT_REGION": config.region} | dict(env or {}) | config.to_env(),
        cwd=cwd,
        group=GATEWAY_PROCESS,
    )


def is_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def wait_gateway(url: str, *, timeout_s: float, exited: Any = None) -> bool:
    """Wait until ``{url}/health`` answers 200; False after ``timeout_s`` or once ``exited()`` says it stopped."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_up(url):
            return True
        if exited is not None and exited():
            return False
        time.sleep(0.1)
    return False

