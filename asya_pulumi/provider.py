"""A component provider serving the components to other Pulumi languages (``components/__main__.py``).

TypeScript/Go/YAML programs ``pulumi package add ./components`` and create e.g. ``asya:index:ActorMesh`` with the
same spec, in the manifest's camelCase form, that Python users pass as a ``MeshSpec``. Specs are validated here, so
a bad spec fails at preview with the same messages in every language.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi.provider as provider

from asya_pulumi.components import ActorMesh, AsyaCluster, AsyncActor, Keda
from asya_pulumi.spec import AsyncActorSpec, ClusterSpec, MeshSpec

VERSION = "0.1.0"
ANY = {"$ref": "pulumi.json#/Any"}
STRING = {"type": "string"}
STRING_LIST = {"type": "array", "items": STRING}


def _mesh(name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> tuple[pulumi.Resource, dict[str, Any]]:
    mesh = ActorMesh(
        name,
        spec=MeshSpec.model_validate(inputs["spec"]),
        cluster_name=inputs["clusterName"],
        keda=list(inputs.get("dependsOnKeda") or []),
        opts=opts,
    )
    return mesh, {"queueUrls": mesh.queue_urls, "bucketName": mesh.bucket_name, "namespace": mesh.namespace}


def _actor(name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> tuple[pulumi.Resource, dict[str, Any]]:
    actor = AsyncActor(
        name,
        spec=AsyncActorSpec.model_validate(inputs["spec"]),
        namespace=inputs["namespace"],
        region=inputs["region"],
        cluster_name=inputs["clusterName"],
        gpu_pool=inputs.get("gpuPool"),
        opts=opts,
    )
    return actor, {"queueUrl": actor.queue_url, "roleArn": actor.role_arn}


def _keda(name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> tuple[pulumi.Resource, dict[str, Any]]:
    keda = Keda(
        name,
        cluster_name=inputs["clusterName"],
        region=inputs["region"],
        mesh_namespaces=inputs.get("meshNamespaces"),
        opts=opts,
    )
    return keda, {"roleArn": keda.role_arn, "release": keda.release}


def _cluster(name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> tuple[pulumi.Resource, dict[str, Any]]:
    cluster = AsyaCluster(name, spec=ClusterSpec.model_validate(inputs["spec"]), region=inputs["region"], opts=opts)
    return cluster, {"clusterName": cluster.cluster_name, "kubeconfig": cluster.kubeconfig}


Builder = Callable[[str, dict[str, Any], pulumi.ResourceOptions], tuple[pulumi.Resource, dict[str, Any]]]
#: type token → (builder, input properties, required inputs, output properties)
COMPONENTS: dict[str, tuple[Builder, dict[str, Any], list[str], dict[str, Any]]] = {
    "asya:index:ActorMesh": (
        _mesh,
        {"spec": ANY, "clusterName": STRING, "dependsOnKeda": {"type": "array", "items": ANY}},
        ["spec", "clusterName"],
        {"queueUrls": {"type": "object", "additionalProperties": STRING}, "bucketName": STRING, "namespace": STRING},
    ),
    "asya:index:AsyncActor": (
        _actor,
        {"spec": ANY, "namespace": STRING, "region": STRING, "clusterName": STRING, "gpuPool": STRING},
        ["spec", "namespace", "region", "clusterName"],
        {"queueUrl": STRING, "roleArn": STRING},
    ),
    "asya:index:Keda": (
        _keda,
        {"clusterName": STRING, "region": STRING, "meshNamespaces": STRING_LIST},
        ["clusterName", "region"],
        {"roleArn": STRING, "release": ANY},
    ),
    "asya:index:AsyaCluster": (
        _cluster,
        {"spec": ANY, "region": STRING},
        ["spec", "region"],
        {"clusterName": STRING, "kubeconfig": {**STRING, "secret": True}},
    ),
}


def schema() -> dict[str, Any]:
    resources = {
        token: {
            "isComponent": True,
            "inputProperties": inputs,
            "requiredInputs": required,
            "properties": outputs,
            "required": sorted(outputs),
        }
        for token, (_, inputs, required, outputs) in COMPONENTS.items()
    }
    return {"name": "asya", "version": VERSION, "resources": resources}


class AsyaProvider(provider.Provider):
    def __init__(self) -> None:
        super().__init__(VERSION, json.dumps(schema()))

    def construct(
        self, name: str, resource_type: str, inputs: pulumi.Inputs, options: pulumi.ResourceOptions | None = None
    ) -> provider.ConstructResult:
        if resource_type not in COMPONENTS:
            raise ValueError(f"unknown resource type {resource_type}; this provider serves {sorted(COMPONENTS)}")
        builder = COMPONENTS[resource_type][0]
        component, state = builder(name, dict(inputs), options or pulumi.ResourceOptions())
        return provider.ConstructResult(urn=component.urn, state=state)
