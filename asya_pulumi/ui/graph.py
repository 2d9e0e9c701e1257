"""The mesh as a graph for the page: nodes (actors and sinks with their live numbers), edges, and a layered layout.

Edges come from three places. **Declared** ones are the mesh spec's routes (``--mesh``): consecutive actors of each
route, and its last actor to the success sink. **Observed** ones come from the recent final records: each record's
``route.prev`` is the path its envelope really took, so hops a handler chose at run time (a judge that routes to
``store`` or ``human-review``) show up too, and a mesh without a spec still gets edges. **Error** edges join each
actor that ended recent envelopes in the error sink to it, with the count: the records say which actors failed
envelopes, so only those get one.

The layout is computed here rather than in the page so it can be tested: a node's column is the length of the
longest path reaching it (sources in column 0, cycles cut by a bound), its row its order within the column.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from asya_runtime.naming import ERROR_SINK, SINKS, SUCCESS_SINK


class RecordLike(Protocol):
    """What the graph reads of a final record: its stored envelope and whether the success sink stored it."""

    @property
    def envelope(self) -> dict[str, Any]: ...

    @property
    def succeeded(self) -> bool: ...


@dataclass(frozen=True)
class ActorLoad:
    """Live numbers of one actor's queues (from SQS) and of its recent final records."""

    waiting: int = 0
    in_flight: int = 0
    delayed: int = 0
    dlq: int = 0


@dataclass
class Activity:
    """Per actor, over the recent final records: envelopes it handled successfully and errors it raised (a sink:
    the records it stored), and the hops the envelopes took. Hops into the error sink are kept apart, as
    ``errors``: :func:`mesh_graph` draws an *error* edge from each actor that really ended envelopes there (not
    from every actor, which could only say that any of them might)."""

    passed: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)

    def error_rate(self, actor: str) -> float | None:
        """Errors / (errors + successful passes) of ``actor``; None when no recent record went through it."""
        errors, passed = self.errors.get(actor, 0), self.passed.get(actor, 0)
        return None if errors + passed == 0 else errors / (errors + passed)


def activity_of(records: Iterable[RecordLike]) -> Activity:
    """Count passes and errors per actor and collect the hops the records' envelopes really took."""
    activity = Activity()
    for record in records:
        route = record.envelope.get("route") or {}
        prev = [str(a) for a in route.get("prev") or []]
        curr = route.get("curr")
        path = [*prev, SUCCESS_SINK] if record.succeeded else prev
        if not record.succeeded:
            error = (record.envelope.get("status") or {}).get("error") or {}
            failed = error.get("actor") or curr
            if failed:
                activity.errors[str(failed)] = activity.errors.get(str(failed), 0) + 1
                path = [*prev, str(failed)]
        for actor in [*prev, SUCCESS_SINK if record.succeeded else ERROR_SINK]:  # a sink "passes" what it stores
            activity.passed[actor] = activity.passed.get(actor, 0) + 1
        activity.edges.update(itertools.pairwise(path))
    return activity


def declared_edges(routes: Mapping[str, Sequence[str]]) -> set[tuple[str, str]]:
    """Consecutive actors of every declared route, and each route's last actor to the success sink."""
    edges: set[tuple[str, str]] = set()
    for steps in routes.values():
        path = [*steps, SUCCESS_SINK]
        edges.update(itertools.pairwise(path))
    return edges


def layout(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, tuple[int, int]]:
    """``{node: (column, row)}``: column = longest path from a source (bounded, so cycles end), sinks last."""
    known = set(nodes)
    edge_list = sorted((a, b) for a, b in set(edges) if a in known and b in known and a != b)
    column = dict.fromkeys(nodes, 0)
    for _ in range(len(nodes)):  # Bellman-Ford style relaxation; at most len(nodes) rounds even with a cycle
        changed = False
        for a, b in edge_list:
            if column[b] < column[a] + 1 and column[a] + 1 < len(nodes):
                column[b] = column[a] + 1
                changed = True
        if not changed:
            break
    last = max((c for n, c in column.items() if n not in SINKS), default=0) + 1
    for sink in SINKS:
        if sink in column:
            column[sink] = last
    rows: dict[int, int] = {}
    placed: dict[str, tuple[int, int]] = {}
    for node in sorted(nodes, key=lambda n: (column[n], n == ERROR_SINK, n)):
        rows[column[node]] = rows.get(column[node], -1) + 1
        placed[node] = (column[node], rows[column[node]])
    return placed


def mesh_graph(
    *,
    namespace: str,
    actors: Sequence[str],
    routes: Mapping[str, Sequence[str]],
    loads: Mapping[str, ActorLoad],
    activity: Activity,
) -> dict[str, Any]:
    """The JSON the page draws: nodes with their numbers and positions, declared, observed and error edges.

    ``actors`` are the nodes to show (declared and found from queues); ``loads`` has an entry for each actor that
    has a queue, so a declared actor without one (not deployed yet, or another namespace) is marked as such.
    """
    names = list(dict.fromkeys([*actors, *(a for steps in routes.values() for a in steps)]))
    declared = declared_edges(routes)
    observed = {e for e in activity.edges if e[0] in names and e[1] in names} - declared
    positions = layout(names, declared | observed)
    nodes = []
    for name in names:
        column, row = positions[name]
        rate = activity.error_rate(name)
        nodes.append({
            "name": name,
            "kind": "sink" if name in SINKS else "actor",
            "has_queue": name in loads,
            **asdict(loads.get(name, ActorLoad())),
            "passed": activity.passed.get(name, 0),
            "errors": activity.errors.get(name, 0),
            "error_rate": None if rate is None else round(rate, 4),
            "column": column,
            "row": row,
        })
    edges: list[dict[str, Any]] = [{"from": a, "to": b, "kind": "declared"} for a, b in sorted(declared)]
    edges += [{"from": a, "to": b, "kind": "observed"} for a, b in sorted(observed)]
    if ERROR_SINK in names:  # not part of the layout: the sink's column is last whatever points at it
        edges += [{"from": actor, "to": ERROR_SINK, "kind": "error", "count": count}
                  for actor, count in sorted(activity.errors.items()) if actor in names and actor != ERROR_SINK]
    return {"namespace": namespace, "routes": {k: list(v) for k, v in routes.items()}, "nodes": nodes, "edges": edges}
