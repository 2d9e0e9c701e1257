"""A test's own slice of the shared broker: a unique namespace, its queues and bucket, its actor processes.

Queues are created exactly as the components create them: the actor's queue plus its DLQ, with VisibilityTimeout
and RedrivePolicy.maxReceiveCount derived from the actor's Resiliency by asya_runtime.resiliency, and the sinks'
bucket.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asya_pulumi.local.broker import LOCAL_CREDENTIALS, LocalBroker, free_port
from asya_pulumi.local.queues import create_queue_pair
from asya_pulumi.local.results import sink_writes
from asya_pulumi.objects.queue_settings import queue_settings
from asya_pulumi.testing import ActorProcess, HandlerSettings, socket_dir
from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import Envelope
from asya_runtime.naming import ERROR_SINK, SUCCESS_SINK, dlq_name, queue_name
from asya_runtime.resiliency import Resiliency

SUPPORT_DIR = Path(__file__).resolve().parent
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
    "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
    "AWS_DEFAULT_REGION": LOCAL_CREDENTIALS["region_name"],
}
#: Long-poll wait of test sidecars: short enough that an idle test sidecar is quick to stop.
TEST_WAIT_TIME_S = 2


def persisted_keys(sidecar_log: str) -> Counter[str]:
    """Keys a sink's log says it stored, with how often (see :meth:`MeshHarness.writes`)."""
    return sink_writes([sidecar_log])


