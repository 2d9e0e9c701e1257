"""A mesh's Kubernetes objects as ``pulumi up`` renders them, and the one change the local control plane needs.

:func:`mesh_objects` runs the ``ActorMesh`` component under Pulumi's mocks (:mod:`asya_pulumi.checks.mocked`, the same
recorder ``asya render`` uses) and returns every Kubernetes object it would create. :func:`for_local_broker` then
changes exactly two things, and nothing else, because KEDA here cannot reach AWS:

1. **Authentication.** On EKS, each ``TriggerAuthentication`` is ``podIdentity: {provider: aws, identityOwner:
   keda}`` (KEDA's own Pod Identity role, which may only read queue attributes). There is no Pod Identity agent
   here, so it becomes ``secretTargetRef`` to a Secret holding the local broker's static test credentials.
2. **Endpoint.** Each ``aws-sqs-queue`` trigger gets ``awsEndpoint`` (the local broker) and its ``queueURL`` is the
   local broker's URL of the same queue name (the AWS URL's host does not exist here).

Everything else — Deployments, pod security, NetworkPolicies, ServiceAccounts, the ScaledObjects' thresholds,
polling, cooldown and replica bounds — is applied as rendered. docs/kube.md repeats this list; a test checks that
these are the only fields that differ.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from asya_pulumi.kube.errors import KubeError
from asya_pulumi.objects.scaling import KEDA_API_VERSION, SQS_TRIGGER
from asya_pulumi.spec import MeshSpec

__all__ = ["LOCAL_CREDENTIALS_SECRET", "for_local_broker", "mesh_objects"]

#: The Secret (in each mesh namespace) the local TriggerAuthentications read the broker's credentials from.
LOCAL_CREDENTIALS_SECRET = "asya-local-sqs-credentials"


def mesh_objects(spec: MeshSpec, *, cluster_name: str = "local") -> list[dict[str, Any]]:
    """Every Kubernetes object the ``ActorMesh`` component renders for ``spec`` (Secrets' values redacted)."""
    from asya_pulumi.checks.mocked import MockedDeployment
    from asya_pulumi.components.mesh import ActorMesh

    deployment = MockedDeployment.start(project="asya", stack="local")
    deployment.run(lambda: ActorMesh(spec.namespace, spec=spec, cluster_name=cluster_name))
    return deployment.kubernetes_objects()


def for_local_broker(objects: list[dict[str, Any]], *, endpoint: str, queue_urls: Mapping[str, str],
                     access_key_id: str, secret_access_key: str) -> list[dict[str, Any]]:
    """``objects`` with KEDA's authentication and endpoint pointed at the local broker (see the module docstring);
    one credentials Secret is added per namespace that has a TriggerAuthentication. ``queue_urls`` maps each queue
    name to its URL on the broker."""
    changed: list[dict[str, Any]] = []
    secrets: dict[str, dict[str, Any]] = {}
    for original in objects:
        obj = copy.deepcopy(original)
        kind, namespace = obj.get("kind"), obj.get("metadata", {}).get("namespace")
        if obj.get("apiVersion") == KEDA_API_VERSION and kind == "TriggerAuthentication":
            obj["spec"] = {"secretTargetRef": [
                {"parameter": "awsAccessKeyID", "name": LOCAL_CREDENTIALS_SECRET, "key": "AWS_ACCESS_KEY_ID"},
                {"parameter": "awsSecretAccessKey", "name": LOCAL_CREDENTIALS_SECRET, "key": "AWS_SECRET_ACCESS_KEY"},
            ]}
            secrets.setdefault(namespace, {
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": LOCAL_CREDENTIALS_SECRET, "namespace": namespace},
                "stringData": {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret_access_key},
            })
        if obj.get("apiVersion") == KEDA_API_VERSION and kind == "ScaledObject":
            for trigger in obj["spec"].get("triggers", []):
                if trigger.get("type") == SQS_TRIGGER:
                    metadata = trigger["metadata"]
                    queue = str(metadata["queueURL"]).rstrip("/").rsplit("/", 1)[-1]
                    if queue not in queue_urls:
                        raise KubeError(f"ScaledObject {namespace}/{obj['metadata']['name']} reads queue {queue}, "
                                        f"which the local broker does not have; create the mesh's queues first")
                    metadata["queueURL"] = queue_urls[queue]
                    metadata["awsEndpoint"] = endpoint
        changed.append(obj)
    return [*secrets.values(), *changed]
