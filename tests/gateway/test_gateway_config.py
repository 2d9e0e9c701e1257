"""GatewayConfig: one environment variable per field, rendered and read back unchanged; refusals name the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from asya_runtime.gateway.config import GatewayConfig, is_loopback

MESH = {"namespace": "shop", "actors": ["parse", "score"],
        "routes": {"rank": {"actors": ["parse", "score"], "description": "Ranks a basket."}}}
BASE = {"ASYA_NAMESPACE": "shop", "ASYA_STATUS_TABLE": "asya-shop_status", "ASYA_GATEWAY_MESH": json.dumps(MESH)}


def refused(**env: str) -> str:
    with pytest.raises(ValidationError) as caught:
        GatewayConfig.from_env({**BASE, **env})
    return str(caught.value)


def test_to_env_round_trips_and_leaves_defaults_out() -> None:
    config = GatewayConfig.from_env({**BASE, "ASYA_GATEWAY_PORT": "9000", "ASYA_SQS_ENDPOINT": "http://127.0.0.1:1"})
    env = config.to_env()
    assert GatewayConfig.from_env(env) == config
    assert env["ASYA_GATEWAY_PORT"] == "9000" and "ASYA_GATEWAY_HOST" not in env
    assert json.loads(env["ASYA_GATEWAY_MESH"])["routes"]["rank"]["inputSchema"] == {"type": "object"}
    assert config.url == "http://127.0.0.1:9000"


def test_every_field_is_an_asya_variable() -> None:
    aliases = [field.alias for field in GatewayConfig.model_fields.values()]
    assert all(alias and alias.startswith("ASYA_") for alias in aliases)
    assert len(set(aliases)) == len(aliases)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.7", "::", "gateway.example"])
def test_auth_none_is_refused_off_loopback_with_the_fix(host: str) -> None:
    message = refused(ASYA_GATEWAY_HOST=host)
    assert "not a loopback address" in message and "ASYA_GATEWAY_AUTH=oidc" in message


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


def test_oidc_needs_issuer_and_audience() -> None:
    message = refused(ASYA_GATEWAY_AUTH="oidc", ASYA_GATEWAY_HOST="0.0.0.0")
    assert "ASYA_GATEWAY_OIDC_ISSUER" in message and "ASYA_GATEWAY_OIDC_AUDIENCE" in message
    config = GatewayConfig.from_env({**BASE, "ASYA_GATEWAY_AUTH": "oidc", "ASYA_GATEWAY_HOST": "0.0.0.0",
                                     "ASYA_GATEWAY_OIDC_ISSUER": "https://issuer", "ASYA_GATEWAY_OIDC_AUDIENCE": "gw"})
    assert config.auth == "oidc"


@pytest.mark.parametrize(("mesh", "problem"), [
    ("{not json", "not JSON"),
    ({**MESH, "namespace": "other"}, "ASYA_NAMESPACE is 'shop'"),
    ({**MESH, "routes": {"r": {"actors": ["ghost"]}}}, "not in the mesh's actors"),
    ({**MESH, "routes": {"r": {"actors": []}}}, "at least 1"),
    ({**MESH, "routes": {"Bad_Name": {"actors": ["parse"]}}}, "not a DNS-1123 label"),
    ({**MESH, "actors": ["success-sink"]}, "reserved"),
    ({**MESH, "routes": {"r": {"actors": ["parse"], "inputSchema": {"type": "array"}}}}, "type 'object'"),
])
def test_a_bad_mesh_is_refused_naming_the_problem(mesh: Any, problem: str) -> None:
    text = mesh if isinstance(mesh, str) else json.dumps(mesh)
    assert problem in refused(ASYA_GATEWAY_MESH=text)
