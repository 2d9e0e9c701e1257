"""Durations as users write them in manifests: ``500ms``, ``2s``, ``1m30s``, ``2h``, or a bare number of seconds.

One parser for both halves: the components read a manifest's ``actorTimeout: 120s`` with it and the sidecar reads
the same value back from its environment, so ``120s`` can never mean two things.
"""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_FORMS = "write e.g. '500ms', '30s', '2m', '1h30m' or a number of seconds"


def parse_duration(value: str | int | float) -> float:
    """Return the duration in seconds, or raise ValueError naming the accepted forms.

    A duration is finite and zero or more: YAML's ``.nan`` and ``.inf`` (and ``"nan"``, ``"1e999"``) parse as
    floats, compare false with every limit and would slip past each bound check, so they are refused here, once.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{value!r} is not a duration; {_FORMS}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"{value!r} is not a duration; {_FORMS}") from None
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite duration; {_FORMS}")
    if seconds < 0:
        raise ValueError(f"{value!r} is negative; a duration must be zero or more")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest manifest spelling of ``seconds`` that parses back to the same value."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def readable_duration(seconds: float) -> str:
    """``43110`` → ``11h58m30s``: for messages (it parses back, but ``format_duration`` is the canonical form)."""
    whole = round(seconds)
    if whole != seconds or whole < 60:
        return format_duration(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)
