"""The images' hash-locked dependencies agree: the gateway's lock (requirements/gateway.txt) pins every
distribution of the runtime's (requirements/runtime.txt) at the same version and hashes, so the gateway image's
runtime layer is the runtime image's, and the layer on top holds exactly the rest."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from asya_pulumi.images.gateway_image import GATEWAY_LOCK, lock_names, requirements_beyond
from asya_pulumi.images.runtime_image import RUNTIME_LOCK

REPO = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*==\S+)((?:\s*\\\n\s+--hash=\S+)+)", re.MULTILINE)


def _pins(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """name → (version, hashes) of a compiled lock."""
    pins = {}
    for requirement, hashes in _BLOCK.findall(text):
        name, version = requirement.split("==")
        pins[re.sub(r"[-_.]+", "-", name).lower()] = (version, frozenset(re.findall(r"--hash=(\S+)", hashes)))
    return pins


def test_the_gateway_lock_pins_the_runtime_lock_as_it_is():
    runtime = _pins((REPO / RUNTIME_LOCK).read_text())
    gateway = _pins((REPO / GATEWAY_LOCK).read_text())
    assert runtime and set(runtime) <= set(gateway)
    differ = {name: (runtime[name][0], gateway[name][0]) for name in runtime if runtime[name] != gateway[name]}
    assert not differ, f"recompile {GATEWAY_LOCK} (its header says how): versions or hashes differ: {differ}"


def test_the_gateway_layer_holds_exactly_what_the_runtime_lacks():
    runtime_text, gateway_text = (REPO / RUNTIME_LOCK).read_text(), (REPO / GATEWAY_LOCK).read_text()
    beyond = requirements_beyond(lock=gateway_text, base_lock=runtime_text)
    assert lock_names(beyond) == lock_names(gateway_text) - lock_names(runtime_text)
    assert _pins(beyond) == {name: pin for name, pin in _pins(gateway_text).items() if name in lock_names(beyond)}


def test_the_gateway_lock_has_the_gateway_extra():
    extra = tomllib.loads((REPO / "runtime/pyproject.toml").read_text())["project"]["optional-dependencies"]["gateway"]
    wanted = {re.sub(r"[-_.]+", "-", re.split(r"[\[<>=~!; ]", spec, maxsplit=1)[0]).lower() for spec in extra}
    assert wanted <= lock_names((REPO / GATEWAY_LOCK).read_text())
