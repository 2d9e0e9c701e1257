"""The sidecar's configuration: every setting is one environment variable, named by its field's alias here.

(Two names come from elsewhere: the socket path's, ``ENV_SOCKET_PATH``, which the handler server reads too, and the
shared host's start file, ``sidecar/host.py``; OpenTelemetry reads its own ``OTEL_*`` variables.)

The Pulumi components build a :class:`SidecarConfig` from the actor's spec and render :meth:`SidecarConfig.to_env`
into the Deployment; ``asya dev`` does the same for local processes; the sidecar reads it back with
:meth:`SidecarConfig.from_env`. docs/sidecar.md lists the variables (generated from this class's fields).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from asya_runtime.handler_server import DEFAULT_SOCKET_PATH, ENV_SOCKET_PATH
from asya_runtime.naming import queue_name
from asya_runtime.resiliency import Resiliency, Seconds
from asya_runtime.retention import DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS
from asya_runtime.triggers import S3TriggerTarget

Mode = Literal["actor", "success-sink", "error-sink"]

#: AWS raised SQS's message size limit to 1 MiB in 2025; older regions/emulators may still enforce 256 KiB.
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
#: SQS bills every 64 KiB of a request as one request. A message of c chunks costs about 2c + 1 requests inline
#: (send c, receive c, delete 1) at $0.40 per million; offloaded it costs 3 small requests plus one S3 PUT ($5.00
#: per million) and one GET ($0.40; DELETE is free): $6.60 against $0.40 x (2c + 1), so inline is cheaper up to 7
#: chunks and offloading from 8. Hence 7 x 64 KiB (docs/sidecar.md, "Large payloads").
DEFAULT_OFFLOAD_THRESHOLD_BYTES = 7 * 64 * 1024
#: Hops (finished attempts, retries included) an envelope may make before it is error-ended as a loop: far above any
#: sane pipeline (a 20-actor route with 3 attempts each is 60), far below the ~14,000 calls a loop ran unchecked.
DEFAULT_HOP_BUDGET = 1000
#: The largest hop budget a mesh may set.
MAX_HOP_BUDGET = 100_000
#: Children one handler call may emit (a generator's yielded dicts) before the call is error-ended as
#: ``fan-out too large``: each child costs the sidecar memory until it is sent (about 2 KiB with its envelope and
#: body, docs/sidecar.md, "Fan-out bounds"), and an unbounded fan-out OOM-killed the sidecar on every redelivery.
DEFAULT_MAX_FANOUT = 10_000
#: The largest cap an actor may set: the sidecar's memory limit grows with it (asya_pulumi/objects/pod.py).
MAX_FANOUT = 100_000
#: Key prefix of offloaded envelopes in the mesh's bucket: IAM grants actors this prefix only, a lifecycle rule
#: expires it (asya_runtime.sidecar.claimcheck).
OFFLOAD_PREFIX = "offload"
#: Key prefix of fan-in state in the mesh's bucket, ``fanin/{actor}/{parent_id}/``: IAM grants a fan-in actor its own
#: ``fanin/{actor}/`` only (asya_runtime.sidecar.fanin).
FANIN_PREFIX = "fanin"
#: Time a stopping sidecar allows, after in-flight work finished, for the last sends and deletes to be flushed; the
#: same again for releasing what it still holds, and for exporting the last spans (``sidecar/tracing.py``).
SHUTDOWN_FLUSH_S = 5.0
#: How long past its WaitTimeSeconds a stopping sidecar waits for its last long poll; waking the poll, collecting a
#: stray wake-up and requeueing what the poll brought all fit in that window (``sidecar/app.py``).
RECEIVE_SLACK_S = 10.0
#: How long calls cut short at the end of the in-flight wait get to hand their messages back.
CANCEL_WAIT_S = 1.0
#: The largest batch an actor may ask for (``spec.batch.maxSize``): the sidecar holds two batches per handler slot
#: (one in the call, the next filling), each envelope up to ASYA_MAX_MESSAGE_BYTES, and one answer line carries
#: every item's result.
MAX_BATCH_SIZE = 256
#: The longest ``spec.batch.maxWait``: an envelope's wait for its batch comes before its call's own time.
MAX_BATCH_WAIT_S = 10.0
#: The most envelopes a replica's batches may hold at once, ``concurrency x batch.maxSize`` (each up to
#: ASYA_MAX_MESSAGE_BYTES, twice over: one batch in each call, the next filling).
MAX_BATCHED_IN_FLIGHT = 1024
#: Most messages one ReceiveMessage returns.
SQS_RECEIVE_MAX = 10
#: ``spec.batch.maxWait`` when the manifest gives none.
DEFAULT_BATCH_WAIT_S = 0.05


class SidecarConfig(BaseModel):
    """Sidecar settings. Field aliases are the environment variable names."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    actor: str = Field(alias="ASYA_ACTOR", description="This actor's name; its queue is asya-{namespace}_{actor}.")
    namespace: str = Field(alias="ASYA_NAMESPACE", description="The mesh namespace: prefix of every queue name.")
    mode: Mode = Field(
        "actor",
        alias="ASYA_MODE",
        description="`actor` calls the handler; `success-sink`/`error-sink` persist final envelopes to S3.",
    )
    region: str = Field("us-east-1", alias="ASYA_AWS_REGION", description="AWS region of the queues and bucket.")
    sqs_endpoint: str | None = Field(
        None, alias="ASYA_SQS_ENDPOINT", description="SQS endpoint override (local servers); unset = AWS."
    )
    s3_endpoint: str | None = Field(None, alias="ASYA_S3_ENDPOINT", description="S3 endpoint override; unset = AWS.")
    result_bucket: str | None = Field(
        None,
        alias="ASYA_RESULT_BUCKET",
        description="The mesh's bucket: sinks write `{status}/{id}.json`; actors offload large envelopes to "
        "`offload/` (unset: no offloading).",
    )
    verify_senders: bool = Field(
        False,
        alias="ASYA_VERIFY_SENDERS",
        description="Sinks only: keep a record only if SQS's SenderId is the IAM role of the actor the envelope "
        "names as its last (`route.curr`), looked up with iam:GetRole; any other is kept under `failed/` by its "
        "message id as a `forged record`, so no actor can write or overwrite another's record. Deployed sinks set "
        "it; local brokers name no real sender.",
    )
    iam_endpoint: str | None = Field(
        None, alias="ASYA_IAM_ENDPOINT", description="IAM endpoint override (local servers); unset = AWS."
    )
    status_table: str | None = Field(
        None,
        alias="ASYA_STATUS_TABLE",
        description="The mesh's status table (`asya-{namespace}_status`, docs/gateway.md): envelopes with header "
        "`x-asya-tracked: \"1\"` report running, FLY and (sinks) their end there, and a canceled one is ended "
        "uncalled; a rate-limited actor keeps its token bucket there (`ASYA_RATE_LIMIT_PER_SECOND`). Unset: no status "
        "store, not one request more.",
    )
    dynamodb_endpoint: str | None = Field(
        None, alias="ASYA_DYNAMODB_ENDPOINT", description="DynamoDB endpoint override (local servers); unset = AWS."
    )
    status_retention_days: int = Field(
        DEFAULT_RETENTION_DAYS, ge=1, le=MAX_RETENTION_DAYS,
        alias="ASYA_STATUS_RETENTION_DAYS",
        description=f"Days a status record lives after its last write ({DEFAULT_RETENTION_DAYS} by default): each "
        "write this sidecar makes sets `expires_at` that far ahead, and DynamoDB's TTL deletes the record after it. "
        "The mesh's `gateway.statusRetentionDays`, the same for the gateway and every sidecar.",
    )
    status_running: Literal["every-hop", "first-hop", "off"] = Field(
        "every-hop",
        alias="ASYA_STATUS_RUNNING",
        description="Which hops write `running` to the status store: `every-hop` (where the envelope is), "
        "`first-hop` (that it left its first queue), `off` (pending until its end). Each is one write unit per "
        "envelope per hop, the store's main cost (docs/benchmarks.md, section 9); the cancel check stays.",
    )
    rate_limit_per_second: float | None = Field(
        None, gt=0, alias="ASYA_RATE_LIMIT_PER_SECOND",
        description="The actor's `spec.rateLimit.perSecond`: handler calls started per second across all its "
        "replicas, from one token bucket in the mesh's status table (`sidecar/rate_limit.py`); a message over the "
        "limit waits in the sidecar, its visibility extended, and is never failed for it. Unset: no limit.",
    )
    rate_limit_burst: int = Field(
        1, ge=1, alias="ASYA_RATE_LIMIT_BURST",
        description="The actor's `spec.rateLimit.burst`: calls that may start at once after a quiet spell (the "
        "bucket's size); 1 spaces every call 1/perSecond apart.",
    )
    socket_path: str = Field(
        DEFAULT_SOCKET_PATH, alias=ENV_SOCKET_PATH, description="Unix socket of the handler server."
    )
    concurrency: int = Field(
        1, ge=1, le=100, alias="ASYA_CONCURRENCY", description="Messages in flight per replica (1 suits GPU models)."
    )
    batch_max_size: int = Field(
        0, ge=0, le=MAX_BATCH_SIZE, alias="ASYA_BATCH_MAX_SIZE",
        description="Most envelopes per handler call (the actor's `batch.maxSize`): the handler is called with a "
        "list of up to this many payloads in one `call_batch` frame and returns one result per payload "
        "(docs/sidecar.md, *Dynamic batching*); 0 = no batching, one envelope (a dict) per call.",
    )
    batch_max_wait: Seconds = Field(
        DEFAULT_BATCH_WAIT_S, le=MAX_BATCH_WAIT_S, alias="ASYA_BATCH_MAX_WAIT",
        description="Longest a batch waits to fill (the actor's `batch.maxWait`, a duration: `50ms`, or "
        "seconds); it goes sooner once full, or once no envelope joined it for 2 ms while a handler slot is free.",
    )
    resiliency: Resiliency = Field(
        default_factory=Resiliency,
        alias="ASYA_RESILIENCY",
        description="The actor's `spec.resiliency`, as JSON: retries, backoff, rules, actorTimeout.",
    )
    max_message_bytes: int = Field(
        DEFAULT_MAX_MESSAGE_BYTES,
        ge=1024,
        alias="ASYA_MAX_MESSAGE_BYTES",
        description="Largest envelope the broker accepts; a bigger result ends in the error sink with a reason.",
    )
    offload_threshold_bytes: int = Field(
        DEFAULT_OFFLOAD_THRESHOLD_BYTES,
        ge=0,
        alias="ASYA_OFFLOAD_THRESHOLD_BYTES",
        description="An envelope over this many bytes travels through the bucket, the queue carries a reference "
        "(capped at ASYA_MAX_MESSAGE_BYTES; 0 = never offload).",
    )
    wait_time_seconds: int = Field(
        20, ge=0, le=20, alias="ASYA_WAIT_TIME_SECONDS", description="Long-poll wait: 20 keeps idle replicas cheap."
    )
    metrics_port: int = Field(
        9100, ge=0, alias="ASYA_METRICS_PORT", description="Port of Prometheus `/metrics` and `/healthz`; 0 = off."
    )
    hop_budget: int = Field(
        DEFAULT_HOP_BUDGET, ge=2, le=MAX_HOP_BUDGET, alias="ASYA_HOP_BUDGET",
        description="Hops an envelope may make in the mesh, retries included; past it the envelope is error-ended "
        "(`hop budget exhausted`, naming the actors it went round) instead of looping forever (the mesh's hopBudget).",
    )
    max_fanout: int = Field(
        DEFAULT_MAX_FANOUT, ge=1, le=MAX_FANOUT, alias="ASYA_MAX_FANOUT",
        description="Outputs one handler call may emit; an answer with more is error-ended (`fan-out too large`, "
        "naming the count and the limit) and none of its outputs is sent (the actor's maxFanOut).",
    )
    fanin_timeout: Seconds | None = Field(
        None, alias="ASYA_FANIN_TIMEOUT",
        description="Fan-in (the actor's `fanIn.timeout`): the handler is called once per fan-out parent with the list "
        "of its children's payloads, in emission order; a parent whose children have not all arrived (or error-ended) "
        "this long after the first one gets an error record naming the missing indexes. Unset: no fan-in.",
    )
    metrics_host: str = Field(
        "127.0.0.1", alias="ASYA_METRICS_HOST", min_length=1,
        description="Address `/metrics` and `/healthz` listen on. Loopback by default, so a sidecar on a laptop or "
        "a host network is reachable from nowhere else; a pod sets its own IP (the downward API's status.podIP), "
        "where the kubelet's probes and Prometheus reach it.",
    )
    s3_triggers: dict[str, S3TriggerTarget] | None = Field(
        None,
        alias="ASYA_S3_TRIGGERS",
        description="The mesh's S3 triggers whose route starts at this actor, as JSON: notification id "
        "(`asya-{namespace}_{trigger}`) → `{trigger, bucket, route}`. An S3 event notification of one of them becomes "
        "an envelope on its route; `s3:TestEvent` is deleted (docs/sidecar.md, \"Trigger events\"). Unset: every "
        "body is an envelope.",
    )
    log_payloads: bool = Field(
        False, alias="ASYA_LOG_PAYLOADS", description="Log payloads (may hold personal data; off by default)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info",
        alias="ASYA_LOG_LEVEL",
        description="Lowest level of the JSON log lines; `debug` adds a `sent` line per output (CPU per message).",
    )

    @field_validator("resiliency", mode="before")
    @classmethod
    def _parse_resiliency(cls, value: object) -> object:
        return Resiliency.model_validate_json(value) if isinstance(value, str) else value

    @field_validator("s3_triggers", mode="before")
    @classmethod
    def _parse_s3_triggers(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value

    @field_serializer("s3_triggers")
    def _dump_s3_triggers(self, value: dict[str, S3TriggerTarget] | None) -> str | None:
        if value is None:
            return None
        return json.dumps({key: target.model_dump() for key, target in value.items()}, separators=(",", ":"))

    @field_validator("fanin_timeout")
    @classmethod
    def _check_fanin_timeout(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("ASYA_FANIN_TIMEOUT must be more than 0s (unset it for no fan-in)")
        return value

    @field_serializer("resiliency")
    def _dump_resiliency(self, value: Resiliency) -> str:
        return value.to_json()

    @property
    def queue_name(self) -> str:
        return queue_name(namespace=self.namespace, actor=self.actor)

    @property
    def slots(self) -> int:
        """Messages the sidecar works on at once (received, up to their handler's answer): ``concurrency``, or for
        a batching actor two batches per handler slot (one in the call, the next filling meanwhile) plus one
        receive's worth, so the receive loop, which waits for room for a whole receive, keeps the filling batch
        fed."""
        if not self.batch_max_size:
            return self.concurrency
        return 2 * self.concurrency * self.batch_max_size + SQS_RECEIVE_MAX

    @property
    def offload_threshold(self) -> int:
        """Bytes over which an envelope is offloaded; 0 when offloading is off (no bucket, or switched off)."""
        if not self.result_bucket or not self.offload_threshold_bytes:
            return 0
        return min(self.offload_threshold_bytes, self.max_message_bytes)

    @property
    def shutdown_waits_s(self) -> dict[str, float]:
        """Every wait of a stopping sidecar, in the order ``sidecar/app.py`` runs them, each at its bound: the last
        long poll (woken, collected, requeued), the calls in flight, the calls cut short handing their messages
        back, the flush of pending sends and deletes, the release of what is still held, the last spans.

        Each is a timeout in the code that reads the same constant, so none can run longer than written here, even
        while the broker does not answer (``tests/runtime/test_sidecar_faults.py`` times a drain that hits them).
        """
        return {
            "last poll": self.wait_time_seconds + RECEIVE_SLACK_S,
            "calls in flight": self.resiliency.actor_timeout,
            "calls cut short": CANCEL_WAIT_S,
            "flush": SHUTDOWN_FLUSH_S,
            "release": SHUTDOWN_FLUSH_S,
            "last spans": SHUTDOWN_FLUSH_S,
        }

    @property
    def shutdown_grace_s(self) -> float:
        """How long the sidecar may take to stop: the sum of :attr:`shutdown_waits_s`.

        The pod's ``terminationGracePeriodSeconds`` is derived from this, so the kubelet never kills a sidecar
        that is still draining.
        """
        return sum(self.shutdown_waits_s.values())

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SidecarConfig:
        names = {f.alias for f in cls.model_fields.values()}
        return cls.model_validate({k: v for k, v in environ.items() if k in names and v != ""})

    def to_env(self) -> dict[str, str]:
        """Every non-default setting as ``{ENV_NAME: text}``; what is left out takes the documented default.

        The resiliency policy is always rendered, so what the queue was derived from is visible on the pod.
        """
        dumped = self.model_dump(by_alias=True, exclude_defaults=True, mode="json")
        dumped.update(self.model_dump(by_alias=True, include={"actor", "namespace", "resiliency"}, mode="json"))
        return {k: v if isinstance(v, str) else _env_text(v) for k, v in dumped.items() if v is not None}


def _env_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
