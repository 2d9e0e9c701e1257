"""In-cluster objects a mesh's actors share: the handler-server ConfigMap and the KEDA TriggerAuthentication.

ActorMesh creates one of each per namespace (200 actors would otherwise store 200 copies of the handler server
in etcd); a standalone AsyncActor creates its own, named after the actor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from asya_pulumi import pod, scaling
from asya_pulumi.components.common import child


@dataclass(frozen=True)
class SharedObjects:
    handler_server: k8s.core.v1.ConfigMap
    #: sha256 prefix of the handler server: a pod-template annotation, so a new server rolls the pods.
    handler_server_digest: str
    trigger_authentication: k8s.apiextensions.CustomResource
    trigger_authentication_name: str


def shared_objects(
    parent: pulumi.Resource,
    *,
    resource_name: str,
    prefix: str,
    k8s_namespace: pulumi.Input[str],
    labels: dict[str, str],
    keda: Sequence[pulumi.Resource],
) -> SharedObjects:
    """``{prefix}-handler-server`` (ConfigMap) and ``{prefix}-sqs`` (TriggerAuthentication, after ``keda``)."""
    source = pod.handler_server_source()
    config_map = k8s.core.v1.ConfigMap(
        f"{resource_name}-handler-server",
        metadata={"name": f"{prefix}-handler-server", "namespace": k8s_namespace, "labels": labels},
        data={pod.HANDLER_SERVER_FILE: source},
        opts=child(parent),
    )
    auth = scaling.trigger_authentication(name=f"{prefix}-sqs", namespace="")
    trigger_auth = k8s.apiextensions.CustomResource(
        f"{resource_name}-trigger-auth",
        api_version=auth["apiVersion"],
        kind=auth["kind"],
        metadata={"name": auth["metadata"]["name"], "namespace": k8s_namespace, "labels": labels},
        spec=auth["spec"],
        opts=child(parent, depends_on=list(keda)),
    )
    return SharedObjects(config_map, pod.source_digest(source), trigger_auth, auth["metadata"]["name"])
