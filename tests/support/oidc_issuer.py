"""A real OIDC issuer for the gateway's bearer authentication: a discovery document and a JWKS served over HTTP on
loopback, keys generated here (RSA and EC). The gateway's own tests (tests/gateway/test_gateway_auth.py) and the
rendered gateway pod (tests/images/test_pods.py) check tokens against it as they would against EKS's issuer."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


class Issuer:
    """An OIDC issuer on loopback: ``/.well-known/openid-configuration`` and ``/jwks.json`` with one RSA and one EC
    key; :meth:`token` signs claims for ``audience`` with either (or with a key that is not in the JWKS)."""

    def __init__(self, *, audience: str) -> None:
        self.audience = audience
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        keys = [self._jwk(self.rsa.public_key(), kid="rsa-1", alg="RS256"),
                self._jwk(self.ec.public_key(), kid="ec-1", alg="ES256")]
        issuer = self
        self.jwks_requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks.json"}
                elif self.path == "/jwks.json":
                    issuer.jwks_requests += 1
                    body = {"keys": keys}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def _jwk(public: Any, *, kid: str, alg: str) -> dict[str, Any]:
        algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(public))
        return {**jwk, "kid": kid, "alg": alg, "use": "sig"}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.url, "aud": self.audience, "sub": "system:serviceaccount:apps:caller", "iat": now,
                "nbf": now - 5, "exp": now + 300, **overrides}

    def token(self, *, key: str = "rsa", **overrides: Any) -> str:
        claims = {k: v for k, v in self.claims(**overrides).items() if v is not None}
        if key == "rsa":
            return jwt.encode(claims, self.rsa, algorithm="RS256", headers={"kid": "rsa-1"})
        if key == "ec":
            return jwt.encode(claims, self.ec, algorithm="ES256", headers={"kid": "ec-1"})
        if key == "stranger-same-kid":
            return jwt.encode(claims, self.stranger, algorithm="RS256", headers={"kid": "rsa-1"})
        if key == "stranger-own-kid":
            return jwt.encode(claims, self.stranger, algorithm="RS256", headers={"kid": "stranger"})
        raise AssertionError(key)

    def close(self) -> None:
        self.server.shutdown()
