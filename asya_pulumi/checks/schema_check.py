"""Check a resource's properties against the package schema, the way a typed SDK or Pulumi YAML would refuse them.

Used by the tests on ``examples/yaml-program/Pulumi.yaml``: each ``asya:index:*`` resource's ``properties`` must
have the schema's types, every required input, and no property the schema does not list. A Pulumi YAML
interpolation (``${cluster.clusterName}``) is a value known only at deploy time and is accepted wherever a value
may be; a reference to another resource (``#/resources/...``) must be one.
"""

from __future__ import annotations

import re
from typing import Any

_INTERPOLATION = re.compile(r"^\$\{[^}]+\}$")
_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def check_resource(schema: dict[str, Any], *, resource_type: str, properties: dict[str, Any]) -> list[str]:
    """Every mismatch between ``properties`` and the schema's inputs of ``resource_type``, as ``path: problem``."""
    resource = schema.get("resources", {}).get(resource_type)
    if resource is None:
        return [f"{resource_type}: not a resource of package {schema.get('name')!r}"]
    return _check_object(
        schema,
        properties,
        props=resource.get("inputProperties", {}),
        required=resource.get("requiredInputs", []),
        path=resource_type,
    )


def _check_object(
    schema: dict[str, Any], value: Any, *, props: dict[str, Any], required: list[str], path: str
) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected an object, got {type(value).__name__}"]
    errors = [f"{path}.{name}: required, missing" for name in required if name not in value]
    for name, item in value.items():
        if name not in props:
            errors.append(f"{path}.{name}: unknown property; known: {', '.join(sorted(props))}")
        else:
            errors += _check(schema, item, props[name], path=f"{path}.{name}")
    return errors


def _check(schema: dict[str, Any], value: Any, spec: dict[str, Any], *, path: str) -> list[str]:
    if isinstance(value, str) and _INTERPOLATION.match(value):
        return []
    if "oneOf" in spec:
        attempts = [_check(schema, value, option, path=path) for option in spec["oneOf"]]
        return [] if any(not a for a in attempts) else [error for a in attempts for error in a]
    if "$ref" in spec:
        return _check_ref(schema, value, spec["$ref"], path=path)
    kind = spec.get("type")
    if kind in _PRIMITIVES:
        ok = isinstance(value, _PRIMITIVES[kind]) and (kind == "boolean" or not isinstance(value, bool))
        return [] if ok else [f"{path}: expected {kind}, got {type(value).__name__} {value!r}"]
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: expected an array, got {type(value).__name__}"]
        return [e for i, item in enumerate(value) for e in _check(schema, item, spec["items"], path=f"{path}[{i}]")]
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: expected a map, got {type(value).__name__}"]
        item_spec = spec.get("additionalProperties", {"type": "string"})
        return [e for k, item in value.items() for e in _check(schema, item, item_spec, path=f"{path}.{k}")]
    return [f"{path}: the schema gives no type ({spec}); every property must have one"]


def _check_ref(schema: dict[str, Any], value: Any, ref: str, *, path: str) -> list[str]:
    if ref.startswith("#/resources/"):
        return [f"{path}: expected a reference to a {ref.removeprefix('#/resources/')} resource, e.g. ${{keda}}"]
    if not ref.startswith("#/types/"):
        return [f"{path}: the schema refers to {ref}, outside this package: its type is unknown here"]
    definition = schema["types"][ref.removeprefix("#/types/")]
    if "enum" in definition:
        allowed = [e["value"] for e in definition["enum"]]
        return [] if value in allowed else [f"{path}: {value!r} is not one of {allowed}"]
    return _check_object(
        schema, value, props=definition.get("properties", {}), required=definition.get("required", []), path=path
    )
