"""Every AWS and Kubernetes limit the plan can know is checked when the spec is built (issue 9, point 2).

One test per bad spec the issue lists, each asserting the message names the field, the limit and the fix; then
the other limits (SQS/IAM names, S3 bucket names, label keys and values, tolerations, quantities, duplicates).
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from test_stacks import ROOT, run_stack

from asya_pulumi.checks.mocked import MockedDeployment
from asya_pulumi.checks.validate import duplicate_objects, validate_objects
from asya_pulumi.spec import AsyncActorSpec, MeshSpec, SpecError, load_pipeline_dir
from asya_pulumi.spec.limits import (
    ADDON_NAMESPACE,
    BUCKET_UNIQUE_SUFFIX_LENGTH,
    KEDA_NAMESPACE,
    RESERVED_NAMESPACES,
    SYSTEM_NAMESPACE,
    check_bucket_name,
    check_mesh_namespace,
    check_namespace_fits,
    max_namespace_length,
    parse_quantity,
    result_bucket_prefix,
)
from asya_pulumi.spec.yamlload import MAX_FILE_BYTES
from asya_runtime.naming import IAM_ROLE_NAME_MAX, SINKS, SQS_QUEUE_NAME_MAX, dlq_name, role_name
from asya_runtime.resiliency import MAX_ATTEMPTS, Resiliency, queue_max_receive_count

ACTOR = """
apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {name: score}
spec:
  image: scoring:1.0
  handler: handlers.score
