"""The local control plane's Nodes, shaped like the stack's node groups and derived from the same ``ClusterSpec``.

A real cluster's nodes are made by EKS from the node groups (or by Karpenter from the NodePools) that
``asya_pulumi.components`` renders from ``ClusterSpec``; here KWOK plays their kubelets, and the Node objects are
built from that spec with the same label and taint helpers the components use, so the scheduler sees what it
would see on EKS:

* ``systemNodes.minSize`` system nodes, labelled ``asya.sh/node-role=system``, untainted;
* per GPU pool, ``maxSize`` nodes (the most the autoscaler or Karpenter would start; here they exist up front,
  since nothing here starts nodes), with the pool's labels, the ``nvidia.com/gpu=true:NoSchedule`` taint, and
  ``gpusPerNode`` of ``nvidia.com/gpu`` capacity, as the NVIDIA device plugin advertises it.

Capacity (CPU, memory, pods) is the instance type's (the first of the pool's ``instanceTypes``), from the table
below; an instance type missing from it gets :data:`FALLBACK_CAPACITY` and says so in a Node annotation.
"""

from __future__ import annotations

from typing import Any

from asya_pulumi.objects.labels import SYSTEM_LABEL, gpu_pool_labels
from asya_pulumi.spec import GPU_RESOURCE, ClusterSpec

__all__ = ["KWOK_ANNOTATION", "node_objects"]

#: KWOK manages only the nodes carrying this annotation (``--manage-nodes-with-annotation-selector``).
KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}

#: vCPUs, GiB of memory and max pods (EKS's VPC CNI limit) of the instance types the stacks and examples name.
INSTANCE_CAPACITY: dict[str, tuple[int, int, int]] = {
    "t3.medium": (2, 4, 17), "t3.large": (2, 8, 35), "t3.xlarge": (4, 16, 58), "t3.2xlarge": (8, 32, 58),
    "m5.large": (2, 8, 29), "m5.xlarge": (4, 16, 58), "m5.2xlarge": (8, 32, 58), "m6i.large": (2, 8, 29),
    "m6i.xlarge": (4, 16, 58), "c5.xlarge": (4, 8, 58), "c6i.xlarge": (4, 8, 58),
    "g4dn.xlarge": (4, 16, 29), "g4dn.2xlarge": (8, 32, 29), "g5.xlarge": (4, 16, 58), "g5.2xlarge": (8, 32, 58),
    "g6.xlarge": (4, 16, 58), "g6.2xlarge": (8, 32, 58),
}
FALLBACK_CAPACITY = (4, 16, 58)


def node_objects(cluster: ClusterSpec, *, zone_count: int | None = None) -> list[dict[str, Any]]:
    """Every Node of ``cluster``: system nodes first, then each GPU pool's, spread over its availability zones."""
    zones = cluster.availability_zones[: zone_count or len(cluster.availability_zones)]
    system = cluster.system_nodes
    nodes = [
        _node(f"system-{index}", instance_type=system.instance_types[0], zone=zones[index % len(zones)],
              labels=dict(SYSTEM_LABEL))
        for index in range(system.min_size)
    ]
    for pool in cluster.gpu_pools:
        for index in range(pool.max_size):
            node = _node(f"{pool.name}-{index}", instance_type=pool.instance_types[0],
                         zone=zones[index % len(zones)], labels=gpu_pool_labels(pool),
                         gpus=pool.node_gpus)
            node["spec"]["taints"] = [{"key": GPU_RESOURCE, "value": "true", "effect": "NoSchedule"}]
            nodes.append(node)
    return nodes


def _node(name: str, *, instance_type: str, zone: str, labels: dict[str, str], gpus: int = 0) -> dict[str, Any]:
    cpu, memory_gib, pods = INSTANCE_CAPACITY.get(instance_type, FALLBACK_CAPACITY)
    capacity = {"cpu": str(cpu), "memory": f"{memory_gib}Gi", "pods": str(pods), "ephemeral-storage": "100Gi"}
    if gpus:
        capacity[GPU_RESOURCE] = str(gpus)
    annotations = {**KWOK_ANNOTATION, "node.alpha.kubernetes.io/ttl": "0"}
    if instance_type not in INSTANCE_CAPACITY:
        annotations["asya.sh/capacity"] = f"{instance_type} is not in asya's table; capacity is a guess"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": annotations,
            "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": instance_type, "topology.kubernetes.io/zone": zone,
                "type": "kwok", **labels,
            },
        },
        "spec": {},
        "status": {"capacity": capacity, "allocatable": capacity,
                   "nodeInfo": {"kubeletVersion": "kwok", "operatingSystem": "linux", "architecture": "amd64"}},
    }
