"""Retry decisions: the resiliency policy applied to one failed attempt (see asya_runtime.resiliency)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from asya_runtime.resiliency import SQS_MAX_DELAY_S, Resiliency

#: Delays up to this long are waited out in-process (DelaySeconds has whole-second resolution).
HOLD_IN_PROCESS_MAX_S = 1.0


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_s: float
    max_attempts: int


def decide(*, resiliency: Resiliency, error_types: list[str], attempt: int) -> RetryDecision:
    """Retry after ``delay_s`` while ``attempt`` (the effective attempt that just failed) is below the policy's max."""
    policy = resiliency.policy_for(error_types)
    if attempt >= policy.max_attempts:
        return RetryDecision(retry=False, delay_s=0.0, max_attempts=policy.max_attempts)
    return RetryDecision(retry=True, delay_s=policy.delay_after(attempt=attempt), max_attempts=policy.max_attempts)


def split_delay(delay_s: float) -> tuple[float, int]:
    """``(hold_s, delay_seconds)``: short delays are held in-process; longer ones hold the fraction, SQS the rest."""
    if delay_s <= HOLD_IN_PROCESS_MAX_S:
        return delay_s, 0
    whole = min(math.floor(delay_s), SQS_MAX_DELAY_S)
    return delay_s - whole, whole
