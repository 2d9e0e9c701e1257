"""The fault-injection soak: a 3-actor pipeline under SIGKILLs, broker outages and transient handler errors.

:func:`run_soak` sets up a fresh namespace on the shared broker (through :class:`support.mesh.MeshHarness`), puts a
:class:`support.tcp_proxy.TcpProxy` between every sidecar (actors and sinks) and the broker, starts the actors with
:mod:`soak_handlers` (10 % deterministic transient failures), sends the envelopes, and meanwhile lets
:class:`Chaos` SIGKILL handler servers and sidecars at random (and restart them, as Kubernetes would) and cut the
broker connection. Then it waits until the mesh is quiet and reads the outcome: every envelope's final records in
the result bucket, and every handler call from the side-effect log.
"""

from __future__ import annotations

import dataclasses
import json
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.mesh import AWS_ENV, MeshHarness, wait_for
from support.tcp_proxy import TcpProxy

from asya_pulumi.testing import ActorProcess, HandlerSettings
from asya_runtime.envelope import new_envelope
from asya_runtime.naming import ERROR_SINK, SINKS, SUCCESS_SINK, dlq_name
from asya_runtime.resiliency import Resiliency
from asya_runtime.sidecar.sinks import record_key

SOAK_DIR = Path(__file__).resolve().parent
ACTORS = ["s1", "s2", "s3"]
#: The faults :class:`Chaos` draws from; the soak proves nothing about a kind that never landed.
FAULT_KINDS = ("kill_handler", "kill_sidecar", "cut_broker")
#: Calls one handler server runs at once: a SIGKILL can cut that many side-effect lines short at most.
HANDLER_CONCURRENCY = 4
#: Short enough that messages of a killed sidecar come back within seconds; the sidecar heartbeats every third.
VISIBILITY_S = 10
RESILIENCY = Resiliency.model_validate(
    {
        "actorTimeout": "5s",
        "policies": {"default": {"maxAttempts": 5, "initialInterval": "200ms", "maxInterval": "2s"}},
    }
)


@dataclass(frozen=True)
class SoakSettings:
    envelopes: int
    fault_window_s: float  # faults are injected from the first send until this many seconds later
    fault_every_s: tuple[float, float]  # pause between two faults, drawn uniformly
    outage_s: tuple[float, float]  # how long one broker cut lasts
    timeout_s: float  # give up waiting for the mesh to finish after this
    seed: int = 5


@dataclass
class SoakOutcome:
    sent: list[str]
    succeeded: set[str]
    failed: dict[str, dict[str, Any]]  # id -> the error-sink record's status.error
    calls: list[dict[str, Any]]
    faults: Counter[str]
    dlq_depth: int
    seconds: float
    rewritten_records: int = 0  # sink writes beyond one per final-record key (counted from the sinks' logs)
    skipped_faults: Counter[str] = dataclasses.field(default_factory=Counter)  # drawn, but nothing to hit
    unparsed_calls: int = 0  # side-effect lines that did not parse (a handler killed mid-write)

    @property
    def missing(self) -> list[str]:
        return [i for i in self.sent if i not in self.succeeded and i not in self.failed]

    @property
    def both(self) -> list[str]:
        """Ids with a success *and* an error record: two final records where there must be one."""
        return sorted(self.succeeded & set(self.failed))

    @property
    def failed_without_reason(self) -> list[str]:
        return sorted(i for i, error in self.failed.items() if not error.get("reason"))

    @property
    def transient_failures(self) -> int:
        return sum(1 for c in self.calls if not c["ok"])

    @property
    def duplicate_side_effects(self) -> int:
        """Successful handler calls beyond one per (envelope, actor): what at-least-once delivery cost."""
        per_hop = Counter((c["id"], c["actor"]) for c in self.calls if c["ok"])
        return sum(n - 1 for n in per_hop.values() if n > 1)

    def hops_missing_a_call(self) -> list[tuple[str, str]]:
        """(id, actor) pairs of succeeded envelopes whose handler never succeeded there: a skipped hop."""
        done = {(c["id"], c["actor"]) for c in self.calls if c["ok"]}
        return [(i, a) for i in sorted(self.succeeded) for a in ACTORS if (i, a) not in done]

    def summary(self) -> str:
        reasons = Counter(str(e.get("reason")) for e in self.failed.values())
        return (
            f"soak: {len(self.sent)} envelopes in {self.seconds:.0f} s; succeeded {len(self.succeeded)}, "
            f"error-ended {len(self.failed)} {dict(reasons)}, missing {len(self.missing)}, "
            f"two final records {len(self.both)}; faults landed {dict(self.faults)}, "
            f"skipped {dict(self.skipped_faults)}; "
            f"handler calls {len(self.calls)} ({self.transient_failures} injected transient failures, "
            f"{self.unparsed_calls} lines unparsed), "
            f"duplicate side effects {self.duplicate_side_effects}; final records rewritten {self.rewritten_records}; "
            f"messages left in DLQs {self.dlq_depth}"
        )


