"""``asya dev`` never abandons work: actor processes SIGKILLed every second during a burst, and every envelope still
completes exactly once; a handler that cannot import ends the run before anything starts, naming its error.

The chaos test runs the local mesh the way ``asya dev`` does — :func:`process_specs` under the :class:`Supervisor`,
waited on by ``asya dev``'s own :func:`watch_run` (which ends the run on a crash loop) — with one change: the queues'
visibility timeout is 6 s instead of the derived 31+ s, so the messages a killed sidecar held come back within the
test's time. (The sidecars read the visibility back from the queue and heartbeat every third of it.)
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from asya_pulumi.cli.aws import Endpoints, s3_client, sqs_client
from asya_pulumi.cli.dev.run import watch_run
from asya_pulumi.local.broker import LocalBroker
from asya_pulumi.local.plan import MeshPlan, process_specs
from asya_pulumi.local.processes import Supervisor
from asya_pulumi.local.queues import create_bucket, create_queues, mesh_queue_settings
from asya_pulumi.local.results import ResultCollector, sink_writes
from asya_pulumi.ops.mesh_queues import MeshQueues
from asya_pulumi.records import SUCCESS_PREFIX, result_bucket_name, with_trace
from asya_pulumi.spec.actor import AsyncActorSpec
from asya_pulumi.spec.mesh import MeshSpec
from asya_runtime.envelope import new_envelope
from asya_runtime.naming import SINKS
from e2e.conftest import ASYA, REPO

ACTORS = ["a", "b", "c"]
ENVELOPES = 800
CONCURRENCY = 10
VISIBILITY_S = 6
#: Kills happen from the first send until the burst is over, at most this long.
CHAOS_WINDOW_S = 20.0
#: Pause between two kills, drawn uniformly: at least one kill per second.
KILL_EVERY_S = (0.3, 0.9)
STEPS = '''
def step_a(payload):
    return {**payload, "a": True}


def step_b(payload):
    return {**payload, "b": True}


def step_c(payload):
    return {**payload, "c": True}
'''
RESILIENCY = {
    "actorTimeout": "10s",
    # Redeliveries after a kill count as attempts: room for several kills of the same envelope.
    "policies": {"default": {"maxAttempts": 10, "initialInterval": "100ms", "maxInterval": "1s"}},
}


class Chaos(threading.Thread):
    """SIGKILLs one random live actor process (handler server or sidecar, sinks included) per KILL_EVERY_S.

    A fault injector that dies must fail the test, not leave it to pass untested: :meth:`stop` raises what killed
    the thread (a CI run once lost it to ``IndexError: Cannot choose from an empty sequence`` and passed). A tick
    that finds every process down (all of them restarting) kills nothing and is counted in ``idle_ticks``.
    """

    def __init__(self, *, supervisor: Supervisor, seed: int) -> None:
        super().__init__(name="chaos", daemon=True)
        self.supervisor = supervisor
        self.rng = random.Random(seed)
        self.kills: list[str] = []
        self.idle_ticks = 0
        self.active_s = 0.0
        self.error: BaseException | None = None
        self._done = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        try:
            while not self._done.wait(self.rng.uniform(*KILL_EVERY_S)):
                if time.monotonic() - started > CHAOS_WINDOW_S:
                    break
                alive = [n for n in self.supervisor.names() if self.supervisor.pid(n) is not None]
                if not alive:
                    self.idle_ticks += 1
                    continue
                victim = self.rng.choice(alive)
                self.supervisor.signal_process(victim, signal.SIGKILL)
                self.kills.append(victim)
        except BaseException as exc:
            self.error = exc
        finally:
            self.active_s = time.monotonic() - started

    def stop(self) -> None:
        """End the kills; fail if the thread does not end or died on its own."""
        self._done.set()
        self.join(timeout=30)
        assert not self.is_alive(), "the chaos thread did not stop"
        if self.error is not None:
            raise AssertionError(f"the fault injector died after {len(self.kills)} kills: {self.error!r}") from (
                self.error
            )


def _mesh(namespace: str) -> MeshSpec:
    actors = [
        AsyncActorSpec.model_validate(
            {"name": a, "image": "local", "handler": f"steps.step_{a}", "concurrency": CONCURRENCY,
             "resiliency": RESILIENCY}
        )
        for a in ACTORS
    ]
    return MeshSpec(namespace=namespace, actors=actors, routes={"burst": ACTORS})


def test_killing_an_actor_process_every_second_loses_nothing_and_ends_each_envelope_once(
    broker: LocalBroker, tmp_path: Path
) -> None:
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    (pipeline / "steps.py").write_text(STEPS)
    mesh = _mesh(f"chaos-{uuid.uuid4().hex[:8]}")
    endpoints = Endpoints(region="us-east-1", sqs_endpoint=broker.endpoint, s3_endpoint=broker.endpoint)
    sqs, s3 = sqs_client(endpoints), s3_client(endpoints)
    settings = mesh_queue_settings(mesh, visibility_timeout=VISIBILITY_S)
    urls = create_queues(sqs=sqs, settings=settings)
    bucket = result_bucket_name(namespace=mesh.namespace)
    create_bucket(s3=s3, bucket=bucket, region="us-east-1")
    collector = ResultCollector(s3=s3, bucket=bucket)
    replicas = dict.fromkeys([*ACTORS, *SINKS], 1)
    plan = MeshPlan(
        mesh=mesh, pipeline_dir=pipeline, region="us-east-1", sqs_endpoint=broker.endpoint,
        s3_endpoint=broker.endpoint, bucket=bucket, replicas=replicas, socket_dir=tmp_path,
    )
    log_dir = tmp_path / "logs"
    inputs = [with_trace(new_envelope(route=ACTORS, payload={"n": n})) for n in range(ENVELOPES)]

    with Supervisor(specs=process_specs(plan), log_dir=log_dir) as supervisor:
        assert supervisor.wait_ready(timeout_s=120) == [], supervisor.crash_loops()
        queues = MeshQueues(sqs=sqs, namespace=mesh.namespace)
        chaos = Chaos(supervisor=supervisor, seed=12)
        sent_at = time.monotonic()
        queues.send(inputs)
        chaos.start()
        try:
            outcome = watch_run(
                queues=queues, collector=collector, supervisor=supervisor, settings=settings, urls=urls,
                inputs=inputs, replicas=replicas, timeout_s=150, sent_at=sent_at,
            )
        finally:
            chaos.stop()
        assert supervisor.wait_ready(timeout_s=60) == []  # every killed process is back
        restarts = sum(supervisor.restarts().values())

    writes = sink_writes(p.read_text(errors="replace") for p in log_dir.glob("sidecars-*.log"))
    sidecar_kills = sum(1 for k in chaos.kills if not k.endswith("-handler"))  # each kills every sidecar
    rewrites = sum(n - 1 for n in writes.values())
    print(
        f"chaos: {ENVELOPES} envelopes × {len(ACTORS)} actors in {outcome.mesh_s:.1f} s; {len(chaos.kills)} kills in "
        f"{chaos.active_s:.1f} s ({sidecar_kills} sidecars), {restarts} restarts; sink rewrites {rewrites}"
    )
    assert outcome.problems == []  # no "keeps exiting": a killed process that worked is no crash loop
    assert not outcome.missing, f"{len(outcome.missing)} envelopes lost"
    # At least one kill a second over the whole window (a tick that found every process restarting excepted).
    assert chaos.active_s >= min(CHAOS_WINDOW_S, outcome.mesh_s) - 3
    assert len(chaos.kills) + chaos.idle_ticks >= chaos.active_s / KILL_EVERY_S[1] - 1
    assert len(chaos.kills) >= chaos.active_s - 1 and len(chaos.kills) >= 5
    assert restarts == len(chaos.kills)  # each kill, one restart
    records = outcome.records
    assert sorted(r.id for r in records) == sorted(e.id for e in inputs)  # each envelope ends exactly once ...
    assert all(r.succeeded and r.envelope["route"]["prev"] == ACTORS for r in records)  # ... successfully
    assert set(writes) == {f"{SUCCESS_PREFIX}/{e.id}.json" for e in inputs}  # no error record was ever written
    # A write twice is a redelivery after a sidecar kill (same key: an overwrite); at most what the killed held:
    # one process hosts every sidecar, so a kill drops what the success sink and the last actor held (2 x 10 each).
    assert rewrites <= sidecar_kills * 2 * (2 * CONCURRENCY)


class _Dying:
    """A supervisor whose processes cannot be signalled: the injector's kill raises."""

    def names(self) -> list[str]:
        return ["a-0-handler"]

    def pid(self, name: str) -> int:
        return 1

    def signal_process(self, name: str, signum: int) -> None:
        raise ProcessLookupError(name)