def peak_rss_mib(pid: int) -> int:
    """The process's peak resident set (``VmHWM``), in MiB: what an OOM-killer's limit is measured against."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def wait_for(condition: Callable[[], Any], *, timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


class MeshHarness:
    def __init__(self, *, broker: LocalBroker, sqs: Any, s3: Any, workdir: Path) -> None:
        self.broker = broker
        self.sqs = sqs
        self.s3 = s3
        self.workdir = workdir
        self.namespace = "t" + uuid.uuid4().hex[:10]
        self.bucket = f"asya-{self.namespace}-results"
        self.calls_path = workdir / "calls.jsonl"
        self.actors: list[ActorProcess] = []
        self._sockets = socket_dir()

    # -- queues and bucket ----------------------------------------------------------------------------------------

    def create_queue(self, actor: str, *, resiliency: Resiliency | None = None, visibility_s: int | None = None) -> str:
        """``actor``'s queue and DLQ with the settings ``pulumi up`` would give them (``visibility_s`` replaces the
        derived visibility timeout, for tests that need a killed consumer's messages back within seconds).

        One difference: no default long poll on the queue, so a test's own receive without ``WaitTimeSeconds``
        answers at once (the sidecars always pass their own wait)."""
        settings = queue_settings(resiliency or Resiliency(), visibility_timeout=visibility_s)
        return create_queue_pair(
            sqs=self.sqs,
            name=self.queue(actor),
            dlq_name=dlq_name(namespace=self.namespace, actor=actor),
            settings=dataclasses.replace(settings, receive_wait_s=0),
        )

    def queue(self, actor: str) -> str:
        return queue_name(namespace=self.namespace, actor=actor)

    def queue_url(self, actor: str) -> str:
        return str(self.sqs.get_queue_url(QueueName=self.queue(actor))["QueueUrl"])

    def create_bucket(self) -> None:
        self.s3.create_bucket(Bucket=self.bucket)

    def create_sink_queues(self) -> None:
        for sink in (SUCCESS_SINK, ERROR_SINK):
            self.create_queue(sink)

    def depth(self, actor: str) -> int:
        """Messages in ``actor``'s queue: visible + in flight + delayed."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url(actor), AttributeNames=names)["Attributes"]
        return sum(int(attrs.get(n, 0)) for n in names)

    # -- processes --------------------------------------------------------------------------------------------------

    def config(self, actor: str, **overrides: Any) -> SidecarConfig:
        values: dict[str, Any] = {
            "actor": actor,
            "namespace": self.namespace,
            "sqs_endpoint": self.broker.endpoint,
            "s3_endpoint": self.broker.endpoint,
            "socket_path": str(self._sockets / f"{actor}.sock"),
            "wait_time_seconds": TEST_WAIT_TIME_S,
            "metrics_port": free_port(),
            **overrides,
        }
        return SidecarConfig(**values)

    def start_actor(
        self,
        actor: str,
        *,
        handler: str | None,
        node: bool = False,
        handler_env: dict[str, str] | None = None,
        **overrides: Any,
    ) -> ActorProcess:
        """Start ``actor``: ``handler`` names a function of tests/support/sidecar_handlers.py (or, with ``node``,
        of sidecar_handlers.js, served by handler_server.js); None starts a sink."""
        settings = None
        if handler is not None:
            settings = HandlerSettings(
                handler=f"{SUPPORT_DIR}/sidecar_handlers.js:{handler}" if node else f"sidecar_handlers.{handler}",
                language="node" if node else "python",
                search_path=(str(SUPPORT_DIR),),
                env={"ASYA_TEST_CALLS": str(self.calls_path), **(handler_env or {})},
            )
        process = ActorProcess(
            config=self.config(actor, **overrides),
            handler=settings,
            workdir=self.workdir / actor,
            aws_env=AWS_ENV,
        )
        self.actors.append(process)
        return process.start()

    def start_sinks(self, **overrides: Any) -> None:
        for sink in (SUCCESS_SINK, ERROR_SINK):
            self.start_actor(sink, handler=None, mode=sink, result_bucket=self.bucket, **overrides)

    def standard(self, *actors: str, resiliency: Resiliency | None = None, sinks: bool = False) -> None:
        """Queues for ``actors`` and the sinks; with ``sinks``, also the bucket and running sink processes.

        Without sinks, outcomes stay in the sink queues, where :meth:`take` reads them (one process less per sink).
        """
        for actor in actors:
            self.create_queue(actor, resiliency=resiliency)
        self.create_sink_queues()
        if sinks:
            self.create_bucket()
            self.start_sinks()

    def close(self) -> None:
        for process in self.actors:
            process.stop(timeout_s=15)

    # -- traffic and outcomes -----------------------------------------------------------------------------------------

    def send(self, actor: str, envelope: Envelope | str) -> None:
        body = envelope if isinstance(envelope, str) else envelope.to_json()
        self.sqs.send_message(QueueUrl=self.queue_url(actor), MessageBody=body)

    def send_many(self, actor: str, envelopes: list[Envelope]) -> None:
        url = self.queue_url(actor)
        for start in range(0, len(envelopes), 10):
            chunk = envelopes[start : start + 10]
            entries = [{"Id": str(i), "MessageBody": e.to_json()} for i, e in enumerate(chunk)]
            result = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
            assert not result.get("Failed"), result["Failed"]

    def take(self, actor: str, count: int, *, timeout_s: float = 60) -> list[dict[str, Any]]:
        """Receive (and delete) ``count`` envelopes from ``actor``'s queue, e.g. a sink's queue with no sink running."""
        url = self.queue_url(actor)
        taken: list[dict[str, Any]] = []

        def enough() -> bool:
            messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in messages.get("Messages", []):
                taken.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return len(taken) >= count

        wait_for(enough, timeout_s=timeout_s, what=f"{count} message(s) in {self.queue(actor)}", interval_s=0)
        return taken

    def assert_quiet(self, *actors: str, wait_s: float = 2.0) -> None:
        """Nothing more arrives in ``actors``' queues within ``wait_s`` (no duplicates, no stray outputs)."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            for actor in actors:
                messages = self.sqs.receive_message(QueueUrl=self.queue_url(actor), WaitTimeSeconds=0)
                assert not messages.get("Messages"), f"unexpected message in {actor}: {messages['Messages'][0]['Body']}"
            time.sleep(0.2)

    def records(self, status: str) -> dict[str, dict[str, Any]]:
        """Sink records under ``{status}/``, by key stem (the envelope id)."""
        out: dict[str, dict[str, Any]] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{status}/"):
            for item in page.get("Contents", []):
                body = self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                out[item["Key"][len(status) + 1 : -len(".json")]] = json.loads(body)
        return out

    def keys(self, status: str) -> list[str]:
        listing = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{status}/")
        return [item["Key"] for page in listing for item in page.get("Contents", [])]

    def wait_records(self, status: str, count: int, *, timeout_s: float = 60) -> dict[str, dict[str, Any]]:
        """Wait until at least ``count`` records exist under ``{status}/``, and return them."""
        wait_for(
            lambda: len(self.keys(status)) >= count,
            timeout_s=timeout_s,
            what=f"{count} record(s) under {status}/",
            interval_s=0.25,
        )
        return self.records(status)

    def writes(self) -> Counter[str]:
        """How many times a sink of this mesh stored each key: its ``persisted`` events, one per PutObject that
        succeeded (the sink logs it right after S3 answered, line-flushed). Counted from the logs because the
        embedded fauxqs broker has no bucket versioning to count with."""
        return sink_writes(process.logs() for process in self.actors)

    def calls(self) -> list[dict[str, Any]]:
        """Every handler call so far (see sidecar_handlers._record)."""
        if not self.calls_path.exists():
            return []
        return [json.loads(line) for line in self.calls_path.read_text().splitlines() if line.strip()]
