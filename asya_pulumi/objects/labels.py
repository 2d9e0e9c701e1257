"""The labels and tags every actor, sink, mesh object and node carries, written once (no Pulumi import).

The components put them on pods, namespaces and AWS resources; the PodMonitor selects pods by them and turns two of
them into series labels (:mod:`asya_pulumi.observability.scrape`). Both read them from here, so a renamed label
cannot leave the scrape selecting nothing.
"""

from __future__ import annotations

from asya_pulumi.spec import GPU_POOL_LABEL, GpuNodePoolSpec

#: ``app.kubernetes.io/part-of`` of everything the components create.
PART_OF = "asya"
#: Pod label naming the actor (or sink) a pod runs.
NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
#: Pod and namespace label, and AWS tag, naming the mesh (its namespace).
MESH_LABEL = "asya.sh/mesh"
#: AWS tag naming the actor a resource belongs to.
ACTOR_TAG = "asya.sh/actor"


def labels(*, namespace: str, actor: str) -> dict[str, str]:
    """The pod labels of ``actor`` in mesh ``namespace``."""
    return {
        NAME_LABEL: actor,
        PART_OF_LABEL: PART_OF,
        MANAGED_BY_LABEL: "pulumi",
        MESH_LABEL: namespace,
    }


def tags(*, namespace: str, actor: str | None = None) -> dict[str, str]:
    """The AWS tags of a mesh's resource (and of one actor's, when ``actor`` is given)."""
    found = {MESH_LABEL: namespace, "managed-by": "pulumi"}
    if actor is not None:
        found[ACTOR_TAG] = actor
    return found


#: The system node group's label (the managed node group's, and the KWOK nodes' of ``asya kube``).
SYSTEM_LABEL = {"asya.sh/node-role": "system"}
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"


def gpu_pool_labels(pool: GpuNodePoolSpec) -> dict[str, str]:
    """The labels of a GPU pool's nodes: its managed node group's, its Karpenter NodePool's, the local KWOK nodes'."""
    return {GPU_POOL_LABEL: pool.name, GPU_PRESENT_LABEL: "true"}
