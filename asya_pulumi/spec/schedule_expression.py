"""EventBridge Scheduler's recurring expressions, checked as strictly as AWS checks them, and their next fire times.

Two forms (docs/infrastructure.md, "Triggers"):

* ``rate(value unit)``: ``value`` a positive whole number, ``unit`` ``minute``/``hour``/``day`` when the value is 1
  and ``minutes``/``hours``/``days`` when it is more (``rate(1 minutes)`` and ``rate(5 minute)`` are refused by
  AWS, so here too). A rate fires first when the schedule is created, then every interval.
* ``cron(minutes hours day-of-month month day-of-week year)``: six fields. ``, - * /`` in every field; day-of-month
  also takes ``?``, ``L`` and ``W`` (``15W``: the weekday nearest the 15th), day-of-week ``?``, ``L`` (``L``: the
  last day of the week, Saturday; ``6L``: the month's last Friday) and ``#`` (``3#2``: its second Tuesday). Exactly
  one of day-of-month and day-of-week is ``?``. Days of the week run 1-7 from SUN; names (``JAN``, ``MON``) work
  as in AWS; years run 1970-2199.

``at(...)`` one-time schedules are refused: a trigger recurs. Each refusal names the rule broken and the fix;
:mod:`asya_pulumi.spec.triggers` prefixes the field.

:func:`next_fire` evaluates an expression for ``asya dev``, which fires schedules itself (EventBridge is not
emulated): it walks forward a day at a time, so ``L``, ``W`` and ``#`` are evaluated on real calendars.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["CronExpression", "RateExpression", "ScheduleExpression", "next_fire", "parse_schedule_expression"]

_RATE = re.compile(r"rate\((?P<body>.*)\)", re.DOTALL)
_CRON = re.compile(r"cron\((?P<body>.*)\)", re.DOTALL)
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
#: (name, low, high, names) of the six cron fields, in order.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minutes", 0, 59, {}),
    ("hours", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _DAYS),
    ("year", 1970, 2199, {}),
)
_CRON_EXAMPLE = "cron(0 2 * * ? *) (02:00 every day) or cron(0/15 9-17 ? * MON-FRI *)"
#: How far :func:`next_fire` looks ahead for a day that matches (a cron of Feb 30 never fires).
_LOOKAHEAD_DAYS = 366 * 8


class ExpressionError(ValueError):
    """An expression AWS would refuse; the message names the rule and the fix."""


@dataclass(frozen=True)
class RateExpression:
    text: str
    seconds: int


@dataclass(frozen=True)
class CronExpression:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    #: Day-of-month terms: ints, "L", or ("W", n). None when the field is "?".
    days_of_month: tuple[object, ...] | None
    #: Day-of-week terms: ints (1 = SUN), "L", ("L", d), ("#", d, n). None when the field is "?".
    days_of_week: tuple[object, ...] | None

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months or day.year not in self.years:
            return False
        if self.days_of_month is not None:
            return any(_dom_term_matches(term, day) for term in self.days_of_month)
        assert self.days_of_week is not None
        return any(_dow_term_matches(term, day) for term in self.days_of_week)


ScheduleExpression = RateExpression | CronExpression


def parse_schedule_expression(text: str) -> ScheduleExpression:
    """The parsed ``rate(...)`` or ``cron(...)`` expression; :class:`ExpressionError` saying what AWS would refuse."""
    if not isinstance(text, str):
        raise ExpressionError("must be a string: rate(5 minutes) or " + _CRON_EXAMPLE)
    if text.startswith("at("):
        raise ExpressionError(f"{text!r} is a one-time at() schedule; a trigger recurs: use rate(...) or cron(...)")
    if (match := _RATE.fullmatch(text)) is not None:
        return _parse_rate(text, match.group("body"))
    if (match := _CRON.fullmatch(text)) is not None:
        return _parse_cron(text, match.group("body"))
    raise ExpressionError(f"{text!r} is neither rate(value unit) nor cron(6 fields); e.g. rate(5 minutes) or "
                          f"{_CRON_EXAMPLE}")


#: The longest rate period asya takes, 100 years: past it a schedule never fires a second time before 2199 (the last
#: year a cron's year field may name), and the period no longer fits the date arithmetic of ``asya dev``'s clock.
MAX_RATE_SECONDS = 100 * 365 * 86400


def _parse_rate(text: str, body: str) -> RateExpression:
    parts = body.split(" ")
    if len(parts) != 2 or not all(parts):
        raise ExpressionError(f"{text!r}: a rate is rate(value unit) with one space, e.g. rate(5 minutes)")
    value, unit = parts
    if not re.fullmatch(r"[1-9][0-9]*", value):
        raise ExpressionError(f"{text!r}: the value {value!r} must be a positive whole number without leading zeros, "
                              "e.g. rate(5 minutes)")
    number = int(value)
    singular = unit.rstrip("s") if unit.endswith("s") else unit
    if singular not in _RATE_UNITS:
        raise ExpressionError(f"{text!r}: the unit {unit!r} is not one of minute(s), hour(s), day(s)")
    if number == 1 and unit != singular:
        raise ExpressionError(f"{text!r}: a value of 1 takes the singular unit: write rate(1 {singular})")
    if number > 1 and unit == singular:
        raise ExpressionError(f"{text!r}: a value over 1 takes the plural unit: write rate({number} {singular}s)")
    seconds = number * _RATE_UNITS[singular]
    if seconds > MAX_RATE_SECONDS:
        raise ExpressionError(f"{text!r}: a rate is at most 100 years ({MAX_RATE_SECONDS // 86400} days): a longer one "
                              "would not fire again before 2199, the last year EventBridge's expressions name; write "
                              "e.g. rate(365 days), or a cron for a yearly date")
    return RateExpression(text=text, seconds=seconds)


def _parse_cron(text: str, body: str) -> CronExpression:
    fields = body.split(" ")
    if len(fields) != 6 or not all(fields):
        raise ExpressionError(
            f"{text!r} has {len([f for f in fields if f])} field(s); EventBridge's cron has 6, one space apart: "
            f"minutes hours day-of-month month day-of-week year, e.g. {_CRON_EXAMPLE}"
        )
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ExpressionError(
            f"{text!r}: exactly one of day-of-month ({dom!r}) and day-of-week ({dow!r}) must be '?' (the other says "
            "which days); e.g. cron(0 2 * * ? *) for every day, cron(0 2 ? * MON *) for Mondays"
        )
    return CronExpression(
        text=text,
        minutes=_plain_field(text, minutes, _FIELDS[0]),
        hours=_plain_field(text, hours, _FIELDS[1]),
        months=_plain_field(text, month, _FIELDS[3]),
        years=_plain_field(text, year, _FIELDS[5]),
        days_of_month=None if dom == "?" else tuple(_dom_terms(text, dom)),
        days_of_week=None if dow == "?" else tuple(_dow_terms(text, dow)),
    )


def _number(text: str, token: str, spec: tuple[str, int, int, dict[str, int]]) -> int:
    name, low, high, names = spec
    if token.upper() in names:  # AWS reads names in any case, as Quartz (whose syntax this is) does
        return names[token.upper()]
    if not re.fullmatch(r"[0-9]+", token):
        allowed = f", or {next(iter(names))}-style names" if names else ""
        raise ExpressionError(f"{text!r}: {name} {token!r} is not a number from {low} to {high}{allowed}")
    value = int(token)
    if not low <= value <= high:
        raise ExpressionError(f"{text!r}: {name} {value} is outside {low}-{high}")
    return value


def _plain_field(text: str, field: str, spec: tuple[str, int, int, dict[str, int]]) -> frozenset[int]:
    """A field of ``, - * /`` terms as the set of values it matches."""
    name = spec[0]
    values: set[int] = set()
    for term in field.split(","):
        if not term:
            raise ExpressionError(f"{text!r}: {name} {field!r} has an empty list item")
        values |= _range_term(text, term, spec)
    return frozenset(values)


def _range_term(text: str, term: str, spec: tuple[str, int, int, dict[str, int]]) -> set[int]:
    name, low, high, _ = spec
    if term in {"?", "L"} or "#" in term or "W" in term:
        raise ExpressionError(f"{text!r}: {name} does not take {term!r} (? and L: day fields; W: day-of-month; "
                              "#: day-of-week)")
    base, slash, step_text = term.partition("/")
    step = 1
    if slash:
        if not re.fullmatch(r"[1-9][0-9]*", step_text):
            raise ExpressionError(f"{text!r}: {name} {term!r}: the increment after '/' must be a positive number")
        step = int(step_text)
    if base == "*":
        start, end = low, high
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = _number(text, first, spec), _number(text, last, spec)
        if start > end:
            raise ExpressionError(f"{text!r}: {name} range {base!r} runs backwards; write {last}-{first}... in order")
    else:
        start = _number(text, base, spec)
        end = high if slash else start  # 0/15: from 0 every 15
    return set(range(start, end + 1, step))


def _dom_terms(text: str, field: str) -> list[object]:
    spec = _FIELDS[2]
    terms: list[object] = []
    for term in field.split(","):
        if term == "L":
            terms.append("L")
        elif term.endswith("W"):
            day = _number(text, term[:-1], spec) if term[:-1] else None
            if day is None or "," in field:
                raise ExpressionError(f"{text!r}: day-of-month {term!r}: W takes one day (15W), alone in the field")
            terms.append(("W", day))
        elif term in {"?"} or "#" in term or "L" in term:
            raise ExpressionError(f"{text!r}: day-of-month {term!r}: '?' stands alone; L is the last day; # belongs "
                                  "to day-of-week")
        else:
            terms += sorted(_range_term(text, term, spec))
    return terms


def _dow_terms(text: str, field: str) -> list[object]:
    spec = _FIELDS[4]
    terms: list[object] = []
    for term in field.split(","):
        if term == "L":
            terms.append("L")
        elif term.endswith("L"):
            terms.append(("L", _number(text, term[:-1], spec)))
        elif "#" in term:
            day_text, _, nth_text = term.partition("#")
            if not re.fullmatch(r"[1-5]", nth_text) or "," in field:
                raise ExpressionError(f"{text!r}: day-of-week {term!r}: write DAY#N with N from 1 to 5 (3#2: the "
                                      "second Tuesday), alone in the field")
            terms.append(("#", _number(text, day_text, spec), int(nth_text)))
        elif term == "?" or "W" in term:
            raise ExpressionError(f"{text!r}: day-of-week {term!r}: '?' stands alone; W belongs to day-of-month")
        else:
            terms += sorted(_range_term(text, term, spec))
    return terms


def _weekday(day: date) -> int:
    """EventBridge's day-of-week number: 1 = Sunday ... 7 = Saturday."""
    return (day.isoweekday() % 7) + 1


