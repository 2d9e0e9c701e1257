"""A docs page's environment-variable table, generated from a settings model, kept in step with the code.

A page holds the table between two HTML comment markers; :func:`check_env_table` renders the table from the model's
fields (alias, default, description) and fails if the page's differs, or rewrites it with ``ASYA_UPDATE_DOCS=1``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel


def _default(model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if hasattr(value, "to_json"):
        return f"`{value.to_json()}`"
    if isinstance(value, bool):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def render_env_table(model: type[BaseModel]) -> str:
    """One row per field: its variable (the alias), its default and its description."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        rows.append(f"| `{field.alias}` | {_default(model, name)} | {field.description} |")
    return "\n".join(rows)


def check_env_table(*, doc: Path, model: type[BaseModel], markers: tuple[str, str], test_file: str) -> None:
    """Assert that ``doc`` holds ``model``'s table between ``markers``; with ``ASYA_UPDATE_DOCS`` set, write it."""
    start_marker, end_marker = markers
    text = doc.read_text()
    assert start_marker in text and end_marker in text, f"{doc} lost its {start_marker} / {end_marker} markers"
    start, end = text.index(start_marker) + len(start_marker), text.index(end_marker)
    current = text[start:end].strip()
    expected = render_env_table(model)
    if current != expected and os.environ.get("ASYA_UPDATE_DOCS"):
        doc.write_text(f"{text[:start]}\n{expected}\n{text[end:]}")
        current = expected
    assert current == expected, f"{doc.name} is out of date; run ASYA_UPDATE_DOCS=1 pytest {test_file}"
