"""The envelopes in flight, from the mesh's status store: what ``asya ui`` lists besides the final records.

A mesh with a front door (docs/gateway.md) keeps one status item per tracked envelope; those ``pending``,
``running`` or ``paused`` are the ones not finished yet, each with the actor that last reported it and its attempt.
They are read with the runtime's own :class:`~asya_runtime.status.StatusStore` (its ``by_status`` index, newest
first), over a plain boto3 DynamoDB client: the store's requests are DynamoDB's own operations, so the page lists
exactly what the gateway answers, from the same code.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

#: The statuses of an envelope that is not finished.
IN_FLIGHT = ("running", "pending", "paused")


@dataclass(frozen=True)
class InFlightReader:
    """The mesh's status ``table`` through ``dynamodb`` (a boto3 client)."""

    dynamodb: Any
    table: str

    async def _call(self, api: str, params: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = getattr(self.dynamodb, api)(**params)
        return answer

    def list(self, *, limit: int) -> dict[str, Any]:
        """Up to ``limit`` envelopes of each unfinished status (newest first) and how many there are of each."""
        from asya_runtime.status import StatusStore

        store = StatusStore(table=self.table, call=self._call)

        async def read() -> list[Any]:
            return await asyncio.gather(*(store.list(status=status, limit=limit) for status in IN_FLIGHT))

        pages = asyncio.run(read())
        envelopes = [
            {"id": r.id, "status": r.status, "actor": r.actor, "attempt": r.attempt, "progress": r.progress,
             "route": r.route, "created_at": r.created_at, "updated_at": r.updated_at, "deadline_at": r.deadline_at}
            for page in pages for r in page.records
        ]
        envelopes.sort(key=lambda e: e["updated_at"] or "", reverse=True)
        totals = {status: page.total for status, page in zip(IN_FLIGHT, pages, strict=True)}
        return {"available": True, "configured": True, "table": self.table, "envelopes": envelopes[:limit],
                "totals": totals, "total": sum(totals.values())}


def no_store(reason: str, *, configured: bool) -> dict[str, Any]:
    """The answer when nothing can be listed: the mesh has no status store (``configured`` False: the page hides the
    panel), or its store could not be read (the page shows ``reason``)."""
    return {"available": False, "configured": configured, "reason": reason, "envelopes": [], "totals": {},
            "total": 0}
