"""In-cluster add-ons AsyaCluster installs: the NVIDIA device plugin and the Cluster Autoscaler (Helm, pinned)."""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s

from asya_pulumi.components.common import child
from asya_pulumi.components.identity import pod_identity
from asya_pulumi.objects import iam
from asya_pulumi.spec import GPU_POOL_LABEL, GPU_RESOURCE
from asya_pulumi.spec.eks_versions import cluster_autoscaler_tag
from asya_pulumi.spec.limits import ADDON_NAMESPACE

NVIDIA_DEVICE_PLUGIN_CHART = ("https://nvidia.github.io/k8s-device-plugin", "nvidia-device-plugin", "0.17.1")
#: Chart 9.59.0 ships autoscaler 1.35; the image tag is set per cluster from the Kubernetes minor
#: (:func:`asya_pulumi.spec.eks_versions.cluster_autoscaler_tag`), as the autoscaler's releases follow Kubernetes'.
CLUSTER_AUTOSCALER_CHART = ("https://kubernetes.github.io/autoscaler", "cluster-autoscaler", "9.59.0")
CLUSTER_AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
NEW_POD_SCALE_UP_DELAY = "45s"


def nvidia_device_plugin(
    parent: pulumi.Resource, *, resource_name: str, provider: k8s.Provider, depends_on: list[pulumi.Resource]
) -> k8s.helm.v3.Release:
    """The device plugin DaemonSet, only on GPU pool nodes, tolerating their taint; it advertises nvidia.com/gpu."""
    repo, chart, version = NVIDIA_DEVICE_PLUGIN_CHART
    on_gpu_nodes = {"key": GPU_POOL_LABEL, "operator": "Exists"}
    return k8s.helm.v3.Release(
        resource_name,
        name="nvidia-device-plugin",
        chart=chart,
        version=version,
        namespace=ADDON_NAMESPACE,
        repository_opts={"repo": repo},
        values={
            "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [on_gpu_nodes]}]
                    }
                }
            },
        },
        opts=child(parent, provider=provider, depends_on=depends_on),
    )


def cluster_autoscaler(
    parent: pulumi.Resource,
    *,
    resource_name: str,
    cluster_name: str,
    kubernetes_version: str,
    eks_cluster_name: pulumi.Input[str],
    eks_cluster_arn: pulumi.Input[str],
    region: str,
    provider: k8s.Provider,
    depends_on: list[pulumi.Resource],
) -> k8s.helm.v3.Release:
    """Cluster Autoscaler (the image built for ``kubernetes_version``) with a Pod Identity role that may resize only
    this cluster's node groups."""
    association = pod_identity(
        parent,
        prefix=resource_name,
        cluster_arn=eks_cluster_arn,
        cluster_name=eks_cluster_name,
        namespace=ADDON_NAMESPACE,
        service_account=CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
        policy=json.dumps(iam.cluster_autoscaler_policy(cluster_name=cluster_name)),
    ).association
    repo, chart, version = CLUSTER_AUTOSCALER_CHART
    return k8s.helm.v3.Release(
        resource_name,
        name="cluster-autoscaler",
        chart=chart,
        version=version,
        namespace=ADDON_NAMESPACE,
        repository_opts={"repo": repo},
        values={
            "autoDiscovery": {"clusterName": cluster_name},
            "image": {"tag": cluster_autoscaler_tag(kubernetes_version)},
            "awsRegion": region,
            "rbac": {"serviceAccount": {"create": True, "name": CLUSTER_AUTOSCALER_SERVICE_ACCOUNT}},
            "extraArgs": {
                "balance-similar-node-groups": True,
                "expander": "least-waste",
                "skip-nodes-with-system-pods": False,
                # A new Deployment starts with 1 replica until KEDA's first check scales it to 0 (seconds later);
                # without this delay that transient pod would start a GPU node on every deploy.
                "new-pod-scale-up-delay": NEW_POD_SCALE_UP_DELAY,
            },
        },
        opts=child(parent, provider=provider, depends_on=[*depends_on, association]),
    )
