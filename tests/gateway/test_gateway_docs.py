"""docs/gateway.md lists every gateway environment variable exactly as GatewayConfig defines it.

After changing the config, refresh the doc with ``ASYA_UPDATE_DOCS=1 pytest tests/gateway/test_gateway_docs.py``.
"""

from __future__ import annotations

from pathlib import Path

from support.env_table import check_env_table

from asya_runtime.gateway.config import GatewayConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "gateway.md"
MARKERS = "<!-- gateway-env-table:start (generated from GatewayConfig) -->", "<!-- gateway-env-table:end -->"


def test_the_env_table_in_docs_matches_gateway_config() -> None:
    check_env_table(doc=DOC, model=GatewayConfig, markers=MARKERS, test_file=__file__)
