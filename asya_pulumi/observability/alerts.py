"""The mesh's alerting rules (one PrometheusRule group per mesh): a DLQ holds messages, an actor sends failures to
the error sink, handler p99 nears actorTimeout, the oldest waiting message keeps ageing.

Every depth and age comes from the sidecars (``sidecar/metrics.py``), so it exists only while an actor has a replica.
An actor scaled to zero reports nothing: the DLQ rule therefore looks at the last value reported in the past
``DLQ_LOOKBACK`` (a DLQ that filled before the actor went idle keeps alerting; a replica reporting 0 ends it), and
``asya status`` (which asks SQS itself and exits 3 while a DLQ holds messages) covers idle meshes from cron.
"""

from __future__ import annotations

from typing import Any

from asya_pulumi.observability import queries
from asya_pulumi.observability.queries import selector
from asya_pulumi.observability.scrape import ACTOR_LABEL, MESH_LABEL
from asya_pulumi.observability.settings import ObservabilitySettings

#: Rate windows of the rules (long enough to hold several scrapes at any sane interval).
WINDOW = "10m"
#: How long a DLQ depth reported by an actor that then scaled to zero keeps counting.
DLQ_LOOKBACK = "6h"
DLQ_FOR = "1m"
RUNBOOK = "docs/observability.md#dashboards-and-alerts"


def _alert(*, name: str, expr: str, duration: str, severity: str, summary: str, description: str,
           settings: ObservabilitySettings) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity, **settings.alert_labels},
        "annotations": {"summary": summary, "description": description, "runbook": RUNBOOK},
    }


def rule_groups(*, mesh: str, settings: ObservabilitySettings) -> list[dict[str, Any]]:
    """The ``spec.groups`` of the mesh's PrometheusRule."""
    s = selector(mesh=mesh)
    who = f"{{{{ $labels.{ACTOR_LABEL} }}}} in mesh {{{{ $labels.{MESH_LABEL} }}}}"
    dlq = f'asya_queue_messages{{{s}, queue="{queries.DEAD_LETTER_QUEUE}", state="visible"}}'
    age = queries.oldest_message_age(s)
    rules = [
        _alert(
            name="AsyaDeadLetterQueueNotEmpty",
            expr=f"max by ({MESH_LABEL}, {ACTOR_LABEL}) (last_over_time({dlq}[{DLQ_LOOKBACK}])) > 0",
            duration=DLQ_FOR,
            severity="warning",
            summary=f"The DLQ of {who} holds messages",
            description="{{ $value }} message(s) SQS could not deliver to the actor at all (poison messages, crash "
            "loops). Look with `asya dlq`, fix, then `asya dlq redrive` or `asya replay`.",
            settings=settings,
        ),
        _alert(
            name="AsyaErrorSinkRateHigh",
            expr=f"{queries.error_sink_rate(s, WINDOW)} * 60 > {settings.error_rate_per_minute:g}",
            duration=settings.alert_for,
            severity="warning",
            summary=f"{who} sends envelopes to the error sink",
            description="{{ $value | humanize }} envelopes per minute end in the error sink (limit "
            f"{settings.error_rate_per_minute:g}). Find them with `asya trace` and replay them after the fix.",
            settings=settings,
        ),
        _alert(
            name="AsyaHandlerLatencyNearTimeout",
            expr=f"{queries.handler_latency(0.99, s, WINDOW)} > "
            f"{settings.latency_ratio:g} * {queries.actor_timeout(s)}",
            duration=settings.alert_for,
            severity="warning",
            summary=f"Handler p99 of {who} is near its actorTimeout",
            description=f"p99 {{{{ $value | humanizeDuration }}}} is above {settings.latency_ratio:g} x actorTimeout:"
            " calls are about to be cut and retried. Raise actorTimeout or speed the handler up.",
            settings=settings,
        ),
        _alert(
            name="AsyaOldestMessageAgeRising",
            expr=f"{age} > {settings.oldest_age_seconds:g} and max by ({MESH_LABEL}, {ACTOR_LABEL}) "
            f"(delta(asya_queue_oldest_message_age_seconds{{{s}}}[{WINDOW}])) > 0",
            duration=settings.alert_for,
            severity="warning",
            summary=f"Messages wait longer and longer for {who}",
            description="The oldest message received waited {{ $value | humanizeDuration }} and the wait keeps "
            "growing: the actor does not keep up (maxReplicaCount, GPU nodes that do not come, a slow handler).",
            settings=settings,
        ),
    ]
    return [{"name": f"asya-{mesh}", "rules": rules}]
