"""The gateway's ASGI app: the Mesh API, MCP at ``/mcp`` and A2A, over one mesh's store and queues.

:func:`open_backends` connects SQS, S3 and the status store (aiobotocore, endpoints from the config);
:func:`build_app` wires the three front ends onto them behind the configured authentication. Every error a request
can cause is answered as JSON ``{"error": ...}`` with a 4xx, or 503 when a backend (DynamoDB, SQS, S3) fails or
cannot be reached; any other exception is logged and answered 500 without a traceback, and counts as a bug.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from asya_runtime.gateway.a2a_agent import A2A_PATH, MeshAgent, agent_card
from asya_runtime.gateway.auth import build_auth
from asya_runtime.gateway.config import GatewayConfig
from asya_runtime.gateway.errors import ApiError, error_response
from asya_runtime.gateway.mcp_tools import McpTools
from asya_runtime.gateway.mesh_api import MeshApi
from asya_runtime.gateway.submit import SQS_CLIENT_CONFIG, Submitter
from asya_runtime.gateway.views import RecordViews
from asya_runtime.retention import DAY_S
from asya_runtime.status import StatusStore
from asya_runtime.status.client import open_store

__all__ = ["Backends", "build_app", "open_backends"]

log = logging.getLogger("asya.gateway")


@dataclass(frozen=True)
class Backends:
    """What the gateway talks to: the mesh's queues (SQS), its result bucket (S3) and its status store."""

    sqs: Any
    s3: Any
    store: StatusStore


@contextlib.asynccontextmanager
async def open_backends(config: GatewayConfig) -> AsyncIterator[Backends]:
    """SQS, S3 and the status store of ``config``'s mesh, open until the block ends."""
    session = get_session()
    async with contextlib.AsyncExitStack() as stack:
        sqs = await stack.enter_async_context(session.create_client(
            "sqs", region_name=config.region, endpoint_url=config.sqs_endpoint, config=AioConfig(**SQS_CLIENT_CONFIG)))
        s3 = await stack.enter_async_context(
            session.create_client("s3", region_name=config.region, endpoint_url=config.s3_endpoint))
        store = await stack.enter_async_context(
            open_store(table=config.status_table, region=config.region, endpoint=config.dynamodb_endpoint,
                       ttl_s=config.status_retention_days * DAY_S))
        yield Backends(sqs=sqs, s3=s3, store=store)


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: f"no endpoint {request.url.path[:200]!r}", 405: f"{request.method} is not allowed on "
               f"{request.url.path[:200]!r}"}.get(exc.status_code, str(exc.detail))
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


#: What a failing or unreachable backend raises (botocore's errors, aiohttp's, sockets', timeouts): 503, not 500.
BACKEND_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError, aiohttp.ClientError, OSError, TimeoutError)


async def _backend_error(request: Request, exc: Exception) -> Response:
    log.warning("backend failed on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return JSONResponse({"error": f"a backend of the gateway (status store, queue or bucket) failed "
                                  f"({type(exc).__name__}); try again"}, status_code=503)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": f"internal error ({type(exc).__name__}); the gateway's log has the details"},
                        status_code=500)


def build_app(*, config: GatewayConfig, backends: Backends) -> ASGIApp:
    """The gateway for ``config``'s mesh over ``backends``, behind its authentication."""
    views = RecordViews(store=backends.store, s3=backends.s3, result_bucket=config.result_bucket)
    submitter = Submitter(namespace=config.namespace, store=backends.store, sqs=backends.sqs,
                          max_message_bytes=config.max_message_bytes)
    mesh = MeshApi(config=config, submitter=submitter, store=backends.store, views=views)
    tools = McpTools(config=config, submitter=submitter, store=backends.store, views=views)
    agent = MeshAgent(config=config, submitter=submitter, store=backends.store, views=views)
    routes: list[BaseRoute] = [
        Route("/health", _health, methods=["GET"]),
        *mesh.routes(),
        Route("/mcp", tools.asgi),
        *create_agent_card_routes(agent_card(config)),
        *create_jsonrpc_routes(agent, A2A_PATH, enable_v0_3_compat=True),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with tools.sessions.run():
            yield

    app = Starlette(
        routes=routes, lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected,
            **dict.fromkeys(BACKEND_ERRORS, _backend_error),
        },
    )
    return build_auth(app, config=config)
