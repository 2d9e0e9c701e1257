"""``triggers`` of an ActorMesh: what starts a route without a client — an object landing in S3, or a schedule.

```yaml
spec:
  routes: {score: [fetch, score, store]}
  triggers:
    - name: new-images        # DNS label; names the S3 notification, the schedule and its role
      route: score
      s3: {prefix: incoming/, suffix: .jpg}   # bucket left out: the mesh's own bucket
    - name: nightly
      route: score
      schedule: {expression: "cron(0 2 * * ? *)", timezone: Europe/Berlin, payload: {mode: full}}
```

Defaults, each as the behaviour it causes:

* ``s3.bucket`` left out: the mesh's result bucket, under ``s3.prefix`` (default ``triggers/{name}/``: a drop
  folder per trigger). The prefix may not overlap what the mesh itself writes there (``succeeded/``, ``failed/``,
  ``offload/``, ``fanin/``): a sink's record would start the route again, forever. A named bucket is one that
  exists: the mesh owns its notification configuration from then on (S3 keeps one per bucket); its prefix defaults
  to the whole bucket.
* ``s3.suffix``: none. ``schedule.timezone``: UTC. ``schedule.payload``: ``{}``.

Two S3 triggers on one bucket whose prefixes and suffixes overlap are refused, as S3 refuses them ("overlapping
suffixes/prefixes"), naming both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import Field, field_validator, model_validator

from asya_pulumi.spec.base import SpecModel, json_text_schema, json_text_to_mapping
from asya_pulumi.spec.limits import check_bucket_name, repeated
from asya_pulumi.spec.schedule_expression import ExpressionError, parse_schedule_expression
from asya_runtime.config import FANIN_PREFIX, OFFLOAD_PREFIX
from asya_runtime.naming import SINK_RECORD_PREFIXES, check_dns_label, mesh_prefix

__all__ = ["MeshTriggerSpec", "S3TriggerSpec", "ScheduleTriggerSpec", "check_triggers", "mesh_bucket_prefixes"]

#: EventBridge Scheduler's schedule names are 1-64 characters; the mesh names each ``asya-{namespace}_{trigger}``.
SCHEDULE_NAME_MAX = 64
#: S3 object keys are at most 1,024 bytes of UTF-8; a filter's prefix or suffix cannot be longer.
S3_KEY_MAX_BYTES = 1024
#: A schedule's payload travels in one SQS message built from it (256 KiB: SQS's limit in every region).
SCHEDULE_PAYLOAD_MAX_BYTES = 256 * 1024
#: Names the local zone database holds that are no IANA zone EventBridge Scheduler takes: the machine's own zone
#: (``localtime``, ``posixrules``) and tzdata's placeholder ``Factory`` ("local time zone must be set").
#: Buckets whose S3 triggers may start at one actor: each adds a statement (~400 bytes) to its queue's policy, and
#: SQS refuses a policy over 20,480 bytes.
MAX_S3_BUCKETS_PER_QUEUE = 40
NOT_IANA_ZONES = frozenset({"localtime", "posixrules", "Factory"})


#: A free-form JSON object: a mapping in manifests, JSON text from the cross-language SDKs.
JsonPayload = Annotated[
    dict[str, Any], json_text_to_mapping(what="payload", example="JSON.stringify(payload)"),
    json_text_schema(what="payload"),
]


def mesh_bucket_prefixes() -> list[str]:
    """What the mesh itself writes to its bucket (the sinks' records, offloaded envelopes, fan-in state): no trigger
    may watch it."""
    return [f"{prefix}/" for prefix in (*SINK_RECORD_PREFIXES.values(), OFFLOAD_PREFIX, FANIN_PREFIX)]


class S3TriggerSpec(SpecModel):
    """An object created under ``bucket``/``prefix`` (and ending in ``suffix``) starts the route."""

    bucket: str | None = Field(
        None,
        description="An existing bucket whose notification configuration the mesh then owns; null (default): the "
        "mesh's result bucket.",
    )
    prefix: str | None = Field(
        None,
        description="Key prefix watched; null (default): `triggers/{name}/` on the mesh's bucket, the whole "
        "bucket on a named one.",
    )
    suffix: str = Field("", description="Key suffix watched, e.g. `.jpg`; empty (default): any key.")

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_bucket_name(value, fix="name the bucket as S3 shows it, or leave bucket out for the mesh's own")

    @model_validator(mode="after")
    def _check_affixes_fit_a_key(self) -> S3TriggerSpec:
        size = len((self.prefix or "").encode()) + len(self.suffix.encode())
        if size > S3_KEY_MAX_BYTES:
            raise ValueError(f"s3.prefix and s3.suffix together are {size} bytes; an S3 key has at most "
                             f"{S3_KEY_MAX_BYTES}, so no key would match both and the trigger would never fire: "
                             "shorten them")
        return self

    @field_validator("prefix", "suffix")
    @classmethod
    def _check_affix(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value.encode()) > S3_KEY_MAX_BYTES:
            raise ValueError(f"is {len(value.encode())} bytes; an S3 key (and so a filter) has at most "
                             f"{S3_KEY_MAX_BYTES}")
        if value.startswith("/"):
            raise ValueError(f"{value!r} starts with '/', which S3 keys do not: write {value.lstrip('/')!r}")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise ValueError("holds a control character, which S3 keys made by its console and SDKs never do")
        return value


class ScheduleTriggerSpec(SpecModel):
    """EventBridge Scheduler starts the route with ``payload`` on ``expression``."""

    expression: str = Field(
        description="`rate(5 minutes)` or `cron(0 2 * * ? *)` in EventBridge Scheduler's syntax (6 cron fields, "
        "one of day-of-month/day-of-week `?`; rate units singular for 1, plural above).",
    )
    timezone: str = Field("UTC", description="IANA zone the cron is read in (default UTC), e.g. Europe/Berlin.")
    payload: JsonPayload = Field(default_factory=dict, description="The payload of every run ({} by default).")

    @field_validator("expression")
    @classmethod
    def _check_expression(cls, value: str) -> str:
        try:
            parse_schedule_expression(value)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            if value in NOT_IANA_ZONES:
                raise ValueError(value)
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            close = sorted(z for z in available_timezones() - NOT_IANA_ZONES if value.lower() in z.lower())[:3]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(f"{value!r} is not an IANA time zone{hint}; e.g. UTC, Europe/Berlin") from None
        return value

    @field_validator("payload")
    @classmethod
    def _check_payload(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(value, allow_nan=False).encode())
        except ValueError:
            raise ValueError("holds NaN or Infinity, which JSON (and so the scheduled envelope) cannot carry: write "
                             "the number, null or a string instead") from None
        if size > SCHEDULE_PAYLOAD_MAX_BYTES:
            raise ValueError(f"is {size} bytes of JSON; a scheduled run's payload fits in one SQS message "
                             f"({SCHEDULE_PAYLOAD_MAX_BYTES} bytes): put large data in S3 and pass its key")
        return value


class MeshTriggerSpec(SpecModel):
    """One trigger: a name, the route it starts, and exactly one of ``s3`` or ``schedule``."""

    name: str = Field(description="DNS label; names the S3 notification, the schedule and its IAM role.")
    route: str = Field(description="The route (a key of `routes`) each event starts.")
    s3: S3TriggerSpec | None = Field(None, description="Start the route for each object created in S3.")
    schedule: ScheduleTriggerSpec | None = Field(None, description="Start the route on a schedule.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_dns_label(value, what="trigger name")

    @model_validator(mode="after")
    def _one_kind(self) -> MeshTriggerSpec:
        if (self.s3 is None) == (self.schedule is None):
            raise ValueError(f"trigger {self.name!r}: give exactly one of `s3` or `schedule`")
        return self

    def watched_prefix(self) -> str:
        """The S3 prefix watched, its default applied (``triggers/{name}/`` on the mesh's bucket)."""
        assert self.s3 is not None
        if self.s3.prefix is not None:
            return self.s3.prefix
        return f"triggers/{self.name}/" if self.s3.bucket is None else ""


def check_triggers(
    triggers: Sequence[MeshTriggerSpec], *, namespace: str, routes: Mapping[str, Sequence[str]]
) -> None:
    """Names unique and short enough, routes declared, S3 filters neither overlapping each other nor the mesh's
    own writes. Each message starts ``triggers[NAME]`` and says the fix."""
    duplicates = repeated([t.name for t in triggers])
    if duplicates:
        raise ValueError(f"triggers: duplicate trigger name(s) {duplicates}; every trigger needs its own name")
    spare = SCHEDULE_NAME_MAX - len(mesh_prefix(namespace=namespace))
    for trigger in triggers:
        where = f"triggers[{trigger.name}]"
        if len(trigger.name) > spare:
            raise ValueError(f"{where}.name: {len(trigger.name)} characters; in namespace {namespace!r} a trigger "
                             f"name has at most {spare} (its schedule asya-{namespace}_NAME has {SCHEDULE_NAME_MAX})")
        if trigger.route not in routes:
            known = ", ".join(sorted(routes)) or "none: add routes first"
            raise ValueError(f"{where}.route: {trigger.route!r} is not a route of the mesh; known routes: {known}")
        if trigger.s3 is not None and trigger.s3.bucket is None:
            prefix = trigger.watched_prefix()
            for own in mesh_bucket_prefixes():
                if own.startswith(prefix) or prefix.startswith(own):
                    raise ValueError(
                        f"{where}.s3.prefix: {prefix!r} overlaps {own!r}, where the mesh writes to its own bucket, so "
                        f"each record would start the route again; use another prefix, e.g. 'incoming/'"
                    )
    _check_s3_overlaps([t for t in triggers if t.s3 is not None])
    _check_buckets_per_queue(triggers, routes=routes)


def _check_buckets_per_queue(triggers: Sequence[MeshTriggerSpec], *, routes: Mapping[str, Sequence[str]]) -> None:
    """The first actor's queue policy names each bucket whose triggers start there: it must stay under SQS's size."""
    buckets: dict[str, set[str | None]] = {}
    for trigger in triggers:
        if trigger.s3 is not None and routes[trigger.route]:
            buckets.setdefault(routes[trigger.route][0], set()).add(trigger.s3.bucket)
    for actor, named in buckets.items():
        if len(named) > MAX_S3_BUCKETS_PER_QUEUE:
            raise ValueError(
                f"triggers: S3 triggers on {len(named)} buckets start at actor {actor!r}; its queue's policy names "
                f"each bucket and SQS refuses a policy over 20,480 bytes, so at most {MAX_S3_BUCKETS_PER_QUEUE}: "
                "have the buckets copy into fewer (one bucket per source), or start some at another route"
            )


def _check_s3_overlaps(triggers: Sequence[MeshTriggerSpec]) -> None:
    """S3 refuses two notifications of one bucket and event type whose prefixes and suffixes both overlap."""
    for index, first in enumerate(triggers):
        for second in triggers[index + 1:]:
            assert first.s3 is not None and second.s3 is not None
            if first.s3.bucket != second.s3.bucket:
                continue
            one, two = first.watched_prefix(), second.watched_prefix()
            ends_one, ends_two = first.s3.suffix, second.s3.suffix
            if (one.startswith(two) or two.startswith(one)) and (ends_one.endswith(ends_two)
                                                                  or ends_two.endswith(ends_one)):
                bucket = first.s3.bucket or "the mesh's bucket"
                raise ValueError(
                    f"triggers[{first.name}] and triggers[{second.name}] both watch {bucket} with overlapping "
                    f"prefixes ({one!r}, {two!r}) and suffixes ({ends_one!r}, {ends_two!r}); S3 refuses such a "
                    "notification configuration: give them prefixes neither of which starts the other"
                )
