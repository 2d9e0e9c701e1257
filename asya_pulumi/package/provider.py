"""A component provider serving the components to other Pulumi languages (``components/__main__.py``).

TypeScript/Go/YAML programs ``pulumi package add ./components`` and create e.g. ``asya:index:ActorMesh`` with the
same spec, in the manifest's camelCase form, that Python users pass as a ``MeshSpec``. The package schema is typed
field by field: each ``spec`` input is an object type generated from its pydantic model
(``asya_pulumi.package.schema``), so editors show every field, its type and its description. Specs are validated here by
those same models, so a bad spec fails at preview with the same messages in every language.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.provider as provider
from pydantic import BaseModel

from asya_pulumi.components import ActorMesh, AsyaCluster, AsyncActor, Keda
from asya_pulumi.components.mesh_ref import MeshRef, TeamActors
from asya_pulumi.package.schema import PACKAGE, STRING, SchemaTypes, token
from asya_pulumi.spec import AsyncActorSpec, ClusterSpec, MeshSpec
from asya_pulumi.spec.team import TeamSpec

VERSION = "0.1.0"
STRING_LIST: dict[str, Any] = {"type": "array", "items": STRING}
STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": STRING}
SECRET_STRING: dict[str, Any] = {**STRING, "secret": True}

Builder = Callable[[str, dict[str, Any], pulumi.ResourceOptions], tuple[pulumi.Resource, dict[str, Any]]]


@dataclass(frozen=True)
class Arg:
    """One input or output property: a schema type, or the pydantic model whose generated type it has."""

    type: dict[str, Any] | type[BaseModel]
    description: str
    required: bool = True


@dataclass(frozen=True)
class Component:
    build: Builder
    resource: type[pulumi.ComponentResource]
    inputs: dict[str, Arg]
    outputs: dict[str, Arg] = field(default_factory=dict)


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
    return keda, {"roleArn": keda.role_arn, "releaseName": keda.release.name}


def _cluster(name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> tuple[pulumi.Resource, dict[str, Any]]:
    cluster = AsyaCluster(name, spec=ClusterSpec.model_validate(inputs["spec"]), region=inputs["region"], opts=opts)
    return cluster, {"clusterName": cluster.cluster_name, "kubeconfig": cluster.kubeconfig}


def _team(name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> tuple[pulumi.Resource, dict[str, Any]]:
    spec = TeamSpec.model_validate(inputs["spec"])
    mesh = MeshRef(
        namespace=inputs["meshNamespace"],
        region=inputs["meshRegion"],
        cluster_name=inputs["clusterName"],
        actor_names=inputs["meshActors"],
        gpu_pools=inputs.get("gpuPools") or [],
    )
    team = TeamActors(name, spec=spec, mesh=mesh, opts=opts)
    return team, {"queueUrls": team.queue_urls, "roleArns": team.role_arns, "routes": team.routes}


_CLUSTER_NAME = Arg(STRING, "Name of the EKS cluster (Pod Identity associations are created in it).")
_REGION = Arg(STRING, "AWS region of the mesh's queues and roles, e.g. us-east-1.")

#: type token → component. The spec inputs' types are generated from the models; the rest are listed here.
COMPONENTS: dict[str, Component] = {
    token("ActorMesh"): Component(
        _mesh,
        ActorMesh,
        inputs={
            "spec": Arg(MeshSpec, "The mesh: namespace, actors, routes, GPU pools (an ActorMesh manifest's spec)."),
            "clusterName": _CLUSTER_NAME,
            "dependsOnKeda": Arg(
                {"type": "array", "items": {"$ref": f"#/resources/{token('Keda')}"}},
                "The Keda component(s) the ScaledObjects wait for (KEDA installs their CRD).",
                required=False,
            ),
        },
        outputs={
            "queueUrls": Arg(STRING_MAP, "Actor name (sinks included) → SQS queue URL."),
            "bucketName": Arg(STRING, "The S3 bucket the sinks write results to."),
            "namespace": Arg(STRING, "The mesh's Kubernetes namespace."),
        },
    ),
    token("AsyncActor"): Component(
        _actor,
        AsyncActor,
        inputs={
            "spec": Arg(AsyncActorSpec, "The actor (an AsyncActor manifest's spec, with its name)."),
            "namespace": Arg(STRING, "Mesh namespace: the queue is asya-{namespace}_{actor}."),
            "region": _REGION,
            "clusterName": _CLUSTER_NAME,
            "gpuPool": Arg(STRING, "GPU node pool, required when the spec asks for a GPU.", required=False),
        },
        outputs={
            "queueUrl": Arg(STRING, "The actor's SQS queue URL."),
            "roleArn": Arg(STRING, "The actor's IAM role (Pod Identity)."),
        },
    ),
    token("Keda"): Component(
        _keda,
        Keda,
        inputs={
            "clusterName": _CLUSTER_NAME,
            "region": _REGION,
            "meshNamespaces": Arg(
                STRING_LIST, "Meshes whose queues KEDA may read; default: every asya-* queue.", required=False
            ),
        },
        outputs={
            "roleArn": Arg(STRING, "The KEDA operator's IAM role."),
            "releaseName": Arg(STRING, "The KEDA Helm release."),
        },
    ),
    token("AsyaCluster"): Component(
        _cluster,
        AsyaCluster,
        inputs={"spec": Arg(ClusterSpec, "The EKS cluster, its node groups and GPU pools."), "region": _REGION},
        outputs={
            "clusterName": Arg(STRING, "The EKS cluster's name."),
            "kubeconfig": Arg(SECRET_STRING, "Kubeconfig for the cluster (a secret)."),
        },
    ),
    token("TeamActors"): Component(
        _team,
        TeamActors,
        inputs={
            "spec": Arg(TeamSpec, "The team's actors and routes."),
            "meshNamespace": Arg(STRING, "The mesh's namespace, as the platform stack exports it (`namespace`)."),
            "meshRegion": Arg(STRING, "The mesh's region, as the platform stack exports it (`region`)."),
            "clusterName": Arg(STRING, "The mesh's EKS cluster, as the platform stack exports it (`clusterName`)."),
            "meshActors": Arg(STRING_LIST, "The mesh base's actor names, as the platform stack exports them "
                              "(`actorNames`); routes may name them."),
            "gpuPools": Arg(STRING_LIST, "The cluster's GPU pools (`gpuPools`).", required=False),
        },
        outputs={
            "queueUrls": Arg(STRING_MAP, "Team actor → SQS queue URL."),
            "roleArns": Arg(STRING_MAP, "Team actor → IAM role ARN."),
            "routes": Arg({"type": "object", "additionalProperties": STRING_LIST}, "The team's routes, checked."),
        },
    ),
}


def _properties(args: dict[str, Arg], types: SchemaTypes) -> dict[str, Any]:
    properties = {}
    for name, arg in args.items():
        spec = types.model(arg.type) if isinstance(arg.type, type) else dict(arg.type)
        properties[name] = {**spec, "description": arg.description}
    return properties


def _summary(resource: type[pulumi.ComponentResource]) -> str:
    """The first paragraph of the component module's docstring (what it creates, in no one language's terms)."""
    module = sys.modules[resource.__module__]
    return " ".join((module.__doc__ or resource.__doc__ or "").split("\n\n")[0].split())


def schema() -> dict[str, Any]:
    """The package schema: every component with typed inputs and outputs, and the types the specs generate."""
    types = SchemaTypes()
    resources = {
        name: {
            "isComponent": True,
            "description": _summary(component.resource),
            "inputProperties": _properties(component.inputs, types),
            "requiredInputs": [n for n, arg in component.inputs.items() if arg.required],
            "properties": _properties(component.outputs, types),
            "required": sorted(n for n, arg in component.outputs.items() if arg.required),
        }
        for name, component in COMPONENTS.items()
    }
    return {
        "name": PACKAGE,
        "version": VERSION,
        "description": "An actor mesh for AI/ML pipelines on AWS: SQS queue per actor, KEDA scaling, EKS.",
        "resources": resources,
        "types": dict(sorted(types.types.items())),
    }


class AsyaProvider(provider.Provider):
    def __init__(self) -> None:
        super().__init__(VERSION, json.dumps(schema()))

    def construct(
        self, name: str, resource_type: str, inputs: pulumi.Inputs, options: pulumi.ResourceOptions | None = None
    ) -> provider.ConstructResult:
        if resource_type not in COMPONENTS:
            raise ValueError(f"unknown resource type {resource_type}; this provider serves {sorted(COMPONENTS)}")
        component, state = COMPONENTS[resource_type].build(name, dict(inputs), options or pulumi.ResourceOptions())
        return provider.ConstructResult(urn=component.urn, state=state)
