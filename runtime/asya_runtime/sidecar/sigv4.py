"""AWS Signature Version 4 for the sidecar's SQS requests: botocore's algorithm, without its per-request overhead.

botocore's :class:`~botocore.auth.SigV4Auth` builds an ``AWSRequest``, prepares it, and handles every header
through ``email.message`` (case-insensitive, validated): it was half the CPU of an SQS request once the rest of
botocore was out of the way (docs/benchmarks.md, section 8). The requests signed here are always the same shape
(a POST to the endpoint with a handful of headers), so the canonical request is a string built directly, and the
signing key, which only changes with the date and the secret, is derived once per day rather than with four
HMACs per request. ``tests/runtime/test_sigv4.py`` checks that every header and the signature are identical to
botocore's for the same request, time and credentials (with and without a session token, on default and other
ports, with and without a path).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import urllib.parse
from typing import Any

from botocore.auth import SIGNED_HEADERS_BLACKLIST

__all__ = ["SigV4Signer", "host_of"]

_ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSIGNED = frozenset(SIGNED_HEADERS_BLACKLIST)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def host_of(url: str) -> str:
    """The ``Host`` header for ``url`` as botocore signs it: the port only when it is not the scheme's default."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


class SigV4Signer:
    """Signs POST requests to one URL for one region and service."""

    def __init__(self, *, url: str, region: str, service: str) -> None:
        self.host = host_of(url)
        self._path = urllib.parse.quote(urllib.parse.urlsplit(url).path or "/", safe="/~")
        self._scope_suffix = f"/{region}/{service}/aws4_request"
        self._region = region
        self._service = service
        self._key: tuple[str, str, bytes] | None = None  # (date, secret key, signing key)

    def sign(
        self, *, headers: dict[str, str], body: bytes, credentials: Any, now: datetime.datetime | None = None
    ) -> dict[str, str]:
        """``headers`` plus ``X-Amz-Date``, ``X-Amz-Security-Token`` (temporary credentials) and ``Authorization``.

        ``credentials`` has botocore's ``access_key``, ``secret_key`` and ``token`` (frozen credentials).
        """
        amz_date = (now or _now()).strftime("%Y%m%dT%H%M%SZ")
        signed = dict(headers)
        signed["X-Amz-Date"] = amz_date
        if credentials.token:
            signed["X-Amz-Security-Token"] = credentials.token
        canonical = {
            name.lower(): " ".join(value.split()) for name, value in signed.items() if name.lower() not in _UNSIGNED
        }
        canonical.setdefault("host", self.host)
        names = sorted(canonical)
        signed_names = ";".join(names)
        canonical_request = "\n".join(
            (
                "POST",
                self._path,
                "",
                "".join(f"{name}:{canonical[name]}\n" for name in names),
                signed_names,
                hashlib.sha256(body).hexdigest(),
            )
        )
        scope = amz_date[:8] + self._scope_suffix
        string_to_sign = f"{_ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        signature = hmac.new(
            self._signing_key(date=amz_date[:8], secret=credentials.secret_key), string_to_sign.encode(), hashlib.sha256
        ).hexdigest()
        signed["Authorization"] = (
            f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed_names}, Signature={signature}"
        )
        return signed

    def _signing_key(self, *, date: str, secret: str) -> bytes:
        cached = self._key
        if cached is not None and cached[0] == date and cached[1] == secret:
            return cached[2]
        key = f"AWS4{secret}".encode()
        for part in (date, self._region, self._service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self._key = (date, secret, key)
        return key
