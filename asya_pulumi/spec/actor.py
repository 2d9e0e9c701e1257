"""``AsyncActorSpec``: one actor of a mesh, the single source of truth for its queue, pod, scaling and retries.

The same object drives both halves (contract 4): the components derive the SQS queue's VisibilityTimeout and
maxReceiveCount and the sidecar's environment from it, and ``asya dev`` runs the same actor locally.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import AliasChoices, Field, field_validator, model_validator

from asya_pulumi.spec.aws_facts import MAX_GPUS_PER_INSTANCE
from asya_pulumi.spec.base import DerivedDefault, SpecModel
from asya_pulumi.spec.cluster import GPU_POOL_LABEL, check_gpu_pool_name
from asya_pulumi.spec.fanin import FanInSpec
from asya_pulumi.spec.inputs import InputStr, is_output
from asya_pulumi.spec.limits import (
    MIN_MEMORY_LIMIT_BYTES,
    check_env_value,
    check_image,
    check_label_key,
    check_label_value,
    check_resource_size,
    parse_quantity,
    repeated,
)
from asya_pulumi.spec.pod_options import (
    DEFAULT_IMAGE_PULL_POLICY,
    DEFAULT_PYTHON,
    EnvSource,
    ImagePullPolicy,
    SidecarOverrides,
    VolumeSpec,
    check_executable,
    check_object_name,
)
from asya_pulumi.spec.scaling_options import ScalingSpec
from asya_pulumi.spec.upstream_form import from_upstream_form
from asya_runtime.config import (
    DEFAULT_BATCH_WAIT_S,
    DEFAULT_MAX_FANOUT,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_OFFLOAD_THRESHOLD_BYTES,
    MAX_BATCH_SIZE,
    MAX_BATCH_WAIT_S,
    MAX_BATCHED_IN_FLIGHT,
    MAX_FANOUT,
    SidecarConfig,
)
from asya_runtime.durations import format_duration
from asya_runtime.naming import check_actor_name
from asya_runtime.resiliency import Resiliency, Seconds

_HANDLER = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")
#: Priority classes Kubernetes ships for its own components.
SYSTEM_PRIORITY_PREFIX = "system-"
HandlerRuntime = Literal["python", "node"]
#: Env vars with this prefix belong to the runtime and are rendered from the spec; users may not set them.
RESERVED_ENV_PREFIX = "ASYA_"
#: Default ``concurrency`` of an actor without GPUs: ten messages in flight, so every receive, send and delete
#: carries up to ten (0.90 SQS requests per envelope over three hops, against 8.85 at one; docs/benchmarks.md).
DEFAULT_CPU_CONCURRENCY = 10
#: Default ``concurrency`` of a GPU actor: one call at a time (a model on a GPU rarely serves two safely or faster).
DEFAULT_GPU_CONCURRENCY = 1


def _camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


def _check_env_name(key: Any) -> None:
    if not _ENV_NAME.fullmatch(str(key)):
        raise ValueError(f"env name {key!r} is not a valid variable name; use letters, digits and '_'")
    if str(key).startswith(RESERVED_ENV_PREFIX):
        raise ValueError(f"env {key!r}: the {RESERVED_ENV_PREFIX}* names are rendered from the spec; "
                         f"set the matching spec field (scaling, resiliency, concurrency) instead")


def _concurrency_ceiling() -> int:
    """The sidecar's own upper bound on ``concurrency`` (read from SidecarConfig so it is stated once)."""
    for item in SidecarConfig.model_fields["concurrency"].metadata:
        if isinstance(item, annotated_types.Le):
            return int(item.le)  # type: ignore[call-overload]
    raise RuntimeError("SidecarConfig.concurrency has no upper bound")


