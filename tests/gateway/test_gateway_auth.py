"""OIDC bearer authentication against a real issuer: a discovery document and a JWKS served over HTTP on loopback,
keys generated here (RSA and EC). Every token that is not the issuer's, for the audience, in date, signed with RS256
or ES256 by a key of its JWKS, is 401 with a WWW-Authenticate challenge; /health needs none."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from support.moto_server import MotoServer
from support.oidc_issuer import Issuer
from support.status_table import create_status_table

from asya_pulumi.local.broker import LocalBroker
from gateway.conftest import Gateway, running_gateway

AUDIENCE = "asya-gateway-test"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    running = Issuer(audience=AUDIENCE)
    yield running
    running.close()


@pytest.fixture(scope="module")
def secured(
    broker: LocalBroker, sqs: Any, s3: Any, dynamodb_server: MotoServer, issuer: Issuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    table = create_status_table(endpoint=dynamodb_server.url, namespace=f"au{uuid.uuid4().hex[:10]}")
    with running_gateway(broker=broker, sqs=sqs, s3=s3, table=table, tmp=tmp_path_factory.mktemp("auth"),
                         auth="oidc", oidc_issuer=issuer.url, oidc_audience=AUDIENCE) as gateway:
        yield gateway


def _unsigned(issuer: Issuer) -> str:
    import base64

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(issuer.claims())}."


def _hmac_with_the_public_key(issuer: Issuer) -> str:
    """The algorithm-confusion attack: HS256 keyed with the issuer's public key (PEM), which anyone has."""
    import base64
    import hashlib
    import hmac

    pem = issuer.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': 'rsa-1'})}.{part(issuer.claims())}"
    signature = base64.urlsafe_b64encode(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()).rstrip(b"=")
    return f"{signing_input}.{signature.decode()}"


def test_valid_rs256_and_es256_tokens_are_let_through(secured: Gateway, issuer: Issuer) -> None:
    for key in ("rsa", "ec"):
        headers = {"Authorization": f"Bearer {issuer.token(key=key)}"}
        answer = httpx.post(f"{secured.url}/api/v1/mesh/?actor=done", json={"payload": {"k": key}}, headers=headers)
        assert answer.status_code == 201, answer.text
        listed = httpx.get(f"{secured.url}/api/v1/mesh/", headers=headers)
        assert listed.status_code == 200
    assert len(secured.sent("done")) == 2


def test_health_needs_no_token(secured: Gateway) -> None:
    assert httpx.get(f"{secured.url}/health").status_code == 200


@pytest.mark.parametrize(("case", "problem"), [
    ("no header", "no bearer token"),
    ("basic scheme", "no bearer token"),
    ("not a jwt", "not a JWT"),
    ("expired", "ExpiredSignatureError"),
    ("not yet valid", "ImmatureSignatureError"),
    ("wrong audience", "InvalidAudienceError"),
    ("no audience", "MissingRequiredClaimError"),
    ("wrong issuer", "InvalidIssuerError"),
    ("no expiry", "MissingRequiredClaimError"),
    ("alg none", "algorithm 'none' is not accepted"),
    ("hmac with the public key", "algorithm 'HS256' is not accepted"),
    ("a stranger's key under a known kid", "InvalidSignatureError"),
    ("a key not in the jwks", "no key of the issuer's JWKS"),
])
def test_every_bad_token_is_401_with_a_challenge(secured: Gateway, issuer: Issuer, case: str, problem: str) -> None:
    now = int(time.time())
    tokens = {
        "not a jwt": "abc.def", "expired": issuer.token(exp=now - 120, iat=now - 600, nbf=now - 600),
        "not yet valid": issuer.token(nbf=now + 600), "wrong audience": issuer.token(aud="someone-else"),
        "no audience": issuer.token(aud=None), "wrong issuer": issuer.token(iss="https://evil.example"),
        "no expiry": issuer.token(exp=None), "alg none": _unsigned(issuer),
        "hmac with the public key": _hmac_with_the_public_key(issuer),
        "a stranger's key under a known kid": issuer.token(key="stranger-same-kid"),
        "a key not in the jwks": issuer.token(key="stranger-own-kid"),
    }
    headers = {"no header": {}, "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"}}.get(
        case, {"Authorization": f"Bearer {tokens.get(case, '')}"})
    for method, path in (("POST", "/api/v1/mesh/?actor=done"), ("GET", "/api/v1/mesh/"), ("POST", "/mcp"),
                         ("POST", "/a2a"), ("GET", "/.well-known/agent-card.json")):
        answer = httpx.request(method, f"{secured.url}{path}", json={}, headers=headers)
        assert answer.status_code == 401, (case, path, answer.text)
        assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
        assert problem in answer.json()["error"], (case, answer.json())
    assert secured.sent("done", wait_s=0.1) == []


def test_the_refusal_never_echoes_the_token(secured: Gateway, issuer: Issuer) -> None:
    token = issuer.token(aud="someone-else")
    answer = httpx.get(f"{secured.url}/api/v1/mesh/", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert token not in answer.text and token.split(".")[1] not in answer.headers["www-authenticate"]


def test_auth_none_off_loopback_is_refused_at_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    from gateway.conftest import REPO

    env = {"PYTHONPATH": f"{REPO}:{REPO / 'runtime'}", "ASYA_NAMESPACE": "m", "ASYA_STATUS_TABLE": "asya-m_status",
           "ASYA_GATEWAY_MESH": '{"namespace": "m", "actors": ["a"]}', "ASYA_GATEWAY_HOST": "0.0.0.0"}
    done = subprocess.run([sys.executable, "-m", "asya_runtime.gateway"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "not a loopback address" in done.stderr and "ASYA_GATEWAY_AUTH=oidc" in done.stderr
    assert "Traceback" not in done.stderr
