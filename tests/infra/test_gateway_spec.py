"""``spec.gateway`` of an ActorMesh manifest: off by default, and every bad value refused at load naming the file,
the field, the limit and the fix (issue 21; issue 25's full-match and trailing-newline rules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from asya_pulumi.spec import SpecError, load_pipeline_dir
from asya_pulumi.spec.gateway import GATEWAY_NAME, GatewaySpec, check_deployable

ACTOR = {"apiVersion": "asya.sh/v1alpha1", "kind": "AsyncActor", "metadata": {"name": "score"},
         "spec": {"image": "scoring:1.0", "handler": "handlers.score"}}
AUTH = {"issuer": "https://login.example.com/", "audience": "asya-gateway"}


def pipeline(tmp_path: Path, gateway: Any, *, actor: str = "score") -> Path:
    """A pipeline directory whose ActorMesh file has ``gateway`` (left out when it is ``...``)."""
    (tmp_path / "score.yaml").write_text(yaml.safe_dump({**ACTOR, "metadata": {"name": actor}}))
    spec: dict[str, Any] = {"routes": {"score": [actor]}}
    if gateway is not ...:
        spec["gateway"] = gateway
    (tmp_path / "mesh.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "asya.sh/v1alpha1", "kind": "ActorMesh", "metadata": {"name": "scoring"}, "spec": spec}))
    return tmp_path


def load_error(tmp_path: Path, gateway: Any, **kwargs: Any) -> str:
    with pytest.raises(SpecError) as info:
        load_pipeline_dir(pipeline(tmp_path, gateway, **kwargs))
    return str(info.value)


def test_the_gateway_is_off_unless_the_manifest_asks(tmp_path: Path) -> None:
    assert load_pipeline_dir(pipeline(tmp_path, ...)).gateway is None


def test_an_empty_gateway_section_turns_it_on_with_the_documented_defaults(tmp_path: Path) -> None:
    gateway = load_pipeline_dir(pipeline(tmp_path, {})).gateway
    assert gateway == GatewaySpec()
    assert (gateway.replicas, gateway.status_retention_days, gateway.deletion_protection) == (2, 7, False)
    assert gateway.auth is None and gateway.tools == {}
    assert gateway.resources.requests == {"cpu": "100m", "memory": "128Mi"}


def test_a_full_gateway_section_loads(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}
    gateway = load_pipeline_dir(pipeline(tmp_path, {
        "replicas": 3, "auth": AUTH, "statusRetentionDays": 30, "deletionProtection": True,
        "tools": {"score": {"description": "Score an image.", "inputSchema": schema}},
    })).gateway
    assert gateway is not None and gateway.auth is not None
    assert gateway.auth.issuer == AUTH["issuer"] and gateway.tools["score"].input_schema == schema


@pytest.mark.parametrize(
    ("gateway", "field", "says"),
    [
        ({"replicas": 0}, "spec.gateway.replicas", "greater than or equal to 1"),
        ({"replicas": 101}, "spec.gateway.replicas", "less than or equal to 100"),
        ({"replicas": True}, "spec.gateway.replicas", "is a boolean, not a number"),
        ({"statusRetentionDays": 0}, "spec.gateway.statusRetentionDays", "greater than or equal to 1"),
        ({"statusRetentionDays": 3651}, "spec.gateway.statusRetentionDays", "less than or equal to 3650"),
        ({"auth": {"issuer": "http://login.example.com", "audience": "a"}}, "spec.gateway.auth.issuer", "https://"),
        ({"auth": {"issuer": "https://login.example.com/\n", "audience": "a"}}, "spec.gateway.auth.issuer",
         "not an OIDC issuer URL"),
        ({"auth": {"issuer": "https://login.example.com/?x=1", "audience": "a"}}, "spec.gateway.auth.issuer",
         "no query or fragment"),
        ({"auth": {"issuer": "https:///path", "audience": "a"}}, "spec.gateway.auth.issuer", "with a host"),
        ({"auth": {"audience": "asya-gateway\n"}}, "spec.gateway.auth.audience", "not a token audience"),
        ({"auth": {"audience": "two words"}}, "spec.gateway.auth.audience", "without spaces"),
        ({"auth": {"audience": "a" * 257}}, "spec.gateway.auth.audience", "1 to 256"),
        ({"auth": {"issuer": "https://login.example.com"}}, "spec.gateway.auth.audience", "Field required"),
        ({"tools": {"nope": {}}}, "spec", "gateway.tools names route(s) ['nope']"),
        ({"tools": {"score": {"inputSchema": {"type": "string"}}}}, "spec.gateway.tools.score.inputSchema",
         "type: object"),
        ({"tools": {"score": {"inputSchema": {"type": "object", "properties": {"x": {"type": "strang"}}}}}},
         "spec.gateway.tools.score.inputSchema", "not a valid JSON Schema at properties/x/type"),
        ({"tools": {"score": {"inputSchema": "{not json"}}}, "spec.gateway.tools.score.inputSchema", "not JSON"),
        ({"tools": {"score": {"inputSchema": {"type": "object", "description": "x" * 20000}}}},
         "spec.gateway.tools.score.inputSchema", "over 16384"),
        ({"tools": {"score": {"description": "x" * 1025}}}, "spec.gateway.tools.score.description", "1024"),
        ({"replica": 2}, "spec.gateway.replica", "did you mean 'replicas'?"),
        ({"auth": {"issuer": "https://a.example.com", "audience": "a", "secret": "x"}}, "spec.gateway.auth.secret",
         "unknown field"),
    ],
)
def test_a_bad_gateway_value_names_the_file_the_field_and_the_fix(
    tmp_path: Path, gateway: dict[str, Any], field: str, says: str
) -> None:
    message = load_error(tmp_path, gateway)
    assert message.startswith(f"{tmp_path / 'mesh.yaml'}: invalid spec:"), message
    assert f"  - {field}: " in message, message
    assert says in message, message


def test_an_actor_may_not_take_the_gateways_name_while_it_is_on(tmp_path: Path) -> None:
    message = load_error(tmp_path, {}, actor=GATEWAY_NAME)
    assert f"actor {GATEWAY_NAME!r} has the name of the gateway's Deployment" in message
    assert load_pipeline_dir(pipeline(tmp_path, ..., actor=GATEWAY_NAME)).gateway is None  # off: the name is free


def test_a_deployed_gateway_needs_auth_and_an_issuer() -> None:
    with pytest.raises(ValueError, match=r"gateway.auth is not set: a deployed gateway would accept "
                                         r"unauthenticated requests; set gateway.auth.audience"):
        check_deployable(GatewaySpec(), issuer_given=True)
    with pytest.raises(ValueError, match=r"gateway.auth.issuer is not set and no issuer was passed"):
        check_deployable(GatewaySpec.model_validate({"auth": {"audience": "a"}}), issuer_given=False)
    check_deployable(GatewaySpec.model_validate({"auth": {"audience": "a"}}), issuer_given=True)
    check_deployable(GatewaySpec.model_validate({"auth": AUTH}), issuer_given=False)
