"""Turn pydantic's validation errors into one message per problem that names the field and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from asya_pulumi.errors import AsyaError


class SpecError(AsyaError, ValueError):
    """A spec or manifest is wrong. ``problems`` holds one ``"<where>: <what and how to fix it>"`` line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid spec:\n" + "\n".join(f"  - {p}" for p in problems))


def known_field_names(models: Iterable[type[BaseModel]]) -> dict[str, list[str]]:
    """Every manifest spelling (alias) of every field of ``models`` and the models nested in them, each with the
    dotted places it can be written (``maxAttempts`` -> ``["resiliency.policies.<name>"]``); ``""`` is the top."""
    places: dict[str, list[str]] = {}
    pending: list[tuple[type[BaseModel], str]] = [(model, "") for model in models]
    seen: set[tuple[type[BaseModel], str]] = set()
    while pending:
        model, path = pending.pop()
        if (model, path) in seen or path.count(".") > 8:
            continue
        seen.add((model, path))
        for name, field in model.model_fields.items():
            alias = field.alias or name
            places.setdefault(alias, [])
            if path not in places[alias]:
                places[alias].append(path)
            child = f"{path}.{alias}" if path else alias
            pending.extend((nested, child + suffix) for nested, suffix in _nested_models(field.annotation))
    return places


def _nested_models(annotation: object, suffix: str = "") -> list[tuple[type[BaseModel], str]]:
    """The models inside ``annotation`` with how their path continues: ``[]`` in a list, ``.<name>`` in a dict."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, suffix)]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict and len(args) == 2:
        return _nested_models(args[1], suffix + ".<name>")
    if origin in (list, tuple, set, frozenset):
        return [found for arg in args for found in _nested_models(arg, suffix + "[]")]
    return [found for arg in args for found in _nested_models(arg, suffix)]


def describe(
    exc: ValidationError, *, vocabulary: Mapping[str, list[str]], prefix: tuple[str | int, ...] = ()
) -> list[str]:
    """One line per error: the dotted manifest path, then the message (with a suggestion for unknown fields)."""
    problems = []
    for err in exc.errors():
        loc = [*prefix, *err["loc"]]
        where = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            bad = str(loc[-1])
            close = difflib.get_close_matches(bad, sorted(vocabulary), n=1, cutoff=0.6)
            if bad in vocabulary:  # a real field, in the wrong place
                base = ".".join(str(p) for p in prefix)
                places = " or ".join(repr(".".join(filter(None, (base, p)))) if base or p else "the top level"
                                     for p in vocabulary[bad])
                hint = f"it is a field of {places}, not of this mapping; move it there"
            elif close:
                hint = f"did you mean {close[0]!r}?"
            else:
                hint = "remove it (see docs/infrastructure.md for the fields)"
            problems.append(f"{where}: unknown field {bad!r}; {hint}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {msg}{_fix_for(err)}")
    return problems


#: pydantic's own messages say what is wrong but not what to write: the fix each kind of error takes.
_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _fix_for(err: Mapping[str, Any]) -> str:
    """The fix appended to a pydantic built-in message (none for the spec's own, which say theirs)."""
    kind = err["type"]
    if kind in _BOUND_ERRORS:
        return f" (it is {err.get('input')!r}); write a value within that limit"
    if kind == "missing":
        return "; add it (see docs/infrastructure.md for the fields)"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f" (it is {type(err.get('input')).__name__}); write a mapping of its fields, key: value"
    if kind in {"int_parsing", "int_from_float", "float_parsing", "int_type", "float_type"}:
        return f" (it is {err.get('input')!r}); write a plain number"
    if kind == "list_type":
        return f" (it is {type(err.get('input')).__name__}); write a list, one '- ' item a line"
    return ""
