"""The Pulumi package schema's types, generated from the pydantic spec models (the one source of truth).

Every model reachable from a component's ``spec`` becomes an object type ``asya:index:<ClassName>`` whose properties
are the model's fields under their manifest (camelCase) names, with the field's type, its ``description`` and, when
it has no default, a place in ``required``. A ``Literal`` becomes a string enum type ``asya:index:<Class><Field>``;
``list``/``dict`` become ``array``/``object`` with typed items; ``X | None`` is ``X``, optional. So TypeScript, Go
and YAML users get the fields, their docs and their types in the editor, and a field added to a model appears in
the schema without a second edit. A default is stated only where the model gives it in every case
(:func:`field_default`): the generated SDKs fill it in before the provider sees the input, so a default that
depends on other fields (:class:`~asya_pulumi.spec.base.DerivedDefault`) is stated as its rule, in words. The
docstrings' reST becomes Markdown (:func:`markdown`), which Pulumi reads descriptions as.

Why not ``pulumi.provider.experimental.component_provider_host``: it reads the schema from ``TypedDict`` ``Args``
annotations, so each spec would be written twice (the TypedDict and the pydantic model with its validators) and
drift; here the validators run unchanged inside ``construct`` and the schema is derived from the same classes.

Inputs a model accepts in a shorter form are typed as every form it accepts: durations (``30`` or ``"30s"``) and
``onExhausted`` (one actor or a list). Constraints the schema language cannot express (``ge=1``, name rules) stay
in the validators, which fail at preview with the field, the limit and the fix.
"""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, WithJsonSchema
from pydantic.fields import FieldInfo

from asya_pulumi.spec.base import derived_default
from asya_runtime.durations import parse_duration

PACKAGE = "asya"
MODULE = "index"
STRING: dict[str, Any] = {"type": "string"}
NUMBER: dict[str, Any] = {"type": "number"}
_SCALARS: dict[object, dict[str, Any]] = {
    str: STRING,
    int: {"type": "integer"},
    float: NUMBER,
    bool: {"type": "boolean"},
}
#: Before-validators that accept a shorter form: the schema names both forms.
_DURATION = {"oneOf": [NUMBER, STRING], "description": "Seconds, or a duration such as \"30s\", \"5m\", \"1h\"."}


def token(name: str) -> str:
    """``asya:index:<name>``: the package token of a type or resource."""
    return f"{PACKAGE}:{MODULE}:{name}"


def ref(name: str) -> dict[str, str]:
    """A property that has the object or enum type ``name`` of this package."""
    return {"$ref": f"#/types/{token(name)}"}


def manifest_name(name: str, field: FieldInfo) -> str:
    """The field's name in manifests and in the schema (its alias, camelCase)."""
    return field.alias or name


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))


class SchemaTypes:
    """Collects the object and enum types reachable from some models; ``types`` is the schema's ``types`` map."""

    def __init__(self) -> None:
        self.types: dict[str, dict[str, Any]] = {}
        #: object type token → the model it was generated from (what a property's default is checked against)
        self.models: dict[str, type[BaseModel]] = {}

    def model(self, model: type[BaseModel]) -> dict[str, str]:
        """Add ``model`` (and every model its fields name) as an object type; return a reference to it."""
        name = model.__name__
        if token(name) in self.types:
            return ref(name)
        spec: dict[str, Any] = {"type": "object", "properties": {}}
        self.types[token(name)] = spec  # before the fields: a model may name itself
        if model.__doc__:
            spec["description"] = markdown(" ".join(model.__doc__.split()))
        self.models[token(name)] = model
        required = []
        for field_name, field in model.model_fields.items():
            key = manifest_name(field_name, field)
            prop = self.field(model=model, name=field_name, field=field)
            prop.update(field_default(field))
            described = " ".join(d for d in (field.description, prop.get("description"), _default_note(field)) if d)
            if described:
                prop["description"] = markdown(described)
            if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("secret"):
                prop["secret"] = True  # Pulumi keeps the value encrypted in state and out of logs, in every language
            spec["properties"][key] = prop
            if field.is_required():
                required.append(key)
        if required:
            spec["required"] = required
        return ref(name)

    def field(self, *, model: type[BaseModel], name: str, field: FieldInfo) -> dict[str, Any]:
        """The schema type of one field, its shorthands included."""
        for item in field.metadata:
            if isinstance(item, BeforeValidator) and item.func is parse_duration:
                return dict(_DURATION)
            if isinstance(item, WithJsonSchema) and item.json_schema is not None:
                return dict(item.json_schema)
        annotation = _without_none(field.annotation)
        for item in _annotated_metadata(annotation):
            if isinstance(item, BeforeValidator) and item.func is parse_duration:
                return dict(_DURATION)
        prop = self.annotation(annotation, enum_name=f"{model.__name__}{_pascal(name)}")
        if prop.get("type") == "array" and _accepts_one_or_many(field):
            return {"oneOf": [prop["items"], prop]}
        return prop

    def annotation(self, annotation: Any, *, enum_name: str) -> dict[str, Any]:
        """The schema type of a Python annotation (scalars, Literal, list, dict, models, ``X | None``)."""
        annotation = _without_none(annotation)
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            base, *metadata = get_args(annotation)
            for item in metadata:  # a type that states its own JSON Schema (e.g. text or a Pulumi Output)
                if isinstance(item, WithJsonSchema) and item.json_schema is not None:
                    return dict(item.json_schema)
            return self.annotation(base, enum_name=enum_name)
        if annotation in _SCALARS:
            return dict(_SCALARS[annotation])
        if origin is Literal:
            return self.enum(enum_name, get_args(annotation))
        if origin is list:
            (item,) = get_args(annotation)
            return {"type": "array", "items": self.annotation(item, enum_name=enum_name)}
        if origin is dict:
            key, value = get_args(annotation)
            if key is not str:
                raise TypeError(f"{enum_name}: only string-keyed maps have a Pulumi schema type, not {annotation}")
            return {"type": "object", "additionalProperties": self.annotation(value, enum_name=enum_name)}
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.model(annotation)
        raise TypeError(
            f"{enum_name}: no Pulumi schema type for {annotation!r}; add it to asya_pulumi/package/schema.py"
        )

    def enum(self, name: str, values: tuple[Any, ...]) -> dict[str, str]:
        if not all(isinstance(v, str) for v in values):
            raise TypeError(f"{name}: only string Literals become schema enums, not {values}")
        self.types[token(name)] = {"type": "string", "enum": [{"value": v} for v in values]}
        return ref(name)


