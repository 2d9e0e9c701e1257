"""docs/gateway.md lists every gateway environment variable exactly as GatewayConfig defines it.

After changing the config, refresh the doc with ``ASYA_UPDATE_DOCS=1 pytest tests/gateway/test_gateway_docs.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from asya_runtime.gateway.config import GatewayConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "gateway.md"
START, END = "<!-- gateway-env-table:start (generated from GatewayConfig) -->", "<!-- gateway-env-table:end -->"


def _default(name: str) -> str:
    field = GatewayConfig.model_fields[name]
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    return "unset" if value is None else f"`{value}`"


def render_env_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in GatewayConfig.model_fields.items():
        rows.append(f"| `{field.alias}` | {_default(name)} | {field.description} |")
    return "\n".join(rows)


def test_the_env_table_in_docs_matches_gateway_config() -> None:
    text = DOC.read_text()
    assert START in text and END in text, f"{DOC} lost its {START} / {END} markers"
    start, end = text.index(START) + len(START), text.index(END)
    current = text[start:end].strip()
    expected = render_env_table()
    if current != expected and os.environ.get("ASYA_UPDATE_DOCS"):
        DOC.write_text(f"{text[:start]}\n{expected}\n{text[end:]}")
        current = expected
    assert current == expected, "docs/gateway.md is out of date; run ASYA_UPDATE_DOCS=1 pytest " + __file__
