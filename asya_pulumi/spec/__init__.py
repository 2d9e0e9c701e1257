"""Typed specs (pydantic v2) for clusters, meshes and actors, and the loaders for their YAML manifests.

Importing this package does not import Pulumi: ``asya dev`` uses it on a laptop without the cloud SDKs loaded.
"""

from asya_pulumi.spec.actor import AsyncActorSpec, GpuSpec, ResourcesSpec, Toleration
from asya_pulumi.spec.base import API_VERSION
from asya_pulumi.spec.cluster import (
    GPU_POOL_LABEL,
    GPU_RESOURCE,
    ClusterSpec,
    GpuNodePoolSpec,
    SystemNodeGroupSpec,
)
from asya_pulumi.spec.errors import SpecError
from asya_pulumi.spec.fanin import FanInSpec
from asya_pulumi.spec.gateway import GatewayAuthSpec, GatewaySpec, GatewayToolSpec
from asya_pulumi.spec.hardening import (
    ApiEndpointSpec,
    ControlPlaneLogsSpec,
    NodeSecuritySpec,
    ResultRetentionSpec,
    SecretsEncryptionSpec,
)
from asya_pulumi.spec.manifest import load_actor_manifest, load_pipeline_dir, runtime_in_dir
from asya_pulumi.spec.mesh import MeshSpec
from asya_pulumi.spec.runtime_pin import DEFAULT_RUNTIME_IMAGE
from asya_pulumi.spec.scaling_options import ScalingSpec
from asya_pulumi.spec.sink import SinkSpec
from asya_pulumi.spec.triggers import MeshTriggerSpec, S3TriggerSpec, ScheduleTriggerSpec

__all__ = [
    "API_VERSION",
    "DEFAULT_RUNTIME_IMAGE",
    "GPU_POOL_LABEL",
    "GPU_RESOURCE",
    "ApiEndpointSpec",
    "AsyncActorSpec",
    "ClusterSpec",
    "ControlPlaneLogsSpec",
    "FanInSpec",
    "GatewayAuthSpec",
    "GatewaySpec",
    "GatewayToolSpec",
    "GpuNodePoolSpec",
    "GpuSpec",
    "MeshSpec",
    "MeshTriggerSpec",
    "NodeSecuritySpec",
    "ResourcesSpec",
    "ResultRetentionSpec",
    "S3TriggerSpec",
    "ScalingSpec",
    "ScheduleTriggerSpec",
    "SecretsEncryptionSpec",
    "SinkSpec",
    "SpecError",
    "SystemNodeGroupSpec",
    "Toleration",
    "load_actor_manifest",
    "load_pipeline_dir",
    "runtime_in_dir",
]
