"""``spec.rateLimit`` across replicas (runtime/asya_runtime/sidecar/rate_limit.py): three sidecar replicas of one
actor, each with its own handler server, on the embedded broker, sharing one token bucket in the status table
(moto's DynamoDB server). The handler records the wall time of every call; the calls of all replicas together must
keep the bucket's bound, nothing may fail or be lost, and a quiet bucket must let its burst through at once."""

from __future__ import annotations

import itertools
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from support.mesh import AWS_ENV, SUPPORT_DIR, MeshHarness, wait_for
from support.status_table import StatusTable
from support.tcp_proxy import TcpProxy

from asya_pulumi.testing import ActorProcess, HandlerSettings, socket_dir
from asya_runtime.envelope import new_envelope
from asya_runtime.sidecar.rate_limit import bucket_key

#: How far the handler's clock reading may lag its token on this shared 2-core machine (socket, scheduling): calls
#: can bunch by this much. Generous; without the limiter the same burst runs ~10x over the bound (last test).
JITTER_S = 0.6


def start_replicas(mesh: MeshHarness, actor: str, count: int, **overrides: Any) -> list[ActorProcess]:
    """``count`` replicas of ``actor``: each a sidecar and a handler server (``identity``) of its own, as pods."""
    replicas, sockets = [], socket_dir()
    for index in range(count):
        settings = HandlerSettings(
            handler="sidecar_handlers.identity", search_path=(str(SUPPORT_DIR),),
            env={"ASYA_TEST_CALLS": str(mesh.calls_path)},
        )
        config = mesh.config(actor, socket_path=str(sockets / f"{actor}-{index}.sock"), **overrides)
        process = ActorProcess(config=config, handler=settings, workdir=mesh.workdir / f"{actor}-{index}",
                               aws_env=AWS_ENV)
        mesh.actors.append(process)
        replicas.append(process.start())
    return replicas


def wait_polling(replicas: list[ActorProcess]) -> None:
    """Every replica has made its first receive: the burst below is spread over all of them."""
    def polling() -> bool:
        try:
            return all(sqs_requests(r.read_metrics()).get("receive_message", 0) >= 1 for r in replicas)
        except OSError:  # its metrics server not listening yet
            return False

    wait_for(polling, timeout_s=60, what="every replica polling")


def requests_of(text: str, name: str) -> dict[str, float]:
    return {s.labels["api"]: s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name}


def sqs_requests(text: str) -> dict[str, float]:
    return requests_of(text, "asya_sqs_requests_total")


def over_the_bound(times: list[float], *, per_second: float, burst: int) -> list[tuple[int, float]]:
    """Windows of calls that broke the token bucket's bound (``burst + per_second * (length + JITTER_S)``), as
    ``(calls, seconds)``."""
    times = sorted(times)
    broken = []
    for i, j in itertools.combinations(range(len(times)), 2):
        calls, seconds = j - i + 1, times[j] - times[i]
        if calls > burst + per_second * (seconds + JITTER_S):
            broken.append((calls, seconds))
    return broken


def send_burst(mesh: MeshHarness, actor: str, count: int) -> list[str]:
    envelopes = [new_envelope(route=[actor], payload={"key": f"k{i}"}) for i in range(count)]
    mesh.send_many(actor, envelopes)
    return [e.id for e in envelopes]


def test_three_replicas_share_one_rate_and_lose_nothing(mesh: MeshHarness, status_table: StatusTable) -> None:
    per_second, burst, count = 4.0, 6, 40
    mesh.standard("api")
    replicas = start_replicas(
        mesh, "api", 3, concurrency=5, status_table=status_table.name, dynamodb_endpoint=status_table.endpoint,
        rate_limit_per_second=per_second, rate_limit_burst=burst,
    )
    wait_polling(replicas)

    ids = send_burst(mesh, "api", count)
    done = mesh.take("success-sink", count, timeout_s=120)

    assert sorted(d["id"] for d in done) == sorted(ids)  # every envelope through, once
    mesh.assert_quiet("error-sink", "api", wait_s=1)
    calls = mesh.calls()
    assert len(calls) == count  # no call failed (a retry would be a second call) or was repeated
    assert len({c["pid"] for c in calls}) == 3  # all three replicas called their handler
    times = sorted(c["t"] for c in calls)
    assert not over_the_bound(times, per_second=per_second, burst=burst)
    spent = times[-1] - times[0]
    assert spent >= (count - burst) / per_second - JITTER_S  # the rate held overall: ~8.5 s for 40 at 4/s
    # the burst: a quiet bucket let its six through at once (at 4/s without it, six take 1.25 s)
    assert times[burst - 1] - times[0] < 0.6
    assert status_table.item(bucket_key("api")) is not None
    takes = sum(requests_of(r.read_metrics(), "asya_dynamodb_requests_total").get("update_item", 0) for r in replicas)
    print(f"\nrate limit: {count} calls in {spent:.2f} s over 3 replicas, {takes:.0f} UpdateItem "
          f"({takes / count:.2f} per envelope)")
    assert takes <= 3 * count  # failed conditions included; typically about one per envelope at this low rate


def test_calls_wait_while_the_store_is_unreachable_and_go_on_after(
    mesh: MeshHarness, status_table: StatusTable
) -> None:
    """The store cut off: no call is made over the limit or failed; the messages wait (held, their visibility
    extended) and every one is called once the store answers again."""
    count = 6
    mesh.standard("api")
    host, port = status_table.endpoint.removeprefix("http://").split(":")
    with TcpProxy(upstream_host=host, upstream_port=int(port)) as proxy:
        proxy.cut()
        [replica] = start_replicas(
            mesh, "api", 1, concurrency=10, status_table=status_table.name, dynamodb_endpoint=proxy.endpoint,
            rate_limit_per_second=50.0, rate_limit_burst=10,
        )
        wait_polling([replica])
        ids = send_burst(mesh, "api", count)
        wait_for(lambda: mesh.depth("api") == count and _failures(replica) >= 2, timeout_s=30,
                 what="the messages received and the store tried")
        assert mesh.calls() == []  # nothing called while the bucket could not be asked
        proxy.restore()
        done = mesh.take("success-sink", count, timeout_s=60)

    assert sorted(d["id"] for d in done) == sorted(ids)
    assert len(mesh.calls()) == count
    mesh.assert_quiet("error-sink", wait_s=1)


def _failures(replica: ActorProcess) -> float:
    for family in text_string_to_metric_families(replica.read_metrics()):
        for sample in family.samples:
            if sample.name == "asya_rate_limit_store_failures_total":
                return sample.value
    return 0.0


def test_without_the_limit_the_same_burst_breaks_the_bound(mesh: MeshHarness) -> None:
    """The check above can fail: one replica with no rate limit calls the burst far faster than 4/s."""
    mesh.standard("api")
    [replica] = start_replicas(mesh, "api", 1, concurrency=5)
    wait_polling([replica])
    send_burst(mesh, "api", 40)
    mesh.take("success-sink", 40, timeout_s=60)

    assert over_the_bound([c["t"] for c in mesh.calls()], per_second=4.0, burst=6)
