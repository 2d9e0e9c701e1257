"""The gateway image (``asya-gateway``, docs/gateway.md): the runtime image's layers — the same blobs, so a node that
already runs sidecars pulls one layer more — and a third with what the gateway needs and the runtime does not: the
MCP and A2A SDKs, Starlette and uvicorn, hash-locked in ``requirements/gateway.txt``.

A separate image rather than the gateway's dependencies in the runtime image: every sidecar pod would otherwise carry
~40 packages (protobuf, cryptography, the Google API core the A2A SDK needs) it never imports, and their CVEs.
The gateway's own code is in the runtime wheel (``asya_runtime.gateway``), so both images change together and are
pinned together (``asya_pulumi/spec/runtime_pin.py``).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from asya_pulumi.images.oci import ImageConfig, Layout
from asya_pulumi.images.python_layer import install, write_entry_script
from asya_pulumi.images.rootfs import USER_ID
from asya_pulumi.images.runtime_image import (
    DEFAULT_EPOCH,
    PYTHON_ENV,
    RUNTIME_LOCK,
    BuiltImage,
    add_image,
    finish_layer,
    image_labels,
    runtime_version,
)

GATEWAY_REPOSITORY = "ghcr.io/asya-sh/asya-gateway"
GATEWAY_LOCK = "requirements/gateway.txt"
#: The port the gateway listens on in a pod (``GatewayConfig``'s default).
GATEWAY_PORT = 8080
#: A requirement's first line in a compiled lock: ``name==version \``.
_PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.MULTILINE)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_names(text: str) -> set[str]:
    """The (normalised) distribution names a compiled, hash-locked requirements file pins."""
    return {_normalized(name) for name in _PINNED.findall(text)}


def requirements_beyond(*, lock: str, base_lock: str) -> str:
    """The requirement blocks of ``lock`` (a requirement line, its ``--hash`` lines and ``# via`` comments) whose
    distribution ``base_lock`` does not pin: what a layer on top of ``base_lock``'s installs."""
    skip = lock_names(base_lock)
    kept: list[str] = []
    keep = False
    for line in lock.splitlines(keepends=True):
        if match := _PINNED.match(line):
            keep = _normalized(match.group(1)) not in skip
        elif not line.startswith((" ", "\t")):
            keep = False  # a top-level comment or blank line ends the block
        if keep:
            kept.append(line)
    return "".join(kept)


def build_gateway_image(*, repo: Path, layout: Layout, runtime: BuiltImage, epoch: int = DEFAULT_EPOCH) -> BuiltImage:
    """Build the gateway image into ``layout`` (ref ``gateway``) on ``runtime``'s layers."""
    locks = (RUNTIME_LOCK, GATEWAY_LOCK)
    with tempfile.TemporaryDirectory(prefix="asya-gateway-image-") as scratch:
        prefix = Path(scratch) / "usr-local"
        extra = Path(scratch) / "gateway-only.txt"
        extra.write_text(requirements_beyond(lock=(repo / GATEWAY_LOCK).read_text(),
                                             base_lock=(repo / RUNTIME_LOCK).read_text()))
        install(prefix=prefix, requirements=extra)
        write_entry_script(prefix=prefix, name="asya-gateway", module="asya_runtime.gateway")
        layer = finish_layer(layout=layout, base=runtime.base, prefix=prefix, epoch=epoch,
                             comment=f"the gateway's dependencies beyond the runtime's ({GATEWAY_LOCK})")
    labels = image_labels(repo=repo, title="asya-gateway", base=runtime.base, locks=locks,
                          description="asya front door: Mesh API, MCP and A2A over the status store (asya-gateway)")
    config = ImageConfig(entrypoint=["asya-gateway"], user=f"{USER_ID}:{USER_ID}", env=PYTHON_ENV,
                         labels=labels, exposed_ports=[GATEWAY_PORT])
    return add_image(layout=layout, ref="gateway", name=f"{GATEWAY_REPOSITORY}:{runtime_version(repo)}",
                     layers=[*runtime.layers, layer], config=config, epoch=epoch, base=runtime.base)
