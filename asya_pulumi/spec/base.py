"""The base every spec model shares: camelCase aliases for manifests, unknown fields refused, immutable, and
defaults that depend on other fields (:class:`DerivedDefault`) filled in one place."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import AliasChoices, BeforeValidator, ConfigDict, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from asya_runtime.manifest_model import ManifestModel

#: The manifest apiVersion every asya kind uses.
API_VERSION = "asya.sh/v1alpha1"


@dataclass(frozen=True)
class DerivedDefault:
    """Field metadata (``Annotated[int, DerivedDefault(...)]``): the field's default depends on other fields.

    ``derive`` computes it from the model's input (a mapping in manifest or Python names) when the field is left
    out; ``rule`` says the same in words. The rule is the one statement of that default: :class:`SpecModel` applies
    ``derive``, and the cross-language package schema states no ``default`` for the field (the generated SDKs would
    fill a literal one in and override the rule) but ends its description with ``rule``.
    """

    rule: str
    derive: Callable[[Mapping[str, Any]], Any]


def derived_default(field: FieldInfo) -> DerivedDefault | None:
    """The field's :class:`DerivedDefault`, or None when its default is the ``Field`` default."""
    return next((item for item in field.metadata if isinstance(item, DerivedDefault)), None)


def spellings(name: str, field: FieldInfo) -> set[str]:
    """Every key an input may give the field under: its Python name, its alias and its validation aliases."""
    names = {name, field.alias or name}
    choices = field.validation_alias
    if isinstance(choices, str):
        names.add(choices)
    elif isinstance(choices, AliasChoices):
        names.update(choice for choice in choices.choices if isinstance(choice, str))
    return names


class SpecModel(ManifestModel):
    """Snake_case in Python, camelCase in manifests (``max_replica_count`` / ``maxReplicaCount``).

    ``extra="forbid"``: a typo such as ``maxReplicas`` fails instead of silently taking the default. Numbers follow
    :class:`~asya_runtime.manifest_model.ManifestModel`'s rules (no booleans, ``int32``).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, alias_generator=to_camel, validate_default=True
    )

    @model_validator(mode="before")
    @classmethod
    def _derived_defaults(cls, data: Any) -> Any:
        """Each :class:`DerivedDefault` field the input leaves out, derived from the rest of the input.

        A base-class before-validator runs after the subclass's own (pydantic runs before-validators last-defined
        first), so the input it sees is already in this model's shape, e.g. upstream Asya's GPUs under
        ``resources`` moved to ``gpu`` (``spec/upstream_form.py``).
        """
        if not isinstance(data, Mapping):
            return data
        derived = {
            field.alias or name: rule.derive(data)
            for name, field in cls.model_fields.items()
            if (rule := derived_default(field)) is not None and not spellings(name, field) & set(data)
        }
        return {**data, **derived} if derived else data


def json_text_to_mapping(*, what: str, example: str) -> BeforeValidator:
    """For a free-form JSON object field: a mapping in manifests and Python, JSON text from the cross-language SDKs
    (whose schema has no typed form for free-form JSON other than ``Any``, kept out of this package's schema). Text
    that is not JSON is refused naming ``what`` and how the SDKs write it (``example``)."""

    def mapping_of(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f"{what} is text but not JSON ({exc}); write it as a mapping, or as JSON text from the "
                             f"SDKs (e.g. {example})") from None

    return BeforeValidator(mapping_of)


def json_text_schema(*, what: str) -> WithJsonSchema:
    """The package schema's form of such a field: a string of JSON text."""
    return WithJsonSchema({"type": "string", "description": f"JSON text of the {what} (a mapping in manifests)."})
