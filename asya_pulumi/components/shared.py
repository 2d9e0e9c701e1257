"""In-cluster objects a mesh's actors share: the handler-server ConfigMap and the KEDA TriggerAuthentication.

ActorMesh creates one of each per namespace (200 actors would otherwise store 200 copies of the handler servers
in etcd); a standalone AsyncActor creates its own, named after the actor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from asya_pulumi.components.common import child
from asya_pulumi.objects import pod, scaling


@dataclass(frozen=True)
class SharedObjects:
    handler_server: k8s.core.v1.ConfigMap
    #: sha256 prefix of the handler servers: a pod-template annotation, so a new server rolls the pods.
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
    """``{prefix}-handler-server`` (ConfigMap) and ``{prefix}-sqs`` (TriggerAuthentication, after ``keda``).

    The ConfigMap holds every handler server (Python and Node.js) and the path module the Python one loads (~69 KB
    of the 1 MiB a ConfigMap may hold): each actor's pod starts the one of its ``runtime``, and a mesh's actors may
    mix languages.
    """
    sources = pod.handler_server_sources()
    config_map = k8s.core.v1.ConfigMap(
        f"{resource_name}-handler-server",
        metadata={"name": f"{prefix}-handler-server", "namespace": k8s_namespace, "labels": labels},
        data=sources,
        opts=child(parent),
    )
    auth_name = f"{prefix}-sqs"
    trigger_auth = k8s.apiextensions.CustomResource(
        f"{resource_name}-trigger-auth",
        api_version=scaling.KEDA_API_VERSION,
        kind="TriggerAuthentication",
        metadata={"name": auth_name, "namespace": k8s_namespace, "labels": labels},
        spec=scaling.TRIGGER_AUTHENTICATION_SPEC,
        opts=child(parent, depends_on=list(keda)),
    )
    return SharedObjects(config_map, pod.sources_digest(sources), trigger_auth, auth_name)
