import itertools

import pytest

from asya_runtime.naming import (
    actor_of_queue,
    check_actor_name,
    check_dns_label,
    check_names_fit,
    dlq_name,
    queue_name,
    role_name,
)


def test_queue_names_are_namespaced() -> None:
    assert queue_name(namespace="dev", actor="judge") == "asya-dev_judge"
    assert dlq_name(namespace="dev", actor="judge") == "asya-dev_judge_dlq"
    assert role_name(namespace="dev", actor="judge", region="eu-west-1") == "asya-dev_judge_eu-west-1"
    assert queue_name(namespace="a", actor="x") != queue_name(namespace="b", actor="x")


def test_no_two_pairs_share_a_name() -> None:
    """The issue's collision (``a`` + ``b-x`` vs ``a-b`` + ``x``) and every other pair over a small alphabet."""
    labels = ["a", "b", "a-b", "b-x", "x", "a-b-x", "store", "dlq", "x-dlq"]
    names: dict[str, tuple[str, str, str]] = {}
    for namespace, actor in itertools.product(labels, repeat=2):
        for kind, name in (("queue", queue_name(namespace=namespace, actor=actor)),
                           ("dlq", dlq_name(namespace=namespace, actor=actor))):
            assert name not in names, (name, names.get(name), (kind, namespace, actor))
            names[name] = (kind, namespace, actor)
    assert queue_name(namespace="a", actor="b-x") != queue_name(namespace="a-b", actor="x")


def test_queue_names_read_back_to_their_actor() -> None:
    assert actor_of_queue(namespace="a", name="asya-a_b-x") == "b-x"
    assert actor_of_queue(namespace="a", name="asya-a_b-x_dlq") is None
    assert actor_of_queue(namespace="a", name="asya-a-b_x") is None
    assert actor_of_queue(namespace="a-b", name="asya-a_b-x") is None


def test_dns_label_errors_suggest_a_fix() -> None:
    with pytest.raises(ValueError, match=r"not a DNS-1123 label.*'score-image'"):
        check_dns_label("Score_Image", what="actor name")
    with pytest.raises(ValueError, match="use at most 63"):
        check_dns_label("a" * 64, what="actor name")


@pytest.mark.parametrize(("name", "message"), [
    ("success-sink", "reserved for the mesh's built-in sink"),
    ("store-dlq", r"ends in '-dlq', which is reserved.*'store-retry'"),
    ("store_x", "not a DNS-1123 label"),
])
def test_reserved_actor_names_are_refused(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_actor_name(name)


def test_queue_name_limit_names_the_spare_length() -> None:
    check_names_fit(namespace="dev", actor="a" * 67)
    with pytest.raises(ValueError, match=r"over SQS's 80-character limit; shorten the actor name to at most 67"):
        check_names_fit(namespace="dev", actor="a" * 68)


def test_role_names_always_fit_iam_and_stay_unique() -> None:
    short = role_name(namespace="dev", actor="a" * 45, region="us-east-1")
    assert short == f"asya-dev_{'a' * 45}_us-east-1" and len(short) == 64
    long_names = {
        role_name(namespace="n" * 40, actor=actor, region=region)
        for actor in ("success-sink", "error-sink", "a" * 30, "a" * 29)
        for region in ("us-east-1", "ap-southeast-2")
    }
    assert len(long_names) == 8 and all(len(name) == 64 for name in long_names)
    assert all(name.startswith("asya-" + "n" * 40 + "_") for name in long_names)
    assert role_name(namespace="n" * 40, actor="x", region="us-east-1") == role_name(
        namespace="n" * 40, actor="x", region="us-east-1"
    )
