"""``ActorMesh``: a namespace, its result bucket, the two sinks and every actor of a ``MeshSpec``.

Routes were checked when the ``MeshSpec`` was built (an unknown actor fails before anything is registered).
The namespace is hardened by default: Pod Security ``restricted`` labels (``pod_security``), a default-deny
NetworkPolicy (``network_policy``) and a ResourceQuota of what its actors can reach at full scale
(``resource_quota``, :mod:`asya_pulumi.objects.quota`); each can be switched off with None.

A mesh is also a base other stacks add actors to: the platform stack exports ``mesh_exports(mesh, ...)`` and each
team stack deploys ``TeamActors`` into it (``components/mesh_ref.py``), with the same IAM, KEDA and network rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from asya_pulumi.components.actor import AsyncActor
from asya_pulumi.components.bucket import ResultBucket
from asya_pulumi.components.common import PART_OF, TYPE_PREFIX, AsyaComponent, ComponentOutput, child, tags
from asya_pulumi.components.gateway import Gateway, GatewayArgs
from asya_pulumi.components.keda import Keda
from asya_pulumi.components.network_policy import MeshNetworkPolicy, mesh_network_policy
from asya_pulumi.components.observability import Observability, ObservabilityArgs
from asya_pulumi.components.pod_security import PodSecurityLevel, pod_security_labels
from asya_pulumi.components.shared import shared_objects
from asya_pulumi.components.status_table import StatusTable
from asya_pulumi.components.triggers import MeshTriggers, queue_senders
from asya_pulumi.objects import quota
from asya_pulumi.objects.labels import MESH_LABEL, PART_OF_LABEL
from asya_pulumi.objects.quota import QuotaSettings
from asya_pulumi.objects.triggers import s3_trigger_targets
from asya_pulumi.observability import ObservabilitySettings
from asya_pulumi.spec import MeshSpec, SinkSpec
from asya_pulumi.spec.gateway import check_deployable
from asya_runtime.naming import SINKS, SUCCESS_SINK
from asya_runtime.triggers import S3TriggerTarget

DEFAULT_NETWORK_POLICY = MeshNetworkPolicy()
DEFAULT_QUOTA = QuotaSettings()


class ActorMesh(AsyaComponent):
    """Outputs: ``queue_urls`` (actor → URL, sinks included), ``bucket_name``, ``namespace``.

    Bring-your-own cluster: pass ``opts=ResourceOptions(providers=[k8s_provider])`` and your cluster's name.
    ``keda`` is the :class:`Keda` component (or the resources ScaledObjects must wait for, if KEDA is yours).
    ``network_policy``: the namespace's default-deny policy (:class:`MeshNetworkPolicy`: metrics scrapers, egress
    CIDRs); None creates none. ``pod_security``: the Pod Security Admission level enforced, audited and warned on
    the namespace (default ``restricted``); None sets no labels. ``resource_quota``: the namespace's ResourceQuota,
    by default what every actor of the mesh (sinks included) claims at its ``maxReplicaCount``
    (:class:`~asya_pulumi.objects.quota.QuotaSettings`: a headroom for actors team stacks add, or explicit limits);
    None creates none. ``observability``: create the mesh's PodMonitor,
    Grafana dashboard and alerts (:class:`Observability`); None (the default) creates none.
    With ``spec.gateway`` set, the mesh creates its status table (:class:`StatusTable`), gives every sidecar its
    name and the right to update and batch-read it, and creates a :class:`Gateway`; an actor with ``rateLimit`` has the
    table created too (gateway or not) and may update its own token-bucket item there; ``gateway_issuer`` is the OIDC
    issuer when ``gateway.auth.issuer`` is null (e.g. the cluster's ``oidc_issuer_url``), ``gateway_ingress_from``
    the namespaces that may reach the gateway (None: any; every request needs a token).
    """

    OUTPUTS = (
        ComponentOutput("queueUrls", "queue_urls", dict[str, str], "Actor name (sinks included) → SQS queue URL."),
        ComponentOutput("bucketName", "bucket_name", str, "The S3 bucket the sinks write results to."),
        ComponentOutput("namespace", "namespace", str, "The mesh's Kubernetes namespace."),
        ComponentOutput("statusTableName", "status_table_name", str,
                        "The status table (asya-{namespace}_status); empty when the mesh has none (no gateway "
                        "and no actor with rateLimit)."),
        ComponentOutput("gatewayUrl", "gateway_url", str,
                        "The gateway's in-cluster URL; empty when the gateway is off."),
    )
    #: The validated spec the mesh was built from (team stacks read its actor names and GPU pools from the exports).
    spec: MeshSpec
    actors: dict[str, AsyncActor]
    queue_urls: pulumi.Output[dict[str, str]]
    bucket_name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    status_table_name: pulumi.Output[str]
    gateway_url: pulumi.Output[str]
    status_table: StatusTable | None
    gateway: Gateway | None
    #: The mesh's S3 notifications and schedules; None without ``spec.triggers``.
    triggers: MeshTriggers | None

    def __init__(
        self,
        resource_name: str,
        *,
        spec: MeshSpec,
        cluster_name: pulumi.Input[str],
        keda: Keda | Sequence[pulumi.Resource] = (),
        network_policy: MeshNetworkPolicy | None = DEFAULT_NETWORK_POLICY,
        pod_security: PodSecurityLevel | None = "restricted",
        resource_quota: QuotaSettings | None = DEFAULT_QUOTA,
        observability: ObservabilitySettings | None = None,
        gateway_issuer: pulumi.Input[str] | None = None,
        gateway_ingress_from: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        _refuse_unusable(spec=spec, keda=keda, network_policy=network_policy, observability=observability)
        if spec.gateway is not None:
            check_deployable(spec.gateway, issuer_given=gateway_issuer is not None)
        super().__init__(f"{TYPE_PREFIX}ActorMesh", resource_name, None, opts)
        self.spec = spec
        keda_dependencies = [keda.release] if isinstance(keda, Keda) else list(keda)
        mesh_labels = {PART_OF_LABEL: PART_OF, MESH_LABEL: spec.namespace}
        security = pod_security_labels(pod_security) if pod_security is not None else {}
        ns = k8s.core.v1.Namespace(
            f"{resource_name}-namespace",
            metadata={"name": spec.namespace, "labels": {PART_OF_LABEL: PART_OF, **security}},
            opts=child(self),
        )
        if resource_quota is not None:
            self._resource_quota(resource_name, spec=spec, settings=resource_quota, k8s_namespace=ns.metadata.name,
                                 labels=mesh_labels)
        if network_policy is not None:
            mesh_network_policy(
                self, resource_name=resource_name, k8s_namespace=ns.metadata.name, labels=mesh_labels,
                settings=network_policy,
            )
        results = ResultBucket(
            f"{resource_name}-results",
            namespace=spec.namespace,
            tags=tags(namespace=spec.namespace),
            retention=spec.result_retention,
            opts=child(self),
        )
        shared = shared_objects(
            self, resource_name=resource_name, prefix="asya", k8s_namespace=ns.metadata.name,
            labels=mesh_labels, keda=keda_dependencies,
        )
        common = {
            "namespace": spec.namespace,
            "region": spec.region,
            "cluster_name": cluster_name,
            "k8s_namespace": ns.metadata.name,
            "runtime_image": spec.runtime_image,
            "keda": keda_dependencies,
            "shared": shared,
            "hop_budget": spec.hop_budget,
        }
        # The status table: the gateway's store, and the shared token buckets of rate-limited actors (with or
        # without a gateway; then only those actors get the table, each its own bucket item).
        rate_limited = any(actor.rate_limit is not None for actor in spec.actors)
        self.status_table = None if spec.gateway is None and not rate_limited else StatusTable(
            f"{resource_name}-status", namespace=spec.namespace,
            deletion_protection=spec.gateway is not None and spec.gateway.deletion_protection, opts=child(self),
        )
        if self.status_table is not None and spec.gateway is not None:
            common["status_table_arn"] = self.status_table.table_arn
            common["status_retention_days"] = spec.gateway.status_retention_days
        self.actors = self._actors(resource_name, spec=spec, bucket=results.bucket, common=common)
        # spec.triggers: S3 notifications and schedules sending to their routes' first queues (none by default).
        self.triggers = None if not spec.triggers else MeshTriggers(
            f"{resource_name}-triggers", mesh=spec, queues={n: a.queue for n, a in self.actors.items()},
            bucket=results.bucket, roles={a.name: self.actors[a.name].role for a in spec.actors}, opts=child(self),
        )
        names = list(self.actors)
        self.queue_urls = pulumi.Output.all(*(a.queue_url for a in self.actors.values())).apply(
            lambda urls: dict(zip(names, urls, strict=True))
        )
        self.observability = (
            Observability(
                f"{resource_name}-observability",
                ObservabilityArgs(mesh=spec.namespace, namespace=ns.metadata.name, settings=observability),
                opts=child(self),
            )
            if observability is not None
            else None
        )
        self.gateway = None if self.status_table is None or spec.gateway is None else Gateway(
            f"{resource_name}-gateway",
            GatewayArgs(
                mesh=spec, cluster_name=cluster_name, bucket_name=results.bucket.bucket, bucket_arn=results.bucket.arn,
                status_table_arn=self.status_table.table_arn, k8s_namespace=ns.metadata.name,
                same_account_queue_arn=self.actors[SUCCESS_SINK].queue.arn, issuer=gateway_issuer,
                ingress_from=gateway_ingress_from, network_policy=network_policy is not None,
            ),
            opts=child(self),
        )
        self.bucket_name = results.bucket.bucket
        self.namespace = ns.metadata.name
        self.status_table_name = self.status_table.table_name if self.status_table else pulumi.Output.from_input("")
        self.gateway_url = self.gateway.url if self.gateway else pulumi.Output.from_input("")
        self.register()

    def _resource_quota(
        self, resource_name: str, *, spec: MeshSpec, settings: QuotaSettings, k8s_namespace: pulumi.Input[str],
        labels: dict[str, str],
    ) -> k8s.core.v1.ResourceQuota:
        shapes = [quota.actor_pod_shape(SinkSpec(name=sink)) for sink in SINKS]
        shapes += [quota.actor_pod_shape(actor) for actor in spec.actors]
        hard = settings.hard or quota.mesh_quota_hard(pods=shapes, headroom=settings.headroom)
        obj = quota.resource_quota(namespace=k8s_namespace, labels=labels, hard=hard)
        return k8s.core.v1.ResourceQuota(
            f"{resource_name}-quota", metadata=obj["metadata"], spec=obj["spec"], opts=child(self)
        )

    def _actors(
        self, resource_name: str, *, spec: MeshSpec, bucket: aws.s3.Bucket, common: dict[str, Any]
    ) -> dict[str, AsyncActor]:
        """The two sinks, then every actor of ``spec``, each an :class:`AsyncActor` with the mesh's ``common``
        arguments (namespace, region, cluster, shared objects, KEDA) and the result bucket."""
        actors: dict[str, AsyncActor] = {}
        for sink in SINKS:
            actors[sink] = AsyncActor(
                f"{resource_name}-{sink}",
                spec=SinkSpec(name=sink),
                result_bucket=bucket,
                opts=child(self),
                **common,
            )
        for actor in spec.actors:
            actors[actor.name] = AsyncActor(
                f"{resource_name}-{actor.name}",
                spec=actor,
                gpu_pool=spec.gpu_pool_of(actor),
                result_bucket=bucket,  # claim-check: large envelopes travel through the bucket
                rate_limit_table_arn=self.status_table.table_arn
                if actor.rate_limit is not None and self.status_table is not None else None,
                queue_senders=queue_senders(spec, actor=actor.name, mesh_bucket_arn=bucket.arn),
                s3_triggers=_trigger_targets(spec, actor=actor.name),
                opts=child(self),
                **common,
            )
        return actors


def _trigger_targets(spec: MeshSpec, *, actor: str) -> Callable[[str], dict[str, S3TriggerTarget]]:
    """Given the result bucket's name, the S3 triggers whose route starts at ``actor`` (its ``ASYA_S3_TRIGGERS``)."""
    return lambda bucket: s3_trigger_targets(spec, actor=actor, mesh_bucket=bucket)


def _refuse_unusable(
    *,
    spec: MeshSpec,
    keda: Keda | Sequence[pulumi.Resource],
    network_policy: MeshNetworkPolicy | None,
    observability: ObservabilitySettings | None,
) -> None:
    """Refuse, before anything is created, arguments that would deploy a mesh that cannot work."""
    if isinstance(keda, Keda) and keda.mesh_namespaces is not None and spec.namespace not in keda.mesh_namespaces:
        raise ValueError(
            f"KEDA may read only the queues of meshes {keda.mesh_namespaces}, so mesh {spec.namespace!r} would "
            f"never scale; add {spec.namespace!r} to Keda(mesh_namespaces=...)"
        )
    if observability is not None and network_policy is not None and network_policy.metrics_from is None:
        raise ValueError(
            "observability is on, but network_policy.metrics_from is None: the mesh's default-deny policy would "
            "keep Prometheus from scraping the sidecars; set MeshNetworkPolicy(metrics_from={"
            "'kubernetes.io/metadata.name': '<your Prometheus namespace>'})"
        )
