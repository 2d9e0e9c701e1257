"""Root program: an EKS cluster with GPU pools, KEDA, and the pipeline in ``asya:pipeline`` as one ActorMesh.

Stack config (stacks/Pulumi.<stack>.yaml):
  aws:region          region of everything
  asya:cluster        a ClusterSpec (name, availabilityZones, systemNodes, gpuPools, adminRoleArns, ...)
  asya:pipeline       pipeline directory, relative to the repo root (default examples/image-scoring)
  asya:namespace      mesh namespace override (default: the pipeline's ActorMesh metadata.name)
  asya:runtimeImage   runtime image override (sidecar and sinks)
  asya:scaling        per-actor scaling overrides, e.g. {score-image: {maxReplicaCount: 16}}
  asya:gateway        the front door (a GatewaySpec, over the pipeline's spec.gateway), e.g.
                      {auth: {audience: asya-gateway}, deletionProtection: true}; its issuer defaults to the
                      cluster's own OIDC issuer (pods of the cluster call with projected service-account tokens)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from asya_pulumi import ActorMesh, AsyaCluster, ClusterSpec, Keda, MeshSpec
from asya_pulumi.checks.handlers import load_checked_pipeline

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PIPELINE = "examples/image-scoring"


def mesh_for_stack(config: pulumi.Config, *, region: str, cluster: ClusterSpec) -> MeshSpec:
    """The pipeline's MeshSpec with this stack's namespace, region, GPU pools and scaling overrides."""
    mesh = load_checked_pipeline(REPO_ROOT / (config.get("pipeline") or DEFAULT_PIPELINE))
    scaling: dict[str, dict[str, Any]] = config.get_object("scaling") or {}
    unknown = sorted(set(scaling) - {a.name for a in mesh.actors})
    if unknown:
        raise ValueError(f"asya:scaling names unknown actor(s) {unknown}; known: {sorted(a.name for a in mesh.actors)}")
    actors = [
        actor.model_validate({**actor.model_dump(by_alias=True),
                              "scaling": {**actor.scaling.model_dump(by_alias=True), **scaling.get(actor.name, {})}})
        for actor in mesh.actors
    ]
    overrides: dict[str, Any] = {"region": region, "gpu_pools": [p.name for p in cluster.gpu_pools], "actors": actors}
    for key, field in (("namespace", "namespace"), ("runtimeImage", "runtime_image")):
        if value := config.get(key):
            overrides[field] = value
    gateway: dict[str, Any] | None = config.get_object("gateway")
    if gateway is not None:
        base = mesh.gateway.model_dump(by_alias=True, exclude_unset=True) if mesh.gateway is not None else {}
        overrides["gateway"] = {**base, **gateway}
    return mesh.with_overrides(**overrides)


def main() -> None:
    config = pulumi.Config("asya")
    region = pulumi.Config("aws").require("region")
    cluster_spec = ClusterSpec.model_validate(config.require_object("cluster"))
    mesh_spec = mesh_for_stack(config, region=region, cluster=cluster_spec)
    mesh_spec.check_fits(cluster_spec)

    cluster = AsyaCluster("asya", spec=cluster_spec, region=region)
    in_cluster = pulumi.ResourceOptions(providers=[cluster.k8s_provider])
    keda = Keda(
        "keda",
        cluster_name=cluster.cluster_name,
        region=region,
        mesh_namespaces=[mesh_spec.namespace],
        wait_for=[cluster.system_node_group],
        opts=in_cluster,
    )
    mesh = ActorMesh(
        mesh_spec.namespace, spec=mesh_spec, cluster_name=cluster.cluster_name, keda=keda,
        gateway_issuer=cluster.oidc_issuer_url, opts=in_cluster,
    )

    for key, value in cluster.output_values().items():  # AsyaCluster.OUTPUTS: name, kubeconfig, VPC, subnets, ...
        pulumi.export(key, value)
    pulumi.export("namespace", mesh.namespace)
    pulumi.export("bucketName", mesh.bucket_name)
    pulumi.export("queueUrls", mesh.queue_urls)
    pulumi.export("routes", mesh_spec.routes)
    pulumi.export("statusTableName", mesh.status_table_name)
    pulumi.export("gatewayUrl", mesh.gateway_url)


main()
