"""Spec fields that take a Pulumi ``Output`` as well as plain text, without this package importing Pulumi.

An infra program passes what its other resources produce: an image pushed by ``pulumi-docker-build`` or an ECR
repository's URL, a bucket name, an API key read from AWS Secrets Manager. Those are ``pulumi.Output`` s, whose
values exist only at deploy time. :data:`InputStr` accepts a ``str`` (checked like any manifest value) or an
``Output`` as it is; the components hand it to the Kubernetes resources, which resolve it.

Pulumi is never imported here: ``asya dev`` loads the same specs on a laptop without the cloud SDKs. A value is an
``Output`` only if Pulumi is already imported (a program that made one imported it), so ``sys.modules`` answers.
A manifest cannot hold an ``Output``, so loading manifests is unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from pydantic import PlainValidator, WithJsonSchema

#: What a local run (``asya dev``) says when a spec holds a deploy-time value it cannot resolve.
LOCAL_OUTPUT_REFUSED = "is a Pulumi Output (known only at deploy time); `asya dev` needs plain text here"


def is_output(value: Any) -> bool:
    """Whether ``value`` is a ``pulumi.Output`` (False whenever Pulumi is not imported: nothing can be one)."""
    pulumi = sys.modules.get("pulumi")
    return pulumi is not None and isinstance(value, pulumi.Output)


def _text_or_output(value: Any) -> Any:
    if is_output(value):
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{value!r} is neither text nor a Pulumi Output")
    return str(value)


if TYPE_CHECKING:
    import pulumi

    #: Text, or a ``pulumi.Output[str]`` resolved at deploy time.
    InputStr: TypeAlias = str | pulumi.Output[str]
else:
    InputStr = Annotated[Any, PlainValidator(_text_or_output), WithJsonSchema({"type": "string"})]


def plain_text(values: Mapping[str, InputStr], *, what: str) -> dict[str, str]:
    """``values`` as plain strings, or ValueError naming the first key that holds an ``Output`` (local mode)."""
    plain: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(value, str):
            raise ValueError(f"{what}[{key!r}] {LOCAL_OUTPUT_REFUSED}")
        plain[key] = value
    return plain
