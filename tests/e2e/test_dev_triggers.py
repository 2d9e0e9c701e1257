"""Both trigger kinds in ``asya dev``, as a user runs it: an upload to the embedded S3 starts the S3 trigger's route,
a schedule fires on its own expression (every minute, waited for in real time) and at once with ``--fire``.

S3's ``s3:TestEvent``, which ``asya dev`` sends at start as AWS does, must start no run: the error sink stays empty.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3

from asya_pulumi.local.broker import LocalBroker
from asya_runtime.triggers import TRIGGER_HEADER
from e2e.conftest import ASYA, REPO, read_jsonl, run_asya

HANDLERS = '''
def tag(payload):
    return {**payload, "tagged": True}


def store(payload):
    return {**payload, "stored": True}
'''


def pipeline(directory: Path, *, schedule: str) -> Path:
    directory.mkdir()
    (directory / "handlers.py").write_text(HANDLERS)
    (directory / "mesh.yaml").write_text(
        "apiVersion: asya.sh/v1alpha1\nkind: ActorMesh\nmetadata:\n  name: drops\n"
        "spec:\n  routes:\n    ingest: [tag, store]\n  triggers:\n"
        "    - name: uploads\n      route: ingest\n      s3: {suffix: .jpg}\n"
        "    - name: tick\n      route: ingest\n"
        f"      schedule: {{expression: '{schedule}', payload: {{job: nightly}}}}\n"
    )
    for actor in ("tag", "store"):
        (directory / f"{actor}.yaml").write_text(
            f"apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata:\n  name: {actor}\n"
            f"spec:\n  image: example/drops:1\n  handler: handlers.{actor}\n"
        )
    return directory


def records(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    listing = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [item["Key"] for page in listing for item in page.get("Contents", [])]
    return [json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) for key in keys]


def wait_for_records(s3: Any, bucket: str, *, trigger: str, count: int, timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [r for r in records(s3, bucket, "succeeded/") if r["headers"].get(TRIGGER_HEADER) == trigger]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_fire_sends_the_schedules_envelope_as_an_input(broker: LocalBroker, namespace: str, tmp_path: Path) -> None:
    directory = pipeline(tmp_path / "drops", schedule="cron(0 2 * * ? *)")
    results = tmp_path / "results.jsonl"
    run = run_asya("dev", str(directory), "--fire", "tick", "--sqs-endpoint", broker.endpoint,
                   "--namespace", namespace, "--results", str(results))
    assert run.returncode == 0, run.stdout + run.stderr
    [record] = read_jsonl(results)
    assert record["payload"] == {"job": "nightly", "tagged": True, "stored": True}
    assert record["headers"][TRIGGER_HEADER] == "tick" and record["id"].startswith("tick-")
    assert record["route"]["prev"] == ["tag", "store"]


def test_fire_names_the_schedule_triggers_when_the_name_is_wrong(tmp_path: Path) -> None:
    directory = pipeline(tmp_path / "drops", schedule="rate(1 hour)")
    run = run_asya("dev", str(directory), "--fire", "uploads")
    assert run.returncode == 2
    assert "--fire uploads: not a schedule trigger" in run.stderr + run.stdout and "tick" in run.stderr + run.stdout


def test_an_upload_and_the_schedule_start_their_routes_in_a_running_mesh(
    broker: LocalBroker, namespace: str, tmp_path: Path,
) -> None:
    directory = pipeline(tmp_path / "drops", schedule="cron(* * * * ? *)")  # every minute, on the minute
    s3 = boto3.client("s3", **broker.client_kwargs())
    bucket = f"asya-{namespace}-results"
    process = subprocess.Popen(
        [ASYA, "dev", str(directory), "--keep-running", "--sqs-endpoint", broker.endpoint, "--namespace", namespace,
         "--logs", str(tmp_path / "logs")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 180
        while not any("keeps running" in line for line in lines) and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            lines.append(line)
        assert any("keeps running" in line for line in lines), "".join(lines)
        assert any("trigger uploads: uploads to s3://" in line for line in lines), "".join(lines)

        s3.put_object(Bucket=bucket, Key="triggers/uploads/cat 1.jpg", Body=b"meow" * 100)
        s3.put_object(Bucket=bucket, Key="triggers/uploads/notes.txt", Body=b"not a .jpg: no run")
        [uploaded] = wait_for_records(s3, bucket, trigger="uploads", count=1, timeout_s=60)
        head = s3.head_object(Bucket=bucket, Key="triggers/uploads/cat 1.jpg")
        assert uploaded["payload"]["bucket"] == bucket and uploaded["payload"]["key"] == "triggers/uploads/cat 1.jpg"
        assert uploaded["payload"]["size"] == 400 and uploaded["payload"]["etag"] == head["ETag"].strip('"')
        assert uploaded["payload"]["event"] == "ObjectCreated:Put"
        assert uploaded["payload"]["tagged"] is True and uploaded["payload"]["stored"] is True

        s3.put_object(Bucket=bucket, Key="triggers/uploads/cat 1.jpg", Body=b"purr")  # an overwrite: a new run
        again = wait_for_records(s3, bucket, trigger="uploads", count=2, timeout_s=60)
        assert sorted(r["payload"]["size"] for r in again) == [4, 400]

        [scheduled] = wait_for_records(s3, bucket, trigger="tick", count=1, timeout_s=75)  # the next minute
        assert scheduled["payload"] == {"job": "nightly", "tagged": True, "stored": True}
        fired_at = scheduled["headers"]["x-asya-scheduled-time"]
        assert fired_at.endswith(":00Z") and scheduled["id"] == f"tick-{fired_at}"
        assert records(s3, bucket, "failed/") == []  # the s3:TestEvent sent at start made no record
    finally:
        process.terminate()
        process.wait(timeout=90)
    output = "".join(lines) + (process.stdout.read() if process.stdout else "")
    assert "trigger tick fired: envelope tick-" in output
    assert "trigger uploads: s3://" in output and "notes.txt" not in output
    sidecar_logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("sidecars-*"))
    assert sidecar_logs.count("s3 test event deleted") == 1


def test_the_local_trigger_thread_announces_only_new_matching_objects(
    broker: LocalBroker, namespace: str, sqs: Any, s3: Any,
) -> None:
    """In process, on the session's broker: what was there at start is not announced, a new or overwritten object
    is (once), a key of another suffix never; a named bucket is made; each destination gets one s3:TestEvent."""
    from asya_pulumi.local.queues import create_bucket, create_queues, mesh_queue_settings
    from asya_pulumi.local.triggers import LocalTriggers
    from asya_pulumi.spec import AsyncActorSpec, MeshSpec

    shared = f"shared-{namespace}"
    mesh = MeshSpec(
        namespace=namespace, actors=[AsyncActorSpec(name=n, image="i:1", handler="h.f") for n in ("tag", "store")],
        routes={"ingest": ["tag", "store"], "tail": ["store"]},
        triggers=[{"name": "uploads", "route": "ingest", "s3": {"suffix": ".jpg"}},
                  {"name": "shared", "route": "tail", "s3": {"bucket": shared, "prefix": "in/"}}],
    )
    urls = create_queues(sqs=sqs, settings=mesh_queue_settings(mesh))
    bucket = f"asya-{namespace}-results"
    create_bucket(s3=s3, bucket=bucket, region="us-east-1")
    s3.put_object(Bucket=bucket, Key="triggers/uploads/old.jpg", Body=b"there before")
    lines: list[str] = []
    triggers = LocalTriggers(mesh=mesh, sqs=sqs, s3=s3, urls=urls, mesh_bucket=bucket, region="us-east-1",
                             notice=lines.append, poll_s=0.2)

    def bodies(actor: str, count: int, *, timeout_s: float = 20) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < count and time.monotonic() < deadline:
            for message in sqs.receive_message(QueueUrl=urls[actor], MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", []):
                got.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=urls[actor], ReceiptHandle=message["ReceiptHandle"])
        return got

    triggers.start()
    try:
        assert s3.head_bucket(Bucket=shared)  # a named bucket exists on AWS; locally it is made
        assert [b["Event"] for b in bodies("tag", 1)] == ["s3:TestEvent"]
        assert [b["Bucket"] for b in bodies("store", 1)] == [shared]
        s3.put_object(Bucket=bucket, Key="triggers/uploads/new.jpg", Body=b"12345")
        s3.put_object(Bucket=bucket, Key="triggers/uploads/new.png", Body=b"no")
        s3.put_object(Bucket=shared, Key="in/a b.csv", Body=b"x,y")
        s3.put_object(Bucket=shared, Key="out/ignored.csv", Body=b"x,y")
        [created] = bodies("tag", 1)
        record = created["Records"][0]
        assert record["eventName"] == "ObjectCreated:Put"
        assert record["s3"]["configurationId"] == f"asya-{namespace}_uploads"
        assert record["s3"]["object"]["key"] == "triggers/uploads/new.jpg" and record["s3"]["object"]["size"] == 5
        [other] = bodies("store", 1)
        assert other["Records"][0]["s3"]["object"]["key"] == "in/a+b.csv"  # URL-encoded, as S3 sends it
        s3.put_object(Bucket=bucket, Key="triggers/uploads/new.jpg", Body=b"123456")  # overwritten: announced
        [overwrite] = bodies("tag", 1)
        assert overwrite["Records"][0]["s3"]["object"]["size"] == 6
        assert bodies("tag", 1, timeout_s=2) == [] and bodies("store", 1, timeout_s=1) == []  # nothing else, once
    finally:
        triggers.stop()
    assert sorted(triggers.announced) == ["in/a b.csv", "triggers/uploads/new.jpg", "triggers/uploads/new.jpg"]
