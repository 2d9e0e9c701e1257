"""``spec.triggers`` render to least-privilege AWS objects, and a bad trigger is refused at render, naming the field.

S3: one notification per bucket sends to the first actor's queue; that queue's one policy lets S3 send for that
bucket and account alone. Schedule: an EventBridge schedule whose input is a ready envelope, whose role only
EventBridge Scheduler may assume for that schedule, and which may only send to that one queue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from infra_mocks import ACCOUNT, REGION, Deployment

from asya_pulumi.components import ActorMesh
from asya_pulumi.objects.triggers import SCHEDULER_CONTEXT, schedule_input
from asya_pulumi.package.provider import schema
from asya_pulumi.spec import AsyncActorSpec, MeshSpec, SpecError, load_pipeline_dir
from asya_runtime.envelope import Envelope
from asya_runtime.triggers import TRIGGER_HEADER

TRIGGERS: list[dict[str, Any]] = [
    {"name": "drop", "route": "go", "s3": {}},
    {"name": "images", "route": "tail", "s3": {"bucket": "team-images", "prefix": "in/", "suffix": ".jpg"}},
    {"name": "nightly", "route": "go",
     "schedule": {"expression": "cron(0 2 * * ? *)", "timezone": "Europe/Berlin", "payload": {"mode": "full"}}},
]


def mesh_spec(triggers: list[dict[str, Any]] | None = None) -> MeshSpec:
    return MeshSpec(
        namespace="shop", region=REGION,
        actors=[AsyncActorSpec(name=n, image="img:1", handler="h.run") for n in ("fetch", "score", "store")],
        routes={"go": ["fetch", "score", "store"], "tail": ["score", "store"]},
        triggers=TRIGGERS if triggers is None else triggers,
    )


@pytest.fixture
def rendered(deployment: Deployment) -> Deployment:
    deployment.run(lambda: ActorMesh("m", spec=mesh_spec(), cluster_name="c1"))
    return deployment


def queue_arn(actor: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:asya-shop_{actor}"


def policy_of(deployment: Deployment, actor: str) -> dict[str, Any]:
    return json.loads(deployment.one("aws:sqs/queuePolicy:QueuePolicy", f"m-{actor}-queue-tls-only").inputs["policy"])


def test_s3_may_send_to_the_first_queue_only_for_its_bucket_and_account(rendered: Deployment) -> None:
    bucket = rendered.one("aws:s3/bucket:Bucket", "m-results").outputs
    statements = {a: policy_of(rendered, a)["Statement"] for a in ("fetch", "score", "store")}
    assert [s["Effect"] for s in statements["store"]] == ["Deny"]  # no trigger starts at store: TLS-only as before
    for actor, bucket_arn in (("fetch", bucket["arn"]), ("score", "arn:aws:s3:::team-images")):
        deny, allow = statements[actor]
        assert deny["Sid"] == "DenyInsecureTransport"
        assert allow == {
            "Sid": "S3Trigger0", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": queue_arn(actor),
            "Condition": {"ArnEquals": {"aws:SourceArn": bucket_arn}, "StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }
    for dlq in rendered.of_type("aws:sqs/queuePolicy:QueuePolicy"):  # a DLQ never takes a notification
        if dlq.name.endswith("-dlq-tls-only"):
            assert [s["Effect"] for s in json.loads(dlq.inputs["policy"])["Statement"]] == ["Deny"]


def test_one_notification_per_bucket_after_the_queue_policy_allowing_it(rendered: Deployment) -> None:
    own = rendered.one("aws:s3/bucketNotification:BucketNotification", "m-triggers-mesh-bucket-notification")
    named = rendered.one("aws:s3/bucketNotification:BucketNotification", "m-triggers-team-images-notification")
    assert own.inputs["bucket"] == rendered.one("aws:s3/bucket:Bucket", "m-results").outputs["bucket"]
    assert own.inputs["queues"] == [{"id": "asya-shop_drop", "queueArn": queue_arn("fetch"),
                                     "events": ["s3:ObjectCreated:*"], "filterPrefix": "triggers/drop/"}]
    assert named.inputs["bucket"] == "team-images"
    assert named.inputs["queues"] == [{"id": "asya-shop_images", "queueArn": queue_arn("score"),
                                       "events": ["s3:ObjectCreated:*"], "filterPrefix": "in/", "filterSuffix": ".jpg"}]
    for notification, actor in ((own, "fetch"), (named, "score")):
        policy = rendered.one("aws:sqs/queuePolicy:QueuePolicy", f"m-{actor}-queue-tls-only")
        assert rendered.depends_on(notification, policy)  # S3 tests delivery when the configuration is put


def test_the_first_sidecar_knows_its_s3_triggers_by_notification_id(rendered: Deployment) -> None:
    bucket = rendered.one("aws:s3/bucket:Bucket", "m-results").outputs["bucket"]
    env: dict[str, dict[str, str]] = {}
    for obj in rendered.kubernetes_objects():
        if obj.get("kind") == "Deployment":
            sidecar = next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == "sidecar")
            env[obj["metadata"]["name"]] = {e["name"]: e.get("value") for e in sidecar.get("env", [])}
    assert json.loads(env["fetch"]["ASYA_S3_TRIGGERS"]) == {
        "asya-shop_drop": {"trigger": "drop", "bucket": bucket, "route": ["fetch", "score", "store"]}}
    assert json.loads(env["score"]["ASYA_S3_TRIGGERS"]) == {
        "asya-shop_images": {"trigger": "images", "bucket": "team-images", "route": ["score", "store"]}}
    assert "ASYA_S3_TRIGGERS" not in env["store"]


def test_the_schedule_sends_a_ready_envelope_to_the_first_queue(rendered: Deployment) -> None:
    schedule = rendered.one("aws:scheduler/schedule:Schedule", "m-triggers-nightly").inputs
    assert schedule["name"] == "asya-shop_nightly" and schedule["groupName"] == "default"
    assert schedule["scheduleExpression"] == "cron(0 2 * * ? *)"
    assert schedule["scheduleExpressionTimezone"] == "Europe/Berlin"
    assert schedule["flexibleTimeWindow"] == {"mode": "OFF"} and schedule["state"] == "ENABLED"
    target = schedule["target"]
    assert target["arn"] == queue_arn("fetch")
    assert target["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/asya-shop_nightly_schedule_{REGION}"
    body = target["input"].replace(SCHEDULER_CONTEXT["scheduled_time"], "2026-12-08T02:00:00Z")
    envelope = Envelope.parse(body)  # what the sidecar receives: an envelope as any other
    assert envelope.id == "nightly-2026-12-08T02:00:00Z"
    assert (envelope.route.curr, envelope.route.next) == ("fetch", ["score", "store"])
    assert envelope.payload == {"mode": "full"}
    assert envelope.headers[TRIGGER_HEADER] == "nightly"
    schedule_dependencies = rendered.one("aws:scheduler/schedule:Schedule", "m-triggers-nightly")
    assert rendered.depends_on(schedule_dependencies, rendered.one("aws:iam/rolePolicy:RolePolicy",
                                                                   "m-triggers-nightly-send"))


def test_the_schedules_role_is_assumable_for_that_schedule_and_sends_to_that_queue_alone(
    rendered: Deployment,
) -> None:
    role = rendered.one("aws:iam/role:Role", "m-triggers-nightly-role").inputs
    (trust,) = json.loads(role["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnEquals": {"aws:SourceArn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/asya-shop_nightly"},
    }
    assert role["tags"]["asya.sh/mesh"] == "shop"
    policy = json.loads(rendered.one("aws:iam/rolePolicy:RolePolicy", "m-triggers-nightly-send").inputs["policy"])
    assert policy["Statement"] == [{"Sid": "SendToFirstActor", "Effect": "Allow", "Action": "sqs:SendMessage",
                                    "Resource": queue_arn("fetch")}]


def test_the_route_actors_may_read_the_announced_objects_and_nothing_more(rendered: Deployment) -> None:
    bucket_arn = rendered.one("aws:s3/bucket:Bucket", "m-results").outputs["arn"]
    readable = {}
    for actor in ("fetch", "score", "store"):
        policy = rendered.one("aws:iam/rolePolicy:RolePolicy", f"m-triggers-{actor}-read-objects")
        assert policy.inputs["role"] == f"asya-shop_{actor}_{REGION}"
        (statement,) = json.loads(policy.inputs["policy"])["Statement"]
        assert statement["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
        readable[actor] = statement["Resource"]
    drop, images = f"{bucket_arn}/triggers/drop/*", "arn:aws:s3:::team-images/in/*.jpg"
    assert readable == {"fetch": [drop], "score": [drop, images], "store": [drop, images]}


def test_a_prefix_with_iam_wildcard_characters_grants_it_literally() -> None:
    from asya_pulumi.objects.triggers import trigger_object_arn

    assert trigger_object_arn(bucket_arn="arn:aws:s3:::b", prefix="a*b?/$x/", suffix=".j*g") == (
        "arn:aws:s3:::b/a${*}b${?}/${$}x/*.j${*}g"
    )


def test_queues_use_sse_sqs_so_no_sender_needs_a_kms_grant(rendered: Deployment) -> None:
    """With SSE-SQS, SQS holds the key: S3 and the scheduler send without kms:GenerateDataKey. A queue on a
    customer managed key would need that grant; this test fails the day a queue moves to one."""
    for queue in rendered.of_type("aws:sqs/queue:Queue"):
        assert queue.inputs["sqsManagedSseEnabled"] is True and "kmsMasterKeyId" not in queue.inputs


def test_no_triggers_render_nothing_new(deployment: Deployment) -> None:
    deployment.run(lambda: ActorMesh("m", spec=mesh_spec([]), cluster_name="c1"))
    for typ in ("aws:scheduler/schedule:Schedule", "aws:s3/bucketNotification:BucketNotification"):
        assert deployment.of_type(typ) == []
    assert not [r for r in deployment.mocks.registered if r.type == "asya:index:MeshTriggers"]


def test_the_schedule_input_substitutes_every_context_attribute_to_an_envelope() -> None:
    mesh = mesh_spec()
    text = schedule_input(mesh=mesh, trigger=mesh.triggers[2])
    assert SCHEDULER_CONTEXT["scheduled_time"] in text
    assert Envelope.parse(text.replace(SCHEDULER_CONTEXT["scheduled_time"], "2026-01-01T00:00:00Z")).status.attempt == 1


# ---------------------------------------------------------------- refused at render, naming the field


def pipeline(tmp_path: Path, triggers: list[dict[str, Any]]) -> Path:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "asya.sh/v1alpha1", "kind": "AsyncActor", "metadata": {"name": "a"},
         "spec": {"image": "img:1", "handler": "h.run"}}))
    (tmp_path / "mesh.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "asya.sh/v1alpha1", "kind": "ActorMesh", "metadata": {"name": "shop"},
         "spec": {"routes": {"go": ["a"]}, "triggers": triggers}}))
    return tmp_path


def refusal(tmp_path: Path, triggers: list[dict[str, Any]]) -> str:
    with pytest.raises(SpecError) as info:
        load_pipeline_dir(pipeline(tmp_path, triggers))
    return str(info.value)


def schedule(expression: str, **more: Any) -> list[dict[str, Any]]:
    return [{"name": "tick", "route": "go", "schedule": {"expression": expression, **more}}]


@pytest.mark.parametrize(("expression", "says"), [
    ("rate(1 minutes)", "write rate(1 minute)"),
    ("rate(5 minute)", "write rate(5 minutes)"),
    ("rate(0 minutes)", "positive whole number"),
    ("rate(5  minutes)", "one space"),
    ("rate(5 weeks)", "minute(s), hour(s), day(s)"),
    ("cron(0 2 * * *)", "has 5 field(s); EventBridge's cron has 6"),
    ("cron(0 2 * * * *)", "exactly one of day-of-month ('*') and day-of-week ('*') must be '?'"),
    ("cron(0 2 ? * ? *)", "exactly one of day-of-month"),
    ("cron(60 2 * * ? *)", "minutes 60 is outside 0-59"),
    ("cron(0 24 * * ? *)", "hours 24 is outside 0-23"),
    ("cron(0 2 32 * ? *)", "day-of-month 32 is outside 1-31"),
    ("cron(0 2 ? * 0 *)", "day-of-week 0 is outside 1-7"),
    ("cron(0 2 ? * 2#6 *)", "N from 1 to 5"),
    ("cron(0 2 * * ? 2300)", "year 2300 is outside 1970-2199"),
    ("cron(0 2 L * ? *)", None),  # valid: accepted below
    ("cron(0 2 1W * ? *)", None),
    ("cron(0 2 ? * 6L *)", None),
    ("cron(0/15 9-17 ? * MON-FRI *)", None),
    ("cron(0 2 * * L *)", "day-of-month ('*') and day-of-week ('L')"),
    ("cron(0 2 # * ? *)", "# belongs to day-of-week"),
    ("cron(0 5-2 * * ? *)", "runs backwards"),
    ("at(2027-01-01T00:00:00)", "one-time at() schedule"),
    ("every 5 minutes", "neither rate(value unit) nor cron(6 fields)"),
])
def test_a_bad_expression_is_refused_naming_the_field_the_rule_and_the_fix(
    tmp_path: Path, expression: str, says: str | None,
) -> None:
    if says is None:
        assert load_pipeline_dir(pipeline(tmp_path, schedule(expression))).triggers[0].schedule is not None
        return
    message = refusal(tmp_path, schedule(expression))
    assert "triggers" in message and "schedule.expression" in message, message
    assert says in message, message


@pytest.mark.parametrize(("triggers", "says"), [
    (schedule("rate(1 hour)", timezone="Mars/Olympus"), "not an IANA time zone"),
    (schedule("rate(1 hour)", timezone="berlin"), "Europe/Berlin"),
    ([{"name": "t", "route": "go", "s3": {"bucket": "Bad_Bucket"}}], "may hold only lowercase letters"),
    ([{"name": "t", "route": "go", "s3": {"bucket": "192.168.1.1"}}], "IP address"),
    ([{"name": "t", "route": "go", "s3": {"bucket": "ab"}}], "3 to 63"),
    ([{"name": "t", "route": "go", "s3": {"prefix": "/incoming/"}}], "write 'incoming/'"),
    ([{"name": "t", "route": "go", "s3": {"prefix": "x" * 1025}}], "at most 1024"),
    ([{"name": "t", "route": "go", "s3": {"prefix": "succeeded/"}}], "overlaps 'succeeded/'"),
    ([{"name": "t", "route": "go", "s3": {"prefix": ""}}], "overlaps"),
    ([{"name": "t", "route": "go", "s3": {"prefix": "off"}}], "overlaps 'offload/'"),
    ([{"name": "t", "route": "gone", "s3": {}}], "not a route of the mesh; known routes: go"),
    ([{"name": "t", "route": "go"}], "exactly one of `s3` or `schedule`"),
    ([{"name": "t", "route": "go", "s3": {}, "schedule": {"expression": "rate(1 hour)"}}], "exactly one of"),
    ([{"name": "T_1", "route": "go", "s3": {}}], "not a DNS-1123 label"),
    ([{"name": "t", "route": "go", "s3": {}}, {"name": "t", "route": "go", "schedule": {"expression": "rate(1 hour)"}}],
     "duplicate trigger name"),
    ([{"name": "a", "route": "go", "s3": {"bucket": "data-1", "prefix": "in/"}},
      {"name": "b", "route": "go", "s3": {"bucket": "data-1", "prefix": "in/jpg/"}}], "overlapping prefixes"),
    ([{"name": "t" * 60, "route": "go", "s3": {}}], "a trigger name has at most"),
    ([{"name": "t", "route": "go", "s3": {"buckett": "x"}}], "buckett"),
])
def test_a_bad_trigger_is_refused_at_render(tmp_path: Path, triggers: list[dict[str, Any]], says: str) -> None:
    message = refusal(tmp_path, triggers)
    assert "triggers" in message and says in message, message


def test_triggers_on_one_bucket_with_apart_prefixes_or_suffixes_are_accepted(tmp_path: Path) -> None:
    mesh = load_pipeline_dir(pipeline(tmp_path, [
        {"name": "a", "route": "go", "s3": {"bucket": "data-1", "prefix": "in/", "suffix": ".jpg"}},
        {"name": "b", "route": "go", "s3": {"bucket": "data-1", "prefix": "out/"}},
        {"name": "c", "route": "go", "s3": {"bucket": "data-1", "prefix": "in/", "suffix": ".png"}},
    ]))
    assert [t.name for t in mesh.triggers] == ["a", "b", "c"] and mesh.triggers[0].watched_prefix() == "in/"
    # an empty suffix overlaps every suffix, so "in/" (any key) and "in/x" (.png keys) overlap, as S3 says
    with pytest.raises(SpecError):
        load_pipeline_dir(pipeline(tmp_path, [
            {"name": "a", "route": "go", "s3": {"bucket": "data-1", "prefix": "in/", "suffix": ""}},
            {"name": "c", "route": "go", "s3": {"bucket": "data-1", "prefix": "in/x", "suffix": ".png"}},
        ]))


def test_triggers_are_in_the_cross_language_schema() -> None:
    types = schema()["types"]
    mesh = types["asya:index:MeshSpec"]["properties"]
    assert mesh["triggers"]["type"] == "array"
    assert mesh["triggers"]["items"] == {"$ref": "#/types/asya:index:MeshTriggerSpec"}
    trigger = types["asya:index:MeshTriggerSpec"]
    assert set(trigger["properties"]) == {"name", "route", "s3", "schedule"}
    assert set(trigger["required"]) == {"name", "route"}
    assert set(types["asya:index:S3TriggerSpec"]["properties"]) == {"bucket", "prefix", "suffix"}
    schedule_type = types["asya:index:ScheduleTriggerSpec"]
    assert set(schedule_type["properties"]) == {"expression", "timezone", "payload"}
    assert schedule_type["required"] == ["expression"]


def test_many_triggers_on_one_bucket_share_one_queue_policy_statement(deployment: Deployment) -> None:
    """SQS refuses a queue policy over 20,480 bytes: 150 triggers on the mesh's bucket add one statement, not 150."""
    many = [{"name": f"t{i}", "route": "go", "s3": {"prefix": f"in{i:03d}/"}} for i in range(150)]
    deployment.run(lambda: ActorMesh("m", spec=mesh_spec(many), cluster_name="c1"))
    statements = policy_of(deployment, "fetch")["Statement"]
    assert [s.get("Sid") for s in statements] == ["DenyInsecureTransport", "S3Trigger0"]
    assert len(json.dumps(policy_of(deployment, "fetch"))) < 20_480
