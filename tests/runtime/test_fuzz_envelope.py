"""Fuzz pass on envelope parsing (issue 25, part 3): whatever the body, :meth:`Envelope.parse` gives an envelope or
an :class:`EnvelopeError` with a reason, never another exception; what it accepts serialises back to a body SQS
takes that parses to the same envelope; and what it refuses still makes an error record that SQS takes.

Inputs are both raw (any text, any bytes) and envelope-shaped JSON with hostile values: ids with control
characters and lone surrogates, deep nesting, huge numbers, NaN, wrong types in every field.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from asya_runtime.envelope import MAX_NESTING, Envelope, EnvelopeError
from asya_runtime.sidecar.routing import MALFORMED, malformed_record

pytestmark = pytest.mark.timeout(60)

#: What SQS accepts in a body (``sqs_safe``): anything else makes SendMessage fail.
SQS_BODY = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd]*")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Any code point, lone surrogates and controls included.
hostile_text = st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(), hostile_text,  # NaN and the infinities too: json.dumps writes them (as no JSON writer should)
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=20,
)
uuid_like = st.uuids().map(str)
ids = st.one_of(uuid_like, hostile_text, st.text(min_size=250, max_size=300), json_values)
actor_names = st.one_of(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), hostile_text, json_values)
timestamps = st.one_of(st.none(), st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()), json_values)


@st.composite
def envelope_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """An envelope-looking object: mostly the right fields, each now and then a hostile value or missing."""
    route = {"prev": draw(st.lists(actor_names, max_size=3)), "curr": draw(actor_names),
             "next": draw(st.lists(actor_names, max_size=3))}
    status = {"attempt": draw(st.one_of(st.integers(min_value=-2, max_value=10), json_values)),
              "max_attempts": draw(st.one_of(st.none(), st.integers(min_value=-2, max_value=10))),
              "deadline_at": draw(timestamps), "created_at": draw(timestamps), "phase": draw(st.none() | hostile_text),
              "error": draw(st.none() | st.fixed_dictionaries(
                  {"type": hostile_text, "message": hostile_text, "reason": hostile_text}))}
    envelope: dict[str, Any] = {
        "id": draw(ids), "parent_id": draw(st.none() | ids), "route": route,
        "headers": draw(st.dictionaries(hostile_text, json_values, max_size=3)),
        "status": status, "payload": draw(json_values),
    }
    if draw(st.booleans()):
        envelope["hops"] = draw(json_values)
    for field in draw(st.lists(st.sampled_from(sorted(envelope)), max_size=2)):
        envelope[field] = draw(json_values)  # a wrong type (or, by chance, a right one) in a whole field
    return envelope


#: What is spliced into a valid body: JSON's structural characters, escapes and the numbers JSON cannot carry.
SPLICES = ["", "[", "{", "]", "}", '"', "\\", "\\ud800", ",", "NaN", "-Infinity", "1e999", "\x00", "\ud800"]


def nested(depth: int) -> str:
    return '{"id":"x","route":{"curr":"a"},"payload":' + "[" * depth + "]" * depth + "}"


def check_outcome(body: str | bytes) -> Envelope | None:
    """The property: an envelope that round-trips through an SQS-safe body, or a reasoned refusal whose error
    record is itself an SQS-safe body."""
    try:
        envelope = Envelope.parse(body)
    except EnvelopeError as exc:
        assert exc.reason == MALFORMED
        assert exc.detail
        text = body if isinstance(body, str) else body.decode(errors="replace")
        record = malformed_record(raw_body=text, message_id="m-1", actor="a", detail=str(exc)).envelope
        record_json = record.to_json()
        assert SQS_BODY.fullmatch(record_json)
        kept = text.encode("utf-8", "backslashreplace").decode()  # a lone surrogate kept as its escape
        assert Envelope.parse(record_json).payload == {"raw_body": kept}
        return None
    out = envelope.to_json()
    assert SQS_BODY.fullmatch(out), f"a character SQS refuses in {out!r}"
    again = Envelope.parse(out)
    assert again.model_dump() == envelope.model_dump()
    assert again.to_json() == out
    return envelope


@FUZZ
@given(hostile_text)
@example("")
@example("null")
@example('{"route": {"curr": "a"}}')
@example('{"id": "a\\u0000b", "route": {"curr": "a"}}')
@example('{"id": "a", "route": {"curr": "a"}, "payload": "\\ud800"}')
@example(nested(MAX_NESTING + 5))
@example('{"id": "a", "route": {"curr": "a"}, "payload": NaN}')  # found: accepted, sent on as null
@example('{"id": "a", "route": {"curr": "a"}, "payload": {"x": 1e999}}')  # found: accepted, sent on as null
@example('{"id": "a", "route": {"curr": "a"}, "payload": {"x": 1e-999, "NaN": "Infinity"}}')
@example("\ud800")  # found: its error record could not be serialised (the message vanished)
@example('{"id": "a", "route": {"curr": "a"}, "payload": "\ud800"}')  # found: accepted, then unserialisable
def test_any_text_is_an_envelope_or_a_reasoned_refusal(body: str) -> None:
    check_outcome(body)


@FUZZ
@given(st.binary(max_size=200))
@example(b"\xff\xfe")
@example(b'{"id": "\xc3", "route": {"curr": "a"}}')
def test_any_bytes_are_an_envelope_or_a_reasoned_refusal(body: bytes) -> None:
    check_outcome(body)


@FUZZ
@given(envelope_shaped(), st.booleans())
def test_envelope_shaped_json_with_hostile_values(envelope: dict[str, Any], ascii_only: bool) -> None:
    check_outcome(json.dumps(envelope, ensure_ascii=ascii_only))


@FUZZ
@given(envelope_shaped(), st.data())
def test_a_mutilated_envelope_body_is_an_envelope_or_a_reasoned_refusal(envelope: dict[str, Any], data: Any) -> None:
    """Cut, spliced and bracket-stuffed envelope bodies: the edges of the JSON grammar near valid input."""
    text = json.dumps(envelope)
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    splice = data.draw(st.sampled_from(SPLICES))
    check_outcome(text[:cut] + splice + text[cut:])


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=3 * MAX_NESTING), st.sampled_from(["[", '{"a":']))
def test_nesting_at_any_depth_is_parsed_or_refused(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    body = '{"id":"x","route":{"curr":"a"},"payload":' + opener * depth + "0" + closer * depth + "}"
    refused = check_outcome(body) is None
    assert refused == (depth + 1 > MAX_NESTING)  # the envelope is level 1, its payload's brackets the levels below


@pytest.mark.parametrize(
    "body",
    [
        '{"id": "a", "route": {"curr": "a"}, "payload": "\ud800"}',
        '{"id": "a", "route": {"curr": "a"}, "payload": NaN}',
        '{"id": "a", "route": {"curr": "a"}, "headers": {"x": -Infinity}}',
        '{"id": "a", "route": {"curr": "a"}, "payload": [1e999]}',
        '{"id": "a", "route": {"curr": "a"}, "payload": 1' + "0" * 400 + '.5}',
    ],
    ids=["surrogate-character", "nan", "infinity", "exponent", "digits"],
)
def test_what_fuzzing_found_is_refused_with_a_reason(body: str) -> None:
    """Each was accepted and then failed to serialise (the surrogate) or went on with ``null`` in its place."""
    with pytest.raises(EnvelopeError, match=r"surrogate|JSON cannot carry"):
        Envelope.parse(body)
