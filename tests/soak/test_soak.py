"""Zero loss under faults: every envelope ends in exactly one final record, whatever is killed or cut meanwhile.

The short soak (a few hundred envelopes, about a minute) runs in the normal test run; the long one (10,000
envelopes) runs with ``pytest tests/soak --soak-long``. Both print the outcome, duplicates included.
"""

from __future__ import annotations

from collections import Counter

import pytest
from soak import FAULT_KINDS, HANDLER_CONCURRENCY, SoakOutcome, SoakSettings, run_soak
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
    # Faults really happened, each kind of them, or the soak proves nothing about that kind.
    assert all(outcome.faults[kind] >= 1 for kind in FAULT_KINDS), f"faults that landed: {dict(outcome.faults)}"
    assert sum(outcome.faults.values()) >= 5, outcome.faults
    assert outcome.transient_failures > 0
    # Only a handler killed mid-write leaves a line that does not parse; more means the log format changed.
    assert outcome.unparsed_calls <= HANDLER_CONCURRENCY * outcome.faults["kill_handler"], outcome.summary()
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


ALL_FAULTS = Counter(kill_handler=2, kill_sidecar=2, cut_broker=2)


def _clean(**changes: object) -> SoakOutcome:
    """An outcome that passes the verdict (every envelope once, every fault kind landed), with ``changes``."""
    ids = ["a", "b"]
    calls = [{"id": i, "actor": actor, "attempt": 1, "ok": True} for i in ids for actor in ("s1", "s2", "s3")]
    calls.append({"id": "a", "actor": "s1", "attempt": 1, "ok": False})
    fields: dict[str, object] = dict(
        sent=ids, succeeded=set(ids), failed={}, calls=calls, faults=ALL_FAULTS, dlq_depth=0, seconds=1
    )
    return SoakOutcome(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_check_fails_when_a_fault_kind_never_landed() -> None:
    """The verdict fails a soak whose faults did not land, even if others did: no faults at all, or plenty of
    one kind and none of another (a cut that met no connection is skipped, not counted)."""
    check_no_loss(_clean())  # the baseline passes
    with pytest.raises(AssertionError, match="faults that landed"):
        check_no_loss(_clean(faults=Counter()))
    with pytest.raises(AssertionError, match="faults that landed"):
        check_no_loss(_clean(faults=Counter(kill_handler=9), skipped_faults=Counter(cut_broker=3)))


def test_the_check_fails_when_side_effect_lines_go_unparsed_beyond_the_kills() -> None:
    check_no_loss(_clean(unparsed_calls=HANDLER_CONCURRENCY * ALL_FAULTS["kill_handler"]))
    with pytest.raises(AssertionError, match="lines unparsed"):
        check_no_loss(_clean(unparsed_calls=HANDLER_CONCURRENCY * ALL_FAULTS["kill_handler"] + 1))
