"""The PromQL of every dashboard panel and alert, in one place: each function takes the series selector (the label
matchers between the braces) and returns an expression grouped by mesh and actor.

Metric names are the sidecar's (``asya_runtime/sidecar/metrics.py``; a counter is exposed with ``_total``, a
histogram as ``_bucket`` / ``_count`` / ``_sum``); ``tests/infra/test_observability.py`` parses every expression the
dashboard and the rules contain and checks each name and label against the sidecar's registry and the PodMonitor's
relabelings. Queue gauges are reported by every replica of an actor alike, so they are aggregated with ``max``,
never ``sum``.
"""

from __future__ import annotations

from asya_pulumi.observability.scrape import ACTOR_LABEL, MESH_LABEL
from asya_runtime.naming import ERROR_SINK

BY = f"by ({MESH_LABEL}, {ACTOR_LABEL})"
#: The queue a gauge describes: the actor's own queue or its dead-letter queue (``asya_queue_messages{queue}``).
MAIN_QUEUE, DEAD_LETTER_QUEUE = "main", "dlq"


def selector(*, mesh: str, actor: str | None = None, **matchers: str) -> str:
    """``mesh="m", actor=~"a", k="v"``: equality matchers, ``actor`` as a regular expression (a Grafana multi-value
    variable expands to ``a|b``)."""
    parts = [f'{MESH_LABEL}="{mesh}"']
    if actor is not None:
        parts.append(f'{ACTOR_LABEL}=~"{actor}"')
    parts += [f'{name}="{value}"' for name, value in matchers.items()]
    return ", ".join(parts)


def _rate(metric: str, s: str, window: str, *, by: str = BY) -> str:
    return f"sum {by} (rate({metric}{{{s}}}[{window}]))"


def received_rate(s: str, window: str) -> str:
    return _rate("asya_messages_received_total", s, window)


def succeeded_rate(s: str, window: str) -> str:
    return _rate("asya_messages_succeeded_total", s, window)


def retried_rate(s: str, window: str) -> str:
    return _rate("asya_messages_retried_total", s, window)


def failed_rate_by_reason(s: str, window: str) -> str:
    return _rate("asya_messages_failed_total", s, window, by=f"by ({MESH_LABEL}, {ACTOR_LABEL}, reason)")


def error_sink_rate(s: str, window: str) -> str:
    """Envelopes each actor sent to the error sink (fan-out children included), per second."""
    return _rate("asya_messages_dead_lettered_total", s, window)


def error_sink_arrivals(*, mesh: str, window: str) -> str:
    """Envelopes the mesh's error sink received, per second: every actor's failures together."""
    return _rate("asya_messages_received_total", selector(mesh=mesh, actor=ERROR_SINK), window, by=f"by ({MESH_LABEL})")


def handler_latency(quantile: float, s: str, window: str) -> str:
    """The ``quantile`` of handler call time (every outcome: a call cut at actorTimeout counts, at that time)."""
    buckets = f"sum by ({MESH_LABEL}, {ACTOR_LABEL}, le) (rate(asya_handler_duration_seconds_bucket{{{s}}}[{window}]))"
    return f"histogram_quantile({quantile}, {buckets})"


def actor_timeout(s: str) -> str:
    return f"max {BY} (asya_actor_timeout_seconds{{{s}}})"


def replicas(s: str) -> str:
    """Running sidecars per actor: each exports its actorTimeout gauge once."""
    return f"count {BY} (asya_actor_timeout_seconds{{{s}}})"


def in_flight(s: str) -> str:
    return f"sum {BY} (asya_messages_in_flight{{{s}}})"


def queue_depth(s: str) -> str:
    """Messages in each actor's own queue, by state (visible, in_flight, delayed)."""
    return f'max by ({MESH_LABEL}, {ACTOR_LABEL}, state) (asya_queue_messages{{{s}, queue="{MAIN_QUEUE}"}})'


def dead_letter_depth(s: str) -> str:
    return f'max {BY} (asya_queue_messages{{{s}, queue="{DEAD_LETTER_QUEUE}", state="visible"}})'


def oldest_message_age(s: str) -> str:
    return f"max {BY} (asya_queue_oldest_message_age_seconds{{{s}}})"
