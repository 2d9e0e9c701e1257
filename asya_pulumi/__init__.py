"""asya-pulumi: an actor mesh for AI/ML pipelines on AWS, as typed Pulumi components.

    from asya_pulumi import AsyaCluster, Keda, ActorMesh, AsyncActor, AsyncActorSpec, MeshSpec, load_pipeline_dir

The specs are imported eagerly (cheap); the components load Pulumi's AWS and Kubernetes SDKs, which take seconds
to import, so they are imported on first use (``asya dev`` and ``asya send`` never pay for them).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING, Any

from asya_pulumi.errors import AsyaError
from asya_pulumi.objects.quota import QuotaSettings
from asya_pulumi.spec import (
    AsyncActorSpec,
    ClusterSpec,
    GpuNodePoolSpec,
    GpuSpec,
    MeshSpec,
    ScalingSpec,
    SinkSpec,
    SpecError,
    load_pipeline_dir,
)


def _version() -> str:
    """The installed distribution's version (pyproject.toml is the one place it is written); ``0+unknown`` when the
    package runs from a source tree that was never installed (e.g. on ``PYTHONPATH``)."""
    try:
        return importlib.metadata.version("asya-pulumi")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _version()

#: The components, each imported on first use from :mod:`asya_pulumi.components` (which loads Pulumi's SDKs): the one
#: list of their public names.
_COMPONENTS = (
    "KEDA_CHART_VERSION", "ActorMesh", "ActorQueue", "AsyaCluster", "AsyncActor", "Keda", "Network", "ResultBucket",
)

if TYPE_CHECKING:
    from asya_pulumi.components import *  # noqa: F403  (for type checkers: the names in _COMPONENTS)


def __getattr__(name: str) -> Any:
    if name in _COMPONENTS:
        return getattr(importlib.import_module("asya_pulumi.components"), name)
    raise AttributeError(f"module 'asya_pulumi' has no attribute {name!r}")


__all__ = [  # the public API: what needs no Pulumi SDK, then the components
    "AsyaError",
    "AsyncActorSpec",
    "ClusterSpec",
    "GpuNodePoolSpec",
    "GpuSpec",
    "MeshSpec",
    "QuotaSettings",
    "ScalingSpec",
    "SinkSpec",
    "SpecError",
    "__version__",
    "load_pipeline_dir",
    *_COMPONENTS,
]
