import pytest
from hypothesis import given
from hypothesis import strategies as st

from asya_runtime.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("2s", 2.0), ("2m", 120.0), ("1h30m", 5400.0), ("1m30s", 90.0), (" 30s ", 30.0), ("12", 12.0),
     (7, 7.0), (0.25, 0.25)],
)
def test_parses_manifest_spellings(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["ten seconds", "5x", "s", "", "1h-5m", "-3s", True])
def test_rejects_what_does_not_parse_with_the_accepted_forms(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10**7).map(lambda ms: ms / 1000))
def test_format_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=5e-4)
