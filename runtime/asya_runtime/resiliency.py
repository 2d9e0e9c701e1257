"""The resiliency policy: how often and how soon a failed handler call is tried again, and how long it may run.

This model is the single source of truth for retries. The Pulumi components derive the SQS queue's
``VisibilityTimeout`` and ``RedrivePolicy.maxReceiveCount`` from it (:func:`queue_visibility_timeout`,
:func:`queue_max_receive_count`) and render it, serialised, into the sidecar's environment, where the sidecar
parses it back with the same class. Neither half types a number by hand, so they cannot drift.

How retries work (and why the derivations below are safe):

* A failed attempt is retried by sending a *new* SQS message carrying ``status.attempt + 1`` (delayed by the
  backoff) and deleting the old one. The attempt count therefore lives in the envelope and survives redelivery.
* A message that SQS delivers again (the sidecar was killed, a pod was evicted) counts its extra deliveries as
  attempts too: ``effective attempt = status.attempt + ApproximateReceiveCount - 1``. A message that crashes its
  pod every time is therefore error-ended after ``maxAttempts`` deliveries instead of looping forever.
* SQS's own dead-lettering is the last resort, for messages the sidecar could not even error-end. It must never
  fire while the sidecar still means to retry, hence ``maxReceiveCount = maxAttempts + 2``: one delivery more than
  the worst case the sidecar needs to error-end an envelope (``attempt`` ≥ 1), plus one for a failed sink send.
* ``maxDuration`` bounds a policy in time as ``maxAttempts`` bounds it in count: the time of an actor's first
  attempt at an envelope travels in ``status.first_attempt_at`` on every retry (and a redelivered first attempt
  takes it from SQS's ``ApproximateFirstReceiveTimestamp``), and no retry is scheduled to start later than
  ``maxDuration`` after it.
* ``onExhausted`` names recovery actors: when a policy runs out (attempts or duration), the envelope goes to them
  instead of the error sink, keeping ``status.error`` so the recovery actor can see why.
* Rules name errors by short class name (``Timeout``) or by qualified name (``requests.exceptions.Timeout``,
  ``builtins.ValueError``, or the package that re-exports the class, ``requests.Timeout``): see
  :func:`error_name_matches`.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator, model_validator

from asya_runtime.durations import format_duration, parse_duration, readable_duration
from asya_runtime.manifest_model import ManifestModel
from asya_runtime.naming import check_actor_name

#: SQS refuses a VisibilityTimeout above 12 hours; an actor may not be allowed to run longer than that.
SQS_MAX_VISIBILITY_S = 12 * 3600
#: SQS refuses DelaySeconds above 15 minutes; a single backoff step may not be longer.
SQS_MAX_DELAY_S = 900
#: SQS refuses a RedrivePolicy whose maxReceiveCount is above 1000.
SQS_MAX_RECEIVE_COUNT = 1000
#: Deliveries SQS allows beyond ``maxAttempts`` before it dead-letters (see the module docstring).
RECEIVE_COUNT_MARGIN = 2
#: The most attempts a policy may ask for: more would derive a maxReceiveCount SQS refuses.
MAX_ATTEMPTS = SQS_MAX_RECEIVE_COUNT - RECEIVE_COUNT_MARGIN
#: Slack added to the visibility timeout so a heartbeat that is a little late never lets a message reappear.
VISIBILITY_MARGIN_S = 30
#: Above this, the sidecar stops waiting out the whole actor timeout in one visibility window and extends it instead.
VISIBILITY_WINDOW_CAP_S = 60

Seconds = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
#: An error name in a rule: a class name (``Timeout``), or a dotted qualified one (``requests.exceptions.Timeout``).
_ERROR_NAME = re.compile(r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$")


def _one_or_many(value: object) -> object:
    """``onExhausted: recovery`` is shorthand for ``onExhausted: [recovery]``."""
    return [value] if isinstance(value, str) else value


class _Model(ManifestModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class RetryPolicy(_Model):
    """One named retry policy. Every default is the behaviour users get when they write nothing."""

    max_attempts: int = Field(
        3, alias="maxAttempts", ge=1, description="Calls in all, the first included; 1 means never retry."
    )
    backoff: Literal["constant", "linear", "exponential"] = Field(
        "exponential",
        description="Delay growth: constant = initial; linear = initial × n; exponential = initial × 2^(n-1).",
    )
    initial_interval: Seconds = Field(1.0, alias="initialInterval", description="Delay before the 2nd attempt.")
    max_interval: Seconds = Field(
        60.0, alias="maxInterval", description="Cap on any single delay (at most 15 min, SQS's DelaySeconds limit)."
    )
    jitter: bool = Field(
        True, description="Randomise each delay within [delay/2, delay] so retries of a burst do not stampede."
    )
    max_duration: Seconds | None = Field(
        None,
        alias="maxDuration",
        gt=0,
        description="No retry is scheduled to start later than this after the actor's first attempt; "
        "unset = only maxAttempts bounds the retries.",
    )
    on_exhausted: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(
        default_factory=list,
        alias="onExhausted",
        description="Recovery actors the envelope is routed to (first = next hop, with status.error kept) when "
        "this policy runs out of attempts or time; empty = the error sink.",
    )

    @field_validator("on_exhausted")
    @classmethod
    def _check_on_exhausted(cls, value: list[str]) -> list[str]:
        for name in value:
            try:
                check_actor_name(name)
            except ValueError as exc:
                raise ValueError(
                    f"onExhausted names {name!r}, which cannot be a recovery actor: {exc}; name actors of this "
                    f"mesh, or leave onExhausted out to end in the error sink"
                ) from None
        return value

    @field_validator("max_attempts")
    @classmethod
    def _check_max_attempts(cls, value: int) -> int:
        if value > MAX_ATTEMPTS:
            raise ValueError(
                f"maxAttempts {value} derives the queue's RedrivePolicy maxReceiveCount {value + RECEIVE_COUNT_MARGIN} "
                f"(maxAttempts + {RECEIVE_COUNT_MARGIN}), over SQS's limit of {SQS_MAX_RECEIVE_COUNT}; "
                f"use at most {MAX_ATTEMPTS} attempts"
            )
        return value

    @model_validator(mode="after")
    def _check_intervals(self) -> RetryPolicy:
        if self.initial_interval > self.max_interval:
            raise ValueError(
                f"initialInterval ({format_duration(self.initial_interval)}) is greater than maxInterval "
                f"({format_duration(self.max_interval)}); raise maxInterval or lower initialInterval"
            )
        if self.max_interval > SQS_MAX_DELAY_S:
            raise ValueError(
                f"maxInterval ({format_duration(self.max_interval)}) exceeds SQS's 15 min DelaySeconds limit; "
                f"use at most 15m"
            )
        return self

    def out_of_time(self, *, elapsed_s: float, delay_s: float) -> bool:
        """True when an attempt ``delay_s`` from now would start past ``maxDuration``.

        ``elapsed_s`` is the time since the actor's first attempt at the envelope.
        """
        return self.max_duration is not None and elapsed_s + delay_s >= self.max_duration

    def delay_after(self, *, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based) before the next one."""
        if self.backoff == "constant":
            delay = self.initial_interval
        elif self.backoff == "linear":
            delay = self.initial_interval * attempt
        else:
            delay = self.initial_interval * 2 ** (attempt - 1)
        delay = min(delay, self.max_interval)
        if self.jitter:
            delay = (rng or random).uniform(delay / 2, delay)
        return delay


