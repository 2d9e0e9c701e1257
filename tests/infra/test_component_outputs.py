"""Every component's outputs are listed once (``OUTPUTS``) and that list is what ``register_outputs`` records, what
the cross-language provider returns and what the package schema types; AsyaCluster's outputs are the ids another
stack needs (VPC, subnets, node role, cluster security group, OIDC issuer), each the one its resource has."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from infra_mocks import REGION, Deployment

from asya_pulumi.components import AsyaCluster
from asya_pulumi.components.common import AsyaComponent
from asya_pulumi.package.provider import COMPONENTS, AsyaProvider, schema
from asya_pulumi.spec import ClusterSpec

#: Inputs for each component the provider serves, in the camelCase form other languages send.
ACTOR = {"name": "echo", "image": "echo:1", "handler": "handlers.echo"}
INPUTS: dict[str, dict[str, Any]] = {
    "asya:index:AsyaCluster": {"spec": {"name": "xlang", "apiEndpoint": {"publicAccessCidrs": ["34.117.59.81/32"]}},
                               "region": REGION},
    "asya:index:Keda": {"clusterName": "c1", "region": REGION},
    "asya:index:ActorMesh": {"spec": {"namespace": "xlang", "actors": [ACTOR]}, "clusterName": "c1"},
    "asya:index:Gateway": {"spec": {"namespace": "front", "actors": [ACTOR],
                                    "gateway": {"auth": {"audience": "asya-gateway"}}},
                           "clusterName": "c1", "bucketName": "asya-front-results-1",
                           "bucketArn": "arn:aws:s3:::asya-front-results-1",
                           "statusTableArn": f"arn:aws:dynamodb:{REGION}:123456789012:table/asya-front_status",
                           "queueArn": f"arn:aws:sqs:{REGION}:123456789012:asya-front_echo",
                           "issuer": "https://oidc.example.com"},
    "asya:index:AsyncActor": {"spec": {**ACTOR, "name": "solo"}, "namespace": "solo", "region": REGION,
                              "clusterName": "c1"},
    "asya:index:TeamActors": {"spec": {"namespace": "xlang", "actors": [{**ACTOR, "name": "rank"}]},
                              "meshNamespace": "xlang", "meshRegion": REGION, "clusterName": "c1",
                              "meshActors": ["echo"]},
}


@pytest.fixture
def registered_outputs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[type, list[str]]]:
    """(component class, output names) of every ``register_outputs`` call of an asya component."""
    calls: list[tuple[type, list[str]]] = []
    original = pulumi.ComponentResource.register_outputs

    def spy(self: pulumi.ComponentResource, outputs: Any) -> None:
        if isinstance(self, AsyaComponent):
            calls.append((type(self), list(outputs)))
        original(self, outputs)

    monkeypatch.setattr(pulumi.ComponentResource, "register_outputs", spy)
    return calls


def test_every_served_component_registers_returns_and_types_the_outputs_it_lists(
    deployment: Deployment, registered_outputs: list[tuple[type, list[str]]]
) -> None:
    assert sorted(INPUTS) == sorted(COMPONENTS)
    package = schema()
    states: dict[str, dict[str, Any]] = {}

    def program() -> Any:
        for token, inputs in INPUTS.items():
            states[token] = AsyaProvider().construct(token.rsplit(":", 1)[1].lower(), token, inputs).state
        return pulumi.Output.all(*(v for state in states.values() for v in state.values()))

    deployment.run(program)
    for token, component in COMPONENTS.items():
        names = [output.name for output in component.resource.OUTPUTS]
        assert list(states[token]) == names, token
        assert list(package["resources"][token]["properties"]) == names, token
        assert package["resources"][token]["required"] == sorted(names), token
    for resource, keys in registered_outputs:  # the served ones and their children (queues, bucket, network)
        assert keys == [output.name for output in resource.OUTPUTS], resource.__name__
    assert {resource for resource, _ in registered_outputs} >= {c.resource for c in COMPONENTS.values()}
    kubeconfig = package["resources"]["asya:index:AsyaCluster"]["properties"]["kubeconfig"]
    assert kubeconfig["secret"] is True


def resolved(deployment: Deployment, spec: ClusterSpec) -> dict[str, Any]:
    """AsyaCluster's outputs once resolved, by name."""
    values: dict[str, Any] = {}

    def program() -> Any:
        cluster = AsyaCluster(spec.name, spec=spec, region=REGION)
        outputs = cluster.output_values()
        return pulumi.Output.all(**outputs).apply(values.update)

    deployment.run(program)
    return values


def test_a_cluster_in_a_new_vpc_exports_its_network_node_role_security_group_and_oidc_issuer(
    deployment: Deployment,
) -> None:
    spec = ClusterSpec.model_validate(
        {"name": "ml", "apiEndpoint": {"publicAccessCidrs": ["34.117.59.81/32"]}, "gpuPools": [{"name": "gpu"}]}
    )
    values = resolved(deployment, spec)
    vpc = deployment.one("aws:ec2/vpc:Vpc", "ml-network")
    assert values["vpcId"] == vpc.outputs["name"]  # the mock's id of a resource is its name
    subnets = {r.name: r for r in deployment.of_type("aws:ec2/subnet:Subnet")}
    private = [f"ml-network-private-{zone}" for zone in spec.availability_zones]
    public = [f"ml-network-public-{zone}" for zone in spec.availability_zones]
    assert values["privateSubnetIds"] == [subnets[name].outputs["name"] for name in private]
    assert values["publicSubnetIds"] == [subnets[name].outputs["name"] for name in public]
    assert values["nodeRoleArn"] == deployment.one("aws:iam/role:Role", "ml-node-role").outputs["arn"]
    eks = deployment.one("aws:eks/cluster:Cluster", "ml").outputs
    assert values["clusterSecurityGroupId"] == eks["vpcConfig"]["clusterSecurityGroupId"]
    assert values["oidcIssuerUrl"] == eks["identities"][0]["oidcs"][0]["issuer"]
    assert values["oidcIssuerUrl"].startswith(f"https://oidc.eks.{REGION}.amazonaws.com/id/")
    assert values["clusterName"] == "ml" and values["gpuPools"] == ["gpu"]
    assert json.loads(values["kubeconfig"])["current-context"] == "ml"


def test_a_cluster_on_its_own_subnets_exports_them_and_the_vpc_eks_reports(deployment: Deployment) -> None:
    spec = ClusterSpec.model_validate({"name": "byo", "subnetIds": ["subnet-a", "subnet-b"]})
    values = resolved(deployment, spec)
    assert deployment.of_type("aws:ec2/vpc:Vpc") == []
    assert values["privateSubnetIds"] == ["subnet-a", "subnet-b"]
    assert values["publicSubnetIds"] == []
    assert values["vpcId"] == deployment.one("aws:eks/cluster:Cluster", "byo").outputs["vpcConfig"]["vpcId"]
    assert all(value not in (None, "") for name, value in values.items() if name not in ("publicSubnetIds", "gpuPools"))
