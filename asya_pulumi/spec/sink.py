"""``SinkSpec``: the success and error sinks every mesh has (runtime image, no user handler)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from asya_pulumi.spec.base import SpecModel
from asya_pulumi.spec.scaling_options import ScalingSpec
from asya_runtime.resiliency import Resiliency


class SinkSpec(SpecModel):
    """A sink actor: its name is its sidecar mode; it persists final envelopes to the mesh's bucket."""

    name: Literal["success-sink", "error-sink"]
    scaling: ScalingSpec = Field(default_factory=lambda: ScalingSpec(max_replica_count=3, queue_length=50))
    resiliency: Resiliency = Field(default_factory=lambda: Resiliency(actor_timeout=30.0))
    concurrency: int = Field(10, ge=1, description="S3 writes are I/O-bound; several in flight per replica.")
