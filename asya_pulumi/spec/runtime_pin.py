"""The runtime image every mesh uses unless it names its own (``MeshSpec.runtime_image``), and the gateway image
built on it (docs/gateway.md), pinned by digest.

The one home of the defaults: ``scripts/build-image --pin`` rewrites the constants below from a fresh build of
the runtime and gateway images (``asya_pulumi/images/runtime_image.py``, ``gateway_image.py``), and
``tests/images/test_runtime_pin.py`` fails when the sources no longer build to these digests. A digest, not just a
tag: a pod then runs exactly the bytes that were built and tested, and a re-pushed tag cannot change it. The release
workflow (``.github/workflows/release.yml``) pushes each image under its name, and so under its digest.
"""

from __future__ import annotations

RUNTIME_IMAGE_NAME = "ghcr.io/asya-sh/asya-runtime:0.1.0"
RUNTIME_IMAGE_DIGEST = "sha256:12f8c399e97e5369e72af99bfec2825c64d68826b0f6230c36768a49d607c8b1"
#: The sha256 of the Debian base layer the pinned digest was built on (the archive moves: a newer base builds
#: another digest from the same sources; ``tests/images/test_runtime_pin.py`` tells the two cases apart).
RUNTIME_IMAGE_BASE = "6411b014dd2a26dddda7bb6d50391c50b5d10f52ba0a11427c890ff5ecff1787"
#: ``name:tag@digest``: the tag for people, the digest for the kubelet.
DEFAULT_RUNTIME_IMAGE = f"{RUNTIME_IMAGE_NAME}@{RUNTIME_IMAGE_DIGEST}"

GATEWAY_IMAGE_NAME = "ghcr.io/asya-sh/asya-gateway:0.1.0"
GATEWAY_IMAGE_DIGEST = "sha256:aa33ce787260a1ff390f231466968eccf8c5a12b8132656b89a82ad535e28db6"
#: The front door's image (``GatewaySpec.image``'s default): built on the same base as the runtime image.
DEFAULT_GATEWAY_IMAGE = f"{GATEWAY_IMAGE_NAME}@{GATEWAY_IMAGE_DIGEST}"
