"""``fanIn``: an actor that gathers a fan-out — called once per fan-out parent with its children's payloads in order.

The model states the one setting (the timeout) and its bounds; what it causes is the sidecar's
(runtime ``asya_runtime/sidecar/fanin.py``, docs/sidecar.md *Fan-in*), rendered as ``ASYA_FANIN_TIMEOUT``.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from asya_pulumi.spec.base import SpecModel
from asya_runtime.durations import format_duration, readable_duration
from asya_runtime.resiliency import Seconds

#: Longest fan-in timeout: the parent's state in the bucket must outlive it by far (it expires after 15 days,
#: components/bucket.py), so that a late duplicate child still finds its parent finished.
MAX_FANIN_TIMEOUT_S = 7 * 86400


class FanInSpec(SpecModel):
    """``fanIn: {timeout: 10m}``: gather each fan-out parent's children into one call."""

    timeout: Seconds = Field(
        description="How long after a parent's first child arrives the rest may take: a parent whose children have "
        "not all arrived (or error-ended: they come as error items) by then ends in the error sink with reason "
        "`fan-in timeout`, naming the missing indexes, and its handler is not called. A duration "
        f"('30s', '10m', '2h'), more than 0 and at most {readable_duration(MAX_FANIN_TIMEOUT_S)}."
    )

    @field_validator("timeout")
    @classmethod
    def _check_timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("fanIn.timeout must be more than 0s: it is how long a parent waits for its children "
                             "(write e.g. timeout: 10m, or remove fanIn)")
        if value > MAX_FANIN_TIMEOUT_S:
            raise ValueError(
                f"fanIn.timeout {format_duration(value)} is over the limit of {readable_duration(MAX_FANIN_TIMEOUT_S)}"
                " (the parent's state expires from the bucket after 15 days); lower it"
            )
        return value
