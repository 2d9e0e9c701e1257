"""``--json`` for the commands that print a result: one JSON object on stdout instead of the lines for people.

The keys of each command's object are listed in docs/cli.md and kept stable (scripts read them); progress and
notices stay on stderr either way, so stdout holds exactly the object.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any


def add_json_option(parser: argparse.ArgumentParser, *, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as one JSON object (keys: docs/cli.md)")


def emit(args: argparse.Namespace, *, data: Mapping[str, Any], text: str) -> None:
    """``data`` as JSON with ``--json``, else ``text``."""
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else text)
