"""``asya dev --gateway``: the front door of the local mesh (docs/gateway.md, "Local").

Two steps, at the two moments of :mod:`asya_pulumi.cli.dev.start`: :func:`spawn_status_store` starts moto's server
(the local DynamoDB) together with the broker and gives the plan the sidecars' status settings; once the queues
exist, :func:`start_gateway` creates the mesh's status table, starts ``asya-gateway`` under the mesh's supervisor
(loopback, no authentication) and prints one line, ``gateway: http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from asya_pulumi.cli.errors import UsageError
from asya_pulumi.extras import require
from asya_pulumi.local.dynamodb import LocalDynamoDB, LocalDynamoDBError
from asya_pulumi.spec.mesh import MeshSpec

if TYPE_CHECKING:
    from asya_pulumi.cli.dev.start import Launch

#: How long the gateway may take to answer ``/health`` (its imports: starlette, mcp, a2a, aiobotocore).
GATEWAY_STARTUP_S = 60.0


def check_gateway_args(args: argparse.Namespace) -> None:
    """Before anything starts: the parts are installed, and the mode is one a loopback gateway can serve."""
    if args.containers:
        raise UsageError("--gateway with --containers: the pods cannot reach a gateway on this machine's loopback; "
                         "drop one of them")
    require("gateway", needed_by="asya dev --gateway")


def spawn_status_store(
    *, stack: contextlib.ExitStack, mesh: MeshSpec, region: str, work_dir: Path
) -> tuple[LocalDynamoDB, dict[str, str]]:
    """Start the local DynamoDB (without waiting; stopped when the run ends, after the processes that use it) and
    the settings that point every sidecar at the mesh's status table in it."""
    from asya_pulumi.local.gateway import local_status_table, status_settings

    dynamodb = LocalDynamoDB(region=region, state_dir=work_dir / "dynamodb")
    print("starting the local DynamoDB (moto's server) for the status store ...", flush=True)
    stack.callback(dynamodb.stop)
    dynamodb.spawn()
    return dynamodb, status_settings(table=local_status_table(mesh.namespace), endpoint=dynamodb.endpoint)


def start_gateway(*, launched: Launch) -> str | None:
    """Create the status table and start the gateway; None once it answers, else the problem (one line + log)."""
    from asya_pulumi.local.gateway import (
        GATEWAY_PROCESS,
        create_status_table,
        gateway_config,
        gateway_process,
        wait_gateway,
    )

    assert launched.dynamodb is not None
    plan = launched.plan
    assert plan.sqs_endpoint is not None and plan.s3_endpoint is not None
    try:
        launched.dynamodb.wait_ready()
    except LocalDynamoDBError as exc:
        return str(exc)
    config = gateway_config(
        mesh=launched.mesh, region=launched.region, sqs_endpoint=plan.sqs_endpoint, s3_endpoint=plan.s3_endpoint,
        dynamodb_endpoint=launched.dynamodb.endpoint, bucket=plan.bucket,
    )
    create_status_table(dynamodb=launched.dynamodb.client(), table=config.status_table)
    supervisor = launched.supervisor
    supervisor.add(gateway_process(config=config, cwd=plan.pipeline_dir))
    up = wait_gateway(config.url, timeout_s=GATEWAY_STARTUP_S,
                      exited=lambda: bool(supervisor.exit_statuses(GATEWAY_PROCESS)))
    if not up:
        log = supervisor.log_path(GATEWAY_PROCESS)
        tail = log.read_text(errors="replace").strip().splitlines()[-8:] if log.exists() else []
        return "the gateway did not start; see " + str(log) + "".join(f"\n  {line}" for line in tail)
    launched.gateway_url = config.url
    print(f"gateway: {config.url}", flush=True)
    return None
