"""YAML for manifests and stack config, parsed within budgets: a file size cap, few aliases, bounded expansion.

PyYAML's ``safe_load`` is safe from code execution, not from size: an alias (``*a``) shares a node, so a 1 KB
"billion laughs" document composes in microseconds but expands to ~10^9 values once anything walks it (73 s and
3.3 GiB before these budgets). Here the composer counts every alias and the number of nodes the document *would*
expand to, and stops as soon as either budget is passed, before any value is constructed. A manifest is a few KB
with an anchor or two; each budget is far above that and far below what hurts.

Two YAML 1.1 habits PyYAML keeps are refused or dropped, because each silently changes a manifest's meaning: a key
written twice in one mapping (PyYAML keeps the last, so a second ``spec:`` replaces the whole actor) is an error
naming both lines, and only ``true``/``false`` are booleans (YAML 1.2's rule), so ``maxAttempts: yes`` is the string
``"yes"`` and fails as a number instead of becoming ``1``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

#: Largest manifest or stack config file read, checked before reading (a manifest is a few KB).
MAX_FILE_BYTES = 1024 * 1024
#: Aliases (``*name``) one document may use.
MAX_ALIASES = 100
#: Nodes one document may expand to, counting every alias as a full copy of what it names.
MAX_EXPANDED_NODES = 100_000
#: Nesting depth of mappings and sequences (PyYAML recurses per level; manifests nest fewer than ten).
MAX_DEPTH = 64


class YamlRefused(ValueError):
    """A YAML document passed a budget; the message names the rule and the fix (the caller adds the file)."""


_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOOL_TAG = "tag:yaml.org,2002:bool"


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer counts aliases, expanded nodes and depth, and refuses past the budgets; duplicate
    keys refused, YAML 1.2 booleans."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._expanded = 0
        self._depth = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlRefused(
                    f"more than {MAX_ALIASES} YAML aliases (*name); write the values out instead of aliasing them"
                )
            node: yaml.Node | None = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:  # the anchor's node is still being composed: the alias refers to itself
                raise YamlRefused("a YAML alias refers to a node that contains it; remove the recursive alias")
            self._expanded += size
        else:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise YamlRefused(f"nested deeper than {MAX_DEPTH} levels; a manifest nests a few levels at most")
            before = self._expanded
            node = super().compose_node(parent, index)
            self._depth -= 1
            self._expanded += 1
            self._sizes[id(node)] = self._expanded - before
        if self._expanded > MAX_EXPANDED_NODES:
            raise YamlRefused(
                f"the YAML expands to more than {MAX_EXPANDED_NODES} values once its aliases (*name) are expanded, "
                f"over the limit for a manifest; write the values out instead of nesting aliases"
            )
        return node


    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *base` then an explicit key is an override, not a duplicate
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
                seen[key] = line
            except TypeError:  # an unhashable key: PyYAML's own error says so
                continue
            if first is not None:
                raise YamlRefused(
                    f"line {line}: key {key!r} appears twice in the same mapping (first on line {first}); YAML would "
                    f"keep only the last one, silently dropping the first: remove one or merge them"
                )
        return super().construct_mapping(node, deep=deep)


_BoundedLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_yaml(text: str) -> Any:
    """Parse one YAML document within the budgets; raise :class:`YamlRefused` or ``yaml.YAMLError``."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_FILE_BYTES:
        raise YamlRefused(_too_large(size))
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml_text(path: Path) -> str:
    """The file's text, refused by its size before a byte is read (a 30 MB file costs a ``stat``, not 30 MB)."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise YamlRefused(_too_large(size))
    return path.read_text(encoding="utf-8")


def _too_large(size: int) -> str:
    return (
        f"the file is {size} bytes, over the {MAX_FILE_BYTES} bytes ({MAX_FILE_BYTES / 2**20:g} MiB) limit for a "
        f"manifest; keep data out of manifests (mount it or fetch it in the handler) or split the file"
    )
