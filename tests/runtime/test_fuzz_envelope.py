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
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from asya_runtime.envelope import MAX_NESTING, Envelope, EnvelopeError, id_problem, new_envelope
from asya_runtime.sidecar.routing import MALFORMED, malformed_record

pytestmark = pytest.mark.timeout(60)

#: What SQS accepts in a body (``sqs_safe``): anything else makes SendMessage fail.
SQS_BODY = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd]*")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Any code point, lone surrogates and controls included.
hostile_text = st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)


def values(floats: st.SearchStrategy[float], texts: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | floats | texts
    return st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
        max_leaves=20,
    )


def mostly(good: st.SearchStrategy[Any], *bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` nine times in ten, else one of ``bad``: enough valid envelopes to test the round trip."""
    return st.integers(min_value=0, max_value=9).flatmap(lambda n: good if n else st.one_of(*bad))


#: Text: any character but a surrogate (an emoji, U+FFFF and the controls included), now and then anything.
texts = mostly(st.text(max_size=40), hostile_text)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
#: Valid JSON values (any text but lone surrogates; finite numbers): every envelope holding only these is accepted.
valid_values = values(finite_floats, st.text(max_size=40))
#: JSON values; now and then NaN or an infinity, which json.dumps writes (as no JSON writer should).
json_values = mostly(values(finite_floats, texts), values(st.floats(), hostile_text))


ids = mostly(st.uuids().map(str), hostile_text, st.text(min_size=250, max_size=300), json_values)
actor_names = mostly(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), hostile_text, json_values)
timestamps = mostly(st.none() | st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()), json_values)


@st.composite
def envelope_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """An envelope-looking object: mostly the right fields, each now and then a hostile value or missing."""
    route = {"prev": draw(st.lists(actor_names, max_size=3)), "curr": draw(actor_names),
             "next": draw(st.lists(actor_names, max_size=3))}
    status = {"attempt": draw(mostly(st.integers(min_value=1, max_value=10), st.integers(max_value=0), json_values)),
              "max_attempts": draw(st.none() | st.integers(min_value=-2, max_value=10)),
              "deadline_at": draw(timestamps), "created_at": draw(timestamps), "phase": draw(st.none() | texts),
              "error": draw(st.none() | st.fixed_dictionaries(
                  {"type": texts, "message": texts, "reason": texts}))}
    envelope: dict[str, Any] = {
        "id": draw(ids), "parent_id": draw(st.none() | ids), "route": route,
        "headers": draw(mostly(st.dictionaries(texts, json_values, max_size=3), json_values)),
        "status": status, "payload": draw(json_values),
    }
    if draw(st.booleans()):
        envelope["hops"] = draw(json_values)
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        for field in draw(st.lists(st.sampled_from(sorted(envelope)), min_size=1, max_size=2)):
            envelope[field] = draw(json_values)  # a wrong type (or, by chance, a right one) in a whole field
    return envelope


#: What is spliced into a valid body: JSON's structural characters, escapes and the numbers JSON cannot carry.
SPLICES = ["", "[", "{", "]", "}", '"', "\\", "\\ud800", ",", "NaN", "-Infinity", "1e-999", "\x00", "\ud800"]


def nested(depth: int) -> str:
    return '{"id":"x","route":{"curr":"a"},"payload":' + "[" * depth + "]" * depth + "}"


def check_outcome(body: str | bytes) -> Envelope | None:
    """The property: an envelope that round-trips through an SQS-safe body, or a reasoned refusal whose error
    record is itself an SQS-safe body."""
    try:
        envelope = Envelope.parse(body)
    except EnvelopeError as exc:
        event("refused")  # --hypothesis-show-statistics says how many of each
        assert exc.reason == MALFORMED
        assert exc.detail
        text = body if isinstance(body, str) else body.decode(errors="replace")
        record = malformed_record(raw_body=text, message_id="m-1", actor="a", detail=str(exc)).envelope
        record_json = record.to_json()
        assert SQS_BODY.fullmatch(record_json)
        kept = text.encode("utf-8", "backslashreplace").decode()  # a lone surrogate kept as its escape
        assert Envelope.parse(record_json).payload == {"raw_body": kept}
        return None
    event("accepted")
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
@given(st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), min_size=1, max_size=4),
       st.dictionaries(st.text(max_size=10), valid_values, max_size=3), valid_values,
       st.uuids().map(str) | st.text(min_size=1, max_size=64).filter(lambda t: id_problem(t) is None))
def test_every_valid_envelope_round_trips(route: list[str], headers: dict[str, Any], payload: Any, envelope_id: str,
                                          ) -> None:
    """What a producer makes — any text (emoji, U+FFFF, controls), any finite number — is accepted, sent as a body
    SQS takes and read back the same."""
    envelope = new_envelope(route=route, payload=payload, headers=headers, envelope_id=envelope_id)
    assert check_outcome(envelope.to_json()) == envelope


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
        '{"id": "a", "route": {"curr": "a"}, "payload": [NaN, 1e999]}',
    ],
    ids=["surrogate-character", "nan", "infinity", "nan-and-exponent"],
)
def test_what_fuzzing_found_is_refused_with_a_reason(body: str) -> None:
    """Each was accepted and then failed to serialise (the surrogate) or went on with ``null`` in its place."""
    with pytest.raises(EnvelopeError, match=r"surrogate|JSON cannot carry"):
        Envelope.parse(body)