class Chaos(threading.Thread):
    """Injects one random fault every few seconds until stopped or its window is over.

    A fault is counted in :attr:`faults` only once it landed: the handler server it SIGKILLed exited with
    -SIGKILL (and the supervisor restarted it), the sidecar it SIGKILLed exited with -SIGKILL, the cut dropped or
    refused a connection. A fault that found nothing to hit (a handler server between restarts, a cut that met no
    connection) is counted in :attr:`skipped`. A sidecar found dead before its kill exited on its own: that is the
    failure the soak looks for, so it is raised (and reported by the test), never restarted and counted as a kill.
    """

    def __init__(
        self, *, actors: list[ActorProcess], proxy: TcpProxy, settings: SoakSettings, rng: random.Random
    ) -> None:
        super().__init__(name="soak-chaos", daemon=True)
        self.actors = actors
        self.proxy = proxy
        self.settings = settings
        self.rng = rng
        self.faults: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=60)
        assert not self.is_alive(), "the chaos thread did not stop within 60 s"

    def run(self) -> None:
        try:
            ends = time.monotonic() + self.settings.fault_window_s
            while not self._stop_event.wait(self.rng.uniform(*self.settings.fault_every_s)):
                if time.monotonic() > ends:
                    return
                self._inject(self.rng.choice(["kill_handler", "kill_sidecar", "cut_broker"]))
        except BaseException as exc:  # reported by the test: a fault that could not be injected is a test bug
            self.error = exc

    def _inject(self, fault: str) -> None:
        actor = self.rng.choice(self.actors)
        if fault == "kill_handler":
            landed = self._kill_handler(actor)
        elif fault == "kill_sidecar":
            landed = self._kill_sidecar(actor)
        else:
            landed = self._cut_broker()
        (self.faults if landed else self.skipped)[fault] += 1

    def _kill_handler(self, actor: ActorProcess) -> bool:
        """SIGKILL the handler server (the supervisor restarts it, like a container restart); whether it died."""
        if actor.supervisor.pid("handler") is None:
            return False  # between a crash and its restart: nothing to kill now
        before = len(actor.handler_exit_codes)
        actor.kill_handler(signal.SIGKILL)
        wait_for(lambda: len(actor.handler_exit_codes) > before, timeout_s=10, what="the killed handler's exit")
        exits = actor.handler_exit_codes[before:]
        assert -signal.SIGKILL in exits, f"the handler of {actor.config.actor} exited with {exits}, not -SIGKILL"
        return True

    def _kill_sidecar(self, actor: ActorProcess) -> bool:
        """SIGKILL the sidecar and start the next one; it must have been running and died of the signal."""
        code = actor.sidecar_returncode()
        assert code is None, f"the sidecar of {actor.config.actor} exited on its own with {code}"
        actor.signal_sidecar(signal.SIGKILL)
        code = actor.wait_sidecar(timeout_s=10)
        assert code == -signal.SIGKILL, f"the SIGKILLed sidecar of {actor.config.actor} exited with {code}"
        time.sleep(self.rng.uniform(0.0, 0.5))
        actor.start_sidecar()
        return True

    def _cut_broker(self) -> bool:
        """Cut every sidecar off the broker for a while; whether the cut met a connection (dropped or refused)."""
        before = self.proxy.dropped + self.proxy.refused
        self.proxy.cut()
        try:
            self._stop_event.wait(self.rng.uniform(*self.settings.outage_s))
        finally:
            self.proxy.restore()
        return self.proxy.dropped + self.proxy.refused > before


def _final_record_prefix(mode: str) -> str:
    """The key prefix the sink running in ``mode`` writes to (asked of the sink's own code, not copied)."""
    key, _ = record_key(mode=mode, body=json.dumps({"id": "probe"}), message_id="probe")
    return key.split("/", 1)[0]


def start_soak_mesh(mesh: MeshHarness, *, proxy: TcpProxy, calls_dir: Path) -> list[ActorProcess]:
    """Queues (short visibility), bucket, sinks and the three flaky actors, all talking through ``proxy``."""
    through_proxy = {"sqs_endpoint": proxy.endpoint, "s3_endpoint": proxy.endpoint}
    for actor in [*ACTORS, *SINKS]:
        mesh.create_queue(actor, resiliency=RESILIENCY, visibility_s=VISIBILITY_S)
    mesh.create_bucket()
    for sink in SINKS:
        mesh.start_actor(sink, handler=None, mode=sink, result_bucket=mesh.bucket, **through_proxy)
    actors = []
    for actor in ACTORS:
        process = ActorProcess(
            config=mesh.config(actor, resiliency=RESILIENCY, concurrency=4, **through_proxy),
            handler=HandlerSettings(
                handler="soak_handlers.flaky_identity",
                search_path=(str(SOAK_DIR),),
                concurrency=HANDLER_CONCURRENCY,
                env={"SOAK_CALLS_DIR": str(calls_dir)},
            ),
            workdir=mesh.workdir / actor,
            aws_env=AWS_ENV,
        )
        mesh.actors.append(process)  # the harness stops it at the end of the test
        actors.append(process.start())
    return actors


