"""The spec's default runtime image is the digest scripts/build-image builds from these sources."""

from __future__ import annotations

import pytest

from asya_pulumi.spec import DEFAULT_RUNTIME_IMAGE, MeshSpec
from asya_pulumi.spec.runtime_pin import (
    DEFAULT_GATEWAY_IMAGE,
    GATEWAY_IMAGE_DIGEST,
    GATEWAY_IMAGE_NAME,
    RUNTIME_IMAGE_BASE,
    RUNTIME_IMAGE_DIGEST,
    RUNTIME_IMAGE_NAME,
)
from images.conftest import Built


def test_the_pinned_digest_is_what_the_sources_build(built: Built):
    runtime = built.images["runtime"]
    if runtime.base.sha256 != RUNTIME_IMAGE_BASE:
        # The sources may be unchanged: the Debian archive moved since the pin (docs/runtime.md, "Pinning"). Only a
        # build on the pinned base can say whether the sources still build the pinned digest.
        pytest.skip(
            f"this machine's Debian base is sha256 {runtime.base.sha256[:12]}…, the pin was built on "
            f"{RUNTIME_IMAGE_BASE[:12]}… (the archive moved): re-pin with `scripts/build-image /tmp/asya-images "
            "--pin` after `rm -rf ~/.cache/asya/images/python-*` to pin today's base"
        )
    assert (runtime.name, runtime.digest) == (RUNTIME_IMAGE_NAME, RUNTIME_IMAGE_DIGEST), (
        f"the runtime sources now build {runtime.pinned}, but asya_pulumi/spec/runtime_pin.py pins "
        f"{DEFAULT_RUNTIME_IMAGE}; run `scripts/build-image /tmp/asya-images --pin` and commit runtime_pin.py "
        "(docs/runtime.md, 'Pinning')"
    )


def test_the_spec_default_is_the_pin():
    assert f"{RUNTIME_IMAGE_NAME}@{RUNTIME_IMAGE_DIGEST}" == DEFAULT_RUNTIME_IMAGE
    assert MeshSpec.model_fields["runtime_image"].default == DEFAULT_RUNTIME_IMAGE


def test_the_pinned_gateway_digest_is_what_the_sources_build(built: Built):
    gateway = built.images["gateway"]
    if gateway.base.sha256 != RUNTIME_IMAGE_BASE:
        pytest.skip("the Debian archive moved since the pin (see the runtime's test above)")
    assert (gateway.name, gateway.digest) == (GATEWAY_IMAGE_NAME, GATEWAY_IMAGE_DIGEST), (
        f"the sources now build the gateway image {gateway.pinned}, but asya_pulumi/spec/runtime_pin.py pins "
        f"{DEFAULT_GATEWAY_IMAGE}; run `scripts/build-image /tmp/asya-images --pin` and commit runtime_pin.py"
    )
