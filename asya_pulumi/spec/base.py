"""The base every spec model shares: camelCase aliases for manifests, unknown fields refused, immutable."""

from __future__ import annotations

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

from asya_runtime.manifest_model import ManifestModel

#: The manifest apiVersion every asya kind uses.
API_VERSION = "asya.sh/v1alpha1"


class SpecModel(ManifestModel):
    """Snake_case in Python, camelCase in manifests (``max_replica_count`` / ``maxReplicaCount``).

    ``extra="forbid"``: a typo such as ``maxReplicas`` fails instead of silently taking the default. Numbers follow
    :class:`~asya_runtime.manifest_model.ManifestModel`'s rules (no booleans, ``int32``).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, alias_generator=to_camel, validate_default=True
    )

