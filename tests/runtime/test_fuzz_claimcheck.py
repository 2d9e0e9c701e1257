"""Fuzz pass on claim-check references (issue 25, part 3): whatever the body, :func:`reference_in` says "no
reference", gives one, or raises :class:`EnvelopeError` with a reason; :meth:`ClaimCheck.untrusted` answers every
reference without raising; a reference it trusts names only this mesh's ``offload/{id}/`` objects, can be asked
for in an S3 request, and, when its object is gone, still makes an error record SQS takes; and every reference a
producer writes (:func:`offload_key`) is trusted.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from asya_runtime.config import OFFLOAD_PREFIX
from asya_runtime.envelope import Envelope, EnvelopeError, Route, id_problem
from asya_runtime.sidecar.claimcheck import (
    REFERENCE_FIELD,
    ClaimCheck,
    Reference,
    missing_record,
    missing_sink_record,
    offload_key,
    reference_in,
)
from asya_runtime.sidecar.routing import MALFORMED

pytestmark = pytest.mark.timeout(60)

BUCKET = "asya-mesh-a-results"
SQS_BODY = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd]*")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = '{"' + REFERENCE_FIELD + '":'

hostile_text = st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=24)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)
ids = st.uuids().map(str) | st.sampled_from(["x", "a/b", "", "nul\x00", "\ud800"]) | hostile_text
actors = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
routes = st.one_of(
    st.builds(lambda prev, curr, nxt: {"prev": prev, "curr": curr, "next": nxt},
              st.lists(actors, max_size=2), actors, st.lists(actors, max_size=2)),
    st.just({}), st.dictionaries(st.sampled_from(["prev", "curr", "next", "x"]), json_values, max_size=3), json_values,
)


@st.composite
def keys(draw: st.DrawFn, envelope_id: Any) -> Any:
    """A key: mostly under the envelope's own prefix, with a hostile name, another prefix, or no text at all."""
    prefix = f"{OFFLOAD_PREFIX}/{envelope_id}/" if isinstance(envelope_id, str) else f"{OFFLOAD_PREFIX}/x/"
    return draw(st.one_of(
        st.builds(lambda name: prefix + name, st.sampled_from(["0-a-1.json", "../../etc", "a/b.json", ""])),
        st.builds(lambda name: prefix + name, hostile_text),
        st.sampled_from([f"{OFFLOAD_PREFIX}/other/0-a-1.json", "succeeded/x.json", prefix.rstrip("/")]),
        json_values,
    ))


@st.composite
def reference_fields(draw: st.DrawFn) -> dict[str, Any]:
    envelope_id = draw(ids | json_values)
    fields = {
        "bucket": draw(st.sampled_from([BUCKET, BUCKET + "-x", ""]) | json_values),
        "key": draw(keys(envelope_id)),
        "version_id": draw(st.none() | st.sampled_from(["3/L4kqtJlcpXroDTDm+rmSpX", "null"]) | json_values),
        "bytes": draw(st.integers(min_value=0) | json_values),
        "id": envelope_id,
        "route": draw(routes),
    }
    for field in draw(st.lists(st.sampled_from(sorted(fields)), max_size=2)):
        fields.pop(field, None)  # a field missing
    if draw(st.booleans()):
        fields[draw(hostile_text)] = draw(json_values)  # a field no reference has
    return fields


def claims() -> ClaimCheck:
    return ClaimCheck(broker=None, bucket=BUCKET, threshold=1, visibility_s=30)  # type: ignore[arg-type]


def check(body: str) -> Reference | None:
    """The property, for one body."""
    try:
        reference = reference_in(body)
    except EnvelopeError as exc:
        assert exc.reason == MALFORMED and exc.detail
        return None
    if reference is None:
        assert not body.startswith(START)
        return None
    problem = claims().untrusted(reference)
    event("untrusted" if problem else "trusted")
    if problem is not None:
        assert isinstance(problem, str) and problem
        return reference
    # Trusted: this mesh's bucket, this envelope's prefix, one object name under it ...
    assert reference.bucket == BUCKET and id_problem(reference.id) is None
    prefix = f"{OFFLOAD_PREFIX}/{reference.id}/"
    assert reference.key.startswith(prefix) and "/" not in reference.key[len(prefix):]
    assert reference.key[len(prefix):] not in ("", ".", "..")
    # ... that an S3 request can name ...
    reference.key.encode()
    assert reference.version_id is None or isinstance(reference.version_id, str)
    (reference.version_id or "").encode()
    # ... and whose missing object still makes an error record (actor) and a failed/ record (sink).
    record = missing_record(reference=reference, actor="a", detail="gone").envelope
    text = record.to_json()
    assert SQS_BODY.fullmatch(text) and Envelope.parse(text).model_dump() == record.model_dump()
    key, content = missing_sink_record(reference=reference, message_id="m-1", mode="error", detail="gone")
    assert json.loads(content)["reference"]["key"] == reference.key and key.encode()
    return reference


@FUZZ
@given(hostile_text | hostile_text.map(lambda tail: START + tail))
@example(START + "[" * 100_000)  # found: RecursionError out of reference_in (not an EnvelopeError)
@example(START + "null}")
@example(START + '{"bucket": "b"}}')
def test_any_body_is_a_reference_none_or_a_reasoned_refusal(body: str) -> None:
    check(body)


@FUZZ
@given(reference_fields(), st.booleans())
@example({"bucket": BUCKET, "key": "offload/x/0-a-1.json", "version_id": None, "bytes": 1, "id": "x",
          "route": {"curr": "\ud800"}}, True)  # found: trusted, then its error record could not be serialised
@example({"bucket": BUCKET, "key": "offload/x/0-a-1.json", "version_id": None, "bytes": 1, "id": "x",
          "route": ["a"]}, True)  # found: trusted, then its error record raised a ValidationError
@example({"bucket": BUCKET, "key": "offload/x/\ud800", "version_id": None, "bytes": 1, "id": "x", "route": {}},
         True)  # found: trusted, then no S3 request could name it
@example({"bucket": BUCKET, "key": "offload/x/..", "version_id": 7, "bytes": 1, "id": "x", "route": {}}, False)
@example({"bucket": BUCKET, "key": "offload/x/0-a-1.json", "version_id": None, "bytes": float("nan"), "id": "x",
          "route": {}}, True)
def test_any_reference_is_trusted_only_when_every_later_step_can_use_it(
    fields: dict[str, Any], ascii_only: bool,
) -> None:
    check(json.dumps({REFERENCE_FIELD: fields}, ensure_ascii=ascii_only))


@FUZZ
@given(st.uuids().map(str) | st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True),
       st.lists(actors, max_size=3), actors, st.lists(actors, max_size=3), actors,
       st.integers(min_value=1, max_value=50), st.none() | st.sampled_from(["3/L4kqtJlcpXroDTDm+rmSpX", "null"]))
def test_every_reference_a_producer_writes_is_trusted(
    envelope_id: str, prev: list[str], curr: str, nxt: list[str], to: str, attempt: int, version: str | None,
) -> None:
    envelope = Envelope(id=envelope_id, route=Route(prev=prev, curr=curr, next=nxt), status={"attempt": attempt})
    reference = Reference(BUCKET, offload_key(envelope, to=to), version, 10, envelope.id,
                          envelope.route.model_dump(mode="json"))
    assert reference_in(reference.to_body()) == reference
    assert claims().untrusted(reference) is None
    assert check(reference.to_body()) == reference