class RetryRule(_Model):
    """Errors whose class (or any base class) is listed use ``policy`` instead of the default."""

    errors: list[str] = Field(
        min_length=1,
        description="Exception class names, short (['Timeout']) or qualified (['requests.exceptions.Timeout', "
        "'builtins.ValueError']).",
    )
    policy: str = Field(description="Name of a policy in `policies`.")

    @field_validator("errors")
    @classmethod
    def _check_errors(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _ERROR_NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not an exception class name; write a class name ('TimeoutError') or a dotted "
                    f"qualified one ('requests.exceptions.Timeout')"
                )
        return value

    def matches(self, *, names: Sequence[str], qualified: Sequence[str]) -> bool:
        """True when an entry names the error's class or a base class (see :func:`error_name_matches`)."""
        return any(error_name_matches(entry, names=names, qualified=qualified) for entry in self.errors)


def error_name_matches(entry: str, *, names: Sequence[str], qualified: Sequence[str]) -> bool:
    """Does rule entry ``entry`` name one of an error's classes?

    ``names`` are the short class names of the error's ``mro`` and ``qualified`` their ``module.QualName`` forms
    (docs/protocol.md, ``mro_qualified``; absent for handler servers without modules, e.g. Node.js). A short
    entry (no dot) matches a short name. A dotted entry matches a qualified name exactly
    (``requests.exceptions.Timeout``, ``builtins.ValueError``), or as the package that re-exports the class:
    a leading part of the module path followed by the class name (``requests.Timeout`` matches
    ``requests.exceptions.Timeout``; ``openai.RateLimitError`` matches ``openai._exceptions.RateLimitError``).
    """
    if "." not in entry:
        return entry in names
    package, _, short = entry.rpartition(".")
    for full in qualified:
        if full == entry:
            return True
        module, _, name = full.rpartition(".")
        if name == short and (module == package or module.startswith(package + ".")):
            return True
    return False