class GpuSpec(SpecModel):
    """GPUs per replica and the node pool they come from (``gpu: 1`` is short for ``gpu: {count: 1}``)."""

    count: int = Field(
        1, ge=1, le=MAX_GPUS_PER_INSTANCE, description="`nvidia.com/gpu` limit of the handler container; at most "
        "the GPUs of a node of its pool (and no EC2 instance has more than 8)."
    )
    pool: str | None = Field(None, description="GPU node pool name; may be left out when the mesh has exactly one.")

    @field_validator("pool")
    @classmethod
    def _check_pool(cls, value: str | None) -> str | None:
        return value if value is None else check_gpu_pool_name(value)


class ResourcesSpec(SpecModel):
    """Requests/limits of the handler container (GPUs go in `gpu`, not here). Kubernetes refuses a request above
    its limit, so that is checked here, against the default requests too when only limits are given."""

    requests: dict[str, str] = Field(default_factory=lambda: {"cpu": "250m", "memory": "512Mi"})
    limits: dict[str, str] = Field(default_factory=lambda: {"memory": "1Gi"})

    @field_validator("requests", "limits", mode="before")
    @classmethod
    def _check_quantities(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        checked = {}
        for name, quantity in value.items():
            if name == "nvidia.com/gpu":
                raise ValueError("set GPUs with `gpu: <count>` on the actor, not under resources")
            if name not in _RESOURCE_NAMES:
                raise ValueError(f"unknown resource {name!r}; use one of {', '.join(_RESOURCE_NAMES)}")
            if isinstance(quantity, bool) or not isinstance(quantity, (str, int, float)):
                raise ValueError(f"{name}: {quantity!r} is not a Kubernetes quantity; write e.g. '500m', '2', '4Gi'")
            text = str(quantity)
            check_resource_size(name, parse_quantity(text, what=name), text=text)
            checked[name] = text
        return checked

    @model_validator(mode="after")
    def _check_requests_within_limits(self) -> ResourcesSpec:
        memory = self.limits.get("memory")
        if memory is not None and parse_quantity(memory, what="memory") < MIN_MEMORY_LIMIT_BYTES:
            raise ValueError(
                f"limits.memory {memory} is below {MIN_MEMORY_LIMIT_BYTES // 2**20}Mi, the smallest memory limit the "
                "container runtime (runc) accepts: the pod would never start; raise it (a Python handler needs ~64Mi)"
            )
        for name, limit in self.limits.items():
            request = self.requests.get(name)
            if request is None:
                continue
            if parse_quantity(request, what=name) > parse_quantity(limit, what=name):
                default = "" if "requests" in self.model_fields_set else " (the default request)"
                raise ValueError(
                    f"requests.{name} {request}{default} is above limits.{name} {limit}; Kubernetes refuses a "
                    f"request above its limit: lower requests.{name} or raise limits.{name}"
                )
        return self


class Toleration(SpecModel):
    """A pod toleration, checked by the rules the API server applies (so a bad one fails here, not at deploy)."""

    key: str | None = None
    operator: Annotated[
        Literal["Equal", "Exists"],
        DerivedDefault(
            rule="Default: Equal with a key, Exists without one (a toleration without key tolerates every taint "
            "of its effect, and Kubernetes accepts only Exists there).",
            derive=lambda data: "Equal" if data.get("key") else "Exists",
        ),
    ] = Field("Equal", description="How the taint's value is matched: Equal to `value`, or any value (Exists).")
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None
    int64_fields = frozenset({"toleration_seconds"})

    @model_validator(mode="after")
    def _check_rules(self) -> Toleration:
        if self.key:
            check_label_key(self.key, what="toleration key")
        elif self.operator != "Exists":
            raise ValueError("a toleration without key must have operator: Exists (it tolerates every taint); "
                             "add a key or set operator: Exists")
        if self.operator == "Exists" and self.value:
            raise ValueError(f"toleration value {self.value!r} with operator: Exists; remove the value or use Equal")
        if self.value:
            check_label_value(self.value, what="toleration value")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds applies only to effect: NoExecute; set that effect or remove it")
        return self


#: The highest ``rateLimit.perSecond``: past it the one bucket item takes more conditional writes than a DynamoDB
#: item sustains (1,000 write units a second) once replicas race for freed tokens.
MAX_RATE_PER_SECOND = 1000.0
#: The lowest ``rateLimit.perSecond``, one call an hour: a message waiting for its token is held in flight, and SQS
#: keeps a received message invisible for at most 12 hours; slower than this, a few held messages outwait it.
MIN_RATE_PER_SECOND = 1 / 3600
#: Default ``rateLimit.burst``: calls start evenly, 1/perSecond apart.
DEFAULT_RATE_BURST = 1
#: The largest ``rateLimit.burst``.
MAX_RATE_BURST = 100_000


class RateLimitSpec(SpecModel):
    """A mesh-wide limit on the actor's handler calls: at most ``burst + perSecond * t`` start in any ``t`` seconds,
    across all its replicas (one token bucket in the mesh's status table; docs/sidecar.md, "Rate limit"). Calls over
    the limit wait, their messages held by the sidecar or still queued; none fails for it."""

    per_second: float = Field(
        description=f"Calls started per second across all replicas, retries included: above 0 (fractions too: 0.5 "
        f"is one call every 2 s), at least {MIN_RATE_PER_SECOND:.6g} (one an hour) and at most "
        f"{MAX_RATE_PER_SECOND:g}."
    )
    burst: int = Field(
        DEFAULT_RATE_BURST, ge=1, le=MAX_RATE_BURST,
        description=f"Calls that may start at once after a quiet spell: the bucket's size (default "
        f"{DEFAULT_RATE_BURST}: every call 1/perSecond after the last, never two together).",
    )

    @field_validator("per_second")
    @classmethod
    def _check_per_second(cls, value: float) -> float:
        if 0 < value < MIN_RATE_PER_SECOND:
            raise ValueError(
                f"perSecond {value:g} is under {MIN_RATE_PER_SECOND:.6g} (one call an hour): a message waiting for its "
                "token stays received, and SQS keeps a received message for at most 12 hours before it shows up "
                "again; write at least 0.000278, or run the work from a schedule trigger instead"
            )
        if not 0 < value <= MAX_RATE_PER_SECOND:
            raise ValueError(
                f"perSecond {value:g} is outside (0, {MAX_RATE_PER_SECOND:g}]: give the calls per second the whole "
                f"actor may start, e.g. 10, or 0.5 for one every 2 s; above {MAX_RATE_PER_SECOND:g} a shared bucket "
                "item cannot keep up (split the work over several actors)"
            )
        return value


class BatchSpec(SpecModel):
    """Dynamic batching: the handler takes a list of up to `maxSize` payloads per call and returns one result per
    payload, in order (docs/sidecar.md, *Dynamic batching*). For a GPU model whose cost is mostly per call."""

    max_size: int = Field(
        description=f"Most payloads per handler call, 1 to {MAX_BATCH_SIZE}. A batch goes as soon as it is full."
    )
    max_wait: Seconds = Field(
        DEFAULT_BATCH_WAIT_S,
        description=f"Longest a batch waits to fill before its call (default {format_duration(DEFAULT_BATCH_WAIT_S)}, "
        f"at most {format_duration(MAX_BATCH_WAIT_S)}); it goes sooner once no envelope joined it for 2 ms while the "
        "handler is free, so a lone envelope on a quiet queue does not wait it out. 0: never wait to fill.",
    )

    @field_validator("max_size")
    @classmethod
    def _check_max_size(cls, value: int) -> int:
        if not 1 <= value <= MAX_BATCH_SIZE:
            raise ValueError(
                f"batch.maxSize {value} is outside 1..{MAX_BATCH_SIZE}; every envelope of a batch is held and sent to "
                f"the handler in one frame: pick a size the model serves in one call, at most {MAX_BATCH_SIZE}"
            )
        return value

    @field_validator("max_wait")
    @classmethod
    def _check_max_wait(cls, value: float) -> float:
        if value > MAX_BATCH_WAIT_S:
            raise ValueError(
                f"batch.maxWait {format_duration(value)} is over {format_duration(MAX_BATCH_WAIT_S)}; every envelope "
                f"of a partial batch would wait that long before its call: write e.g. '50ms'"
            )
        return value


class AsyncActorSpec(SpecModel):
    """One actor: its image and handler, pod settings, KEDA scaling and resiliency policy."""

    name: str = Field(
        validation_alias=AliasChoices("name", "actor"),
        description="DNS-1123 label; names the queue asya-{namespace}_{name} and the Kubernetes objects "
        "(`spec.actor` in upstream Asya's manifests).",
    )
    image: InputStr = Field(
        description="The user's image (text or a Pulumi Output); it needs the runtime's interpreter "
        "(python3, or node >= 18 for runtime: node) and the handler's module."
    )
    handler: str = Field(description="`module.function` or `module.Class.method`, importable in the image.")
    runtime: HandlerRuntime | None = Field(
        None,
        description="Handler language: which handler server the pod mounts and starts. None: from a pipeline "
        "directory, node when the directory holds the handler's module as a .js file only, else python; from a "
        "program, python.",
    )
    env: dict[str, InputStr] = Field(
        default_factory=dict, description="Plain env values (text or Pulumi Outputs); never a secret."
    )
    secret_env: dict[str, InputStr] = Field(
        default_factory=dict,
        description="Secret env values (Pulumi secrets, e.g. from AWS Secrets Manager): the component stores them "
        "in a Kubernetes Secret of the actor and the Deployment references it with secretKeyRef.",
        json_schema_extra={"secret": True},  # the cross-language schema marks it secret (asya_pulumi/package/schema.py)
    )
    value_from: dict[str, EnvSource] = Field(
        default_factory=dict, description="Env from an existing Secret or ConfigMap key (Kubernetes' valueFrom)."
    )
    secret_refs: list[str] = Field(
        default_factory=list, description="Existing Secrets whose every key becomes an env variable (envFrom)."
    )
    volumes: list[VolumeSpec] = Field(default_factory=list, description="Mounted into the handler container.")
    image_pull_policy: ImagePullPolicy = Field(
        DEFAULT_IMAGE_PULL_POLICY, description="Always: a moved tag is noticed at each start (layers stay cached)."
    )
    image_pull_secrets: list[str] = Field(
        default_factory=list, description="Secrets (docker-registry) for a private registry other than ECR."
    )
    priority_class_name: str | None = Field(None, description="A PriorityClass; None: the cluster's default.")
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    gpu: GpuSpec | None = None
    tolerations: list[Toleration] = Field(default_factory=list)
    node_selector: dict[str, str] = Field(default_factory=dict)
    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    replicas: int = Field(
        1, ge=1, description="Replicas of the Deployment when `scaling.enabled` is false (unused while KEDA scales)."
    )
    python_executable: str = Field(
        DEFAULT_PYTHON, description="The interpreter that runs the Python handler server in the image (e.g. "
        "/opt/conda/bin/python when the image has no python3 on PATH); `asya dev` uses its own interpreter."
    )
    sidecar: SidecarOverrides = Field(
        default_factory=SidecarOverrides, description="The sidecar container's image, pull policy, env, resources."
    )
    resiliency: Resiliency = Field(default_factory=Resiliency)
    concurrency: Annotated[
        int,
        DerivedDefault(
            rule=f"Default: {DEFAULT_CPU_CONCURRENCY} without `gpu`, {DEFAULT_GPU_CONCURRENCY} with it.",
            derive=lambda data: DEFAULT_CPU_CONCURRENCY if data.get("gpu") is None else DEFAULT_GPU_CONCURRENCY,
        ),
    ] = Field(
        DEFAULT_CPU_CONCURRENCY,
        ge=1,
        description="Messages in flight per replica: handler calls at once (threads of the handler server; one "
        "asyncio loop for async handlers) and the size of each SQS receive, send and delete; set 1 for a handler "
        "that is not thread-safe.",
    )
    offload_threshold: int = Field(
        DEFAULT_OFFLOAD_THRESHOLD_BYTES, ge=0, le=DEFAULT_MAX_MESSAGE_BYTES,
        description="Bytes over which an output envelope travels through the mesh's bucket (claim-check); 0 = never.",
    )
    batch: BatchSpec | None = Field(
        None,
        description="Dynamic batching (`{maxSize, maxWait}`): the handler is called with a list of payloads and "
        "returns one result per payload; an Exception (Error) instance in a slot fails that item alone. The KEDA "
        "target becomes `scaling.queueLength x maxSize` messages per replica. None: one payload (a dict) per call.",
    )
    max_fan_out: int = Field(
        DEFAULT_MAX_FANOUT, ge=1, le=MAX_FANOUT,
        description=f"Outputs one handler call may emit (default {DEFAULT_MAX_FANOUT:,}, at most {MAX_FANOUT:,}): a "
        f"call that emits more is error-ended (`fan-out too large`, naming the count and the limit) and none of its "
        f"outputs is sent. The sidecar's memory limit grows with it (docs/infrastructure.md, *Sidecar memory*).",
    )
    fan_in: FanInSpec | None = Field(
        None, description="Fan-in: call the handler once per fan-out parent with the list of its children's payloads "
        "in emission order (docs/sidecar.md, *Fan-in*). None: one call per envelope.",
    )
    rate_limit: RateLimitSpec | None = Field(
        None,
        description="null (default): no limit. Set: at most `perSecond` handler calls start per second across all "
        "replicas (`burst` at once after a quiet spell); calls over it wait, none fails. The mesh then has a status "
        "table (created with the actor's ActorMesh, gateway or not) where the replicas share one token bucket.",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_actor_name(value)

    @field_validator("image")
    @classmethod
    def _check_image(cls, value: InputStr) -> InputStr:
        return value if is_output(value) else check_image(str(value), what="image")

    @model_validator(mode="before")
    @classmethod
    def _upstream_form(cls, data: Any) -> Any:
        """Upstream Asya's spellings of the same settings (list-form env, ``secretRefs`` with keys, ``volumeMounts``,
        GPUs under resources) in this model's own fields; fields that cannot mean anything here are refused."""
        return from_upstream_form(data) if isinstance(data, Mapping) else data

    @field_validator("python_executable")
    @classmethod
    def _check_python(cls, value: str) -> str:
        return check_executable(value, what="pythonExecutable")

    @field_validator("image_pull_secrets", "secret_refs")
    @classmethod
    def _check_secret_names(cls, value: list[str]) -> list[str]:
        return [check_object_name(name, what="Secret name") for name in value]

    @field_validator("priority_class_name")
    @classmethod
    def _check_priority_class(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(SYSTEM_PRIORITY_PREFIX):
            raise ValueError(f"priorityClassName {value!r}: the system-* classes are for cluster components (the "
                             f"API server limits them to kube-system); create a PriorityClass for actors")
        return check_object_name(value, what="priorityClassName")

    @field_validator("node_selector")
    @classmethod
    def _check_node_selector(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            if key == GPU_POOL_LABEL:
                raise ValueError(f"nodeSelector {key!r} is set from the actor's GPU pool; use gpu.pool instead")
            check_label_key(key, what="nodeSelector key")
            check_label_value(label, what=f"nodeSelector[{key!r}] value")
        return value

    @field_validator("handler")
    @classmethod
    def _check_handler(cls, value: str) -> str:
        if not _HANDLER.fullmatch(value):
            raise ValueError(
                f"handler {value!r} is not `module.function` or `module.Class.method`; write e.g. handlers.score"
            )
        return value

    @field_validator("value_from", mode="before")
    @classmethod
    def _check_value_from_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                _check_env_name(key)
        return value

    @field_validator("env", "secret_env", mode="before")
    @classmethod
    def _check_env(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        checked = {}
        for key, raw in value.items():
            _check_env_name(key)
            if is_output(raw):
                checked[key] = raw
                continue
            if raw is None:
                raise ValueError(f"env {key!r} has no value; write {key}: \"\" for an empty string")
            if not isinstance(raw, (str, int, float, bool)):
                kind = "a map" if isinstance(raw, Mapping) else "a list" if isinstance(raw, list) else "not text"
                raise ValueError(
                    f"env {key!r} is {kind}; an environment variable holds one string: quote the value "
                    f"(e.g. JSON text) or split it into several variables"
                )
            text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
            checked[key] = check_env_value(str(key), text)
        return checked

    @model_validator(mode="after")
    def _check_env_sources(self) -> AsyncActorSpec:
        for first, second in (("env", "secret_env"), ("env", "value_from"), ("secret_env", "value_from")):
            both = sorted(set(getattr(self, first)) & set(getattr(self, second)))
            if both:
                raise ValueError(f"env {both} is set in both {_camel(first)} and {_camel(second)}; keep one")
        for attribute in ("name", "mount_path"):
            seen = [getattr(volume, attribute) for volume in self.volumes]
            twice = repeated(seen)
            if twice:
                raise ValueError(f"volumes: {_camel(attribute)} {twice} used more than once; each volume needs its own")
        return self

    @model_validator(mode="after")
    def _check_memory_volumes(self) -> AsyncActorSpec:
        """A ``medium: Memory`` emptyDir is tmpfs, charged to the container's memory: past the limit it OOM-kills."""
        in_memory = [v for v in self.volumes if v.empty_dir is not None and v.empty_dir.medium == "Memory"]
        limit = self.resources.limits.get("memory")
        if not in_memory or limit is None:
            return self
        total = sum(parse_quantity(v.empty_dir.size_limit, what="sizeLimit") for v in in_memory if v.empty_dir)
        if total >= parse_quantity(limit, what="memory"):
            names = ", ".join(v.name for v in in_memory)
            raise ValueError(
                f"volumes {names}: in-memory emptyDir sizeLimit (total {total / 2**20:.0f}Mi) is not below "
                f"resources.limits.memory {limit}; tmpfs counts against the memory limit, so a full volume leaves the "
                "handler nothing: lower sizeLimit, raise limits.memory, or drop medium: Memory"
            )
        return self

    @model_validator(mode="after")
    def _check_fan_in_alone(self) -> AsyncActorSpec:
        if self.fan_in is not None and getattr(self, "batch", None) is not None:
            raise ValueError("fanIn and batch cannot both be set: a fan-in call already hands the handler a list "
                             "(one parent's children, in order); remove batch")
        return self

    @field_validator("gpu", mode="before")
    @classmethod
    def _gpu_shorthand(cls, value: Any) -> Any:
        return {"count": value} if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("concurrency")
    @classmethod
    def _check_concurrency(cls, value: int) -> int:
        ceiling = _concurrency_ceiling()
        if value > ceiling:
            raise ValueError(f"concurrency {value} is over the sidecar's limit of {ceiling}; add replicas instead")
        return value

    @model_validator(mode="after")
    def _check_batched_in_flight(self) -> AsyncActorSpec:
        if self.batch is not None and self.concurrency * self.batch.max_size > MAX_BATCHED_IN_FLIGHT:
            raise ValueError(
                f"concurrency {self.concurrency} x batch.maxSize {self.batch.max_size} is over "
                f"{MAX_BATCHED_IN_FLIGHT} envelopes in calls at once per replica (the sidecar holds twice that); "
                f"lower concurrency (1 suits a GPU model) or batch.maxSize, or add replicas"
            )
        return self

    @classmethod
    def from_manifest(cls, source: Any) -> AsyncActorSpec:
        """Load an ``AsyncActor`` manifest: YAML text, a path to a ``.yaml`` file, or an already parsed dict."""
        from asya_pulumi.spec.manifest import load_actor_manifest

        return load_actor_manifest(source)
