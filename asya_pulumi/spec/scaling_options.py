"""KEDA's ``fallback`` and ``advanced.horizontalPodAutoscalerConfig.behavior`` for an actor's ScaledObject.

``fallback``: when KEDA cannot read the queue depth ``failureThreshold`` times in a row (an SQS or IAM outage),
it holds the Deployment at ``replicas`` instead of leaving it where it was. ``behavior`` is the HPA's own scaling
policy (Kubernetes ``autoscaling/v2`` ``HorizontalPodAutoscalerBehavior``): how fast replicas may be added or
removed. The bounds are the API server's, so a bad value fails here, not at ``pulumi up``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from asya_pulumi.spec.base import SpecModel


class FallbackSpec(SpecModel):
    failure_threshold: int = Field(ge=1, description="Failed depth reads in a row before the fallback applies.")
    replicas: int = Field(ge=0, description="Replicas held while the queue depth cannot be read.")
    behavior: Literal["static", "currentReplicas", "currentReplicasIfHigher", "currentReplicasIfLower"] | None = (
        Field(None, description="KEDA's default (static): exactly `replicas`.")
    )


class ScalingPolicy(SpecModel):
    type: Literal["Pods", "Percent"]
    value: int = Field(ge=1)
    period_seconds: int = Field(ge=1, le=1800)


class ScalingRules(SpecModel):
    stabilization_window_seconds: int | None = Field(None, ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] | None = None
    policies: list[ScalingPolicy] | None = None


class HpaBehavior(SpecModel):
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None


class HpaConfig(SpecModel):
    behavior: HpaBehavior


class AdvancedSpec(SpecModel):
    horizontal_pod_autoscaler_config: HpaConfig


def keda_fields(*, fallback: FallbackSpec | None, advanced: AdvancedSpec | None) -> dict[str, Any]:
    """The ScaledObject ``spec`` entries for what is set (camelCase, unset fields left to KEDA's defaults)."""
    fields: dict[str, Any] = {}
    if fallback is not None:
        fields["fallback"] = fallback.model_dump(by_alias=True, exclude_none=True)
    if advanced is not None:
        fields["advanced"] = advanced.model_dump(by_alias=True, exclude_none=True)
    return fields
