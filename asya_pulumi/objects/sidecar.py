"""An actor's (or sink's) sidecar settings, built from its spec in one place.

The Deployment (``components/actor.py``) and ``asya dev``'s processes (``local/plan.py``) both call
:func:`sidecar_config`, so a spec field reaches the sidecar the same way in the cluster and on a laptop; only where
it runs differs (endpoints, bucket, socket path, metrics port), passed as ``where``.
"""

from __future__ import annotations

from typing import Any

from asya_pulumi.spec import AsyncActorSpec, SinkSpec
from asya_runtime.config import SidecarConfig
from asya_runtime.naming import status_table_name


def sidecar_config(spec: AsyncActorSpec | SinkSpec, *, namespace: str, region: str, **where: Any) -> SidecarConfig:
    """The sidecar settings of ``spec`` in mesh ``namespace``: its name, mode (a sink's name is its mode),
    concurrency, resiliency and, for an actor, its offload threshold, fan-out cap, fan-in timeout and rate limit;
    ``where`` adds the settings of the place it runs (``sqs_endpoint``, ``result_bucket``, ``socket_path``,
    ``metrics_port``, ...)."""
    derived: dict[str, Any] = {
        "actor": spec.name,
        "namespace": namespace,
        "mode": spec.name if isinstance(spec, SinkSpec) else "actor",
        "region": region,
        "concurrency": spec.concurrency,
        "resiliency": spec.resiliency,
    }
    if isinstance(spec, AsyncActorSpec):
        derived["offload_threshold_bytes"] = spec.offload_threshold
        derived["max_fanout"] = spec.max_fan_out
        derived["fanin_timeout"] = spec.fan_in.timeout if spec.fan_in is not None else None
        if spec.rate_limit is not None:  # the bucket lives in the status table: ``where`` names it (status_table)
            derived["rate_limit_per_second"] = spec.rate_limit.per_second
            derived["rate_limit_burst"] = spec.rate_limit.burst
        if spec.batch is not None:
            derived["batch_max_size"] = spec.batch.max_size
            derived["batch_max_wait"] = spec.batch.max_wait
    return SidecarConfig.model_validate({**derived, **where})


def status_settings(*, namespace: str, retention_days: int) -> dict[str, Any]:
    """The :func:`sidecar_config` settings of a mesh whose gateway is on: its status table, and how many days each
    record lives after the sidecar's writes (``gateway.statusRetentionDays``, as the gateway's own writes)."""
    return {"status_table": status_table_name(namespace), "status_retention_days": retention_days}
