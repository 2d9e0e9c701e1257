"""docs/sidecar.md must list every sidecar environment variable and metric exactly as the code defines them.

The variable table is rendered from SidecarConfig's fields. After changing the config, refresh the doc with
``ASYA_UPDATE_DOCS=1 .venv/bin/pytest tests/runtime/test_sidecar_docs.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from support.env_table import check_env_table

from asya_runtime.config import SidecarConfig
from asya_runtime.sidecar.metrics import Metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "sidecar.md"
MARKERS = "<!-- env-table:start (generated from SidecarConfig) -->", "<!-- env-table:end -->"


def test_the_env_table_in_docs_matches_sidecar_config() -> None:
    check_env_table(doc=DOC, model=SidecarConfig, markers=MARKERS, test_file=__file__)


def test_every_metric_is_documented() -> None:
    text = DOC.read_text()
    families = text_string_to_metric_families(Metrics().render().decode())
    names = {f.name for f in families if not f.name.endswith("_created")}
    missing = sorted(n for n in names if not re.search(rf"`{re.escape(n)}(_total)?(\{{[a-z, ]+\}})?`", text))
    assert not missing, f"metrics missing from docs/sidecar.md: {missing}"
