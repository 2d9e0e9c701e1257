"""The base every spec model shares: camelCase aliases for manifests, unknown fields refused, immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

#: The manifest apiVersion every asya kind uses.
API_VERSION = "asya.sh/v1alpha1"


class SpecModel(BaseModel):
    """Snake_case in Python, camelCase in manifests (``max_replica_count`` / ``maxReplicaCount``).

    ``extra="forbid"``: a typo such as ``maxReplicas`` fails instead of silently taking the default.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, alias_generator=to_camel, validate_default=True
    )
