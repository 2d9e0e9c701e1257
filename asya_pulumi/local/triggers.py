"""A mesh's triggers under ``asya dev``: schedules fired by a thread here, S3 uploads found by listing the prefix.

Neither AWS service runs locally, so the dev session plays them, sending what they would send, to the queue they
would send it to:

* **schedules**: each schedule's next fire time is computed from its expression and time zone
  (:func:`~asya_pulumi.spec.schedule_expression.next_fire`; a rate counts from the session's start, as from a
  schedule's creation); when it comes, the schedule's input (:func:`~asya_pulumi.objects.triggers.schedule_input`)
  is sent to the route's first queue with EventBridge's context attributes filled in. ``asya dev --fire NAME`` sends
  the same envelope at once, as an input of the run (:func:`fired_envelope`), for a schedule that is hours away.
* **S3**: the embedded broker (fauxqs) stores objects but keeps no notification configuration and sends no events
  (its README: bucket notifications are not supported), so the session lists each S3 trigger's bucket and prefix every
  :data:`POLL_S` seconds. An object that was not there (or has a new ETag: an overwrite, which S3 also announces)
  is announced as S3 would: an ``ObjectCreated:Put`` message in S3's event structure
  (:func:`asya_runtime.triggers.s3_object_created_event`) on the first actor's queue, which its sidecar turns into
  an envelope exactly as on AWS. Objects already there when the session starts start nothing (S3 announces only
  new objects); S3's ``s3:TestEvent`` is sent once at start, as AWS sends it when the configuration is put, and the
  sidecar deletes it.

Listing costs one request per trigger per poll; an upload is announced within :data:`POLL_S` seconds of its
completion (S3 itself typically takes under a second).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from asya_pulumi.objects.triggers import (
    SCHEDULER_CONTEXT,
    S3Notification,
    s3_notifications,
    schedule_input,
    schedule_name,
)
from asya_pulumi.spec.mesh import MeshSpec
from asya_pulumi.spec.schedule_expression import next_fire, parse_schedule_expression
from asya_pulumi.spec.triggers import MeshTriggerSpec
from asya_runtime.envelope import Envelope
from asya_runtime.triggers import s3_object_created_event, s3_test_event

__all__ = ["POLL_S", "LocalTriggers", "fired_envelope", "schedule_triggers"]

#: How often each S3 trigger's prefix is listed for new objects.
POLL_S = 1.0
#: Account id the local schedule ARNs carry (the context attribute ``<aws.scheduler.schedule-arn>``).
LOCAL_ACCOUNT = "000000000000"


def schedule_triggers(mesh: MeshSpec) -> dict[str, MeshTriggerSpec]:
    return {t.name: t for t in mesh.triggers if t.schedule is not None}


def scheduled_body(*, mesh: MeshSpec, trigger: MeshTriggerSpec, at: datetime, region: str) -> str:
    """The schedule's input as EventBridge sends it for the fire time ``at``: its context attributes filled in."""
    values = {
        "scheduled_time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "execution_id": uuid.uuid4().hex[:16],
        "attempt_number": "1",
        "schedule_arn": f"arn:aws:scheduler:{region}:{LOCAL_ACCOUNT}:schedule/default/"
                        f"{schedule_name(namespace=mesh.namespace, trigger=trigger.name)}",
    }
    body = schedule_input(mesh=mesh, trigger=trigger)
    for key, placeholder in SCHEDULER_CONTEXT.items():
        body = body.replace(placeholder, values[key])
    return body


def fired_envelope(*, mesh: MeshSpec, name: str, region: str, at: datetime | None = None) -> Envelope:
    """``asya dev --fire NAME``: the envelope schedule trigger ``name`` sends, fired now. ValueError naming the
    schedule triggers when ``name`` is not one."""
    schedules = schedule_triggers(mesh)
    if name not in schedules:
        known = ", ".join(sorted(schedules)) or "none"
        raise ValueError(f"--fire {name}: not a schedule trigger of mesh {mesh.namespace!r}; its schedule triggers: "
                         f"{known}")
    return Envelope.parse(scheduled_body(mesh=mesh, trigger=schedules[name], at=at or datetime.now(UTC),
                                         region=region))


@dataclass
class _Watched:
    note: S3Notification
    bucket: str
    #: key → (ETag, size) of what is announced (or was there at start)
    seen: dict[str, tuple[str, int]] = field(default_factory=dict)


