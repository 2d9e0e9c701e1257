"""The base of every model a user writes in a manifest: numbers are numbers, and fit where they land.

Both rules hold for the runtime's own manifest models (``resiliency``) and the deploy side's spec models, so a
spec mistake fails the same way wherever the field lives:

- a boolean is never a number (``maxAttempts: true`` would otherwise become 1), and
- an integer fits ``int32`` (replicas, seconds, queue lengths: what Kubernetes and KEDA store), unless the model
  names the field in ``int64_fields`` (``tolerationSeconds``); past it the apiserver refuses the object at
  ``pulumi up``, after half a deploy.
"""

from __future__ import annotations

import types
from typing import Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationInfo, field_validator

#: The integer range of almost every number Kubernetes and KEDA take.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class ManifestModel(BaseModel):
    """A model users write in YAML: no boolean where a number goes, no integer past ``int32``."""

    #: Integer fields that are ``int64`` where they land; every other one must fit ``int32``.
    int64_fields: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name and _is_number(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"{value!r} is a boolean, not a number; write a number")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _fits_the_api(cls, value: Any, info: ValidationInfo) -> Any:
        if type(value) is int and info.field_name not in cls.int64_fields and not INT32_MIN <= value <= INT32_MAX:
            raise ValueError(
                f"{value} is out of range: Kubernetes and KEDA store this number as int32 ({INT32_MIN} to "
                f"{INT32_MAX}); use a smaller value"
            )
        return value


def _is_number(annotation: Any) -> bool:
    """``int``, ``float``, or a union with one of them that does not also take ``bool``."""
    if annotation in (int, float):
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        members = set(get_args(annotation))
        return bool(members & {int, float}) and bool not in members
    return False
