"""A route reaches only actors of its own mesh: never another mesh's actor, a dead-letter queue or a sink by name.

The reproduction from the issue: mesh ``N`` and mesh ``N-b`` share a broker; a handler in ``N`` routes to ``b-x``
(under the old ``asya-{ns}-{actor}`` names, that was mesh ``N-b``'s actor ``x``). Every such envelope must end as an
error record with a reason in the sender's own error sink, and nothing may arrive anywhere else.
"""

from __future__ import annotations

import pytest
from support.mesh import MeshHarness

from asya_runtime.envelope import new_envelope
from asya_runtime.naming import dlq_name


@pytest.fixture
def neighbour(mesh: MeshHarness) -> MeshHarness:
    """A second mesh on the same broker whose namespace extends the first one's (``{ns}-b``)."""
    other = MeshHarness(broker=mesh.broker, sqs=mesh.sqs, s3=mesh.s3, workdir=mesh.workdir / "neighbour")
    other.namespace = f"{mesh.namespace}-b"
    other.standard("x")
    return other


@pytest.mark.parametrize(
    ("target", "reason", "type_name"),
    [
        ("b-x", "unknown actor", "UnknownActor"),  # another mesh's actor, by the old ambiguous name
        ("x", "unknown actor", "UnknownActor"),  # an actor only the neighbour has
        ("first_dlq", "foreign actor", "ForeignActor"),  # this mesh's own DLQ, by its name suffix
        ("probe-dlq", "foreign actor", "ForeignActor"),  # the reserved suffix
        ("success-sink", "foreign actor", "ForeignActor"),  # a sink is not a hop
        ("b_x", "foreign actor", "ForeignActor"),  # the separator of derived names: never part of an actor name
    ],
)
def test_a_route_out_of_the_mesh_ends_in_the_senders_error_sink(
    mesh: MeshHarness, neighbour: MeshHarness, target: str, reason: str, type_name: str
) -> None:
    mesh.standard("first")
    mesh.start_actor("first", handler="identity")
    envelope = new_envelope(route=["first", target], payload={"key": target})
    mesh.send("first", envelope)

    [record] = mesh.take("error-sink", 1)

    error = record["status"]["error"]
    assert (error["reason"], error["type"], error["actor"]) == (reason, type_name, "first")
    assert repr(target) in error["message"]
    assert record["id"] == envelope.id and record["payload"] == {"key": target}
    mesh.assert_quiet("success-sink", "first", wait_s=1)
    neighbour.assert_quiet("x", "success-sink", "error-sink", wait_s=0.5)
    dlq = mesh.sqs.get_queue_url(QueueName=dlq_name(namespace=mesh.namespace, actor="first"))["QueueUrl"]
    assert not mesh.sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0).get("Messages")