def field_default(field: FieldInfo) -> dict[str, Any]:
    """``{"default": value}`` when the schema can state the field's default, else ``{}``.

    Stated: a boolean, number or string default (all Pulumi's ``default`` takes). Not stated: a required field, a
    default that is None (unset, the component decides), a list, map or model (the SDKs cannot express one), a
    default of a field that also takes null (the SDKs fill a default in for null too, so null, e.g. "kept forever",
    could never be sent), and a :class:`~asya_pulumi.spec.base.DerivedDefault`, which depends on other fields: a
    literal there would be filled in by every generated SDK and override the rule. What is not stated the
    description says (:func:`_default_note`).
    """
    if field.is_required() or derived_default(field) is not None or nullable(field.annotation):
        return {}
    value = field.get_default(call_default_factory=True)
    return {"default": value} if isinstance(value, (bool, int, float, str)) else {}


def nullable(annotation: Any) -> bool:
    """``X | None``: the field takes null."""
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def _default_note(field: FieldInfo) -> str | None:
    """What the description adds about a default that ``default`` does not carry: a derived default's rule, or a
    list, map or nullable field's default (``Default: ["t3.large"].``) unless the description already names it."""
    rule = derived_default(field)
    if rule is not None:
        return rule.rule
    if field.is_required() or "default" in (field.description or "").lower():
        return None
    value = field.get_default(call_default_factory=True)
    if isinstance(value, (list, dict)):
        return f"Default: {json.dumps(value)}." if value and _is_plain(value) else None
    if value is not None and nullable(field.annotation):
        return f"Default: {json.dumps(value)}."
    return None


def _is_plain(value: object) -> bool:
    """Text, numbers, booleans, and lists and maps of them (a value a description can quote as JSON)."""
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_plain(item) for key, item in value.items())
    return isinstance(value, (bool, int, float, str))


#: A Sphinx role (``:class:`~a.b.C```, ``:mod:`a.b```) and a reST literal (````x````), as docstrings write them.
_ROLE = re.compile(r":[a-z]+:`(~?)([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def markdown(text: str) -> str:
    """A docstring's reST as the Markdown Pulumi schema descriptions are (its metaschema: "Descriptions are
    interpreted as Markdown"): a literal or a role becomes a code span; a role with ``~`` keeps the last name."""
    def role(match: re.Match[str]) -> str:
        short, target = match.groups()
        return f"`{target.rsplit('.', 1)[-1] if short else target}`"

    return _LITERAL.sub(r"`\1`", _ROLE.sub(role, text))


def _without_none(annotation: Any) -> Any:
    """``X | None`` → ``X`` (optional-ness comes from the field's default, not its type)."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
        raise TypeError(f"no Pulumi schema type for the union {annotation}; use one type per field")
    return annotation


def _annotated_metadata(annotation: Any) -> tuple[Any, ...]:
    return get_args(annotation)[1:] if get_origin(annotation) is typing.Annotated else ()


def _accepts_one_or_many(field: FieldInfo) -> bool:
    """``onExhausted: recovery`` is accepted for ``[recovery]`` (a before-validator wraps a single item)."""
    return any(
        isinstance(item, BeforeValidator) and getattr(item.func, "__name__", "") == "_one_or_many"
        for item in field.metadata
    )
