"""docs/architecture.md's layout table names every top-level module and package of asya_pulumi, and every path it
names exists: the table cannot fall behind the tree again."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "asya_pulumi"


def _table_paths() -> set[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("## Layout", 1)[1].split("\n\n", 2)[1]
    first_cells = [row.split("|")[1] for row in table.splitlines() if row.startswith("| `")]
    return {path for cell in first_cells for path in re.findall(r"`([^`]+)`", cell)}


def test_every_top_level_entry_of_the_package_has_a_row_and_every_row_exists() -> None:
    rows = _table_paths()
    entries = {
        f"asya_pulumi/{p.name}/" if p.is_dir() else f"asya_pulumi/{p.name}"
        for p in PACKAGE.iterdir()
        if not p.name.startswith((".", "__pycache__")) and p.name != "py.typed"
    }
    assert entries - rows == set(), "missing from docs/architecture.md's layout table"
    for row in rows:
        if row.startswith("asya_pulumi/") or row.startswith("runtime/"):
            brace = re.search(r"\{([^}]*)\}", row)
            names = brace.group(1).split(",") if brace else [""]
            for name in names:
                path = row[: brace.start()] + name + row[brace.end() :] if brace else row
                assert (ROOT / path).exists(), f"the layout table names {path}, which does not exist"
