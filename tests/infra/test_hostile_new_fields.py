"""Hostile values for the fields added with batching, fan-in, rate limits and triggers: each is refused when the
pipeline directory loads (what ``asya render`` and ``pulumi preview`` run first), never accepted and never a
traceback, with a message naming the field, the limit and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from asya_pulumi.spec import SpecError
from asya_pulumi.spec.manifest import load_pipeline_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "text-chunking"
EVERY_5_MIN = {"expression": "rate(5 minutes)"}


def _pipeline(tmp_path: Path, *, actor: str | None = None, actor_spec: dict[str, Any] | None = None,
              mesh_spec: dict[str, Any] | None = None) -> Path:
    """The text-chunking example with ``actor_spec`` merged into ``actor``'s spec and ``mesh_spec`` into the mesh's."""
    target = tmp_path / "pipeline"
    shutil.copytree(EXAMPLE, target)
    if actor is not None:
        path = target / f"{actor}.yaml"
        document = yaml.safe_load(path.read_text())
        document["spec"].update(actor_spec or {})
        path.write_text(yaml.safe_dump(document))
    if mesh_spec is not None:
        path = target / "mesh.yaml"
        document = yaml.safe_load(path.read_text())
        document["spec"].update(mesh_spec)
        path.write_text(yaml.safe_dump(document, width=10**9))
    return target


def _trigger(**fields: Any) -> dict[str, Any]:
    return {"triggers": [{"name": "t1", "route": "count", **fields}]}


REFUSED = [
    # (actor or None, actor spec, mesh spec, fragments the message must hold: field, limit, fix)
    ("chunk", {"rateLimit": {"perSecond": 0.0001}}, None,
     ["rateLimit.perSecond", "one call an hour", "12 hours", "write at least"]),
    ("chunk", {"rateLimit": {"perSecond": 1e-300}}, None, ["rateLimit.perSecond", "one call an hour"]),
    ("chunk", {"rateLimit": {"perSecond": 5, "burst": 0}}, None,
     ["rateLimit.burst", "greater than or equal to 1", "write a value within that limit"]),
    ("chunk", {"rateLimit": {"perSecond": 5, "burst": 10**9}}, None, ["rateLimit.burst", "100000", "write a value"]),
    ("chunk", {"batch": [8]}, None, ["spec.batch", "it is list", "write a mapping"]),
    ("chunk", {"batch": {}}, None, ["spec.batch.maxSize", "Field required", "add it"]),
    ("chunk", {"batch": {"maxSize": 2.5}}, None, ["spec.batch.maxSize", "fractional", "write a plain number"]),
    ("summarize", {"fanIn": "10m"}, None, ["spec.fanIn", "write a mapping"]),
    (None, None, {"triggers": {"t1": {"route": "count"}}}, ["spec.triggers", "valid list", "write a list"]),
    (None, None, _trigger(schedule={**EVERY_5_MIN, "payload": {"x": float("nan")}}),
     ["schedule.payload", "NaN", "write the number, null or a string"]),
    (None, None, _trigger(schedule={**EVERY_5_MIN, "payload": {"x": "y" * (256 * 1024 - 20)}}),
     ["triggers[t1].schedule.payload", "envelope", "262144 bytes", "put large data in S3"]),
    (None, None, _trigger(schedule={**EVERY_5_MIN, "timezone": "localtime"}),
     ["schedule.timezone", "not an IANA time zone", "Europe/Berlin"]),
    (None, None, _trigger(schedule={**EVERY_5_MIN, "timezone": "Factory"}), ["schedule.timezone", "IANA"]),
    (None, None, _trigger(s3={"prefix": "p" * 600, "suffix": "s" * 600}),
     ["s3.prefix and s3.suffix", "1200 bytes", "1024", "shorten them"]),
    (None, None, {"triggers": [{"name": f"t{i}", "route": "count", "s3": {"bucket": f"source-bucket-{i}"}}
                               for i in range(41)]},
     ["41 buckets", "20,480 bytes", "at most 40", "fewer"]),
    # fan-in state lives under fanin/ in the mesh's bucket: each state object would start the route again
    (None, None, _trigger(s3={"prefix": "fanin/"}), ["triggers[t1].s3.prefix", "'fanin/'", "use another prefix"]),
    # a rate this long overflowed asya dev's schedule clock (a traceback) and never fires twice on AWS
    (None, None, _trigger(schedule={"expression": "rate(99999999999999999999 days)"}),
     ["schedule.expression", "at most 100 years", "rate(365 days)"]),
    (None, None, {"gateway": {"statusRetentionDays": 0}},
     ["gateway.statusRetentionDays", "greater than or equal to 1", "within that limit"]),
]


@pytest.mark.parametrize(("actor", "actor_spec", "mesh_spec", "fragments"), REFUSED)
def test_a_hostile_value_is_refused_naming_field_limit_and_fix(
    tmp_path: Path, actor: str | None, actor_spec: dict[str, Any] | None, mesh_spec: dict[str, Any] | None,
    fragments: list[str],
) -> None:
    with pytest.raises(SpecError) as raised:
        load_pipeline_dir(_pipeline(tmp_path, actor=actor, actor_spec=actor_spec, mesh_spec=mesh_spec))
    for fragment in fragments:
        assert fragment in str(raised.value)


ACCEPTED = [
    ("chunk", {"rateLimit": {"perSecond": 1 / 3600}}, None),  # the floor itself: one call an hour
    (None, None, _trigger(schedule={**EVERY_5_MIN, "payload": {"x": "y" * 1000}})),
    (None, None, _trigger(schedule={**EVERY_5_MIN, "timezone": "Europe/Berlin"})),
    (None, None, _trigger(schedule={"expression": "rate(36500 days)"})),  # the longest rate: 100 years
    (None, None, _trigger(s3={"prefix": "p" * 500, "suffix": "s" * 524})),  # exactly one key's 1,024 bytes
    # many triggers on one bucket share one queue policy statement
    (None, None, {"triggers": [{"name": f"t{i}", "route": "count", "s3": {"prefix": f"in{i:03d}/"}}
                               for i in range(150)]}),
]


@pytest.mark.parametrize(("actor", "actor_spec", "mesh_spec"), ACCEPTED)
def test_the_value_next_to_a_limit_is_accepted(
    tmp_path: Path, actor: str | None, actor_spec: dict[str, Any] | None, mesh_spec: dict[str, Any] | None,
) -> None:
    load_pipeline_dir(_pipeline(tmp_path, actor=actor, actor_spec=actor_spec, mesh_spec=mesh_spec))
