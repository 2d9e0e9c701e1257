"""Retry decisions: the resiliency policy applied to one failed attempt (see asya_runtime.resiliency)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from asya_runtime.resiliency import SQS_MAX_DELAY_S, Resiliency

#: Delays up to this long are waited out in-process (DelaySeconds has whole-second resolution).
HOLD_IN_PROCESS_MAX_S = 1.0


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_s: float
    max_attempts: int
    #: Why no retry ("" when retrying): the policy limit that ran out, for the logs.
    exhausted_by: str = ""
    #: The policy's recovery actors (``onExhausted``); empty = the error sink.
    on_exhausted: tuple[str, ...] = field(default=())


def decide(
    *,
    resiliency: Resiliency,
    error_types: Sequence[str],
    attempt: int,
    qualified: Sequence[str] = (),
    elapsed_s: float = 0.0,
) -> RetryDecision:
    """Retry after ``delay_s`` while ``attempt`` (the effective attempt that just failed) is below the policy's
    ``maxAttempts`` and the next attempt would start within ``maxDuration`` of the first (``elapsed_s`` ago)."""
    policy = resiliency.policy_for(error_types, qualified)
    recovery = tuple(policy.on_exhausted)
    if attempt >= policy.max_attempts:
        exhausted_by = f"maxAttempts {policy.max_attempts}"
    else:
        delay_s = policy.delay_after(attempt=attempt)
        if not policy.out_of_time(elapsed_s=elapsed_s, delay_s=delay_s):
            return RetryDecision(retry=True, delay_s=delay_s, max_attempts=policy.max_attempts)
        exhausted_by = f"maxDuration {policy.max_duration:g}s"
    return RetryDecision(
        retry=False, delay_s=0.0, max_attempts=policy.max_attempts, exhausted_by=exhausted_by, on_exhausted=recovery
    )


def split_delay(delay_s: float) -> tuple[float, int]:
    """``(hold_s, delay_seconds)``: short delays are held in-process; longer ones hold the fraction, SQS the rest."""
    if delay_s <= HOLD_IN_PROCESS_MAX_S:
        return delay_s, 0
    whole = min(math.floor(delay_s), SQS_MAX_DELAY_S)
    return delay_s - whole, whole
