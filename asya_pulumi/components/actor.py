"""``AsyncActor``: one actor on EKS — queue, Pod Identity role, ServiceAccount, handler-server ConfigMap,
Deployment (sidecar + handler, no ``spec.replicas``), and the KEDA ScaledObject that owns its replica count.

Every sidecar setting comes from ``SidecarConfig(...).to_env()`` built from the spec, so the pod's environment and
the queue's derived settings cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from asya_pulumi import iam, pod, scaling
from asya_pulumi.components.common import TYPE_PREFIX, child, labels, tags
from asya_pulumi.components.queue import ActorQueue
from asya_pulumi.components.shared import SharedObjects, shared_objects
from asya_pulumi.spec import DEFAULT_RUNTIME_IMAGE, AsyncActorSpec, SinkSpec
from asya_runtime.config import SidecarConfig

#: Pulumi must not wait for an actor's pods: with scale-to-zero (and GPU nodes that take minutes) none may start.
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


class AsyncActor(pulumi.ComponentResource):
    """An actor (``AsyncActorSpec``) or a sink (``SinkSpec``) of mesh ``namespace``.

    Bring-your-own cluster: pass ``opts=ResourceOptions(providers=[k8s_provider])``; the Kubernetes children inherit
    it. ``keda`` is what the ScaledObject must wait for (the KEDA release that installs the CRDs). ``shared``: the
    mesh's handler-server ConfigMap and TriggerAuthentication; without it the actor creates its own.
    """

    queue: ActorQueue
    queue_url: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        spec: AsyncActorSpec | SinkSpec,
        namespace: str,
        region: str,
        cluster_name: pulumi.Input[str],
        k8s_namespace: pulumi.Input[str] | None = None,
        gpu_pool: str | None = None,
        runtime_image: str = DEFAULT_RUNTIME_IMAGE,
        result_bucket: aws.s3.Bucket | None = None,
        keda: Sequence[pulumi.Resource] = (),
        shared: SharedObjects | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}AsyncActor", resource_name, None, opts)
        is_sink = isinstance(spec, SinkSpec)
        if isinstance(spec, AsyncActorSpec) and spec.gpu is not None and gpu_pool is None:
            raise ValueError(f"actor {spec.name!r} asks for a GPU; pass gpu_pool= (the GPU node pool's name)")
        if is_sink and result_bucket is None:
            raise ValueError(f"sink {spec.name!r} needs result_bucket= to write final envelopes to")
        actor = spec.name
        kube_ns = k8s_namespace if k8s_namespace is not None else namespace
        actor_labels = labels(namespace=namespace, actor=actor)
        meta = {"name": actor, "namespace": kube_ns, "labels": actor_labels}

        self.queue = ActorQueue(
            f"{resource_name}-queue",
            namespace=namespace,
            actor=actor,
            resiliency=spec.resiliency,
            tags=tags(namespace=namespace, actor=actor),
            opts=child(self),
        )
        self.role = aws.iam.Role(
            f"{resource_name}-role",
            assume_role_policy=json.dumps(iam.pod_identity_trust_policy()),
            tags=tags(namespace=namespace, actor=actor),
            opts=child(self),
        )
        bucket_arn = result_bucket.arn if result_bucket is not None else None
        aws.iam.RolePolicy(
            f"{resource_name}-policy",
            role=self.role.id,
            policy=pulumi.Output.all(self.queue.arn, bucket_arn).apply(
                lambda arns: json.dumps(iam.actor_policy(queue_arn=arns[0], namespace=namespace, bucket_arn=arns[1]))
            ),
            opts=child(self),
        )
        service_account = k8s.core.v1.ServiceAccount(
            f"{resource_name}-sa", metadata=meta, automount_service_account_token=False, opts=child(self)
        )
        association = aws.eks.PodIdentityAssociation(
            f"{resource_name}-pod-identity",
            cluster_name=cluster_name,
            namespace=kube_ns,
            service_account=service_account.metadata.name,
            role_arn=self.role.arn,
            opts=child(self),
        )

        bucket_name = result_bucket.bucket if result_bucket is not None else None
        sidecar = pulumi.Output.from_input(bucket_name).apply(
            lambda bucket: pod.sidecar_container(
                image=runtime_image,
                sidecar_env=SidecarConfig(
                    actor=actor,
                    namespace=namespace,
                    mode=spec.name if isinstance(spec, SinkSpec) else "actor",
                    region=region,
                    concurrency=spec.concurrency,
                    resiliency=spec.resiliency,
                    result_bucket=bucket,
                ).to_env(),
            )
        )
        if shared is None:
            shared = shared_objects(
                self, resource_name=resource_name, prefix=actor, k8s_namespace=kube_ns, labels=actor_labels, keda=keda
            )
        template_annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(pod.METRICS_PORT)}
        config_map_name: pulumi.Output[str] | None = None
        if isinstance(spec, AsyncActorSpec):
            config_map_name = shared.handler_server.metadata.name
            template_annotations["asya.sh/handler-server-sha256"] = shared.handler_server_digest
            containers: list[object] = [pod.handler_container(spec=spec), sidecar]
        else:
            containers = [sidecar]
        pod_spec = pod.pod_spec(
            containers=containers,  # type: ignore[arg-type]
            service_account=actor,
            resiliency=spec.resiliency,
            handler_server_config_map=config_map_name,
            gpu_pool=gpu_pool if isinstance(spec, AsyncActorSpec) and spec.gpu is not None else None,
            tolerations=[t.model_dump(by_alias=True, exclude_none=True) for t in getattr(spec, "tolerations", [])],
            node_selector=dict(getattr(spec, "node_selector", {})),
        )
        selector = {"app.kubernetes.io/name": actor, "asya.sh/mesh": namespace}
        self.deployment = k8s.apps.v1.Deployment(
            f"{resource_name}-deployment",
            metadata={**meta, "annotations": SKIP_AWAIT},
            spec={
                # No `replicas`: KEDA's HPA owns it (server-side apply would fight over the field otherwise).
                "selector": {"matchLabels": selector},
                "revisionHistoryLimit": 3,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": {"metadata": {"labels": actor_labels, "annotations": template_annotations},
                             "spec": pod_spec},
            },
            # Pod Identity credentials are injected at pod creation: the association must exist first.
            opts=child(self, depends_on=[association, service_account]),
        )
        trigger_auth = shared.trigger_authentication
        scaled = scaling.scaled_object(
            name=actor,
            namespace="",
            deployment=actor,
            scaling=spec.scaling,
            queue_url=self.queue.url,
            region=region,
            trigger_authentication_name=shared.trigger_authentication_name,
            labels=actor_labels,
        )
        self.scaled_object = k8s.apiextensions.CustomResource(
            f"{resource_name}-scaled-object",
            api_version=scaled["apiVersion"],
            kind=scaled["kind"],
            metadata=meta,
            spec=scaled["spec"],
            opts=child(self, depends_on=[*keda, trigger_auth, self.deployment]),
        )
        self.queue_url = self.queue.url
        self.role_arn = self.role.arn
        self.register_outputs({"queueUrl": self.queue_url, "roleArn": self.role_arn})