def test_a_fault_injector_that_dies_fails_the_test() -> None:
    chaos = Chaos(supervisor=_Dying(), seed=1)  # type: ignore[arg-type]
    chaos.start()
    chaos.join(timeout=10)
    with pytest.raises(AssertionError, match=r"fault injector died after 0 kills: ProcessLookupError"):
        chaos.stop()


def test_a_handler_with_an_import_error_ends_the_run_before_anything_starts_naming_the_error(
    broker: LocalBroker, tmp_path: Path
) -> None:
    """The pre-flight imports the handler first: the run never starts a process (a handler that passes it yet
    cannot start still ends the run through the crash loop: tests/e2e/test_dev_examples.py)."""
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    (pipeline / "mesh.yaml").write_text(
        "apiVersion: asya.sh/v1alpha1\nkind: ActorMesh\nmetadata: {name: broken}\nspec:\n  routes: {go: [a]}\n"
    )
    (pipeline / "a.yaml").write_text(
        "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: a}\n"
        "spec: {image: x, handler: steps.step_a}\n"
    )
    (pipeline / "steps.py").write_text("import numpyy_not_installed\n" + STEPS)
    command = [
        ASYA, "dev", str(pipeline), "--send", "go", "{}", "--timeout", "300",
        "--sqs-endpoint", broker.endpoint, "--namespace", f"broken-{uuid.uuid4().hex[:8]}",
    ]

    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
    elapsed = time.monotonic() - started

    assert done.returncode == 2, done.stdout + done.stderr
    assert "starting" not in done.stdout and "sent" not in done.stdout  # no process, nothing sent
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("asya: error: ") and "a.yaml" in line and "'steps.step_a'" in line
    assert "importing 'steps'" in line and "No module named 'numpyy_not_installed'" in line
    assert elapsed < 10, f"{elapsed:.1f} s"
