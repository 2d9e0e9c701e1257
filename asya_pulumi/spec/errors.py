"""Turn pydantic's validation errors into one message per problem that names the field and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import BaseModel, ValidationError

from asya_pulumi.errors import AsyaError


class SpecError(AsyaError, ValueError):
    """A spec or manifest is wrong. ``problems`` holds one ``"<where>: <what and how to fix it>"`` line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid spec:\n" + "\n".join(f"  - {p}" for p in problems))


def known_field_names(models: Iterable[type[BaseModel]]) -> set[str]:
    """Every manifest spelling (alias) of every field of ``models`` and the models nested in them."""
    names: set[str] = set()
    seen: set[type[BaseModel]] = set()
    pending = list(models)
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            names.add(field.alias or name)
            pending.extend(_nested_models(field.annotation))
    return names


def _nested_models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):
        found.extend(_nested_models(arg))
    return found


def describe(exc: ValidationError, *, vocabulary: set[str], prefix: tuple[str | int, ...] = ()) -> list[str]:
    """One line per error: the dotted manifest path, then the message (with a suggestion for unknown fields)."""
    problems = []
    for err in exc.errors():
        loc = [*prefix, *err["loc"]]
        where = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            bad = str(loc[-1])
            close = difflib.get_close_matches(bad, sorted(vocabulary), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else "remove it (see docs/infrastructure.md for the fields)"
            problems.append(f"{where}: unknown field {bad!r}; {hint}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {msg}")
    return problems
