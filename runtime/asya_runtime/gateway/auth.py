"""OIDC bearer authentication: every request but ``GET /health`` carries ``Authorization: Bearer <JWT>``.

Why OIDC JWTs rather than API keys in Secrets Manager: there is no shared secret to store, rotate or leak; tokens
are short-lived and carry who called; and on EKS a calling pod can present a projected service-account token whose
audience is the gateway's, with nothing to provision at all. The gateway checks, with pyjwt:

* the signature, with a key from the issuer's JWKS (``jwks_uri`` of ``{issuer}/.well-known/openid-configuration``,
  or ``ASYA_GATEWAY_OIDC_JWKS_URL``), chosen by the token's ``kid``; keys are cached and fetched again when a token
  names an unknown ``kid`` (the issuer rotated);
* the algorithm: RS256 or ES256 only — ``none`` and HMAC (which would let the public key act as a shared secret)
  are refused;
* ``iss`` equal to the issuer, ``aud`` holding the audience, ``exp`` in the future, ``nbf`` in the past (30 s leeway
  for clock skew) — each required.

A refused request is ``401`` with ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750) and a JSON body
saying why; the reason never includes the token.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import anyio
import jwt
from starlette.types import ASGIApp, Receive, Scope, Send

from asya_runtime.gateway.config import GatewayConfig

__all__ = ["ALGORITHMS", "OidcAuth", "OidcVerifier", "TokenRefused"]

ALGORITHMS = ["RS256", "ES256"]
LEEWAY_S = 30
#: Paths that answer without a token: the liveness probe.
OPEN_PATHS = frozenset({"/health"})
_FETCH_TIMEOUT_S = 10


class TokenRefused(Exception):
    """The bearer token is missing or invalid; the message says why (never the token)."""


class OidcVerifier:
    """Validates bearer JWTs of one issuer for one audience (the JWKS is found and cached on first use)."""

    def __init__(self, *, issuer: str, audience: str, jwks_url: str | None = None) -> None:
        self.issuer = issuer
        self.audience = audience
        self._jwks_url = jwks_url
        self._client: jwt.PyJWKClient | None = None

    def _jwks_client(self) -> jwt.PyJWKClient:
        if self._client is None:
            url = self._jwks_url or self._discover()
            self._client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=_FETCH_TIMEOUT_S)
        return self._client

    def _discover(self) -> str:
        where = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(where, timeout=_FETCH_TIMEOUT_S) as answer:
                document = json.loads(answer.read())
            return str(document["jwks_uri"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TokenRefused(f"the issuer's OpenID configuration ({where}) could not be read: {exc}") from None

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or :class:`TokenRefused` naming the first check it failed. Blocking (JWKS fetch)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"not a JWT ({exc})") from None
        if header.get("alg") not in ALGORITHMS:
            raise TokenRefused(f"algorithm {str(header.get('alg'))[:20]!r} is not accepted; use one of {ALGORITHMS}")
        try:
            key = self._jwks_client().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientError as exc:
            raise TokenRefused(f"no key of the issuer's JWKS verifies it ({exc})") from None
        try:
            return jwt.decode(
                token, key.key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer, leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud"], "verify_signature": True},
            )
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"{type(exc).__name__}: {exc}") from None


class OidcAuth:
    """ASGI middleware: a request reaches the app only with a valid bearer token (``/health`` always does)."""

    def __init__(self, app: ASGIApp, *, verifier: OidcVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        scheme, _, token = headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise TokenRefused("no bearer token; send `Authorization: Bearer <JWT>` from the configured issuer")
            claims = await anyio.to_thread.run_sync(self.verifier.verify, token.strip())
        except TokenRefused as exc:
            await _refuse(send, reason=str(exc))
            return
        scope.setdefault("state", {})["claims"] = claims
        await self.app(scope, receive, send)


def build_auth(app: ASGIApp, *, config: GatewayConfig) -> ASGIApp:
    """``app`` behind OIDC when the config says so; as it is for ``auth=none`` (loopback only, checked there)."""
    if config.auth != "oidc":
        return app
    assert config.oidc_issuer and config.oidc_audience  # GatewayConfig requires them for auth=oidc
    verifier = OidcVerifier(issuer=config.oidc_issuer, audience=config.oidc_audience, jwks_url=config.oidc_jwks_url)
    return OidcAuth(app, verifier=verifier)


async def _refuse(send: Send, *, reason: str) -> None:
    body = json.dumps({"error": f"unauthorized: {reason}"}).encode()
    challenge = 'Bearer error="invalid_token", error_description="' + reason.replace('"', "'")[:200] + '"'
    await send({
        "type": "http.response.start", "status": 401,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode("latin-1", "replace"))],
    })
    await send({"type": "http.response.body", "body": body})
