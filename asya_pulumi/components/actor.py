"""``AsyncActor``: one actor on EKS — queue, Pod Identity role, ServiceAccount, Deployment (sidecar + handler,
no ``spec.replicas``), the KEDA ScaledObject that owns its replica count, and a PodDisruptionBudget.

The budget is ``maxUnavailable: 1``: a node drain evicts the actor's pods one at a time, each with its full grace
period to finish its call. ``minAvailable`` would block every drain of an actor scaled to one replica (and means
nothing at zero), so it is not used.

Every sidecar setting comes from ``sidecar_config(spec, ...).to_env()`` (:mod:`asya_pulumi.objects.sidecar`, which
``asya dev`` builds its sidecars with too), so the pod's environment and the queue's derived settings cannot drift
apart.

Secrets: ``secretEnv`` values (Pulumi secrets, e.g. an AWS Secrets Manager value read with
``aws.secretsmanager.get_secret_version_output``) go into a Kubernetes Secret of the actor, wrapped in
``Output.secret`` so Pulumi encrypts them in its state; the Deployment holds only ``secretKeyRef`` s. The Secret
is auto-named: pulumi-kubernetes replaces an auto-named Secret whose data changed, under a new name, so the
Deployment's reference changes and the pods roll onto the new value. A Pulumi secret passed in plain ``env`` is
refused at deploy time (it would be written into the Deployment in clear).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from asya_pulumi.components.common import TYPE_PREFIX, AsyaComponent, ComponentOutput, child, labels, tags
from asya_pulumi.components.identity import pod_identity
from asya_pulumi.components.queue import ActorQueue
from asya_pulumi.components.shared import SharedObjects, shared_objects
from asya_pulumi.objects import iam, pod, scaling
from asya_pulumi.objects.labels import MESH_LABEL, NAME_LABEL
from asya_pulumi.objects.sidecar import sidecar_config, status_settings
from asya_pulumi.spec import DEFAULT_RUNTIME_IMAGE, AsyncActorSpec, SinkSpec
from asya_runtime.config import DEFAULT_HOP_BUDGET
from asya_runtime.naming import check_names_fit, role_name, status_table_name
from asya_runtime.retention import DEFAULT_RETENTION_DAYS
from asya_runtime.triggers import S3TriggerTarget

#: Pulumi must not wait for an actor's pods: with scale-to-zero (and GPU nodes that take minutes) none may start.
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}
#: A voluntary disruption (drain, node upgrade, autoscaler scale-down) takes at most one of an actor's pods at a time.
MAX_UNAVAILABLE = 1


class AsyncActor(AsyaComponent):
    """An actor (``AsyncActorSpec``) or a sink (``SinkSpec``) of mesh ``namespace``.

    Bring-your-own cluster: pass ``opts=ResourceOptions(providers=[k8s_provider])``; the Kubernetes children inherit
    it. ``keda`` is what the ScaledObject must wait for (the KEDA release that installs the CRDs). ``shared``: the
    mesh's handler-server ConfigMap and TriggerAuthentication; without it the actor creates its own.
    ``hop_budget``: the mesh's ``hopBudget`` (hops an envelope may make before it is error-ended as a loop).
    ``status_table_arn``: the mesh's status table (its gateway is on): the sidecar reports status there and may
    update and batch-read its items, no other table's; ``status_retention_days``: how long its records live
    (``gateway.statusRetentionDays``). ``rate_limit_table_arn``: the mesh's status table for an actor with
    ``rateLimit`` (required then): its sidecar keeps the shared token bucket there and may update that one item.
    """

    OUTPUTS = (
        ComponentOutput("queueUrl", "queue_url", str, "The actor's SQS queue URL."),
        ComponentOutput("roleArn", "role_arn", str, "The actor's IAM role (Pod Identity)."),
    )
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
        hop_budget: int = DEFAULT_HOP_BUDGET,
        status_table_arn: pulumi.Input[str] | None = None,
        rate_limit_table_arn: pulumi.Input[str] | None = None,
        queue_senders: Callable[[str], pulumi.Input[list[dict[str, Any]]]] | None = None,
        s3_triggers: Callable[[str], Mapping[str, S3TriggerTarget]] | None = None,
        status_retention_days: int = DEFAULT_RETENTION_DAYS,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``queue_senders``: statements added to the queue's policy (:class:`ActorQueue`'s ``senders``);
        ``s3_triggers``: given the result bucket's name, the S3 triggers whose route starts here, for the sidecar's
        ``ASYA_S3_TRIGGERS`` (both from the mesh's triggers, ``components/triggers.py``)."""
        if isinstance(spec, AsyncActorSpec) and spec.gpu is not None and gpu_pool is None:
            raise ValueError(f"actor {spec.name!r} asks for a GPU; pass gpu_pool= (the GPU node pool's name)")
        if isinstance(spec, SinkSpec) and result_bucket is None:
            raise ValueError(f"sink {spec.name!r} needs result_bucket= to write final envelopes to")
        if isinstance(spec, AsyncActorSpec) and spec.fan_in is not None and result_bucket is None:
            raise ValueError(f"actor {spec.name!r} has fanIn, which keeps its state in the mesh's bucket; pass "
                             f"result_bucket= (ActorMesh does)")
        check_names_fit(namespace=namespace, actor=spec.name)
        rate_limited = isinstance(spec, AsyncActorSpec) and spec.rate_limit is not None
        if rate_limited and rate_limit_table_arn is None:
            raise ValueError(
                f"actor {spec.name!r} has rateLimit, whose token bucket lives in the mesh's status table: deploy it "
                f"in an ActorMesh (which then creates the table), or pass rate_limit_table_arn= (the table "
                f"asya-{namespace}_status); or remove rateLimit"
            )
        super().__init__(f"{TYPE_PREFIX}AsyncActor", resource_name, None, opts)
        self._name, self._spec, self._namespace, self._region = resource_name, spec, namespace, region
        self._hop_budget = hop_budget
        self._status_table_arn = status_table_arn
        self._rate_limit_table_arn = rate_limit_table_arn if rate_limited else None
        self._status_retention_days = status_retention_days
        self._labels = labels(namespace=namespace, actor=spec.name)
        kube_ns = k8s_namespace if k8s_namespace is not None else namespace
        self._kube_namespace: pulumi.Input[str] = kube_ns
        self._meta = {"name": spec.name, "namespace": kube_ns, "labels": self._labels}
        self._selector = {NAME_LABEL: spec.name, MESH_LABEL: namespace}

        self.queue = ActorQueue(
            f"{resource_name}-queue",
            namespace=namespace,
            actor=spec.name,
            resiliency=spec.resiliency,
            tags=tags(namespace=namespace, actor=spec.name),
            senders=queue_senders,
            opts=child(self),
        )
        self._s3_triggers = s3_triggers
        service_account, association = self._identity(cluster_name=cluster_name, result_bucket=result_bucket)
        self.secret_env = self._secret_env() if isinstance(spec, AsyncActorSpec) else None
        if shared is None:
            shared = shared_objects(
                self, resource_name=resource_name, prefix=spec.name, k8s_namespace=kube_ns, labels=self._labels,
                keda=keda,
            )
        self.deployment = k8s.apps.v1.Deployment(
            f"{resource_name}-deployment",
            metadata={**self._meta, "annotations": SKIP_AWAIT},
            spec=self._deployment_spec(
                region=region, runtime_image=runtime_image, gpu_pool=gpu_pool, shared=shared,
                bucket_name=result_bucket.bucket if result_bucket is not None else None,
            ),
            # Pod Identity credentials are injected at pod creation: the association must exist first.
            opts=child(
                self,
                depends_on=[association, service_account, *([self.secret_env] if self.secret_env else [])],
            ),
        )
        self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
            f"{resource_name}-pdb",
            metadata=self._meta,
            spec={"maxUnavailable": MAX_UNAVAILABLE, "selector": {"matchLabels": self._selector}},
            opts=child(self),
        )
        self.scaled_object = None if not spec.scaling.enabled else k8s.apiextensions.CustomResource(
            f"{resource_name}-scaled-object",
            api_version=scaling.KEDA_API_VERSION,
            kind="ScaledObject",
            metadata=self._meta,
            spec=scaling.scaled_object_spec(
                deployment=spec.name, scaling=spec.scaling, queue_url=self.queue.url, region=region,
                trigger_authentication=shared.trigger_authentication_name,
                batch_size=spec.batch.max_size if isinstance(spec, AsyncActorSpec) and spec.batch is not None else 1,
            ),
            opts=child(self, depends_on=[*keda, shared.trigger_authentication, self.deployment]),
        )
        self.queue_url = self.queue.url
        self.role_arn = self.role.arn
        self.register()

    def _identity(
        self, *, cluster_name: pulumi.Input[str], result_bucket: aws.s3.Bucket | None
    ) -> tuple[k8s.core.v1.ServiceAccount, aws.eks.PodIdentityAssociation]:
        """IAM role (own queue, mesh queues, sinks: result objects), ServiceAccount, Pod Identity association."""
        name, namespace, actor, region = self._name, self._namespace, self._spec.name, self._region
        bucket_arn = result_bucket.arn if result_bucket is not None else None
        if isinstance(self._spec, AsyncActorSpec) or bucket_arn is None:  # the bucket: offloaded envelopes
            fanin_actor = actor if isinstance(self._spec, AsyncActorSpec) and self._spec.fan_in is not None else None
            policy = pulumi.Output.all(self.queue.arn, bucket_arn, self._status_table_arn,
                                       self._rate_limit_table_arn).apply(
                lambda arns: json.dumps(iam.actor_policy(
                    queue_arn=arns[0], namespace=namespace, bucket_arn=arns[1], status_table_arn=arns[2],
                    fanin_actor=fanin_actor, rate_limit=None if arns[3] is None else (arns[3], actor)))
            )
        else:
            policy = pulumi.Output.all(self.queue.arn, bucket_arn, self._status_table_arn).apply(
                lambda arns: json.dumps(iam.sink_policy(
                    queue_arn=arns[0], sink=actor, namespace=namespace, bucket_arn=arns[1], status_table_arn=arns[2]))
            )
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata=self._meta, automount_service_account_token=False, opts=child(self)
        )
        identity = pod_identity(
            self,
            prefix=name,
            cluster_arn=pulumi.Output.all(self.queue.arn, cluster_name).apply(
                lambda args: iam.eks_cluster_arn(same_account_arn=args[0], region=region, cluster_name=args[1])
            ),
            cluster_name=cluster_name,
            namespace=self._kube_namespace,
            service_account=actor,
            association_service_account=service_account.metadata.name,
            policy=policy,
            role_name=role_name(namespace=namespace, actor=actor, region=region),
            tags=tags(namespace=namespace, actor=actor),
        )
        self.role = identity.role
        return service_account, identity.association

    def _secret_env(self) -> k8s.core.v1.Secret | None:
        """The actor's Secret holding ``secretEnv`` (None when there is none); every value is ``Output.secret``."""
        spec = self._spec
        if not isinstance(spec, AsyncActorSpec) or not spec.secret_env:
            return None
        return k8s.core.v1.Secret(
            f"{self._name}-secret-env",
            # No name: auto-named, so changed data replaces the Secret under a new name and the pods roll.
            metadata={"namespace": self._meta["namespace"], "labels": self._labels},
            type="Opaque",
            immutable=True,
            string_data={pod.secret_env_key(k): pulumi.Output.secret(v) for k, v in spec.secret_env.items()},
            opts=child(self),
        )

    def _checked_spec(self, spec: AsyncActorSpec) -> AsyncActorSpec:
        """``spec`` with each Output of plain ``env`` guarded: a Pulumi secret there fails the deploy, naming it."""
        guarded = {k: _refuse_secret(actor=spec.name, name=k, value=v) for k, v in spec.env.items()}
        return spec.model_copy(update={"env": guarded})

    def _triggers_of(self, bucket: str | None) -> dict[str, Any]:
        """``{"s3_triggers": ...}`` for the sidecar when S3 triggers start at this actor, else nothing."""
        if self._s3_triggers is None or bucket is None:
            return {}
        targets = dict(self._s3_triggers(bucket))
        return {"s3_triggers": targets} if targets else {}

    def _deployment_spec(
        self,
        *,
        region: str,
        runtime_image: str,
        gpu_pool: str | None,
        shared: SharedObjects,
        bucket_name: pulumi.Input[str] | None,
    ) -> dict[str, Any]:
        """Selector, rollout and pod template. No ``replicas`` while KEDA's HPA owns it (SSA would fight over it);
        an actor with ``scaling.enabled: false`` has no ScaledObject and runs its ``replicas``."""
        spec = self._spec
        # A deployed sink keeps a record only from the actor it names (SQS's SenderId is a real IAM role here).
        on_aws = {"verify_senders": True} if isinstance(spec, SinkSpec) else {}
        # The mesh's gateway is on: the sidecar reports status to the mesh's table (unset: no status tracked).
        status = {} if self._status_table_arn is None else status_settings(
            namespace=self._namespace, retention_days=self._status_retention_days)
        if not status and self._rate_limit_table_arn is not None:  # its token bucket, gateway off (rate_limit.py)
            status = {"status_table": status_table_name(self._namespace)}
        config = sidecar_config(
            spec, namespace=self._namespace, region=region, hop_budget=self._hop_budget, **on_aws, **status
        )
        sidecar = pulumi.Output.from_input(bucket_name).apply(
            lambda bucket: pod.sidecar_container(
                image=runtime_image,
                sidecar=config,
                sidecar_env=config.model_copy(update={"result_bucket": bucket, **self._triggers_of(bucket)}).to_env()
                | pod.sidecar_tracing_env(spec),
                overrides=spec.sidecar if isinstance(spec, AsyncActorSpec) else None,
            )
        )
        annotations = pod.pod_annotations(sidecar=config, has_handler=isinstance(spec, AsyncActorSpec))
        if isinstance(spec, AsyncActorSpec):
            annotations["asya.sh/handler-server-sha256"] = shared.handler_server_digest
            secret_name = self.secret_env.metadata.name if self.secret_env is not None else None
            handler = pod.handler_container(spec=self._checked_spec(spec), secret_name=secret_name)
            pod_spec = pod.pod_spec(
                containers=[handler, sidecar],
                service_account=spec.name,
                sidecar=config,
                handler_server_config_map=shared.handler_server.metadata.name,
                gpu_pool=gpu_pool if spec.gpu is not None else None,
                tolerations=[t.model_dump(by_alias=True, exclude_none=True) for t in spec.tolerations],
                node_selector=dict(spec.node_selector),
                extra_volumes=[volume.source() for volume in spec.volumes],
                image_pull_secrets=list(spec.image_pull_secrets),
                priority_class_name=spec.priority_class_name,
            )
        else:
            pod_spec = pod.pod_spec(
                containers=[sidecar], service_account=spec.name, sidecar=config,
                handler_server_config_map=None, gpu_pool=None, tolerations=[], node_selector={},
            )
        fixed = {"replicas": spec.replicas} if isinstance(spec, AsyncActorSpec) and not spec.scaling.enabled else {}
        return {
            **fixed,
            "selector": {"matchLabels": self._selector},
            "revisionHistoryLimit": 3,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": pod.MAX_SURGE, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": self._labels, "annotations": annotations}, "spec": pod_spec},
        }


def _refuse_secret(*, actor: str, name: str, value: pulumi.Input[str]) -> pulumi.Input[str]:
    """``value`` unchanged, unless it is a secret Output: then resolving it raises, naming the variable and the fix.

    Whether an Output is secret is known only asynchronously, so the check rides along with the value itself.
    """
    if not isinstance(value, pulumi.Output):
        return value
    output = value

    async def not_secret() -> bool:
        if await output.is_secret():
            raise ValueError(
                f"actor {actor!r}: env {name!r} is a Pulumi secret; plain env is written into the Deployment in "
                f"clear: pass it in secret_env (a Kubernetes Secret, referenced with secretKeyRef) instead"
            )
        return True

    check: pulumi.Input[bool] = not_secret()
    return pulumi.Output.all(output, check).apply(lambda pair: pair[0])
