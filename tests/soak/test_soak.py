"""Zero loss under faults: every envelope ends in exactly one final record, whatever is killed or cut meanwhile.

The short soak (a few hundred envelopes, about a minute) runs in the normal test run; the long one (10,000
envelopes) runs with ``pytest tests/soak --soak-long``. Both print the outcome, duplicates included.
"""

from __future__ import annotations

from collections import Counter

import pytest
from soak import SoakOutcome, SoakSettings, run_soak
from support.mesh import MeshHarness

SHORT = SoakSettings(
    envelopes=300, fault_window_s=25, fault_every_s=(1.0, 2.5), outage_s=(0.5, 2.0), timeout_s=180, seed=5
)
LONG = SoakSettings(
    envelopes=10_000, fault_window_s=240, fault_every_s=(1.0, 4.0), outage_s=(0.5, 3.0), timeout_s=1500, seed=55
)


def check_no_loss(outcome: SoakOutcome) -> None:
    print(outcome.summary())
    assert not outcome.missing, f"{len(outcome.missing)} envelope(s) have no final record, e.g. {outcome.missing[:5]}"
    assert not outcome.both, f"{len(outcome.both)} envelope(s) have a success and an error record: {outcome.both[:5]}"
    assert not outcome.failed_without_reason, f"error records without a reason: {outcome.failed_without_reason[:5]}"
    assert not outcome.hops_missing_a_call(), f"succeeded without a handler call: {outcome.hops_missing_a_call()[:5]}"
    # Faults really happened, or the soak proves nothing.
    assert sum(outcome.faults.values()) >= 5, outcome.faults
    assert outcome.transient_failures > 0
    # 5 attempts against 10 % transient failures: error-ending more than a few percent means retries are broken.
    assert len(outcome.failed) <= 0.05 * len(outcome.sent), outcome.summary()


def test_short_soak_loses_nothing(mesh: MeshHarness) -> None:
    check_no_loss(run_soak(mesh, SHORT))


@pytest.mark.soak_long
@pytest.mark.timeout(1800)
def test_long_soak_loses_nothing(mesh: MeshHarness) -> None:
    check_no_loss(run_soak(mesh, LONG))


def test_the_check_fails_when_an_envelope_is_lost() -> None:
    """The verdict itself: an envelope without a final record, or with two, fails the soak."""
    ids = ["a", "b", "c"]
    calls = [{"id": i, "actor": actor, "attempt": 1, "ok": True} for i in ids for actor in ("s1", "s2", "s3")]
    calls.append({"id": "a", "actor": "s1", "attempt": 1, "ok": False})
    lost = SoakOutcome(
        sent=ids, succeeded={"a", "b"}, failed={}, calls=calls, faults=Counter(kill_sidecar=5), dlq_depth=0, seconds=1
    )
    with pytest.raises(AssertionError, match="1 envelope\\(s\\) have no final record"):
        check_no_loss(lost)
    doubled = SoakOutcome(
        sent=ids,
        succeeded=set(ids),
        failed={"c": {"reason": "retries exhausted"}},
        calls=calls,
        faults=Counter(kill_sidecar=5),
        dlq_depth=0,
        seconds=1,
    )
    with pytest.raises(AssertionError, match="a success and an error record"):
        check_no_loss(doubled)
