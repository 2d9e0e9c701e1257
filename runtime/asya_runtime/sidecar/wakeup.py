"""Ending a long poll at once when a sidecar stops on a quiet queue.

A ReceiveMessage long poll waits up to ``WaitTimeSeconds`` (20 s) for a message. Aborting the request does not end
the broker's side of it: a message arriving meanwhile would be handed to the dead connection and stay invisible for
a whole visibility timeout — and count as a delivery, so an attempt. So a stopping sidecar does not abort its poll;
it sends a *wake-up message* to its own queue instead. A long poll returns as soon as a message is available, so the
pending poll (ours, or another replica's) returns within milliseconds, and whatever real messages it brought are
requeued as before.

A wake-up message carries the message attribute ``asya-control: wakeup`` and an empty-object body. Every replica
that receives one deletes it: it never reaches a handler, a sink or the error sink. A stopping replica whose poll
came back without its wake-up (another replica took it, or the poll had just ended) collects it with one short
poll, so a queue does not keep a stray wake-up that would wake a scaled-to-zero actor later.
"""

from __future__ import annotations

from typing import Any

from asya_runtime.sidecar.aws import BrokerClient

ATTRIBUTE = "asya-control"
WAKEUP = "wakeup"
#: A wake-up's body. Only a message with both the attribute and this body is one: an envelope that carries the
#: attribute (any sender may set message attributes) is still an envelope, and is processed, never deleted unread.
BODY = "{}"
#: Wait of the one extra poll that collects our wake-up when the pending poll came back without it.
COLLECT_WAIT_S = 1


def is_wakeup(message: dict[str, Any]) -> bool:
    """True for a wake-up message (SQS's ReceiveMessage shape, asked with ``MessageAttributeNames=[ATTRIBUTE]``):
    the attribute and the empty-object body."""
    attribute = (message.get("MessageAttributes") or {}).get(ATTRIBUTE) or {}
    return attribute.get("StringValue") == WAKEUP and message.get("Body") == BODY


def split(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(work, wakeups)``: the messages of a receive, wake-ups set apart."""
    work = [m for m in messages if not is_wakeup(m)]
    return work, [m for m in messages if is_wakeup(m)]


async def send(broker: BrokerClient, *, queue_url: str) -> None:
    """Put one wake-up message in ``queue_url``."""
    await broker.call(
        "send_message",
        QueueUrl=queue_url,
        MessageBody=BODY,
        MessageAttributes={ATTRIBUTE: {"DataType": "String", "StringValue": WAKEUP}},
    )


async def discard(broker: BrokerClient, *, queue_url: str, wakeups: list[dict[str, Any]]) -> None:
    """Delete received wake-up messages (one batch call)."""
    if wakeups:
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(wakeups[:10])]
        await broker.call("delete_message_batch", QueueUrl=queue_url, Entries=entries)
