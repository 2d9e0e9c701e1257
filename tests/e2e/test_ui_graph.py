"""The page's graph model: edges from routes and from the paths records took, error rates, a left-to-right layout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asya_pulumi.ui.graph import ActorLoad, activity_of, layout, mesh_graph


@dataclass(frozen=True)
class Record:
    envelope: dict[str, Any]
    succeeded: bool


def _ok(*prev: str) -> Record:
    return Record({"route": {"prev": list(prev), "curr": "success-sink", "next": []}, "status": {"error": None}}, True)


def _failed(*prev: str, at: str) -> Record:
    route = {"prev": list(prev), "curr": at, "next": []}
    return Record({"route": route, "status": {"error": {"actor": at, "type": "ValueError"}}}, False)


def test_activity_counts_passes_and_errors_per_actor_and_the_hops_taken():
    records = [_ok("a", "b", "store"), _ok("a", "b", "review"), _failed("a", at="b"), _failed(at="a")]

    activity = activity_of(records)

    assert activity.passed == {"a": 3, "b": 2, "store": 1, "review": 1, "success-sink": 2, "error-sink": 2}
    assert activity.errors == {"b": 1, "a": 1}
    assert activity.error_rate("b") == 1 / 3
    assert activity.error_rate("a") == 1 / 4
    assert activity.error_rate("nobody") is None
    assert activity.edges == {
        ("a", "b"), ("b", "store"), ("b", "review"), ("store", "success-sink"), ("review", "success-sink"),
    }


def test_observed_hops_join_actors_a_route_reaches_only_at_run_time():
    graph = mesh_graph(
        namespace="m", actors=["a", "b", "store", "success-sink", "error-sink"], routes={"r": ["a", "b"]},
        loads={"a": ActorLoad(waiting=4), "b": ActorLoad(dlq=2)},
        activity=activity_of([_ok("a", "b", "store")]),
    )

    edges = {(e["from"], e["to"]): e["kind"] for e in graph["edges"]}
    assert edges == {
        ("a", "b"): "declared", ("b", "success-sink"): "declared",
        ("b", "store"): "observed", ("store", "success-sink"): "observed",
    }
    nodes = {n["name"]: n for n in graph["nodes"]}
    assert (nodes["a"]["waiting"], nodes["b"]["dlq"]) == (4, 2)
    assert not nodes["store"]["has_queue"] and nodes["a"]["has_queue"]
    assert nodes["store"]["column"] > nodes["b"]["column"] > nodes["a"]["column"]
    assert nodes["success-sink"]["column"] == nodes["error-sink"]["column"] > nodes["store"]["column"]


def test_layout_ends_on_a_cycle_and_keeps_every_node():
    placed = layout(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])

    assert set(placed) == {"a", "b", "c"}
    assert all(0 <= column < 3 for column, _ in placed.values())
    assert len(set(placed.values())) == 3  # no two nodes on one spot


def test_unconnected_actors_stack_in_the_first_column():
    placed = layout(["x", "y", "z"], [])

    assert sorted(placed.values()) == [(0, 0), (0, 1), (0, 2)]


def test_error_edges_lead_from_the_actors_that_failed_envelopes_into_the_error_sink():
    graph = mesh_graph(
        namespace="m", actors=["a", "b", "c", "success-sink", "error-sink"], routes={"r": ["a", "b", "c"]},
        loads={},
        activity=activity_of([_failed("a", at="b"), _failed("a", at="b"), _failed(at="a"), _ok("a", "b", "c")]),
    )

    errors = {(e["from"], e["to"]): e["count"] for e in graph["edges"] if e["kind"] == "error"}
    assert errors == {("a", "error-sink"): 1, ("b", "error-sink"): 2}  # not from c: it failed nothing
