"""The Pulumi components (type tokens ``asya:index:<Name>``), one module each."""

from asya_pulumi.components.actor import AsyncActor
from asya_pulumi.components.queue import ActorQueue

__all__ = ["ActorQueue", "AsyncActor"]
