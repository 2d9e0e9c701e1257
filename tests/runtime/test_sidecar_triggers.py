"""An S3 event notification on the first actor's queue starts its trigger's route; S3's test event starts nothing.

The bodies are S3's own message shapes (the event message structure, version 2.1, and ``s3:TestEvent``, as AWS's
documentation shows them), sent to a real sidecar on the embedded broker.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from support.mesh import MeshHarness

from asya_runtime.config import SidecarConfig
from asya_runtime.triggers import (
    TEST_EVENT,
    TRIGGER_HEADER,
    S3TriggerTarget,
    envelope_from_s3_event,
    notification_id,
    s3_object_created_event,
    s3_test_event,
)

#: S3's event message as its documentation prints it (the sample record, ObjectCreated:Put), our bucket and id in.
AWS_EVENT: dict[str, Any] = {"Records": [{
    "eventVersion": "2.1",
    "eventSource": "aws:s3",
    "awsRegion": "us-west-2",
    "eventTime": "1970-01-01T00:00:00.000Z",
    "eventName": "ObjectCreated:Put",
    "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
    "requestParameters": {"sourceIPAddress": "127.0.0.1"},
    "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810",
                         "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
    "s3": {
        "s3SchemaVersion": "1.0",
        "configurationId": "CONFIGURATION_ID",
        "bucket": {"name": "BUCKET", "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                   "arn": "arn:aws:s3:::BUCKET"},
        "object": {"key": "incoming/Happy+Face%282%29.jpg", "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                   "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko", "sequencer": "0055AED6DCD90281E5"},
    },
}]}
#: What S3 sends once when a notification configuration is put (its documentation's sample).
AWS_TEST_EVENT = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2014-10-13T15:57:02.089Z",
                  "Bucket": "BUCKET", "RequestId": "5582815E1AEA5ADF",
                  "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}


def aws_event(*, configuration_id: str, bucket: str, sequencer: str = "0055AED6DCD90281E5") -> str:
    event = copy.deepcopy(AWS_EVENT)
    s3 = event["Records"][0]["s3"]
    s3["configurationId"], s3["bucket"]["name"] = configuration_id, bucket
    s3["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    s3["object"]["sequencer"] = sequencer
    return json.dumps(event)


TARGETS = {"asya-shop_drop": S3TriggerTarget(trigger="drop", bucket="data", route=["fetch", "score"])}


def test_the_documented_event_becomes_an_envelope_on_the_route_with_the_objects_facts() -> None:
    text = envelope_from_s3_event(aws_event(configuration_id="asya-shop_drop", bucket="data"), triggers=TARGETS)
    assert text is not None and text != TEST_EVENT
    envelope = json.loads(text)
    assert envelope["route"] == {"prev": [], "curr": "fetch", "next": ["score"]}
    assert envelope["headers"] == {TRIGGER_HEADER: "drop"}
    assert envelope["payload"] == {
        "bucket": "data", "key": "incoming/Happy Face(2).jpg", "size": 1024,
        "etag": "d41d8cd98f00b204e9800998ecf8427e", "version_id": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
        "event": "ObjectCreated:Put", "event_time": "1970-01-01T00:00:00.000Z", "sequencer": "0055AED6DCD90281E5",
    }
    again = json.loads(envelope_from_s3_event(aws_event(configuration_id="asya-shop_drop", bucket="data"),
                                              triggers=TARGETS) or "{}")
    assert again["id"] == envelope["id"]  # a redelivered notification is the same envelope
    later = envelope_from_s3_event(
        aws_event(configuration_id="asya-shop_drop", bucket="data", sequencer="0055AED6DCD90281F0"), triggers=TARGETS
    )
    assert json.loads(later or "{}")["id"] != envelope["id"]  # the same key uploaded again is a new run


def test_the_test_event_is_recognised_and_other_bodies_are_left_to_the_envelope_parser() -> None:
    assert envelope_from_s3_event(json.dumps(AWS_TEST_EVENT), triggers=TARGETS) == TEST_EVENT
    assert envelope_from_s3_event(s3_test_event(bucket="data"), triggers=TARGETS) == TEST_EVENT
    other_mesh = aws_event(configuration_id="asya-shop-b_drop", bucket="data")
    other_bucket = aws_event(configuration_id="asya-shop_drop", bucket="elsewhere")
    removed = json.loads(aws_event(configuration_id="asya-shop_drop", bucket="data"))
    removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    two = json.loads(aws_event(configuration_id="asya-shop_drop", bucket="data"))
    two["Records"] *= 2
    for body in (other_mesh, other_bucket, json.dumps(removed), json.dumps(two), '{"Records": "x"}', "not json",
                 '{"id": "e", "route": {"curr": "fetch"}, "payload": {"Records": 1}}'):
        assert envelope_from_s3_event(body, triggers=TARGETS) is None, body
    assert envelope_from_s3_event(json.dumps(AWS_TEST_EVENT), triggers={}) is None  # no triggers: no look at all


def test_the_local_event_shape_is_the_documented_one() -> None:
    """What ``asya dev`` sends for an upload has the documented record's keys, so the sidecar reads one shape."""
    local = json.loads(s3_object_created_event(configuration_id="c", bucket="b", key="a b/c.jpg", size=3,
                                               etag="e", sequencer="01"))
    documented = AWS_EVENT["Records"][0]
    record = local["Records"][0]
    assert set(record) == set(documented) and set(record["s3"]) == set(documented["s3"])
    assert set(record["s3"]["object"]) <= set(documented["s3"]["object"])
    assert record["s3"]["object"]["key"] == "a+b/c.jpg"  # URL-encoded as S3 encodes it


