"""The local DynamoDB keeps conditional writes atomic, as the status store needs (asya_pulumi/local/dynamodb_server.py).

Two stores, on connections of their own, race the writes the front door races for real — a cancel against a
sidecar's ``running``, two gateways' ``create_pending`` of one idempotent envelope — on a server whose threads are
made to take turns every 10 µs (what a loaded machine does now and then). moto's own ``moto.server`` loses such races
(the control: it proves the race is made); the serialized server never does.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import pytest
from support.moto_server import SERVER_MODULE, MotoServer
from support.status_table import create_status_table

from asya_runtime.status import RunningUpdate

ROUNDS = 150
SWITCH_INTERVAL_S = 1e-5


@dataclass
class Lost:
    cancels: int = 0
    creates: int = 0


def _race(server: MotoServer) -> Lost:
    table = create_status_table(endpoint=server.url, namespace=f"race{uuid.uuid4().hex[:8]}")

    async def main() -> Lost:
        lost = Lost()
        async with table.store() as a, table.store() as b:
            for _ in range(ROUNDS):
                racing = uuid.uuid4().hex
                await a.create_pending(id=racing, route="r", actor="slow")
                after, _ = await asyncio.gather(
                    a.cancel(id=racing),
                    b.report_running(updates=[RunningUpdate(id=racing, actor="slow", attempt=1, seq=0)]),
                )
                record = await a.get(id=racing)
                assert record is not None
                if after == "canceled" and (record.status != "canceled" or not record.terminal):
                    lost.cancels += 1
                key = uuid.uuid4().hex
                created = await asyncio.gather(a.create_pending(id=key, route="r"), b.create_pending(id=key, route="r"))
                if sum(created) != 1:
                    lost.creates += 1
        return lost

    return asyncio.run(main())


@pytest.mark.parametrize("module", ["moto.server", SERVER_MODULE])
def test_racing_conditional_writes_keep_one_winner_on_the_serialized_server_only(module: str) -> None:
    with MotoServer(region="us-east-1", module=module, switch_interval_s=SWITCH_INTERVAL_S) as server:
        lost = _race(server)
    if module == SERVER_MODULE:
        assert lost == Lost(), f"{lost} of {ROUNDS} races lost"
    else:
        assert lost.cancels + lost.creates > 0, f"no race lost in {ROUNDS}: the control proves nothing"
