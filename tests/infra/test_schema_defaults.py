"""Every default the package schema states is the default the model gives, and none is stated where the model's
default depends on other fields: the generated SDKs fill a schema default in before the provider sees the input,
so a wrong one overrides the model (a TypeScript GPU actor would run 10 calls at once instead of 1).

The mapping from schema property to model field is derived (the generator's own ``SchemaTypes.models`` and the
fields' manifest names), never listed: a field added to a model is checked here with no edit.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from asya_pulumi.package.provider import COMPONENTS, schema
from asya_pulumi.package.schema import SchemaTypes, manifest_name, nullable, token
from asya_pulumi.spec import AsyncActorSpec, ClusterSpec, MeshSpec
from asya_pulumi.spec.actor import DEFAULT_CPU_CONCURRENCY, DEFAULT_GPU_CONCURRENCY, Toleration
from asya_pulumi.spec.base import derived_default, spellings

YAML_PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "yaml-program" / "Pulumi.yaml"


@pytest.fixture(scope="module")
def package() -> dict[str, Any]:
    return schema()


@pytest.fixture(scope="module")
def types() -> SchemaTypes:
    """The generator's record of which model each object type came from, for the same inputs the schema has."""
    generated = SchemaTypes()
    for component in COMPONENTS.values():
        for arg in component.inputs.values():
            if isinstance(arg.type, type):
                generated.model(arg.type)
    return generated


def fields_by_property(model: type[BaseModel]) -> dict[str, tuple[str, FieldInfo]]:
    return {manifest_name(name, field): (name, field) for name, field in model.model_fields.items()}


def object_properties(
    package: dict[str, Any], types: SchemaTypes
) -> Iterator[tuple[str, dict[str, Any], FieldInfo]]:
    """(where, schema property, model field) for every property of every object type of the schema."""
    assert types.types == package["types"]  # the mapping below is the schema's own generation
    for type_token, definition in package["types"].items():
        if definition.get("type") != "object":
            continue
        fields = fields_by_property(types.models[type_token])
        assert sorted(definition["properties"]) == sorted(fields), type_token
        for key, prop in definition["properties"].items():
            yield f"{type_token}.{key}", prop, fields[key][1]


def test_every_stated_default_is_the_models_and_no_derived_one_is_stated(
    package: dict[str, Any], types: SchemaTypes
) -> None:
    stated = 0
    for where, prop, field in object_properties(package, types):
        rule = derived_default(field)
        if rule is not None:
            assert "default" not in prop, f"{where}: its default depends on other fields; the schema must not fix it"
            assert prop["description"].endswith(rule.rule), f"{where}: the description must state the rule"
            continue
        if field.is_required():
            assert "default" not in prop, f"{where} is required, yet the schema states a default"
            continue
        default = field.get_default(call_default_factory=True)
        if nullable(field.annotation):  # the SDKs would fill the default in for null too: null could not be sent
            assert "default" not in prop, f"{where} takes null, which a stated default would make unsendable"
            if default is not None:
                assert "default" in prop["description"].lower(), f"{where}: the description must state the default"
        elif isinstance(default, (bool, int, float, str)):
            assert prop.get("default") == default and type(prop.get("default")) is type(default), where
            stated += 1
        else:
            assert "default" not in prop, f"{where}: the model's default is {default!r}, the schema's {prop['default']}"
    assert stated > 30  # the walk reached the models (44 stated defaults when this test was written)


def test_component_inputs_state_no_default(package: dict[str, Any]) -> None:
    """A component input's default is the component's to apply (None: it decides), never a literal the SDKs send."""
    for name, resource in package["resources"].items():
        for key, prop in resource["inputProperties"].items():
            assert "default" not in prop, f"{name}.{key}"


def check_left_out_fields(model: type[BaseModel], raw: Mapping[str, Any], value: BaseModel, *, package: dict[str, Any],
                          where: str) -> int:
    """Every field ``raw`` leaves out has, in the built ``value``, the default the schema states for it; recurses
    into the nested models ``raw`` gives. Returns how many left-out fields were compared."""
    compared = 0
    properties = package["types"][token(model.__name__)]["properties"]
    for key, (name, field) in fields_by_property(model).items():
        given = spellings(name, field) & set(raw)
        actual = getattr(value, name)
        if not given:
            if "default" in properties[key]:
                assert actual == properties[key]["default"], f"{where}.{key}: built {actual!r}, schema says " \
                                                             f"{properties[key]['default']!r}"
                compared += 1
            continue
        given_raw = raw[given.pop()]
        nested = [(given_raw, actual)]
        if isinstance(given_raw, list) and isinstance(actual, list):
            nested = list(zip(given_raw, actual, strict=False))
        elif isinstance(given_raw, dict) and isinstance(actual, dict) and not isinstance(actual, BaseModel):
            nested = [(given_raw[k], actual[k]) for k in given_raw if k in actual]
        for raw_item, built in nested:
            if isinstance(built, BaseModel) and isinstance(raw_item, Mapping):
                compared += check_left_out_fields(type(built), raw_item, built, package=package, where=f"{where}.{key}")
    return compared


def yaml_specs() -> list[tuple[type[BaseModel], dict[str, Any]]]:
    resources = yaml.safe_load(YAML_PROGRAM.read_text())["resources"]
    return [(ClusterSpec, resources["cluster"]["properties"]["spec"]),
            (MeshSpec, resources["mesh"]["properties"]["spec"])]


ACTOR = {"name": "embed", "image": "e:1", "handler": "handlers.embed"}
SAMPLES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    *yaml_specs(),
    (AsyncActorSpec, ACTOR),
    (AsyncActorSpec, {**ACTOR, "gpu": 1, "tolerations": [{"effect": "NoSchedule"}, {"key": "team", "value": "ml"}]}),
    (AsyncActorSpec, {**ACTOR, "resources": {"limits": {"nvidia.com/gpu": 1}}}),  # upstream Asya's GPU spelling
]


@pytest.mark.parametrize(("model", "raw"), SAMPLES)
def test_a_spec_that_leaves_fields_out_gets_the_schemas_defaults(
    package: dict[str, Any], model: type[BaseModel], raw: dict[str, Any]
) -> None:
    """What a TypeScript user's SDK sends (the schema's defaults filled in) builds the same spec as the manifest."""
    built = model.model_validate(copy.deepcopy(raw))
    assert check_left_out_fields(model, raw, built, package=package, where=model.__name__) > 0


@pytest.mark.parametrize(
    ("raw", "concurrency"),
    [
        (ACTOR, DEFAULT_CPU_CONCURRENCY),
        ({**ACTOR, "gpu": 1}, DEFAULT_GPU_CONCURRENCY),
        ({**ACTOR, "resources": {"limits": {"nvidia.com/gpu": 1}}}, DEFAULT_GPU_CONCURRENCY),
        ({**ACTOR, "gpu": 1, "concurrency": 4}, 4),
    ],
)
def test_concurrency_is_derived_from_gpu_in_every_spelling(raw: dict[str, Any], concurrency: int) -> None:
    assert AsyncActorSpec.model_validate(raw).concurrency == concurrency


def test_a_toleration_without_key_is_exists_and_with_one_equal() -> None:
    assert Toleration.model_validate({"effect": "NoSchedule"}).operator == "Exists"
    assert Toleration.model_validate({"key": "team", "value": "ml"}).operator == "Equal"
    with pytest.raises(ValueError, match="a toleration without key must have operator: Exists"):
        Toleration.model_validate({"operator": "Equal", "effect": "NoSchedule"})