class LocalTriggers:
    """The session's trigger thread. ``urls``: actor → queue URL; ``notice``: where a fired trigger is reported."""

    def __init__(
        self, *, mesh: MeshSpec, sqs: Any, s3: Any, urls: Mapping[str, str], mesh_bucket: str, region: str,
        notice: Callable[[str], None] = print, poll_s: float = POLL_S,
    ) -> None:
        self.mesh, self.sqs, self.s3, self.urls, self.region = mesh, sqs, s3, urls, region
        self.notice, self.poll_s = notice, poll_s
        self.started = datetime.now(UTC)
        self.watched = [_Watched(note=n, bucket=n.bucket or mesh_bucket) for n in s3_notifications(mesh)]
        self.schedules = {
            name: (trigger, parse_schedule_expression(trigger.schedule.expression))
            for name, trigger in schedule_triggers(mesh).items() if trigger.schedule is not None
        }
        self.next_at = {name: self._next(name, after=self.started) for name in self.schedules}
        self.fired: list[str] = []  # envelope ids sent by schedules, in order
        self.announced: list[str] = []  # keys announced by S3 triggers, in order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _next(self, name: str, *, after: datetime) -> datetime | None:
        trigger, expression = self.schedules[name]
        assert trigger.schedule is not None
        return next_fire(expression, after=after, timezone=trigger.schedule.timezone, started=self.started)

    def start(self) -> None:
        """Make named buckets, remember what is there, send S3's test events; then poll and fire on a thread."""
        from asya_pulumi.local.queues import create_bucket

        for watched in self.watched:
            if watched.note.bucket is not None:  # a named bucket "exists" on AWS; here it is made
                create_bucket(s3=self.s3, bucket=watched.bucket, region=self.region)
            watched.seen = self._listing(watched)
        for bucket, actor in sorted({(w.bucket, w.note.first_actor) for w in self.watched}):
            self._send(actor, s3_test_event(bucket=bucket))  # one per destination, as S3 tests each
        for name, at in self.next_at.items():
            self.notice(f"trigger {name}: {self.schedules[name][0].schedule.expression}"  # type: ignore[union-attr]
                        f", next at {at.isoformat() if at else 'never'}")
        for watched in self.watched:
            self.notice(f"trigger {watched.note.trigger}: uploads to s3://{watched.bucket}/{watched.note.prefix}"
                        f"*{watched.note.suffix} start route {self._route_of(watched.note.trigger)}")
        self._thread = threading.Thread(target=self._run, name="asya-dev-triggers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _route_of(self, name: str) -> str:
        return next(t.route for t in self.mesh.triggers if t.name == name)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = datetime.now(UTC)
            for name, at in list(self.next_at.items()):
                if at is not None and at <= now:
                    try:
                        self._fire(name, at=at)
                    except Exception as exc:  # the broker restarting: this fire time is tried again next turn
                        self.notice(f"trigger {name}: sending failed ({exc}); retrying")
                        continue
                    self.next_at[name] = self._next(name, after=at)
            for watched in self.watched:
                self._poll(watched)
            upcoming = [at for at in self.next_at.values() if at is not None]
            wait = self.poll_s if self.watched else 60.0
            if upcoming:
                wait = min(wait, max(0.0, (min(upcoming) - datetime.now(UTC)).total_seconds()))
            self._stop.wait(wait)

    def _fire(self, name: str, *, at: datetime) -> None:
        trigger = self.schedules[name][0]
        body = scheduled_body(mesh=self.mesh, trigger=trigger, at=at, region=self.region)
        self._send(self.mesh.routes[trigger.route][0], body)
        envelope_id = Envelope.parse(body).id
        self.fired.append(envelope_id)
        self.notice(f"trigger {name} fired: envelope {envelope_id} on route {trigger.route}")

    def _listing(self, watched: _Watched) -> dict[str, tuple[str, int]]:
        """Key → (ETag, size) of every object under the trigger's prefix whose key ends in its suffix."""
        found: dict[str, tuple[str, int]] = {}
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=watched.bucket, Prefix=watched.note.prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith(watched.note.suffix):
                    found[item["Key"]] = (item["ETag"], int(item["Size"]))
        return found

    def _poll(self, watched: _Watched) -> None:
        try:
            listing = self._listing(watched)
        except Exception as exc:  # the broker restarting: the next poll sees what this one missed
            self.notice(f"trigger {watched.note.trigger}: listing s3://{watched.bucket} failed ({exc}); retrying")
            return
        for key, (etag, size) in listing.items():
            if watched.seen.get(key, ("", 0))[0] == etag:
                continue
            body = s3_object_created_event(
                configuration_id=watched.note.id, bucket=watched.bucket, key=key, size=size, etag=etag.strip('"'),
                sequencer=f"{time.time_ns():020X}", region=self.region,
            )
            try:
                self._send(watched.note.first_actor, body)
            except Exception as exc:  # not marked seen: the next poll announces it again
                self.notice(f"trigger {watched.note.trigger}: announcing {key} failed ({exc}); retrying")
                return
            watched.seen[key] = (etag, size)
            self.announced.append(key)
            self.notice(f"trigger {watched.note.trigger}: s3://{watched.bucket}/{key} created; announced to "
                        f"{watched.note.first_actor}")

    def _send(self, actor: str, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.urls[actor], MessageBody=body)