@pytest.mark.parametrize("value", [{"asya-shop_drop": TARGETS["asya-shop_drop"]},
                                   json.dumps({"asya-shop_drop": TARGETS["asya-shop_drop"].model_dump()})])
def test_the_setting_round_trips_through_its_environment_variable(value: Any) -> None:
    config = SidecarConfig(actor="fetch", namespace="shop", s3_triggers=value)
    env = config.to_env()
    assert json.loads(env["ASYA_S3_TRIGGERS"]) == {"asya-shop_drop": TARGETS["asya-shop_drop"].model_dump()}
    assert SidecarConfig.from_env(env).s3_triggers == TARGETS
    assert "ASYA_S3_TRIGGERS" not in SidecarConfig(actor="fetch", namespace="shop").to_env()


def test_a_sidecar_starts_the_route_for_a_notification_and_deletes_the_test_event(mesh: MeshHarness) -> None:
    mesh.standard("fetch", "score", sinks=True)
    trigger_id = notification_id(namespace=mesh.namespace, trigger="drop")
    targets = {trigger_id: S3TriggerTarget(trigger="drop", bucket="data", route=["fetch", "score"])}
    mesh.start_actor("fetch", handler="identity", s3_triggers=targets)
    mesh.start_actor("score", handler="identity")

    mesh.send("fetch", json.dumps(AWS_TEST_EVENT))  # first, as S3 sends it when the notification is configured
    body = aws_event(configuration_id=trigger_id, bucket="data")
    mesh.send("fetch", body)
    mesh.send("fetch", body)  # S3 delivers at least once: a duplicate is the same envelope
    stranger = aws_event(configuration_id=notification_id(namespace=mesh.namespace + "-b", trigger="drop"),
                         bucket="data")
    mesh.send("fetch", stranger)  # not this actor's trigger: a malformed envelope, as any stray body

    [record] = mesh.wait_records("succeeded", 1).values()
    [failed] = mesh.wait_records("failed", 1).values()
    mesh.assert_quiet("fetch", "score", "success-sink", "error-sink")
    assert record["payload"]["key"] == "incoming/Happy Face(2).jpg" and record["payload"]["size"] == 1024
    assert record["route"] == {"prev": ["fetch", "score"], "curr": "success-sink", "next": []}
    assert record["headers"][TRIGGER_HEADER] == "drop"
    assert mesh.writes()[f"succeeded/{record['id']}.json"] == 2  # the duplicate overwrote the one record
    assert failed["status"]["error"]["reason"] == "malformed envelope"
    assert json.loads(failed["payload"]["raw_body"]) == json.loads(stranger)  # kept for inspection
    keys = [c["key"] for c in mesh.calls()]
    assert keys == ["incoming/Happy Face(2).jpg"] * 4  # two deliveries × two actors; the test event called nothing
