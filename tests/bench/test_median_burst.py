"""bench/run's table takes each figure's median over the rounds, so one slowed-down round moves nothing."""

from __future__ import annotations

import pytest

from bench.throughput import BurstResult, median_burst


def burst(*, seconds: float, requests: int, cpu: float, handler_cpu: float) -> BurstResult:
    return BurstResult(
        envelopes=2000,
        seconds=seconds,
        sqs_requests=requests,
        billed_requests=requests,
        by_action={"ReceiveMessage": requests},
        cpu_seconds=cpu,
        cpu_by_kind={"handler server": handler_cpu, "own processes": cpu - handler_cpu},
    )


def test_each_figure_is_its_own_median() -> None:
    rounds = [
        burst(seconds=2.0, requests=1800, cpu=2.4, handler_cpu=0.4),
        burst(seconds=9.0, requests=1900, cpu=9.0, handler_cpu=0.5),  # the round the machine was busy
        burst(seconds=2.2, requests=1802, cpu=2.2, handler_cpu=0.6),
    ]
    median = median_burst(rounds)
    assert median.seconds == 2.2
    assert median.cpu_seconds == 2.4
    assert median.sqs_requests == 1802 and median.by_action == {"ReceiveMessage": 1802}
    assert median.cpu_by_kind == {"handler server": 0.5, "own processes": 2.0}
    assert median.cpu_ms_per_envelope == pytest.approx(1.2)


def test_rounds_of_different_sizes_are_refused() -> None:
    one = burst(seconds=1.0, requests=10, cpu=1.0, handler_cpu=0.1)
    other = BurstResult(**{**one.__dict__, "envelopes": 300})
    with pytest.raises(ValueError, match="different sizes"):
        median_burst([one, other])
