"""``asya-gateway``: serve one mesh's front door (Mesh API, MCP, A2A) with the settings in the environment.

Exit status 2 with one line naming the setting and the fix when the configuration is refused (``auth=none`` off
loopback, a mesh that is not JSON, ...); the process then never listens.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import uvicorn
from pydantic import ValidationError

from asya_runtime.gateway.app import build_app, open_backends
from asya_runtime.gateway.config import GatewayConfig


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'config'}: {error['msg'].removeprefix('Value error, ')}"
        for error in exc.errors()
    )


async def serve(config: GatewayConfig) -> None:
    """Listen on the config's host and port until SIGINT/SIGTERM (uvicorn's handlers), then drain."""
    async with open_backends(config) as backends:
        app = build_app(config=config, backends=backends)
        server = uvicorn.Server(uvicorn.Config(
            app, host=config.host, port=config.port, lifespan="on", log_level="info", access_log=False,
            proxy_headers=False, timeout_graceful_shutdown=10,
        ))
        await server.serve()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = GatewayConfig.from_env(os.environ)
    except ValidationError as exc:
        print(f"asya-gateway: refused configuration: {_problems(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"gateway: {config.url}", flush=True)
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
