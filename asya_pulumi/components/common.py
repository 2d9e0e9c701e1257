"""What every component shares: its type-token prefix, standard labels and tags (from
:mod:`asya_pulumi.objects.labels`), and child resource options."""

from __future__ import annotations

import pulumi

from asya_pulumi.objects.labels import PART_OF, labels, tags

__all__ = ["PART_OF", "TYPE_PREFIX", "child", "labels", "tags"]

TYPE_PREFIX = "asya:index:"


def child(parent: pulumi.Resource, **changes: object) -> pulumi.ResourceOptions:
    """Options for a component's child: ``parent=`` it, so providers and aliases flow down."""
    return pulumi.ResourceOptions(parent=parent, **changes)  # type: ignore[arg-type]
