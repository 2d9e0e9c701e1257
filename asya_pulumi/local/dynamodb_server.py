"""moto's server with one request at a time: ``python -m asya_pulumi.local.dynamodb_server -H HOST -p PORT``.

``python -m moto.server`` answers each request on a thread of its own, and its DynamoDB checks a
``ConditionExpression`` and applies the update as separate steps with nothing held between them: two conditional
writes to one item at the same instant can both pass their condition, and their ``SET`` actions interleave. The
status store depends on DynamoDB's guarantee that a conditional write is atomic (a cancel racing a sidecar's
``running``, two gateways creating one idempotent envelope: docs/gateway.md, "Who writes what"), and on moto's server
that guarantee failed under load — a canceled record read back ``running`` (then ``succeeded``), or ``running`` with a
terminal rank, so it never ended. Measured with ``sys.setswitchinterval(1e-5)`` (what a loaded machine does to the
threads' turns): 117 of 300 racing cancels lost and 13 of 300 racing creates both written on ``moto.server``; none
here.

This is the same server (moto's app, its request handler, its threads, so keep-alive connections still never block
one another) with every request's application call, and the reading of its answer, under one lock: each request is
whole before the next begins, as each DynamoDB item write is.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["main", "serialized"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def serialized(app: WsgiApp) -> WsgiApp:
    """``app`` (a WSGI application) answering one request at a time: its call and its whole body under one lock."""
    lock = threading.Lock()

    def one_at_a_time(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            answer = app(environ, start_response)
            try:
                return [b"".join(answer)]
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()

    return one_at_a_time


def main(argv: list[str] | None = None) -> None:
    """``moto.server``'s ``-H``/``-p``, serving its app through :func:`serialized`; SIGTERM/SIGINT end it (0)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(prog="python -m asya_pulumi.local.dynamodb_server")
    parser.add_argument("-H", "--host", default="127.0.0.1", help="the address to bind (default 127.0.0.1)")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds some URLs from it, as moto.server sets it
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
