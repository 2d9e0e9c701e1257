"""The sidecar's SigV4 signer produces exactly botocore's headers and signature for the same request."""

from __future__ import annotations

import datetime
import hashlib

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from asya_runtime.sidecar.sigv4 import SigV4Signer, host_of

NOW = datetime.datetime(2026, 11, 30, 23, 59, 58, tzinfo=datetime.UTC)
HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "User-Agent": "asya-sidecar botocore/1",  # not signed, as botocore leaves it out
    "X-Amz-Target": "AmazonSQS.SendMessageBatch",
    "x-amzn-query-mode": "true",
    "X-Odd-Spacing": "  several   spaces\tand a tab ",
}


def botocore_headers(*, url: str, body: bytes, credentials: ReadOnlyCredentials, region: str) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(HEADERS))
    SigV4Auth(credentials, "sqs", region).add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize(
    "url",
    [
        "https://sqs.eu-west-1.amazonaws.com/",
        "https://sqs.eu-west-1.amazonaws.com:443/",
        "http://127.0.0.1:4566/",
        "http://localhost:9324/prefix/sqs/",
        "http://[::1]:4566/",
    ],
)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE//session+token=="])
def test_headers_and_signature_equal_botocores(url: str, token: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    body = b'{"QueueUrl": "http://q/1", "Entries": [{"Id": "0", "MessageBody": "caf\\u00e9"}]}'
    expected = botocore_headers(url=url, body=body, credentials=credentials, region="eu-west-1")

    signer = SigV4Signer(url=url, region="eu-west-1", service="sqs")
    signed = signer.sign(headers=dict(HEADERS), body=body, credentials=credentials, now=NOW)

    assert signed == expected
    assert "Host" not in signed  # the host is signed, and sent by the HTTP client as host_of(url)


def test_host_is_the_one_botocore_signs() -> None:
    assert host_of("https://sqs.us-east-1.amazonaws.com:443/") == "sqs.us-east-1.amazonaws.com"
    assert host_of("http://127.0.0.1:80/") == "127.0.0.1"
    assert host_of("http://127.0.0.1:4566/") == "127.0.0.1:4566"
    assert host_of("http://[::1]:4566/") == "[::1]:4566"


def test_the_signing_key_follows_the_date_and_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is cached per day and secret: the next day, or rotated credentials, sign with a new one."""
    url = "https://sqs.us-east-1.amazonaws.com/"
    signer = SigV4Signer(url=url, region="us-east-1", service="sqs")
    body = hashlib.sha256(b"x").hexdigest().encode()
    for now, secret in [
        (NOW, "first-secret"),
        (NOW + datetime.timedelta(seconds=3), "first-secret"),  # the next day (23:59:58 + 3 s)
        (NOW + datetime.timedelta(seconds=3), "rotated-secret"),
    ]:
        credentials = ReadOnlyCredentials("AKID", secret, None)
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda now=now: now.replace(tzinfo=None))
        expected = botocore_headers(url=url, body=body, credentials=credentials, region="us-east-1")
        assert signer.sign(headers=dict(HEADERS), body=body, credentials=credentials, now=now) == expected