def _dom_term_matches(term: object, day: date) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    if term == "L":
        return day.day == last
    if isinstance(term, tuple):  # ("W", n): the weekday nearest day n of this month, never leaving the month
        target = date(day.year, day.month, min(term[1], last))
        if target.weekday() == 5:  # Saturday: the Friday before, or Monday after when the 1st
            target = target + timedelta(days=2) if target.day == 1 else target - timedelta(days=1)
        elif target.weekday() == 6:  # Sunday: the Monday after, or Friday before when the month's last day
            target = target - timedelta(days=2) if target.day == last else target + timedelta(days=1)
        return day == target
    return day.day == term


def _dow_term_matches(term: object, day: date) -> bool:
    weekday = _weekday(day)
    if term == "L":
        return weekday == 7
    if isinstance(term, tuple) and term[0] == "L":  # the month's last such weekday
        return weekday == term[1] and day.day + 7 > calendar.monthrange(day.year, day.month)[1]
    if isinstance(term, tuple):  # ("#", weekday, n)
        return weekday == term[1] and (day.day - 1) // 7 + 1 == term[2]
    return weekday == term


def next_fire(expression: ScheduleExpression, *, after: datetime, timezone: str = "UTC",
              started: datetime | None = None) -> datetime | None:
    """The first fire time strictly after ``after`` (aware), or None when the cron never fires again.

    A rate counts from ``started`` (when the schedule was created; default ``after``), as EventBridge does. A cron
    is evaluated in ``timezone``; the result is in the same zone.
    """
    if isinstance(expression, RateExpression):
        origin = started or after
        elapsed = (after - origin).total_seconds()
        periods = int(elapsed // expression.seconds) + 1 if elapsed >= 0 else 0
        return origin + timedelta(seconds=periods * expression.seconds)
    zone = ZoneInfo(timezone)
    local = after.astimezone(zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = local.date()
    for _ in range(_LOOKAHEAD_DAYS):
        if expression.day_matches(day):
            for hour in sorted(expression.hours):
                for minute in sorted(expression.minutes):
                    candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                    if candidate >= local:
                        return candidate
        day += timedelta(days=1)
        local = datetime(day.year, day.month, day.day, tzinfo=zone)
    return None
