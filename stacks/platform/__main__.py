"""Platform stack: the EKS cluster, KEDA and the mesh base that team stacks (``stacks/team``) add actors to.

Stack config (stacks/platform/Pulumi.<stack>.yaml):
  aws:region          region of everything
  asya:cluster        a ClusterSpec
  asya:pipeline       the mesh base's pipeline directory, relative to the repo root (default examples/image-scoring)
  asya:namespace      mesh namespace override (default: the pipeline's ActorMesh metadata.name)
  asya:quotaHeadroom  the mesh namespace's ResourceQuota is the base's actors at full scale times this, leaving
                      room for the actors team stacks add (default 4)

Exports what a team stack's ``MeshRef.from_stack`` reads (``mesh_exports``: namespace, region, clusterName,
actorNames, gpuPools) and the cluster's outputs (``AsyaCluster.OUTPUTS``): its kubeconfig (a secret) for the team's
Kubernetes provider, and its VPC, subnets, node role, security group and OIDC issuer for whatever else joins it.
KEDA may read every ``asya-{namespace}_*`` queue, so it scales the actors teams add as well as the base's.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from asya_pulumi import ActorMesh, AsyaCluster, ClusterSpec, Keda, QuotaSettings
from asya_pulumi.checks.handlers import load_checked_pipeline
from asya_pulumi.components.mesh_ref import mesh_exports

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PIPELINE = "examples/image-scoring"
#: The base mesh's own actors at full scale, times this: room for the actors team stacks add to the namespace.
TEAM_QUOTA_HEADROOM = 4.0


def main() -> None:
    config = pulumi.Config("asya")
    region = pulumi.Config("aws").require("region")
    cluster_spec = ClusterSpec.model_validate(config.require_object("cluster"))
    base = load_checked_pipeline(REPO_ROOT / (config.get("pipeline") or DEFAULT_PIPELINE))
    mesh_spec = base.with_overrides(
        region=region,
        namespace=config.get("namespace") or base.namespace,
        gpu_pools=[pool.name for pool in cluster_spec.gpu_pools],
    )
    mesh_spec.check_fits(cluster_spec)

    cluster = AsyaCluster("asya", spec=cluster_spec, region=region)
    in_cluster = pulumi.ResourceOptions(providers=[cluster.k8s_provider])
    keda = Keda(
        "keda", cluster_name=cluster.cluster_name, region=region, mesh_namespaces=[mesh_spec.namespace],
        wait_for=[cluster.system_node_group], opts=in_cluster,
    )
    mesh = ActorMesh(
        mesh_spec.namespace, spec=mesh_spec, cluster_name=cluster.cluster_name, keda=keda, opts=in_cluster,
        resource_quota=QuotaSettings(headroom=config.get_float("quotaHeadroom") or TEAM_QUOTA_HEADROOM),
    )

    # The cluster's outputs (AsyaCluster.OUTPUTS: kubeconfig, VPC, subnets, node role, ...), then what a team
    # stack's MeshRef reads (clusterName and gpuPools are in both, with the same values).
    for key, value in {**cluster.output_values(), **mesh_exports(mesh, cluster_name=cluster.cluster_name)}.items():
        pulumi.export(key, value)
    pulumi.export("bucketName", mesh.bucket_name)
    pulumi.export("queueUrls", mesh.queue_urls)
    pulumi.export("routes", mesh_spec.routes)


main()