def run_soak(mesh: MeshHarness, settings: SoakSettings) -> SoakOutcome:
    calls_dir = mesh.workdir / "calls"
    calls_dir.mkdir()
    rng = random.Random(settings.seed)
    with TcpProxy(upstream_host="127.0.0.1", upstream_port=mesh.broker.port) as proxy:
        actors = start_soak_mesh(mesh, proxy=proxy, calls_dir=calls_dir)
        envelopes = [new_envelope(route=ACTORS, payload={"n": n}) for n in range(settings.envelopes)]
        started = time.monotonic()
        chaos = Chaos(actors=actors, proxy=proxy, settings=settings, rng=rng)
        chaos.start()
        try:
            mesh.send_many(ACTORS[0], envelopes)
            succeeded, failed = _wait_until_quiet(mesh, [e.id for e in envelopes], settings=settings, chaos=chaos)
        finally:
            chaos.stop()
        if chaos.error is not None:
            raise AssertionError(f"the soak could not inject a fault: {chaos.error!r}") from chaos.error
        seconds = time.monotonic() - started
    dlq_depth = sum(_dlq_depth(mesh, actor) for actor in [*ACTORS, *SINKS])
    calls, unparsed = _read_calls(calls_dir)
    return SoakOutcome(
        sent=[e.id for e in envelopes],
        succeeded=succeeded,
        failed=failed,
        calls=calls,
        faults=chaos.faults,
        skipped_faults=chaos.skipped,
        unparsed_calls=unparsed,
        dlq_depth=dlq_depth,
        seconds=seconds,
        rewritten_records=sum(n - 1 for n in mesh.writes().values()),  # same key: overwritten
    )


def _wait_until_quiet(
    mesh: MeshHarness, ids: list[str], *, settings: SoakSettings, chaos: Chaos
) -> tuple[set[str], dict[str, dict[str, Any]]]:
    """Poll the bucket and the queues until every id has a record, or the mesh is empty twice in a row."""
    success_prefix, error_prefix = _final_record_prefix(SUCCESS_SINK), _final_record_prefix(ERROR_SINK)
    wanted = set(ids)
    deadline = time.monotonic() + settings.timeout_s
    quiet = 0
    while True:
        succeeded = _listed_ids(mesh, success_prefix) & wanted
        failed_ids = _listed_ids(mesh, error_prefix) & wanted
        if chaos.error is not None:
            break  # the fault injection itself broke; run_soak reports it
        chaos_over = not chaos.is_alive()
        if chaos_over and succeeded | failed_ids >= wanted:
            break
        if chaos_over:
            _check_sidecars_alive(mesh)
        empty = chaos_over and all(mesh.depth(a) == 0 for a in [*ACTORS, *SINKS])
        quiet = quiet + 1 if empty else 0
        if quiet >= 3 or time.monotonic() > deadline:
            break  # nothing can arrive any more (or we gave up): what is missing now is lost
        time.sleep(1.0)
    failed = {i: _error_of(mesh, f"{error_prefix}/{i}.json") for i in failed_ids}
    return succeeded, failed


def _check_sidecars_alive(mesh: MeshHarness) -> None:
    """Once chaos is over every sidecar must be running; one that exited by itself fails the soak at once."""
    for process in mesh.actors:
        code = process.sidecar_returncode()
        if code is not None:
            tail = process.logs("sidecar").strip().splitlines()[-5:]
            raise AssertionError(
                f"the sidecar of {process.config.actor!r} exited with {code} on its own:\n" + "\n".join(tail)
            )


def _listed_ids(mesh: MeshHarness, prefix: str) -> set[str]:
    ids: set[str] = set()
    for page in mesh.s3.get_paginator("list_objects_v2").paginate(Bucket=mesh.bucket, Prefix=f"{prefix}/"):
        ids.update(item["Key"][len(prefix) + 1 : -len(".json")] for item in page.get("Contents", []))
    return ids


def _error_of(mesh: MeshHarness, key: str) -> dict[str, Any]:
    record = json.loads(mesh.s3.get_object(Bucket=mesh.bucket, Key=key)["Body"].read())
    return dict((record.get("status") or {}).get("error") or {})


def _dlq_depth(mesh: MeshHarness, actor: str) -> int:
    url = mesh.sqs.get_queue_url(QueueName=dlq_name(namespace=mesh.namespace, actor=actor))["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = mesh.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(n, 0)) for n in names)


def _read_calls(calls_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """Every handler call of the side-effect logs, and how many lines did not parse (counted, not hidden: only a
    handler killed mid-write leaves one, so the verdict bounds them by the kills)."""
    calls: list[dict[str, Any]] = []
    unparsed = 0
    for path in sorted(calls_dir.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                calls.append(json.loads(line))
            except ValueError:
                unparsed += 1  # the last line of a handler killed mid-write: the call did not complete
    return calls, unparsed
