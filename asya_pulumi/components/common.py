"""What every component shares: its type-token prefix, standard labels and tags (from
:mod:`asya_pulumi.objects.labels`), child resource options, and its outputs listed once (:class:`AsyaComponent`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi

from asya_pulumi.objects.labels import PART_OF, labels, tags

__all__ = ["PART_OF", "TYPE_PREFIX", "AsyaComponent", "ComponentOutput", "child", "labels", "tags"]

TYPE_PREFIX = "asya:index:"


def child(parent: pulumi.Resource, **changes: object) -> pulumi.ResourceOptions:
    """Options for a component's child: ``parent=`` it, so providers and aliases flow down."""
    return pulumi.ResourceOptions(parent=parent, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ComponentOutput:
    """One output of a component, as every language sees it.

    ``name``: its camelCase name (the key of ``register_outputs``, of the provider's state and of the package
    schema's ``properties``); ``attribute``: the Python attribute that holds it; ``type``: its Python type once
    resolved (``str``, ``list[str]``, ``dict[str, str]``, ...), which the package schema turns into a schema type;
    ``secret``: Pulumi keeps it encrypted in every language's state.
    """

    name: str
    attribute: str
    type: Any
    description: str
    secret: bool = False


class AsyaComponent(pulumi.ComponentResource):
    """A component whose outputs are listed once, in ``OUTPUTS``: ``register_outputs`` (:meth:`register`) and the
    cross-language provider's ``construct`` state (:meth:`output_values`) read the same list, and the package schema
    types it, so an output added to a component reaches every language with no second edit."""

    OUTPUTS: ClassVar[tuple[ComponentOutput, ...]] = ()

    def output_values(self) -> dict[str, Any]:
        """Every output of ``OUTPUTS`` by its camelCase name, read from the component's attributes."""
        return {output.name: getattr(self, output.attribute) for output in self.OUTPUTS}

    def register(self) -> None:
        """``register_outputs`` with :meth:`output_values`: last in ``__init__``, once every attribute is set."""
        self.register_outputs(self.output_values())