class Resiliency(_Model):
    """The `spec.resiliency` block of an AsyncActor manifest."""

    actor_timeout: Seconds = Field(
        300.0,
        alias="actorTimeout",
        gt=0,
        description="Longest a single handler call may run; the envelope's own deadline can only shorten it.",
    )
    policies: dict[str, RetryPolicy] = Field(
        default_factory=lambda: {"default": RetryPolicy()},
        description="Named policies; `default` applies to every error no rule names (added if omitted).",
    )
    rules: list[RetryRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Resiliency:
        self.policies.setdefault("default", RetryPolicy())
        longest = max_actor_timeout()
        if self.actor_timeout > longest:
            raise ValueError(
                f"actorTimeout ({readable_duration(self.actor_timeout)}) exceeds SQS's 12h visibility ceiling "
                f"(a message may stay hidden at most 12h after it is received, and the heartbeat keeps it hidden "
                f"{queue_visibility_timeout(self)}s past the call); use at most {readable_duration(longest)}, "
                f"or split the step into smaller actors"
            )
        names = self.policies
        for i, rule in enumerate(self.rules):
            if rule.policy not in names:
                raise ValueError(
                    f"rules[{i}].policy {rule.policy!r} is not defined; define it under policies "
                    f"(known: {', '.join(sorted(names))})"
                )
        return self

    def policy_for(self, error_types: Sequence[str], qualified: Sequence[str] = ()) -> RetryPolicy:
        """The policy of the first rule naming the error's class or a base class, else ``default``.

        ``error_types`` are the short names of the error's ``mro``, ``qualified`` their qualified names.
        """
        for rule in self.rules:
            if rule.matches(names=error_types, qualified=qualified):
                return self.policies[rule.policy]
        return self.policies["default"]

    @property
    def recovery_actors(self) -> set[str]:
        """Every actor some policy's ``onExhausted`` names (the mesh checks they exist)."""
        return {name for policy in self.policies.values() for name in policy.on_exhausted}

    @property
    def max_attempts(self) -> int:
        return max(p.max_attempts for p in self.policies.values())

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


def check_recovery_actors(*, actor: str, resiliency: Resiliency, known: Sequence[str]) -> None:
    """Raise unless every ``onExhausted`` of ``actor``'s policies names another actor of its mesh (``known``).

    A recovery actor outside the mesh would only turn into an ``unknown actor`` record at run time, and an actor
    recovering into itself would start its retries over with every exhaustion.
    """
    for name, policy in sorted(resiliency.policies.items()):
        for target in policy.on_exhausted:
            where = f"actor {actor!r}: resiliency.policies.{name}.onExhausted names {target!r}"
            if target == actor:
                raise ValueError(f"{where}, the actor itself; name a separate recovery actor")
            if target not in known:
                raise ValueError(
                    f"{where}, which is not an actor of the mesh; add it or name one of: {', '.join(sorted(known))}"
                )


def check_recovery_cycles(recovery: Mapping[str, Resiliency]) -> None:
    """Raise if ``onExhausted`` hands envelopes round a cycle (``a -> b -> a``): an envelope that fails in every
    actor of it would be handed on forever, each hop with fresh attempts (the hop budget would end it, but only
    after thousands of calls). ``recovery`` maps each actor whose policies are known to its resiliency."""
    edges = {
        actor: sorted({target for policy in res.policies.values() for target in policy.on_exhausted})
        for actor, res in recovery.items()
    }
    done: set[str] = set()

    def visit(actor: str, path: list[str]) -> None:
        if actor in path:
            cycle = [*path[path.index(actor):], actor]
            raise ValueError(
                f"onExhausted forms a cycle: {' -> '.join(cycle)}; an envelope failing in each would be handed round "
                "it forever. End the chain in an actor without onExhausted (it error-ends what it cannot recover)"
            )
        if actor in done:
            return
        for target in edges.get(actor, ()):
            visit(target, [*path, actor])
        done.add(actor)

    for actor in sorted(edges):
        visit(actor, [])


def queue_visibility_timeout(resiliency: Resiliency) -> int:
    """Queue VisibilityTimeout (s): a short actor's whole timeout plus a margin; long actors rely on heartbeats.

    ``min(ceil(actorTimeout), 60) + 30``. The sidecar extends the visibility of every in-flight message every
    third of this window, so a 10-minute GPU call is never delivered twice, while a killed sidecar's messages
    reappear within about a minute and a half instead of after the full actor timeout.
    """
    return min(math.ceil(resiliency.actor_timeout), VISIBILITY_WINDOW_CAP_S) + VISIBILITY_MARGIN_S


def max_actor_timeout() -> int:
    """The longest ``actorTimeout`` SQS lets the sidecar keep a message hidden for: 12 h less the visibility window.

    SQS counts its 12 h visibility ceiling from the receive, and refuses a ChangeMessageVisibility that would pass
    it; the heartbeat asks for one more window (``queue_visibility_timeout``) while a call runs, so a call may use
    at most ``12h - window``.
    """
    return SQS_MAX_VISIBILITY_S - VISIBILITY_WINDOW_CAP_S - VISIBILITY_MARGIN_S


def queue_max_receive_count(resiliency: Resiliency) -> int:
    """RedrivePolicy.maxReceiveCount: ``max(maxAttempts over all policies) + 2`` (see the module docstring)."""
    return resiliency.max_attempts + RECEIVE_COUNT_MARGIN
