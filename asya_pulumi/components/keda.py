"""``Keda``: the KEDA operator (Helm v3 release, pinned chart) in its own namespace, with an EKS Pod Identity
that may read the depth of the asya queues (``sqs:GetQueueAttributes``) and nothing else.

ScaledObjects authenticate as this operator identity (``podIdentity: {provider: aws, identityOwner: keda}``), so no
actor role is ever lent to KEDA. Pass ``keda.release`` as the dependency of every ScaledObject (ActorMesh does).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from asya_pulumi.components.common import TYPE_PREFIX, AsyaComponent, ComponentOutput, child
from asya_pulumi.components.identity import pod_identity
from asya_pulumi.objects import iam
from asya_pulumi.spec.limits import KEDA_NAMESPACE
from asya_runtime.naming import queue_name

#: The KEDA Helm chart version this package is tested against (KEDA 2.18).
KEDA_CHART_VERSION = "2.18.1"
KEDA_CHART_REPO = "https://kedacore.github.io/charts"
KEDA_OPERATOR_SERVICE_ACCOUNT = "keda-operator"


def scaler_queue_patterns(*, region: str, account_id: str, namespaces: Sequence[str] | None) -> list[str]:
    """Queue ARNs KEDA may read: ``asya-{ns}_*`` per mesh namespace, or every ``asya-*`` queue when None."""
    names = [queue_name(namespace=ns, actor="*") for ns in namespaces] if namespaces else ["asya-*"]
    return [f"arn:aws:sqs:{region}:{account_id}:{name}" for name in names]


class Keda(AsyaComponent):
    """KEDA in ``namespace``; ``mesh_namespaces`` narrows its SQS read access to those meshes' queues.

    ``wait_for``: what must exist before the chart installs (e.g. ``cluster.system_node_group``: Helm waits for
    the operator's pods, which need nodes).
    """

    OUTPUTS = (
        ComponentOutput("roleArn", "role_arn", str, "The KEDA operator's IAM role."),
        ComponentOutput("releaseName", "release_name", str, "The KEDA Helm release."),
        ComponentOutput("namespace", "namespace", str, "The namespace KEDA runs in."),
    )
    release: k8s.helm.v3.Release
    role_arn: pulumi.Output[str]
    release_name: pulumi.Output[str]
    namespace: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        cluster_name: pulumi.Input[str],
        region: str,
        mesh_namespaces: Sequence[str] | None = None,
        namespace: str = KEDA_NAMESPACE,
        chart_version: str = KEDA_CHART_VERSION,
        wait_for: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}Keda", resource_name, None, opts)
        self.mesh_namespaces = list(mesh_namespaces) if mesh_namespaces else None
        ns = k8s.core.v1.Namespace(
            f"{resource_name}-namespace",
            metadata={"name": namespace, "labels": {"app.kubernetes.io/part-of": "asya"}},
            opts=child(self),
        )
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        account_id = identity.account_id
        operator = pod_identity(
            self,
            prefix=f"{resource_name}-operator",
            cluster_arn=pulumi.Output.all(identity.arn, cluster_name).apply(
                lambda args: iam.eks_cluster_arn(same_account_arn=args[0], region=region, cluster_name=args[1])
            ),
            cluster_name=cluster_name,
            namespace=namespace,
            association_namespace=ns.metadata.name,
            service_account=KEDA_OPERATOR_SERVICE_ACCOUNT,
            policy=account_id.apply(
                lambda account: json.dumps(
                    iam.scaler_policy(
                        queue_arn_patterns=scaler_queue_patterns(
                            region=region, account_id=account, namespaces=mesh_namespaces
                        )
                    )
                )
            ),
        )
        self.role, association = operator.role, operator.association
        self.release = k8s.helm.v3.Release(
            f"{resource_name}-release",
            name="keda",
            chart="keda",
            version=chart_version,
            namespace=ns.metadata.name,
            repository_opts={"repo": KEDA_CHART_REPO},
            values={"serviceAccount": {"operator": {"create": True, "name": KEDA_OPERATOR_SERVICE_ACCOUNT}}},
            # The operator must start with Pod Identity credentials: associate before its pods exist.
            opts=child(self, depends_on=[association, *wait_for]),
        )
        self.role_arn = self.role.arn
        self.release_name = self.release.name
        self.namespace = ns.metadata.name
        self.register()
