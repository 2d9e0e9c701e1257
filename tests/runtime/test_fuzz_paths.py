"""Fuzz pass on generator commands and their jq-like paths (issue 25, part 3): whatever the path or command,
``envelope_paths`` answers or raises :class:`PathError` (the handler server's :func:`apply_command`: an
:class:`EnvelopeCommandError`), always terminates, and never leaves the envelope in a shape the sidecar cannot
route: ``id``, ``parent_id``, ``route.prev`` and ``route.curr`` unchanged, ``route.next`` a list of actor names.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from asya_runtime import envelope_paths, handler_server
from asya_runtime.envelope import Envelope, Route, Status
from asya_runtime.envelope_paths import ROOTS, PathError, parse_path

pytestmark = pytest.mark.timeout(60)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

hostile_text = st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=10,
)
small_ints = st.integers(min_value=-5, max_value=5) | st.integers()
segments = st.one_of(
    hostile_text, st.sampled_from(["next", "prev", "curr", "x", "a.b", "0", ""]), small_ints,
    st.tuples(st.none() | small_ints, st.none() | small_ints),
)
segment_lists = st.tuples(st.sampled_from(ROOTS), st.lists(segments, max_size=4)).map(lambda t: [t[0], *t[1]])
#: Paths the access table may let through: few names and indexes, so that they meet what the envelope holds.
near_writable = st.tuples(
    st.sampled_from(["payload", "headers", "route", "status"]),
    st.lists(st.sampled_from(["next", "k", "x", "a.b", "c"]) | st.integers(min_value=-3, max_value=3)
             | st.tuples(st.none() | small_ints, st.none() | small_ints), max_size=4),
).map(lambda t: envelope_paths._render([t[0], *t[1]]))
#: Path text: a rendering of a segment list (the grammar), a grammar-shaped string of the path's own characters,
#: any text, and what is not text at all.
paths = st.one_of(
    segment_lists.map(envelope_paths._render), near_writable, near_writable,
    st.text(alphabet='.[]":-0123456789 abcdeghinopqrstuxy\\', max_size=24).map(lambda t: "." + t),
    hostile_text, json_values,
)
ops = st.sampled_from(["SET", "DEL", "GET"]) | st.sampled_from(["set", "FLY", ""]) | json_values
commands = st.one_of(
    st.tuples(st.sampled_from(["SET", "DEL", "GET"]), near_writable, json_values | st.lists(hostile_text, max_size=2)),
    st.tuples(ops, paths, json_values), st.tuples(ops, paths), st.tuples(ops),
    st.lists(json_values, max_size=4).map(tuple),
)


def envelope_dict() -> dict[str, Any]:
    envelope = Envelope(
        id="6a1f0c1e-2b1d-4c7e-9a55-0d2c1f1b9e10", route=Route(prev=["ingest"], curr="score", next=["judge"]),
        headers={"trace": "t", "a.b": [1, {"c": 2}]}, status=Status(attempt=2), payload={"k": [1, 2, {"x": "y"}]},
    )
    return envelope.model_dump(mode="json")


@FUZZ
@given(paths)
@example(".[")
@example('.["')
@example('.[""]')
@example("..")
@example(".payload[1:2:3]")
@example(".payload." + "[0]" * 1000)
def test_any_path_parses_or_is_refused_with_a_reason(path: Any) -> None:
    try:
        parsed = parse_path(path)
    except PathError as exc:
        assert str(exc)
        return
    assert parsed[0] in ROOTS
    assert all(isinstance(segment, (str, int, tuple)) for segment in parsed)


@FUZZ
@given(segment_lists)
def test_a_rendered_path_parses_back_to_its_segments(segment_list: list[Any]) -> None:
    assert parse_path(envelope_paths._render(segment_list)) == segment_list


@FUZZ
@given(st.lists(commands, max_size=6))
@example([("SET", ".route.next[5]", "x")])
@example([("SET", ".route.next[0:0]", ["a", "b"]), ("DEL", ".route.next[0]"), ("GET", ".route.next[-1]")])
@example([("SET", ".status", {"attempt": "many"}), ("SET", ".payload.k[9]", 1), ("DEL", ".headers")])
@example([("SET", ".headers[\"a.b\"][1].c", {"deep": [1]}), ("SET", ".payload", [])])
def test_any_command_applies_or_is_refused_and_the_route_stays_routable(steps: list[tuple[Any, ...]]) -> None:
    envelope = envelope_dict()
    fixed = {key: copy.deepcopy(envelope[key]) for key in ("id", "parent_id")}
    prev, curr = list(envelope["route"]["prev"]), envelope["route"]["curr"]
    for command in steps:
        before = json.dumps(envelope, sort_keys=True)
        try:
            got = handler_server.apply_command(envelope, command)
        except handler_server.EnvelopeCommandError as exc:
            assert str(exc)
            assert json.dumps(envelope, sort_keys=True) == before, "a refused command changed the envelope"
            continue
        if command[0] == "GET" and isinstance(got, (dict, list)):
            got.clear()  # a copy: the envelope behind it must not change
            assert json.dumps(envelope, sort_keys=True) == before
    assert {key: envelope[key] for key in fixed} == fixed
    assert envelope["route"]["prev"] == prev and envelope["route"]["curr"] == curr
    route_next = envelope["route"]["next"]
    assert isinstance(route_next, list) and all(isinstance(name, str) and name for name in route_next)
    assert isinstance(envelope["status"], dict) and isinstance(envelope["headers"], dict)
