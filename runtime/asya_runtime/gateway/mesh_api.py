"""The Mesh API, wire-compatible with upstream Asya's (``docs/reference/specs/mesh-api.md`` in deliveryhero/asya).

=========================================  ===========================================================
``POST /api/v1/mesh/?actor=|route=``       submit ``{payload, headers, timeout}`` → ``201 {"id"}``
``GET /api/v1/mesh/?status=&limit=&...``   ``{"messages": [...], "total": N}``, newest first
``GET /api/v1/mesh/{id}``                  ``{id, status, created_at, updated_at, data}``
``GET /api/v1/mesh/{id}/events``           SSE: the current status, then ``status``/``fly`` until terminal
``DELETE /api/v1/mesh/{id}``               cancel: ``204`` (idempotent), 404 unknown, 409 already finished
=========================================  ===========================================================
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from asya_runtime.gateway.config import GatewayConfig
from asya_runtime.gateway.errors import ApiError
from asya_runtime.gateway.requests import check_envelope_id, parse_list_query, parse_submission
from asya_runtime.gateway.submit import Submitter
from asya_runtime.gateway.views import RecordViews
from asya_runtime.gateway.watch import watch
from asya_runtime.status import StatusRecord, StatusStore

__all__ = ["MeshApi", "read_body"]

_PREFIX = "/api/v1/mesh"


async def read_body(request: Request, *, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to pass ``limit`` bytes (by its Content-Length, or
    while it streams in), so an oversize body is never held in memory whole."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, f"Content-Length {declared[:40]!r} is not a number of bytes")
        if int(declared) > limit:
            raise ApiError(413, f"request body is {declared} bytes, over the gateway's {limit}; send a smaller payload")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body is over the gateway's {limit} bytes; send a smaller payload")
        chunks.append(chunk)
    return b"".join(chunks)


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@dataclass(frozen=True, kw_only=True)
class MeshApi:
    """The Mesh API's endpoints over one mesh's submitter, store and record views."""

    config: GatewayConfig
    submitter: Submitter
    store: StatusStore
    views: RecordViews

    def routes(self) -> list[Route]:
        return [
            Route(f"{_PREFIX}/", self.collection, methods=["GET", "POST"]),
            Route(_PREFIX, self.collection, methods=["GET", "POST"]),
            Route(f"{_PREFIX}/{{envelope_id}}", self.item, methods=["GET", "DELETE"]),
            Route(f"{_PREFIX}/{{envelope_id}}/events", self.events, methods=["GET"]),
        ]

    async def collection(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.submit(request)
        query = parse_list_query(request.query_params, mesh=self.config.mesh)
        page = await self.store.list(status=query.status, limit=query.limit, offset=query.offset)
        messages = [await self.views.render(record, children=False, by_reference=False) for record in page.records]
        return JSONResponse({"messages": messages, "total": page.total})

    async def submit(self, request: Request) -> Response:
        body = await read_body(request, limit=self.config.max_body_bytes)
        submission = parse_submission(
            body=body, query=request.query_params, idempotency_key=request.headers.get("idempotency-key"),
            mesh=self.config.mesh,
        )
        envelope_id = await self.submitter.submit(submission)
        return JSONResponse({"id": envelope_id}, status_code=201)

    async def _record(self, request: Request) -> StatusRecord:
        envelope_id = check_envelope_id(request.path_params["envelope_id"])
        record = await self.store.get(id=envelope_id)
        if record is None:
            raise ApiError(404, f"no envelope {envelope_id!r} in mesh {self.config.namespace!r} (or it expired)")
        return record

    async def item(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(await self.views.render(await self._record(request)))
        envelope_id = check_envelope_id(request.path_params["envelope_id"])
        after = await self.store.cancel(id=envelope_id)
        if after is None:
            raise ApiError(404, f"no envelope {envelope_id!r} in mesh {self.config.namespace!r} (or it expired)")
        if after != "canceled":
            raise ApiError(409, f"envelope {envelope_id!r} already {after}; a finished envelope cannot be canceled")
        return Response(status_code=204)

    async def events(self, request: Request) -> Response:
        record = await self._record(request)
        return StreamingResponse(
            self._stream(record), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _stream(self, record: StatusRecord) -> AsyncIterator[bytes]:
        """``status`` first, then ``status``/``fly`` as they come, a ``:keepalive`` comment after
        ``keepalive_s`` of silence; the stream ends after the terminal status."""
        quiet_since = time.monotonic()
        async for change in watch(store=self.store, record=record, poll_s=self.config.poll_interval_s):
            if change.kind == "status" and change.record is not None:
                yield _sse("status", await self.views.render(change.record, children=False))
            elif change.kind == "fly":
                yield _sse("fly", change.fly)
            elif time.monotonic() - quiet_since >= self.config.keepalive_s:
                yield b":keepalive\n\n"
            else:
                continue
            quiet_since = time.monotonic()
