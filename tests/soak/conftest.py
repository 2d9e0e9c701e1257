"""The soak's own option: ``pytest tests/soak --soak-long`` also runs the long soak (≥ 10,000 envelopes).

Without the flag the long soak is deselected (not skipped): the normal run has the short soak only.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-long",
        action="store_true",
        default=False,
        help="also run the long fault-injection soak (tests marked soak_long; takes several minutes)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak-long", default=False):
        return
    long_items = [item for item in items if item.get_closest_marker("soak_long")]
    if long_items:
        config.hook.pytest_deselected(items=long_items)
        items[:] = [item for item in items if not item.get_closest_marker("soak_long")]
