"""A component provider serving the components to other Pulumi languages (``components/__main__.py``).

TypeScript/Go/YAML programs ``pulumi package add ./components`` and create e.g. ``asya:index:ActorMesh`` with the
same spec, in the manifest's camelCase form, that Python users pass as a ``MeshSpec``. The package schema is typed
field by field: each ``spec`` input is an object type generated from its pydantic model
(``asya_pulumi.package.schema``), so editors show every field, its type and its description. Specs are validated here by
those same models, so a bad spec fails at preview with the same messages in every language. A component's outputs
are its class's ``OUTPUTS``, the list its ``register_outputs`` reads too: ``construct`` returns them and the schema
types them, so no output is listed twice.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.provider as provider
from pydantic import BaseModel

from asya_pulumi import __version__
from asya_pulumi.components import ActorMesh, AsyaCluster, AsyncActor, Keda
from asya_pulumi.components.common import AsyaComponent, ComponentOutput
from asya_pulumi.components.gateway import Gateway, GatewayArgs
from asya_pulumi.components.mesh_ref import MeshRef, TeamActors
from asya_pulumi.package.schema import PACKAGE, STRING, SchemaTypes, markdown, token
from asya_pulumi.spec import AsyncActorSpec, ClusterSpec, MeshSpec
from asya_pulumi.spec.team import TeamSpec

STRING_LIST: dict[str, Any] = {"type": "array", "items": STRING}
#: Where the package's source lives; the Go SDK's import path is under it.
REPOSITORY = "github.com/asya-sh/asya-pulumi"
#: Each language's SDK name, under the names the project publishes as (ghcr.io/asya-sh, PyPI asya-pulumi): an npm
#: package in the asya-sh scope, a Go module under the repository, a .NET namespace ``Asya.Pulumi``
#: (``rootNamespace`` + the package's entry in ``namespaces``).
LANGUAGE: dict[str, dict[str, Any]] = {
    "nodejs": {"packageName": "@asya-sh/pulumi"},
    "go": {"importBasePath": f"{REPOSITORY}/sdk/go/{PACKAGE}", "generateResourceContainerTypes": True},
    "csharp": {"rootNamespace": "Asya", "namespaces": {PACKAGE: "Pulumi"}},
}

Builder = Callable[[str, dict[str, Any], pulumi.ResourceOptions], AsyaComponent]


@dataclass(frozen=True)
class Arg:
    """One input property: a schema type, or the pydantic model whose generated type it has."""

    type: dict[str, Any] | type[BaseModel]
    description: str
    required: bool = True


@dataclass(frozen=True)
class Component:
    """A component the provider serves: how to build it from camelCase inputs, and its inputs. Its outputs are the
    component class's own ``OUTPUTS`` (the list its ``register_outputs`` reads too)."""

    build: Builder
    resource: type[AsyaComponent]
    inputs: dict[str, Arg]

    @property
    def outputs(self) -> tuple[ComponentOutput, ...]:
        return self.resource.OUTPUTS


