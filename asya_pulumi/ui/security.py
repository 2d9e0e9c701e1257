"""What keeps a page served on loopback from being used by other web pages: Host, Origin and a per-run token.

The UI listens on 127.0.0.1 only, but a browser will still send requests there on behalf of any site it visits:

- **DNS rebinding.** A hostile site can make its own name resolve to 127.0.0.1 and then read our JSON as "same
  origin". The browser still sends the hostile name in ``Host``, so every request whose Host is not a loopback
  name (``127.0.0.1``, ``localhost``, ``[::1]``) with our port is refused before anything is read.
- **Cross-site requests (CSRF).** A page elsewhere can submit a form to 127.0.0.1. The one state-changing action,
  replay, therefore needs the run's token (random, made at start, embedded in the served page, sent back in a
  header a cross-site form cannot set) and, when the browser says where the request comes from (``Origin``),
  that origin must be ours.
"""

from __future__ import annotations

import hmac
import secrets

#: The header the page sends the token in (a custom header also forces a CORS preflight, which we never answer).
TOKEN_HEADER = "X-Asya-Token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def new_token() -> str:
    """A fresh per-run token: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


def allowed_hosts(*, port: int) -> frozenset[str]:
    """The ``Host`` values a request to this server may carry: a loopback name with our port."""
    return frozenset(f"{name}:{port}" for name in LOOPBACK_NAMES)


def host_allowed(host: str | None, *, port: int) -> bool:
    """Whether ``host`` (the request's Host header) names this loopback server; a missing Host is refused."""
    return host is not None and host.strip().lower() in allowed_hosts(port=port)


def origin_allowed(origin: str | None, *, port: int) -> bool:
    """Whether a request's ``Origin`` is this server (absent is allowed: same-origin GETs and non-browsers omit it)."""
    if origin is None:
        return True
    return origin.strip().lower() in {f"http://{host}" for host in allowed_hosts(port=port)}


def token_valid(sent: str | None, *, token: str) -> bool:
    """Whether ``sent`` (the request's :data:`TOKEN_HEADER`) is the run's token (compared in constant time)."""
    return hmac.compare_digest((sent or "").encode(), token.encode())