"""
MESH = """
apiVersion: asya.sh/v1alpha1
kind: ActorMesh
metadata: {name: scoring}
spec: {region: us-east-1}
"""


def actor_document(**spec_changes: Any) -> dict[str, Any]:
    document = yaml.safe_load(ACTOR)
    document["spec"].update(spec_changes)
    return document


def actor_error(source: Any) -> str:
    with pytest.raises(SpecError) as info:
        AsyncActorSpec.from_manifest(source)
    return str(info.value)


def mesh_error(**fields: Any) -> str:
    fields.setdefault("actors", [AsyncActorSpec.from_manifest(ACTOR)])
    with pytest.raises(ValidationError) as info:
        MeshSpec(**fields)
    return str(info.value)


def write_pipeline(directory: Path, *, actor: str = ACTOR, mesh: str = MESH) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mesh.yaml").write_text(mesh)
    (directory / "score.yaml").write_text(actor)
    return directory


# ------------------------------------------------------------------ the list, one test each


def test_max_attempts_5000_is_refused_naming_the_derived_max_receive_count() -> None:
    message = actor_error(actor_document(resiliency={"policies": {"default": {"maxAttempts": 5000}}}))
    assert "spec.resiliency.policies.default.maxAttempts" in message
    assert "maxReceiveCount 5002 (maxAttempts + 2), over SQS's limit of 1000" in message
    assert "use at most 998 attempts" in message


def test_the_most_attempts_allowed_derive_exactly_sqs_limit() -> None:
    resiliency = Resiliency.model_validate({"policies": {"default": {"maxAttempts": MAX_ATTEMPTS}}})
    assert queue_max_receive_count(resiliency) == 1000
    with pytest.raises(ValidationError, match="over SQS's limit of 1000"):
        Resiliency.model_validate({"policies": {"slow": {"maxAttempts": MAX_ATTEMPTS + 1}}})


def test_a_40_character_namespace_fits_every_derived_name_and_41_is_refused() -> None:
    """The issue's 40-character namespace gave role names over IAM's 64; role names are now cut to fit with a
    hashed tail (asya_runtime.naming.role_name), so it is accepted with every derived name in its limit."""
    namespace = "n" * 40
    for region in ("us-east-1", "ap-southeast-2"):
        mesh = MeshSpec(namespace=namespace, actors=[AsyncActorSpec.from_manifest(ACTOR)], region=region)
        for actor in [*SINKS, *(a.name for a in mesh.actors)]:
            assert len(role_name(namespace=namespace, actor=actor, region=region)) <= IAM_ROLE_NAME_MAX
            assert len(dlq_name(namespace=namespace, actor=actor)) <= SQS_QUEUE_NAME_MAX
    message = mesh_error(namespace="n" * 41)
    assert "mesh namespace 'nnnn" in message and "is 41 characters; use at most 40" in message


def test_the_sinks_names_are_checked_against_sqs_limit_too() -> None:
    """MeshSpec caps namespaces at 40 first; the sink check is the guard if that cap or the scheme changes."""
    longest = max_namespace_length(region="us-east-1")
    assert longest == SQS_QUEUE_NAME_MAX - len(dlq_name(namespace="", actor="success-sink"))
    check_namespace_fits(namespace="n" * longest, region="us-east-1")
    with pytest.raises(ValueError) as info:
        check_namespace_fits(namespace="n" * (longest + 1), region="us-east-1")
    assert f"gives the built-in success-sink the queue name 'asya-{'n' * (longest + 1)}_success-sink_dlq'" in str(
        info.value
    )
    assert f"over SQS's 80-character limit; use a namespace of at most {longest} characters" in str(info.value)


def test_memory_requests_above_limits_are_refused() -> None:
    resources = {"requests": {"cpu": "250m", "memory": "2Gi"}, "limits": {"memory": "1Gi"}}
    message = actor_error(actor_document(resources=resources))
    assert "spec.resources" in message
    assert "requests.memory 2Gi is above limits.memory 1Gi; Kubernetes refuses a request above its limit" in message
    assert "lower requests.memory or raise limits.memory" in message


def test_a_limit_below_the_default_request_says_the_request_is_the_default() -> None:
    message = actor_error(actor_document(resources={"limits": {"memory": "256Mi"}}))
    assert "requests.memory 512Mi (the default request) is above limits.memory 256Mi" in message


def test_requests_and_limits_compare_across_units() -> None:
    same = {"requests": {"cpu": "500m", "memory": "1024Mi"}, "limits": {"cpu": "0.5", "memory": "1Gi"}}
    assert AsyncActorSpec.from_manifest(actor_document(resources=same)).resources.limits["cpu"] == "0.5"
    message = actor_error(actor_document(resources={"requests": {"cpu": "1001m"}, "limits": {"cpu": "1"}}))
    assert "requests.cpu 1001m is above limits.cpu 1" in message


@pytest.mark.parametrize("namespace", ["keda", "kube-system", "default", "kube-public"])
def test_reserved_namespaces_are_refused(namespace: str) -> None:
    message = mesh_error(namespace=namespace)
    assert "namespace" in message and f"mesh namespace {namespace!r} is reserved" in message
    assert "reserved: default, kube-system, keda and kube-*" in message
    assert "a mesh needs a namespace of its own" in message


def test_reserved_namespace_in_a_pipeline_directory_names_the_file(tmp_path: Path) -> None:
    directory = write_pipeline(tmp_path, mesh=MESH.replace("name: scoring", "name: keda"))
    with pytest.raises(SpecError) as info:
        load_pipeline_dir(directory)
    assert str(directory / "mesh.yaml") in str(info.value) and "'keda' is reserved for KEDA" in str(info.value)


def test_every_namespace_the_components_install_into_is_reserved() -> None:
    """Run the dev stack under mocks: every namespace other than the mesh's (Helm releases, Pod Identity, objects)
    must be one a mesh cannot take, and the constants are the ones the components use."""
    deployment = MockedDeployment.start(stack="dev")
    config = run_stack(deployment, "dev")
    used = {o["metadata"].get("namespace") for o in deployment.kubernetes_objects()}
    used |= {o["metadata"]["name"] for o in deployment.kubernetes_objects() if o["kind"] == "Namespace"}
    for typ in ("kubernetes:helm.sh/v3:Release", "aws:eks/podIdentityAssociation:PodIdentityAssociation"):
        used |= {r.inputs.get("namespace") for r in deployment.of_type(typ)}
    others = {ns for ns in used if ns} - {config["asya:namespace"]}
    assert {KEDA_NAMESPACE, ADDON_NAMESPACE, SYSTEM_NAMESPACE} <= others
    for namespace in others:
        with pytest.raises(ValueError, match="is reserved"):
            check_mesh_namespace(namespace)
    assert set(RESERVED_NAMESPACES) >= others


@pytest.mark.parametrize("image", ["", "   ", "\t", "scoring: 1.0"])
def test_blank_or_spaced_image_is_refused(image: str) -> None:
    message = actor_error(actor_document(image=image))
    assert "spec.image" in message
    assert ("is blank; name the container image" in message) or ("contains whitespace" in message)


def test_blank_runtime_image_is_refused() -> None:
    assert "runtimeImage is blank" in mesh_error(namespace="scoring", runtime_image=" ")


def test_nan_retry_interval_is_refused_naming_the_field() -> None:
    text = ACTOR + "  resiliency:\n    policies:\n      default: {initialInterval: .nan}\n"
    message = actor_error(text)
    assert "spec.resiliency.policies.default.initialInterval" in message
    assert "nan is not a finite duration; write e.g. '500ms', '30s'" in message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [("maxInterval", ".inf", "inf is not a finite duration"), ("maxInterval", "'1e999'", "is not a finite duration"),
     ("initialInterval", "-5", "-5 is negative; a duration must be zero or more")],
)
def test_infinite_and_negative_durations_are_refused(field: str, value: str, expected: str) -> None:
    text = ACTOR + f"  resiliency:\n    policies:\n      default: {{{field}: {value}}}\n"
    message = actor_error(text)
    assert f"spec.resiliency.policies.default.{field}" in message and expected in message


def test_map_inside_env_is_refused_naming_the_key() -> None:
    message = actor_error(actor_document(env={"OPTIONS": {"depth": 3}}))
    assert "spec.env: env 'OPTIONS' is a map; an environment variable holds one string" in message
    assert "quote the value" in message


@pytest.mark.parametrize(("value", "expected"), [(["a", "b"], "is a list"), (None, "has no value")])
def test_list_or_empty_env_value_is_refused(value: Any, expected: str) -> None:
    message = actor_error(actor_document(env={"TAGS": value}))
    assert f"env 'TAGS' {expected}" in message


def test_scalar_env_values_become_strings() -> None:
    spec = AsyncActorSpec.from_manifest(actor_document(env={"N": 3, "RATE": 0.5, "ON": True, "NAME": "x"}))
    assert spec.env == {"N": "3", "RATE": "0.5", "ON": "true", "NAME": "x"}


def alias_bomb() -> str:
    """The classic "billion laughs": ten levels of ten aliases, ~1 KB, 10^9 strings once expanded."""
    lines = ['    l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"    l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    return ACTOR + "  env:\n" + "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_in_well_under_a_second() -> None:
    bomb = alias_bomb()
    assert 700 < len(bomb) < 1100
    started = time.perf_counter()
    message = actor_error(bomb)
    elapsed = time.perf_counter() - started
    assert "the YAML expands to more than 100000 values once its aliases (*name) are expanded" in message
    assert "write the values out instead of nesting aliases" in message
    assert elapsed < 1.0, f"took {elapsed:.3f}s"


def test_alias_bomb_in_a_pipeline_directory_names_the_file(tmp_path: Path) -> None:
    directory = write_pipeline(tmp_path, actor=alias_bomb())
    started = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_pipeline_dir(directory)
    assert time.perf_counter() - started < 1.0
    assert f"{directory / 'score.yaml'}: the YAML expands to more than" in str(info.value)


def test_a_30_mb_manifest_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("w") as out:
        out.write(ACTOR + "  env:\n")
        line = "    X: " + "y" * 1000 + "\n"
        out.write(line * (30 * 1024 * 1024 // len(line)))
    assert path.stat().st_size > 30_000_000
    started = time.perf_counter()
    message = actor_error(path)
    elapsed = time.perf_counter() - started
    assert f"{path}: invalid spec" in message
    assert f"the file is {path.stat().st_size} bytes, over the {MAX_FILE_BYTES} bytes (1 MiB) limit" in message
    assert "keep data out of manifests" in message
    assert elapsed < 0.1, f"took {elapsed:.3f}s"


def test_too_many_aliases_and_recursive_aliases_are_refused() -> None:
    many = ACTOR + "  env:\n    A: &a x\n" + "".join(f"    B{i}: *a\n" for i in range(101))
    assert "more than 100 YAML aliases" in actor_error(many)
    recursive = ACTOR + "  tolerations: &t [*t]\n"
    assert "refers to a node that contains it" in actor_error(recursive)


def test_deep_nesting_is_refused() -> None:
    assert "nested deeper than 64 levels" in actor_error(ACTOR + "  env: " + "[" * 200 + "]" * 200 + "\n")


def test_a_few_anchors_still_load() -> None:
    text = ACTOR + "  env:\n    A: &region us-east-1\n    B: *region\n"
    assert AsyncActorSpec.from_manifest(text).env == {"A": "us-east-1", "B": "us-east-1"}


# ------------------------------------------------------------------ the other limits


def test_visibility_ceiling_leaves_room_for_the_heartbeat_window() -> None:
    Resiliency.model_validate({"actorTimeout": "11h58m30s"})
    message = actor_error(actor_document(resiliency={"actorTimeout": "11h59m"}))
    assert "spec.resiliency" in message and "exceeds SQS's 12h visibility ceiling" in message
    assert "use at most 11h58m30s" in message


def test_retry_delay_over_sqs_delay_limit_is_refused() -> None:
    message = actor_error(actor_document(resiliency={"policies": {"default": {"maxInterval": "16m"}}}))
    assert "exceeds SQS's 15 min DelaySeconds limit; use at most 15m" in message


def test_long_actor_name_in_a_long_namespace_passes_sqs_limit() -> None:
    actor = AsyncActorSpec.from_manifest(actor_document()).model_copy(update={"name": "a" * 40})
    message = mesh_error(namespace="n" * 36, actors=[actor])
    assert "gives the queue name" in message and "over SQS's 80-character limit" in message
    assert "shorten the actor name to at most 34 characters" in message


@pytest.mark.parametrize("length", range(1, 41))
def test_result_bucket_prefix_is_valid_for_every_namespace_length(length: int) -> None:
    prefix = result_bucket_prefix(namespace="n" * length)
    assert prefix.startswith("asya-n")
    assert len(prefix) + BUCKET_UNIQUE_SUFFIX_LENGTH <= 63
    check_bucket_name(prefix + "9" * BUCKET_UNIQUE_SUFFIX_LENGTH)


@pytest.mark.parametrize(
    ("name", "problem"),
    [("ab", "S3 allows 3 to 63"), ("a" * 64, "S3 allows 3 to 63"), ("Asya-x", "lowercase"), ("a..b", "lowercase"),
     ("-abc", "lowercase"), ("asya_x", "lowercase"), ("192.168.1.1", "IP address"), ("xn--abc", "reserves"),
     ("data-s3alias", "reserves")],
)
def test_s3_bucket_name_rules(name: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_bucket_name(name)


def test_result_bucket_component_uses_the_checked_prefix(deployment: MockedDeployment) -> None:
    from asya_pulumi.components.bucket import ResultBucket

    deployment.run(lambda: ResultBucket("r", namespace="n" * 36, tags={}))
    bucket = deployment.one("aws:s3/bucket:Bucket", "r")
    assert bucket.inputs["bucketPrefix"] == result_bucket_prefix(namespace="n" * 36)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [({"bad key": "x"}, "spec.nodeSelector: nodeSelector key 'bad key' is not a Kubernetes label key"),
     ({"Example.com/x": "y"}, "the prefix before '/' must be a DNS subdomain"),
     ({"/x": "y"}, "the prefix before '/' must be a DNS subdomain"),
     ({"zone": "a" * 64}, "is not a Kubernetes label value; use at most 63 characters"),
     ({"zone": "-a"}, "is not a Kubernetes label value"),
     ({"asya.sh/gpu-pool": "gpu"}, "is set from the actor's GPU pool; use gpu.pool instead")],
)
def test_node_selector_keys_and_values_follow_kubernetes_label_rules(selector: dict[str, str], expected: str) -> None:
    assert expected in actor_error(actor_document(nodeSelector=selector))


def test_valid_node_selector_loads() -> None:
    selector = {"topology.kubernetes.io/zone": "us-east-1a", "tier": "", "node.example.com/pool_v2": "a.b-c_d"}
    assert AsyncActorSpec.from_manifest(actor_document(nodeSelector=selector)).node_selector == selector


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [({"operator": "Equal", "value": "x"}, "a toleration without key must have operator: Exists"),
     ({"key": "k", "operator": "Exists", "value": "x"}, "with operator: Exists; remove the value"),
     ({"key": "k", "effect": "NoSchedule", "tolerationSeconds": 30}, "tolerationSeconds applies only to effect"),
     ({"key": "bad key", "value": "x"}, "toleration key 'bad key' is not a Kubernetes label key"),
     ({"key": "k", "value": "no spaces"}, "toleration value 'no spaces' is not a Kubernetes label value")],
)
def test_tolerations_follow_the_api_server_rules(toleration: dict[str, Any], expected: str) -> None:
    message = actor_error(actor_document(tolerations=[toleration]))
    assert "spec.tolerations.0" in message and expected in message


def test_valid_tolerations_load() -> None:
    tolerations = [{"operator": "Exists"}, {"key": "spot", "operator": "Exists", "effect": "NoExecute",
                                             "tolerationSeconds": 60}, {"key": "team", "value": "ml"}]
    assert len(AsyncActorSpec.from_manifest(actor_document(tolerations=tolerations)).tolerations) == 3


def test_gpu_pool_names_are_dns_labels_and_label_values() -> None:
    assert "spec.gpu.pool: GPU pool name 'A100_pool' is not a DNS-1123 label" in actor_error(
        actor_document(gpu={"count": 1, "pool": "A100_pool"})
    )
    assert "GPU pool name 'Big GPUs' is not a DNS-1123 label" in mesh_error(namespace="scoring", gpu_pools=["Big GPUs"])


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", "0.5"), ("2", "2"), ("0.5", "0.5"), (".5", "0.5"), ("512Mi", str(512 * 2**20)), ("1G", "1000000000"),
     ("1e3", "1000"), ("1E3", "1000"), ("1Ki", "1024"), ("1k", "1000"), ("1E", str(10**18)), ("2.", "2")],
)
def test_kubernetes_quantities_parse_to_their_value(text: str, value: str) -> None:
    assert parse_quantity(text, what="memory") == Decimal(value)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("500 m", "is not a Kubernetes quantity; write e.g."), ("1.2.3", "is not a Kubernetes quantity; write e.g."),
     ("lots", "is not a Kubernetes quantity"), ("1KB", "is not a Kubernetes quantity"), ("", "is not a Kubernetes"),
     ("-1", "is negative; a resource quantity is zero or more"), ("1e99", "is out of range for a Kubernetes quantity"),
     (True, "True is not a Kubernetes quantity")],
)
def test_malformed_quantities_are_refused(quantity: Any, expected: str) -> None:
    message = actor_error(actor_document(resources={"requests": {"memory": quantity}, "limits": {}}))
    assert "spec.resources.requests" in message and expected in message


def _object(kind: str, name: str, *, namespace: str | None = "ns", api_version: str = "v1") -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


def test_duplicate_kubernetes_objects_in_one_render_are_errors() -> None:
    objects = [_object("ConfigMap", "a"), _object("ConfigMap", "a"), _object("ConfigMap", "a", namespace="other"),
               _object("Secret", "a"), _object("Deployment", "d", api_version="apps/v1"),
               _object("Deployment", "d", api_version="apps/v1beta2")]
    problems = duplicate_objects(objects)
    assert problems == [
        "ConfigMap ns/a: rendered 2 times (same API group, kind, namespace and name); the last would overwrite the "
        "others: give each object its own name or namespace",
        "Deployment ns/d: rendered 2 times (same API group, kind, namespace and name); the last would overwrite the "
        "others: give each object its own name or namespace",
    ]


def test_validate_objects_reports_duplicates_with_the_schema_problems() -> None:
    config_map = {**_object("ConfigMap", "a"), "data": {"k": "v"}}
    assert validate_objects([config_map]) == []
    assert validate_objects([config_map, config_map]) == [duplicate_objects([config_map, config_map])[0]]


def test_render_reports_a_stack_override_past_a_limit_in_one_line(tmp_path: Path) -> None:
    """``asya render``'s runner: a MeshSpec refused inside the program (a stack's namespace override) is one line
    naming the field, the rule and the fix, not pydantic's multi-line report."""
    from asya_pulumi.cli.render_plan import ProgramFailed, render_plan

    entry = tmp_path / "__main__.py"
    entry.write_text((ROOT / "stacks" / "__main__.py").read_text())
    config = {"aws:region": "us-east-1", "asya:pipeline": str(write_pipeline(tmp_path / "pipeline")),
              "asya:namespace": "kube-system", "asya:cluster": {"name": "c"}}
    with pytest.raises(ProgramFailed) as info:
        render_plan(entry=entry, stack="dev", config=config)
    assert str(info.value) == (
        "invalid MeshSpec: namespace: mesh namespace 'kube-system' is reserved for Kubernetes and the cluster "
        "add-ons (reserved: default, kube-system, keda and kube-*); a mesh needs a namespace of its own, "
        "e.g. 'asya-kube-system'"
    )