def _mesh(name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> AsyaComponent:
    return ActorMesh(
        name,
        spec=MeshSpec.model_validate(inputs["spec"]),
        cluster_name=inputs["clusterName"],
        keda=list(inputs.get("dependsOnKeda") or []),
        gateway_issuer=inputs.get("gatewayIssuer"),
        opts=opts,
    )


def _gateway(name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> AsyaComponent:
    args = GatewayArgs(
        mesh=MeshSpec.model_validate(inputs["spec"]),
        cluster_name=inputs["clusterName"],
        bucket_name=inputs["bucketName"],
        bucket_arn=inputs["bucketArn"],
        status_table_arn=inputs["statusTableArn"],
        same_account_queue_arn=inputs["queueArn"],
        issuer=inputs.get("issuer"),
    )
    return Gateway(name, args, opts=opts)


def _actor(name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> AsyaComponent:
    return AsyncActor(
        name,
        spec=AsyncActorSpec.model_validate(inputs["spec"]),
        namespace=inputs["namespace"],
        region=inputs["region"],
        cluster_name=inputs["clusterName"],
        gpu_pool=inputs.get("gpuPool"),
        rate_limit_table_arn=inputs.get("rateLimitTableArn"),
        opts=opts,
    )


def _keda(name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> AsyaComponent:
    return Keda(
        name,
        cluster_name=inputs["clusterName"],
        region=inputs["region"],
        mesh_namespaces=inputs.get("meshNamespaces"),
        opts=opts,
    )


def _cluster(name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> AsyaComponent:
    return AsyaCluster(name, spec=ClusterSpec.model_validate(inputs["spec"]), region=inputs["region"], opts=opts)


def _team(name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> AsyaComponent:
    mesh = MeshRef(
        namespace=inputs["meshNamespace"],
        region=inputs["meshRegion"],
        cluster_name=inputs["clusterName"],
        actor_names=inputs["meshActors"],
        gpu_pools=inputs.get("gpuPools") or [],
    )
    return TeamActors(name, spec=TeamSpec.model_validate(inputs["spec"]), mesh=mesh, opts=opts)


_CLUSTER_NAME = Arg(STRING, "Name of the EKS cluster (Pod Identity associations are created in it).")
_REGION = Arg(STRING, "AWS region of the mesh's queues and roles, e.g. us-east-1.")
_ISSUER = "The OIDC issuer of the gateway's tokens when `spec.gateway.auth.issuer` is null, e.g. the cluster's " \
    "`oidcIssuerUrl`."

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
            "gatewayIssuer": Arg(STRING, _ISSUER, required=False),
        },
    ),
    token("Gateway"): Component(
        _gateway,
        Gateway,
        inputs={
            "spec": Arg(MeshSpec, "The mesh the gateway serves, with `gateway` set (an ActorMesh manifest's spec)."),
            "clusterName": _CLUSTER_NAME,
            "bucketName": Arg(STRING, "The mesh's result bucket (ActorMesh's `bucketName`)."),
            "bucketArn": Arg(STRING, "The mesh's result bucket's ARN: the gateway reads its success records."),
            "statusTableArn": Arg(STRING, "The mesh's status table's ARN (asya-{namespace}_status)."),
            "queueArn": Arg(STRING, "Any SQS queue ARN of the mesh: the role's queue pattern takes its account and "
                            "region."),
            "issuer": Arg(STRING, _ISSUER, required=False),
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
            "rateLimitTableArn": Arg(STRING, "The mesh's status table's ARN (asya-{namespace}_status), required when "
                                     "the spec has `rateLimit`: its shared token bucket lives there.", required=False),
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
    ),
    token("AsyaCluster"): Component(
        _cluster,
        AsyaCluster,
        inputs={"spec": Arg(ClusterSpec, "The EKS cluster, its node groups and GPU pools."), "region": _REGION},
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
    ),
}


def _properties(args: dict[str, Arg], types: SchemaTypes) -> dict[str, Any]:
    properties = {}
    for name, arg in args.items():
        spec = types.model(arg.type) if isinstance(arg.type, type) else dict(arg.type)
        properties[name] = {**spec, "description": markdown(arg.description)}
    return properties


def _output_properties(outputs: tuple[ComponentOutput, ...], types: SchemaTypes) -> dict[str, Any]:
    """The schema ``properties`` of a component's ``OUTPUTS``: each one's type from its Python type."""
    properties = {}
    for output in outputs:
        spec = types.annotation(output.type, enum_name=output.name)
        properties[output.name] = {**spec, "description": markdown(output.description)}
        if output.secret:
            properties[output.name]["secret"] = True
    return properties


def _summary(resource: type[pulumi.ComponentResource]) -> str:
    """The first paragraph of the component module's docstring (what it creates, in no one language's terms)."""
    module = sys.modules[resource.__module__]
    return markdown(" ".join((module.__doc__ or resource.__doc__ or "").split("\n\n")[0].split()))


def schema() -> dict[str, Any]:
    """The package schema: every component with typed inputs and outputs, the types the specs generate, each
    language's SDK name, and the version of this distribution (``asya_pulumi.__version__``, from pyproject.toml)."""
    types = SchemaTypes()
    resources = {
        name: {
            "isComponent": True,
            "description": _summary(component.resource),
            "inputProperties": _properties(component.inputs, types),
            "requiredInputs": [n for n, arg in component.inputs.items() if arg.required],
            "properties": _output_properties(component.outputs, types),
            "required": sorted(output.name for output in component.outputs),
        }
        for name, component in COMPONENTS.items()
    }
    return {
        "name": PACKAGE,
        "version": __version__,
        "description": "An actor mesh for AI/ML pipelines on AWS: SQS queue per actor, KEDA scaling, EKS.",
        "repository": f"https://{REPOSITORY}",
        "language": LANGUAGE,
        "resources": resources,
        "types": dict(sorted(types.types.items())),
    }


class AsyaProvider(provider.Provider):
    def __init__(self) -> None:
        super().__init__(__version__, json.dumps(schema()))

    def construct(
        self, name: str, resource_type: str, inputs: pulumi.Inputs, options: pulumi.ResourceOptions | None = None
    ) -> provider.ConstructResult:
        if resource_type not in COMPONENTS:
            raise ValueError(f"unknown resource type {resource_type}; this provider serves {sorted(COMPONENTS)}")
        component = COMPONENTS[resource_type].build(name, dict(inputs), options or pulumi.ResourceOptions())
        return provider.ConstructResult(urn=component.urn, state=component.output_values())
