"""docs/sidecar.md must list every sidecar environment variable and metric exactly as the code defines them.

The variable table is rendered from SidecarConfig's fields. After changing the config, refresh the doc with
``ASYA_UPDATE_DOCS=1 .venv/bin/pytest tests/runtime/test_sidecar_docs.py``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from asya_runtime.config import SidecarConfig
from asya_runtime.sidecar.metrics import Metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "sidecar.md"
START, END = "<!-- env-table:start (generated from SidecarConfig) -->", "<!-- env-table:end -->"


def _default(name: str) -> str:
    field = SidecarConfig.model_fields[name]
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


def render_env_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in SidecarConfig.model_fields.items():
        rows.append(f"| `{field.alias}` | {_default(name)} | {field.description} |")
    return "\n".join(rows)


def test_the_env_table_in_docs_matches_sidecar_config() -> None:
    text = DOC.read_text()
    assert START in text and END in text, f"{DOC} lost its {START} / {END} markers"
    start, end = text.index(START) + len(START), text.index(END)
    current = text[start:end].strip()
    expected = render_env_table()
    if current != expected and os.environ.get("ASYA_UPDATE_DOCS"):
        DOC.write_text(f"{text[:start]}\n{expected}\n{text[end:]}")
        current = expected
    assert current == expected, "docs/sidecar.md is out of date; run ASYA_UPDATE_DOCS=1 pytest " + __file__


def test_every_metric_is_documented() -> None:
    text = DOC.read_text()
    families = text_string_to_metric_families(Metrics().render().decode())
    names = {f.name for f in families if not f.name.endswith("_created")}
    missing = sorted(n for n in names if not re.search(rf"`{re.escape(n)}(_total)?(\{{[a-z, ]+\}})?`", text))
    assert not missing, f"metrics missing from docs/sidecar.md: {missing}"
