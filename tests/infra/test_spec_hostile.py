"""Hostile specs (issue 25): each rule refuses a whole class of manifest that AWS, Kubernetes or KEDA would refuse
(or silently misread), at load, with the field, the limit and the fix in the message."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from test_spec_limits import ACTOR, actor_document, actor_error

from asya_pulumi.spec import AsyncActorSpec, MeshSpec, SpecError
from asya_pulumi.spec.actor import Toleration
from asya_pulumi.spec.cluster import ClusterSpec, GpuNodePoolSpec
from asya_pulumi.spec.limits import check_label_key, check_label_value
from asya_pulumi.spec.yamlload import YamlRefused, load_yaml
from asya_runtime.manifest_model import INT32_MAX

# ---------------------------------------------------------------- names: a trailing newline is not a name


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda v: AsyncActorSpec.from_manifest(actor_document() | {"metadata": {"name": v}}), "actor name"),
        (lambda v: MeshSpec(namespace=v, actors=[AsyncActorSpec.from_manifest(ACTOR)]), "namespace"),
        (lambda v: MeshSpec(namespace="m", region=v, actors=[AsyncActorSpec.from_manifest(ACTOR)]), "region"),
        (lambda v: AsyncActorSpec.from_manifest(actor_document(env={v: "1"})), "env name"),
        (lambda v: check_label_value(v, what="label value"), "label value"),
        (lambda v: check_label_key(v, what="label key"), "label key"),
        (lambda v: Toleration(key=v, operator="Exists"), "toleration key"),
        (lambda v: ClusterSpec(name=v), "cluster name"),
        (lambda v: GpuNodePoolSpec(name=v), "GPU pool name"),
        (lambda v: AsyncActorSpec.from_manifest(actor_document(handler=v)), "handler"),
    ],
)
@pytest.mark.parametrize("tail", ["\n", "\r\n", " "])
def test_a_name_with_a_trailing_newline_is_refused(build: Any, name: str, tail: str) -> None:
    good = {"region": "us-east-1", "env name": "MODE", "label key": "team", "handler": "handlers.score"}.get(name, "a")
    build(good)  # the rule accepts the plain name ...
    with pytest.raises((ValueError, SpecError)):  # ... and not the same name with a line break after it
        build(good + tail)


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize("field", ["maxAttempts"])
@pytest.mark.parametrize("value", ["yes", "on", "true", "y"])
def test_a_yaml_1_1_boolean_is_not_a_number(field: str, value: str) -> None:
    text = ACTOR + f"  resiliency:\n    policies:\n      default: {{{field}: {value}}}\n"
    message = actor_error(text)
    assert f"spec.resiliency.policies.default.{field}" in message
    assert "number" in message or "integer" in message


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("scaling", "maxReplicaCount"), 2**31),
        (("scaling", "pollingInterval"), 2**63),
        (("scaling", "cooldownPeriod"), 10**30),
        (("scaling", "queueLength"), 2**31),
        (("concurrency",), 2**40),
    ],
)
def test_an_integer_past_int32_is_refused(path: tuple[str, ...], value: int) -> None:
    spec: dict[str, Any] = {}
    node = spec
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    message = actor_error(actor_document(**spec))
    assert "spec." + ".".join(path) in message
    assert str(INT32_MAX) in message and "int32" in message


def test_int32_itself_fits_and_toleration_seconds_is_int64() -> None:
    AsyncActorSpec.from_manifest(actor_document(scaling={"maxReplicaCount": INT32_MAX}))
    Toleration(key="k", operator="Exists", effect="NoExecute", toleration_seconds=2**40)


# ---------------------------------------------------------------- YAML


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        (ACTOR + "spec:\n  image: other:1\n  handler: h.f\n", "spec", (5, 8)),
        (ACTOR + "  env: {MODE: safe, MODE: unsafe}\n", "MODE", (8, 8)),
        (ACTOR + "  image: evil:2\n", "image", (6, 8)),
    ],
    ids=["second-spec", "flow-env", "second-image"],
)
def test_a_key_written_twice_is_refused_with_both_lines(text: str, key: str, lines: tuple[int, int]) -> None:
    message = actor_error(text)
    assert f"key {key!r} appears twice" in message
    assert f"line {lines[1]}:" in message and f"first on line {lines[0]}" in message


def test_a_merge_key_override_is_not_a_duplicate() -> None:
    assert load_yaml("base: &b {cpu: 1, memory: 2}\nactor:\n  <<: *b\n  cpu: 3\n") == {
        "base": {"cpu": 1, "memory": 2}, "actor": {"cpu": 3, "memory": 2}}


def test_only_true_and_false_are_booleans() -> None:
    assert load_yaml("a: yes\nb: no\nc: on\nd: off\ne: true\nf: False\n") == {
        "a": "yes", "b": "no", "c": "on", "d": "off", "e": True, "f": False}
    assert yaml.safe_load("a: yes") == {"a": True}  # what PyYAML alone would have made of it


def test_a_manifest_named_no_is_named_no() -> None:
    document = actor_document() | {"metadata": {"name": "no"}}
    assert AsyncActorSpec.from_manifest(yaml.safe_dump(document).replace("'no'", "no")).name == "no"


def test_duplicate_keys_are_a_yaml_refusal() -> None:
    with pytest.raises(YamlRefused):
        load_yaml("a: 1\nb: 2\na: 3\n")


def test_a_boolean_for_a_number_in_python_is_refused_too() -> None:
    with pytest.raises(ValidationError, match="boolean, not a number"):
        GpuNodePoolSpec(name="gpu", max_size=True)


def test_a_real_field_in_the_wrong_place_says_where_it_belongs() -> None:
    message = actor_error(ACTOR + "  resiliency: {maxAttempts: 3}\n")
    assert "spec.resiliency.maxAttempts: unknown field 'maxAttempts'" in message
    assert "'spec.resiliency.policies.<name>'" in message and "did you mean 'maxAttempts'" not in message


# ---------------------------------------------------------------- the cluster, against the AWS facts table


def cluster_error(**fields: Any) -> str:
    with pytest.raises(ValidationError) as info:
        ClusterSpec.model_validate({"name": "c", **fields})
    return str(info.value)


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"vpcCidr": "10.0.0.0/8"}, "vpcCidr", "/16 to /28"),
        ({"vpcCidr": "10.40.0.0/29"}, "vpcCidr", "/16 to /28"),
        ({"vpcCidr": "banana"}, "vpcCidr", "not an IPv4 CIDR"),
        ({"vpcCidr": "10.40.0.0/22"}, "", "holds 0 /20 subnets"),
        ({"availabilityZones": ["us-east-1a", "us-east-1a"]}, "availabilityZones", "listed twice"),
        ({"systemNodes": {"instanceTypes": ["t3.huge"]}}, "systemNodes.instanceTypes", "not an EC2 instance type"),
        ({"systemNodes": {"instanceTypes": ["x99.large"]}}, "systemNodes.instanceTypes", "not an EC2 instance type"),
        ({"systemNodes": {"instanceTypes": ["m7g.large"]}}, "systemNodes", "arm64"),
        ({"systemNodes": {"diskSize": 10**6}}, "systemNodes.diskSize", "16384"),
        ({"systemNodes": {"maxSize": 10_000}}, "systemNodes.maxSize", "450"),
        ({"gpuPools": [{"name": "gpu", "instanceTypes": ["m7i.large"]}]}, "gpuPools.0", "no NVIDIA GPU"),
        ({"gpuPools": [{"name": "gpu", "instanceTypes": ["g5.3xlarge"]}]}, "gpuPools.0.instanceTypes", "g5 comes in"),
        ({"gpuPools": [{"name": "gpu", "instanceTypes": ["g5g.xlarge"]}]}, "gpuPools.0", "arm64"),
        ({"gpuPools": [{"name": "gpu", "instanceTypes": ["g5.12xlarge", "g5.xlarge"], "gpusPerNode": 4}]},
         "gpuPools.0", "g5.xlarge has 1"),
        ({"gpuPools": [{"name": "gpu", "maxSize": 1000}]}, "", "450 nodes per managed node group"),
        ({"gpuPools": [{"name": "gpu", "diskSize": 10**6}]}, "gpuPools.0.diskSize", "16384"),
        ({"adminRoleArns": ["platform-admin"]}, "adminRoleArns", "not an IAM role or user ARN"),
        ({"adminRoleArns": ["arn:aws:sts::123456789012:assumed-role/x/y"]}, "adminRoleArns", "not an IAM role"),
    ],
)
def test_a_cluster_aws_would_refuse_is_refused(fields: dict[str, Any], field: str, says: str) -> None:
    message = cluster_error(**fields)
    assert says in message
    if field:
        assert field in message


def test_a_valid_cluster_passes_and_derives_its_gpus() -> None:
    spec = ClusterSpec.model_validate({
        "name": "c", "adminRoleArns": ["arn:aws:iam::123456789012:role/platform-admin"],
        "gpuPools": [{"name": "big", "instanceTypes": ["g5.12xlarge", "g6.24xlarge"]}, {"name": "small"}],
    })
    assert [p.node_gpus for p in spec.gpu_pools] == [4, 1]
    spec.check_in_region("us-east-1")


@pytest.mark.parametrize(
    ("region", "zones", "says"),
    [
        ("us-east-7", ["us-east-1a", "us-east-1b"], "not an AWS region"),
        ("eu-west-1", ["us-east-1a", "us-east-1b"], "not availability zones of eu-west-1"),
        ("us-east-1", ["us-east-1a", "us-east-1-bos-1a"], "not availability zones of us-east-1"),
        ("us-east-2", ["us-east-2a", "us-east-2z"], "'us-east-2z'"),
    ],
)
def test_the_region_exists_and_the_zones_are_its_own(region: str, zones: list[str], says: str) -> None:
    spec = ClusterSpec(name="c", availability_zones=zones)
    with pytest.raises(ValueError, match=says):
        spec.check_in_region(region)


def test_a_made_up_region_is_refused_in_the_mesh_with_a_suggestion() -> None:
    with pytest.raises(ValidationError, match="did you mean 'us-east-1'"):
        MeshSpec(namespace="m", region="us-east1", actors=[AsyncActorSpec.from_manifest(ACTOR)])


# ---------------------------------------------------------------- containers and resources


@pytest.mark.parametrize(
    ("spec", "field", "says"),
    [
        ({"env": {"BLOB": "x" * (128 * 1024)}}, "spec.env", "128 KiB"),
        ({"env": {"MODE": "safe\0rm"}}, "spec.env", "NUL"),
        ({"image": "Scoring:1.0"}, "spec.image", "did you mean 'scoring:1.0'"),
        ({"image": "scoring@sha256:1234"}, "spec.image", "not an image reference"),
        ({"image": "scoring@sha256:" + "a" * 40}, "spec.image", "64 hex digits"),
        ({"image": "scoring:" + "t" * 200}, "spec.image", "not an image reference"),
        ({"image": "scoring:1.0\x07"}, "spec.image", "control character"),
        ({"volumes": [{"name": "m", "mountPath": "/models:rw", "emptyDir": {"sizeLimit": "1Gi"}}]},
         "spec.volumes.0.mountPath", "':'"),
        ({"resources": {"requests": {"cpu": "1e18"}}}, "spec.resources.requests", "largest EC2 instance"),
        ({"resources": {"limits": {"memory": "64Ti"}}}, "spec.resources.limits", "largest EC2 instance"),
        ({"resources": {"requests": {"cpu": "100m", "memory": "1"}, "limits": {"memory": "1"}}},
         "spec.resources", "6Mi"),
        ({"gpu": 100_000}, "spec.gpu.count", "8"),
        ({"resources": {"limits": {"memory": "1Gi"}},
          "volumes": [{"name": "shm", "mountPath": "/dev/shm2", "emptyDir": {"sizeLimit": "2Gi", "medium": "Memory"}}]},
         "spec", "tmpfs counts against the memory limit"),
    ],
)
def test_a_container_the_kubelet_would_refuse_is_refused(spec: dict[str, Any], field: str, says: str) -> None:
    message = actor_error(actor_document(**spec))
    assert says in message
    assert field in message


def test_an_env_value_just_under_the_limit_and_a_valid_digest_pass() -> None:
    AsyncActorSpec.from_manifest(actor_document(
        env={"BLOB": "x" * (128 * 1024 - len("BLOB=") - 1)}, image="ghcr.io/acme/scoring:1.0@sha256:" + "a" * 64))


def test_a_gpu_actor_must_fit_a_node_of_its_pool() -> None:
    actor = AsyncActorSpec.from_manifest(actor_document(gpu={"count": 4, "pool": "gpu"}))
    mesh = MeshSpec(namespace="m", actors=[actor], gpu_pools=["gpu"])
    small = ClusterSpec.model_validate({"name": "c", "gpuPools": [
        {"name": "gpu", "instanceTypes": ["g5.12xlarge", "g5.xlarge"]}]})
    with pytest.raises(ValueError, match=r"gpu 4, but a node of pool 'gpu' has 1 \(g5.xlarge\)"):
        mesh.check_fits(small)
    mesh.check_fits(ClusterSpec.model_validate({"name": "c", "gpuPools": [
        {"name": "gpu", "instanceTypes": ["g5.12xlarge", "g6.48xlarge"]}]}))


# ---------------------------------------------------------------- endless work


def _recovering(name: str, into: str | None) -> AsyncActorSpec:
    policies: dict[str, Any] = {"default": {"maxAttempts": 2, **({"onExhausted": into} if into else {})}}
    document = actor_document(resiliency={"policies": policies}) | {"metadata": {"name": name}}
    return AsyncActorSpec.from_manifest(document)


@pytest.mark.parametrize(
    ("chain", "cycle"),
    [
        ({"a": "b", "b": "a"}, "a -> b -> a"),
        ({"a": "b", "b": "c", "c": "b"}, "b -> c -> b"),
        ({"a": "b", "b": "c", "c": "a", "d": "a"}, "a -> b -> c -> a"),
    ],
)
def test_an_on_exhausted_cycle_is_refused(chain: dict[str, str], cycle: str) -> None:
    with pytest.raises(ValidationError, match=f"onExhausted forms a cycle: {cycle}"):
        MeshSpec(namespace="m", actors=[_recovering(name, into) for name, into in chain.items()])


def test_an_on_exhausted_chain_that_ends_is_accepted() -> None:
    MeshSpec(namespace="m", actors=[_recovering("a", "b"), _recovering("b", "c"), _recovering("c", None),
                                    _recovering("d", "c")])


@pytest.mark.parametrize("quantity", ["1Ei", "8Ei", "0.5Ei"])
def test_an_exbibyte_is_a_quantity_and_too_big_for_any_node(quantity: str) -> None:
    message = actor_error(actor_document(resources={"limits": {"memory": quantity}}))
    assert "largest EC2 instance" in message and "int()" not in message
