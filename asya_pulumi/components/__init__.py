"""The Pulumi components (type tokens ``asya:index:<Name>``), one module each."""

from asya_pulumi.components.actor import AsyncActor
from asya_pulumi.components.bucket import ResultBucket
from asya_pulumi.components.cluster import AsyaCluster
from asya_pulumi.components.keda import KEDA_CHART_VERSION, Keda
from asya_pulumi.components.mesh import ActorMesh
from asya_pulumi.components.network import Network
from asya_pulumi.components.observability import Observability, ObservabilityArgs
from asya_pulumi.components.queue import ActorQueue

__all__ = [
    "KEDA_CHART_VERSION",
    "ActorMesh",
    "ActorQueue",
    "AsyaCluster",
    "AsyncActor",
    "Keda",
    "Network",
    "Observability",
    "ObservabilityArgs",
    "ResultBucket",
]
