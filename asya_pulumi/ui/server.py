"""The HTTP side of ``asya ui``: a static page and a small JSON API on 127.0.0.1, stdlib only.

``http.server``'s threading server is enough for one operator's browser (a handful of requests every few seconds)
and needs nothing installed. Every request passes :mod:`asya_pulumi.ui.security`'s checks first (loopback
``Host``; for the replay POST also ``Origin`` and the per-run token). The page is static (``static/``, shipped as
package data; no build step): the token reaches it in a ``<meta>`` tag, and the Content-Security-Policy allows only
our own scripts, so record content that slipped past the page's escaping still could not run.

API (JSON): ``GET /api/graph``; ``GET /api/records?id=&status=&actor=&error_type=&since=&until=&offset=&limit=``;
``GET /api/trace?id=``; ``GET /api/inflight?limit=`` (envelopes in flight, from the status store);
``POST /api/replay`` ``{"ids": [...], "to": null, "payload": ..., "dry_run": true}``.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from asya_pulumi.errors import AsyaError
from asya_pulumi.ui import security
from asya_pulumi.ui.backend import UiBackend

#: Files the page may load from ``/static/``; anything else is a 404 (no path is ever joined from the request).
STATIC_FILES = {"app.js": "text/javascript", "app.css": "text/css"}
#: A replay request is a list of ids and a few flags; anything larger is refused unread.
MAX_BODY_BYTES = 256 * 1024
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class ApiError(Exception):
    """A request the API refuses, with the HTTP status and a one-line reason shown by the page."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _static(name: str) -> bytes:
    return resources.files("asya_pulumi.ui").joinpath("static", name).read_bytes()


def index_page(*, token: str, namespace: str) -> bytes:
    """The page with this run's token and the namespace filled in (both HTML-escaped)."""
    text = _static("index.html").decode()
    return (
        text.replace("{{TOKEN}}", html.escape(token, quote=True))
        .replace("{{NAMESPACE}}", html.escape(namespace, quote=True))
        .encode()
    )


class UiServer:
    """The page and its API for one mesh, served from a background thread until :meth:`close`."""

    def __init__(self, *, backend: UiBackend, port: int = 0) -> None:
        self.backend = backend
        self.token = security.new_token()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self.httpd.daemon_threads = True
        self.port: int = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="asya-ui", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> UiServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> UiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the API, one method per endpoint -------------------------------------------------------------------

    def get(self, path: str, query: dict[str, str]) -> Any:
        routes: dict[str, Callable[[dict[str, str]], Any]] = {
            "/api/graph": lambda q: self.backend.graph(),
            "/api/records": lambda q: self.backend.records(q),
            "/api/trace": lambda q: self.backend.trace(_required(q, "id")),
            "/api/inflight": lambda q: self.backend.in_flight(q),
        }
        if path not in routes:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no such endpoint: {path}")
        return routes[path](query)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        if path != "/api/replay":
            raise ApiError(HTTPStatus.NOT_FOUND, f"no such endpoint: {path}")
        return self.backend.replay(body)


def _required(query: dict[str, str], name: str) -> str:
    value = query.get(name, "").strip()
    if not value:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"missing query parameter {name!r}")
    return value


def _handler_for(server: UiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        ui = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    ui: UiServer
    server_version = "asya-ui"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the terminal belongs to ``asya dev``'s progress and the URL line."""

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        if url.path == "/":
            page = index_page(token=self.ui.token, namespace=self.ui.backend.namespace)
            self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
        elif url.path.startswith("/static/") and url.path.removeprefix("/static/") in STATIC_FILES:
            name = url.path.removeprefix("/static/")
            self._send(HTTPStatus.OK, _static(name), f"{STATIC_FILES[name]}; charset=utf-8")
        elif url.path.startswith("/api/"):
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            self._answer(lambda: self.ui.get(url.path, query))
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"not found: {url.path}"})

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        if not security.origin_allowed(self.headers.get("Origin"), port=self.ui.port):
            self._json(HTTPStatus.FORBIDDEN, {"error": "cross-origin request refused"})
            return
        if not security.token_valid(self.headers.get(security.TOKEN_HEADER), token=self.ui.token):
            self._json(HTTPStatus.FORBIDDEN, {"error": f"missing or wrong {security.TOKEN_HEADER}; reload the page"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"request body over {MAX_BODY_BYTES} bytes"})
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "request body is not JSON"})
            return
        if not isinstance(body, dict):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "request body must be a JSON object"})
            return
        path = urlsplit(self.path).path
        self._answer(lambda: self.ui.post(path, body))

    def _host_ok(self) -> bool:
        if security.host_allowed(self.headers.get("Host"), port=self.ui.port):
            return True
        self._json(HTTPStatus.FORBIDDEN, {"error": "Host not allowed: open the page at 127.0.0.1 or localhost"})
        return False

    def _answer(self, call: Callable[[], Any]) -> None:
        """Run one API call; refusals and AWS errors become a JSON ``{"error": ...}`` line, never a traceback."""
        try:
            self._json(HTTPStatus.OK, call())
        except ApiError as exc:
            self._json(exc.status, {"error": str(exc)})
        except (AsyaError, ValueError) as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except (ClientError, BotoCoreError) as exc:
            self._json(HTTPStatus.BAD_GATEWAY, {"error": f"AWS: {exc}"})

    def _json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, json.dumps(data, default=str).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)
