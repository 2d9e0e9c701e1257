"""The Pulumi components (type tokens ``asya:index:<Name>``), one module each.

Re-exported with ``import X as X`` (the typed re-export form), so this file needs no ``__all__`` that would repeat
the names: the package's public list is ``asya_pulumi.__all__``, written once. They need the ``deploy`` extra (the
Pulumi SDKs); without it, importing them is one error naming it (:mod:`asya_pulumi.extras`).
"""

from asya_pulumi.extras import require

try:
    from asya_pulumi.components.actor import AsyncActor as AsyncActor
    from asya_pulumi.components.bucket import ResultBucket as ResultBucket
    from asya_pulumi.components.cluster import AsyaCluster as AsyaCluster
    from asya_pulumi.components.gateway import Gateway as Gateway
    from asya_pulumi.components.gateway import GatewayArgs as GatewayArgs
    from asya_pulumi.components.keda import KEDA_CHART_VERSION as KEDA_CHART_VERSION
    from asya_pulumi.components.keda import Keda as Keda
    from asya_pulumi.components.mesh import ActorMesh as ActorMesh
    from asya_pulumi.components.network import Network as Network
    from asya_pulumi.components.observability import Observability as Observability
    from asya_pulumi.components.observability import ObservabilityArgs as ObservabilityArgs
    from asya_pulumi.components.queue import ActorQueue as ActorQueue
    from asya_pulumi.components.status_table import StatusTable as StatusTable
    from asya_pulumi.components.triggers import MeshTriggers as MeshTriggers
except ModuleNotFoundError:
    require("deploy", needed_by="the Pulumi components (asya_pulumi.components)")  # names the extra if it is that
    raise
