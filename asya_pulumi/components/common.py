"""What every component shares: its type-token prefix, standard labels and tags, and child resource options."""

from __future__ import annotations

import pulumi

TYPE_PREFIX = "asya:index:"
PART_OF = "asya"


def child(parent: pulumi.Resource, **changes: object) -> pulumi.ResourceOptions:
    """Options for a component's child: ``parent=`` it, so providers and aliases flow down."""
    return pulumi.ResourceOptions(parent=parent, **changes)  # type: ignore[arg-type]


def labels(*, namespace: str, actor: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": actor,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        "asya.sh/mesh": namespace,
    }


def tags(*, namespace: str, actor: str | None = None) -> dict[str, str]:
    found = {"asya.sh/mesh": namespace, "managed-by": "pulumi"}
    if actor is not None:
        found["asya.sh/actor"] = actor
    return found
