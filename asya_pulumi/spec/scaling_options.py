"""An actor's KEDA scaling (:class:`ScalingSpec`): its ``fallback``, ``advanced`` and extra triggers.

``fallback``: when KEDA cannot read the queue depth ``failureThreshold`` times in a row (an SQS or IAM outage),
it holds the Deployment at ``replicas`` instead of leaving it where it was. ``behavior`` is the HPA's own scaling
policy (Kubernetes ``autoscaling/v2`` ``HorizontalPodAutoscalerBehavior``): how fast replicas may be added or
removed. The bounds are the API server's, so a bad value fails here, not at ``pulumi up``.

Upstream Asya's manifests write ``advanced`` flat — ``restoreToOriginalReplicaCount`` and a composite metric's
``formula``/``target``/``activationTarget``/``metricType`` — and add ``additionalTriggers``; both mean what they
mean there and render as KEDA's own ``advanced.scalingModifiers`` and ``triggers``. The queue's own trigger is
named :data:`QUEUE_TRIGGER_NAME`, so a formula can refer to it (``queue + cron``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

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


#: The name of the queue-depth trigger, for ``advanced.formula`` to refer to.
QUEUE_TRIGGER_NAME = "queue"
MetricType = Literal["AverageValue", "Value", "Utilization"]


class AdvancedSpec(SpecModel):
    """KEDA's ``advanced``: the HPA's behaviour, and (upstream Asya's flat fields) a composite metric."""

    horizontal_pod_autoscaler_config: HpaConfig | None = None
    restore_to_original_replica_count: bool | None = Field(
        None, description="true: deleting the ScaledObject puts the Deployment back at its replicas of before."
    )
    formula: str | None = Field(
        None, description="KEDA `scalingModifiers.formula` over the triggers' names (the queue's is `queue`)."
    )
    target: str | None = Field(None, description="The formula's target value; required with `formula`.")
    activation_target: str | None = None
    metric_type: MetricType | None = None

    @model_validator(mode="after")
    def _formula_needs_target(self) -> AdvancedSpec:
        if (self.formula is None) != (self.target is None):
            raise ValueError("advanced.formula and advanced.target go together (KEDA's scalingModifiers); set both")
        if self.formula is None and (self.activation_target is not None or self.metric_type is not None):
            raise ValueError("advanced.activationTarget and metricType describe a formula; set formula and target")
        return self

    def keda(self) -> dict[str, Any]:
        """KEDA's ``advanced`` object (camelCase; the formula's fields under ``scalingModifiers``)."""
        behaviour = {"horizontal_pod_autoscaler_config", "restore_to_original_replica_count"}
        advanced = self.model_dump(by_alias=True, exclude_none=True, include=behaviour)
        modifiers = self.model_dump(
            by_alias=True, exclude_none=True, include={"formula", "target", "activation_target", "metric_type"}
        )
        if modifiers:
            advanced["scalingModifiers"] = modifiers
        return advanced


class AuthenticationRef(SpecModel):
    name: str
    kind: Literal["TriggerAuthentication", "ClusterTriggerAuthentication"] | None = None


class TriggerSpec(SpecModel):
    """One extra KEDA trigger (``scaling.additionalTriggers``), appended after the queue's own."""

    type: str = Field(description="A KEDA scaler, e.g. cron, prometheus, aws-cloudwatch.")
    metadata: dict[str, str] = Field(description="The scaler's settings (KEDA takes text values).")
    name: str | None = Field(None, description="Its name in `advanced.formula`.")
    authentication_ref: AuthenticationRef | None = None
    metric_type: MetricType | None = None
    use_cached_metrics: bool | None = None

    @model_validator(mode="after")
    def _not_the_queue(self) -> TriggerSpec:
        if self.name == QUEUE_TRIGGER_NAME:
            raise ValueError(f"additionalTriggers: {QUEUE_TRIGGER_NAME!r} names the queue's own trigger; pick another")
        return self


def keda_fields(*, fallback: FallbackSpec | None, advanced: AdvancedSpec | None) -> dict[str, Any]:
    """The ScaledObject ``spec`` entries for what is set (camelCase, unset fields left to KEDA's defaults)."""
    fields: dict[str, Any] = {}
    if fallback is not None:
        fields["fallback"] = fallback.model_dump(by_alias=True, exclude_none=True)
    if advanced is not None:
        fields["advanced"] = advanced.keda()
    return fields


class ScalingSpec(SpecModel):
    """KEDA scaling on queue depth. Each default is the behaviour an actor gets when the manifest says nothing."""

    enabled: bool = Field(
        True, description="false: no ScaledObject; the Deployment runs the actor's `replicas` (upstream Asya's switch)."
    )
    min_replica_count: int = Field(0, ge=0, description="0: no pod (and no GPU node) runs while the queue is empty.")
    max_replica_count: int = Field(10, ge=1, description="Ceiling on replicas; bounds cost and GPU nodes per actor.")
    queue_length: int = Field(
        5, ge=1, description="Target messages per replica: replicas = ceil(visible+in-flight / queueLength)."
    )
    activation_queue_length: int = Field(
        0, ge=0, description="0→1 happens once depth exceeds this (0: the first message wakes the actor)."
    )
    polling_interval: int = Field(
        30, ge=1, description="Seconds between KEDA's queue checks: the worst-case wake-up delay."
    )
    cooldown_period: int = Field(
        300, ge=0, description="Seconds of empty queue before 1→0; keeps a GPU pod warm across short gaps."
    )
    fallback: FallbackSpec | None = Field(
        None, description="Replicas held while KEDA cannot read the queue depth; None: the count stays as it is."
    )
    advanced: AdvancedSpec | None = Field(
        None,
        description="KEDA's `advanced`: `horizontalPodAutoscalerConfig.behavior` (how fast the HPA adds and removes "
        "replicas), `restoreToOriginalReplicaCount`, and a composite metric (`formula`, `target`).",
    )
    additional_triggers: list[TriggerSpec] = Field(
        default_factory=list, description="Extra KEDA triggers after the queue's own (named `queue`)."
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> ScalingSpec:
        if self.min_replica_count > self.max_replica_count:
            raise ValueError(
                f"minReplicaCount ({self.min_replica_count}) is greater than maxReplicaCount "
                f"({self.max_replica_count}); raise maxReplicaCount or lower minReplicaCount"
            )
        return self
