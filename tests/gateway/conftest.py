"""The gateway as it runs: ``python -m asya_runtime.gateway`` on a free loopback port (real HTTP), its store on
moto's DynamoDB server, its queues and bucket on the session's embedded broker.

No sidecar runs here: a test moves an envelope along as the sidecars and sinks would, by writing its status
record through :class:`~asya_runtime.status.StatusStore` (:meth:`Gateway.store`), and reads what the gateway sent
from the first actor's queue (:meth:`Gateway.sent`). The whole pipeline, sidecars included, is tested elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.moto_server import MotoServer
from support.status_table import StatusTable, create_status_table, dynamodb_server  # noqa: F401  (pytest fixture)

from asya_pulumi.local.broker import LOCAL_CREDENTIALS, LocalBroker, free_port
from asya_runtime.gateway.config import GatewayConfig, GatewayMesh
from asya_runtime.naming import queue_name
from asya_runtime.status import StatusStore

REPO = Path(__file__).resolve().parents[2]
ACTORS = ["prep", "slow", "done"]
ROUTES: dict[str, Any] = {
    "pipeline": {
        "actors": ["prep", "done"], "description": "Prepares a text and finishes it.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    },
    "echo": {"actors": ["done"], "description": "Answers what it was sent."},
}


@dataclass
class Gateway:
    """A running gateway and what a test needs around it."""

    url: str
    config: GatewayConfig
    table: StatusTable
    sqs: Any
    s3: Any
    bucket: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def http(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def store(self, scenario: Callable[[StatusStore], Awaitable[Any]]) -> Any:
        """Run ``scenario`` with a store of its own on the gateway's table (as a sidecar or sink would)."""

        async def main() -> Any:
            async with self.table.store() as store:
                return await scenario(store)

        return asyncio.run(main())

    def queue_url(self, actor: str) -> str:
        name = queue_name(namespace=self.config.namespace, actor=actor)
        return str(self.sqs.get_queue_url(QueueName=name)["QueueUrl"])

    def sent(self, actor: str, *, wait_s: float = 1.0) -> list[dict[str, Any]]:
        """Every envelope waiting in ``actor``'s queue, received and deleted (so the next test starts empty)."""
        envelopes: list[dict[str, Any]] = []
        url = self.queue_url(actor)
        deadline = time.monotonic() + wait_s
        while True:
            answer = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = answer.get("Messages", [])
            for message in messages:
                envelopes.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if not messages:
                if time.monotonic() >= deadline:
                    return envelopes
                time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def gateway_env(*, config: GatewayConfig, table: StatusTable) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("ASYA_")},
        **config.to_env(), **table.env,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'runtime'}",
    }


@contextmanager
def running_gateway(
    *, broker: LocalBroker, sqs: Any, s3: Any, table: StatusTable, tmp: Path, **settings: Any
) -> Iterator[Gateway]:
    """A gateway on ``table``'s mesh with ``settings`` (GatewayConfig fields) over the defaults below; its actors'
    queues and its bucket are created on ``broker`` first."""
    namespace = table.namespace
    for actor in ACTORS:
        sqs.create_queue(QueueName=queue_name(namespace=namespace, actor=actor))
    bucket = f"asya-{namespace}-results"
    s3.create_bucket(Bucket=bucket)
    port = free_port()
    config = GatewayConfig.model_validate({
        "namespace": namespace, "status_table": table.name, "port": port, "region": LOCAL_CREDENTIALS["region_name"],
        "sqs_endpoint": broker.endpoint, "s3_endpoint": broker.endpoint, "result_bucket": bucket,
        "mesh": GatewayMesh.model_validate({"namespace": namespace, "actors": ACTORS, "routes": ROUTES}),
        "keepalive_s": 0.5, "poll_interval_s": 0.05, "call_timeout_s": 20,
        **settings,
    })
    log_path = tmp / f"gateway-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "asya_runtime.gateway"], env=gateway_env(config=config, table=table),
            stdout=log, stderr=subprocess.STDOUT,
        )
    gateway = Gateway(url=f"http://127.0.0.1:{port}", config=config, table=table, sqs=sqs, s3=s3, bucket=bucket,
                      process=process, log_path=log_path)
    try:
        _wait_healthy(gateway)
        yield gateway
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(gateway: Gateway, *, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise RuntimeError(f"the gateway exited with {gateway.process.returncode}:\n{gateway.log()}")
        try:
            if httpx.get(f"{gateway.url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the gateway did not answer within {within_s} s:\n{gateway.log()}")


@pytest.fixture(scope="module")
def gateway(
    broker: LocalBroker, sqs: Any, s3: Any, dynamodb_server: MotoServer,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    """One gateway (without auth, on loopback) for the module, on a fresh mesh and status table."""
    table = create_status_table(endpoint=dynamodb_server.url, namespace=f"gw{uuid.uuid4().hex[:10]}")
    with running_gateway(broker=broker, sqs=sqs, s3=s3, table=table, tmp=tmp_path_factory.mktemp("gateway")) as gw:
        yield gw
