import pytest

from asya_runtime.naming import check_dns_label, check_queue_fits, dlq_name, queue_name


def test_queue_names_are_namespaced() -> None:
    assert queue_name(namespace="dev", actor="judge") == "asya-dev-judge"
    assert dlq_name(namespace="dev", actor="judge") == "asya-dev-judge-dlq"
    assert queue_name(namespace="a", actor="x") != queue_name(namespace="b", actor="x")


def test_dns_label_errors_suggest_a_fix() -> None:
    with pytest.raises(ValueError, match=r"not a DNS-1123 label.*'score-image'"):
        check_dns_label("Score_Image", what="actor name")
    with pytest.raises(ValueError, match="use at most 63"):
        check_dns_label("a" * 64, what="actor name")


def test_queue_name_limit_names_the_spare_length() -> None:
    check_queue_fits(namespace="dev", actor="a" * 67)
    with pytest.raises(ValueError, match=r"over SQS's 80-character limit; shorten the actor name to at most 67"):
        check_queue_fits(namespace="dev", actor="a" * 68)
