"""EventBridge schedule expressions evaluated on real calendars: what ``asya dev`` fires when, by the AWS rules."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from asya_pulumi.spec.schedule_expression import (
    CronExpression,
    ExpressionError,
    RateExpression,
    next_fire,
    parse_schedule_expression,
)

AFTER = datetime(2026, 12, 8, 0, 7, 30, tzinfo=UTC)  # a Tuesday


@pytest.mark.parametrize(("expression", "expected"), [
    ("cron(* * * * ? *)", datetime(2026, 12, 8, 0, 8, tzinfo=UTC)),
    ("cron(0 2 * * ? *)", datetime(2026, 12, 8, 2, 0, tzinfo=UTC)),
    ("cron(0/15 9-17 ? * MON-FRI *)", datetime(2026, 12, 8, 9, 0, tzinfo=UTC)),
    ("cron(0 9 ? * SAT,SUN *)", datetime(2026, 12, 12, 9, 0, tzinfo=UTC)),
    ("cron(0 9 ? * 1 *)", datetime(2026, 12, 13, 9, 0, tzinfo=UTC)),  # 1 is Sunday
    ("cron(0 9 ? * L *)", datetime(2026, 12, 12, 9, 0, tzinfo=UTC)),  # L: the week's last day, Saturday
    ("cron(0 10 ? * 6L *)", datetime(2026, 12, 25, 10, 0, tzinfo=UTC)),  # the month's last Friday
    ("cron(0 8 ? * 3#2 *)", datetime(2026, 12, 8, 8, 0, tzinfo=UTC)),  # the second Tuesday: today
    ("cron(0 8 ? * 3#1 *)", datetime(2027, 1, 5, 8, 0, tzinfo=UTC)),  # the first Tuesday: next month
    ("cron(0 0 L * ? *)", datetime(2026, 12, 31, 0, 0, tzinfo=UTC)),
    ("cron(0 0 L 2 ? 2028)", datetime(2028, 2, 29, 0, 0, tzinfo=UTC)),  # a leap year's February
    ("cron(0 8 12W * ? *)", datetime(2026, 12, 11, 8, 0, tzinfo=UTC)),  # the 12th is a Saturday: Friday 11th
    ("cron(0 8 1W 8 ? 2026)", None),  # August 2026 is past
    ("cron(0 8 1W 8 ? 2027)", datetime(2027, 8, 2, 8, 0, tzinfo=UTC)),  # Sunday 1st: Monday 2nd, never July
    ("cron(0 8 31W 10 ? 2027)", datetime(2027, 10, 29, 8, 0, tzinfo=UTC)),  # Sunday 31st: Friday 29th
    ("cron(0 0 30 2 ? *)", None),  # February 30th never comes
    ("cron(5 7 8 DEC ? 2026)", datetime(2026, 12, 8, 7, 5, tzinfo=UTC)),  # later today, then never again
])
def test_next_fire_follows_the_aws_calendar_rules(expression: str, expected: datetime | None) -> None:
    assert next_fire(parse_schedule_expression(expression), after=AFTER) == expected


def test_a_cron_is_read_in_its_time_zone() -> None:
    fire = next_fire(parse_schedule_expression("cron(0 2 * * ? *)"), after=AFTER, timezone="Europe/Berlin")
    assert fire == datetime(2026, 12, 8, 2, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert fire is not None and fire.astimezone(UTC) == datetime(2026, 12, 8, 1, 0, tzinfo=UTC)


def test_the_next_fire_is_strictly_after_the_last_one() -> None:
    every_minute = parse_schedule_expression("cron(* * * * ? *)")
    first = next_fire(every_minute, after=AFTER)
    assert first is not None
    assert next_fire(every_minute, after=first) == datetime(2026, 12, 8, 0, 9, tzinfo=UTC)


def test_a_rate_counts_from_the_schedules_start() -> None:
    rate = parse_schedule_expression("rate(5 minutes)")
    assert isinstance(rate, RateExpression) and rate.seconds == 300
    start = datetime(2026, 12, 8, 0, 0, 10, tzinfo=UTC)
    assert next_fire(rate, after=start, started=start) == datetime(2026, 12, 8, 0, 5, 10, tzinfo=UTC)
    assert next_fire(rate, after=AFTER, started=start) == datetime(2026, 12, 8, 0, 10, 10, tzinfo=UTC)
    assert parse_schedule_expression("rate(1 day)").seconds == 86400  # type: ignore[union-attr]


def test_names_and_lists_parse_to_the_same_sets() -> None:
    named = parse_schedule_expression("cron(0 9 ? jan,Mar * *)")  # AWS reads names in any case
    numbered = parse_schedule_expression("cron(0 9 ? 1,3 * *)")
    assert isinstance(named, CronExpression) and isinstance(numbered, CronExpression)
    assert named.months == numbered.months == frozenset({1, 3})


@pytest.mark.parametrize("expression", [
    "rate(1 minutes)", "rate(2 hour)", "rate(01 minute)", "rate(-1 minute)", "rate(1.5 hours)", "rate(1minute)",
    "cron(0 2 * * ? * *)", "cron(0 2 * * ? *", "cron(0 2 * * * *)", "cron(0 2 ? * ? *)", "cron(0 2 * 13 ? *)",
    "cron(0 2 * * ? 1969)", "cron(*/0 2 * * ? *)", "cron(0 2 1,,2 * ? *)", "cron(0 2 LW * ? *)", "cron(0 2 1W,2 * ? *)",
    "cron(0 2 ? * 1#2,3 *)", "cron(0 2 ? * FOO *)", "cron(0 L * * ? *)", "at(2027-01-01T00:00:00)", "",
    "RATE(1 minute)",
])
def test_expressions_aws_refuses_are_refused(expression: str) -> None:
    with pytest.raises(ExpressionError):
        parse_schedule_expression(expression)
