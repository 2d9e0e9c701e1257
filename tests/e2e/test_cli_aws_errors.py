"""Every way of failing to talk to AWS is one ``asya: error:`` line naming the fix, exit status 4, no traceback.

Each case is real: a port nobody listens on, an environment without credentials, a region that does not exist (its
endpoint has no DNS name), the embedded broker with and without credentials in the environment, and an HTTP server
that answers SQS's JSON protocol with the error bodies AWS sends for a denied call and for an expired session
token (botocore parses them exactly as it parses AWS's). The commands are run as installed, in a subprocess.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from asya_pulumi.cli.errors import EXIT_AWS
from asya_pulumi.local.broker import LocalBroker
from asya_pulumi.local.queues import create_queues, mesh_queue_settings
from asya_pulumi.spec import load_pipeline_dir
from e2e.conftest import ASYA, EXAMPLES, REPO, AsyaResult

#: Mesh commands and their arguments; each one talks to SQS first thing.
MESH_COMMANDS = [["status"], ["send", "preprocess", "{}"], ["dlq", "redrive", "judge"]]


def _without_aws(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test's environment minus every AWS credential source (no keys, no profile files, no instance metadata)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ASYA_"))}
    env |= {"HOME": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"}
    if ca := os.environ.get("AWS_CA_BUNDLE"):
        env["AWS_CA_BUNDLE"] = ca
    return env | extra


def _asya(*args: str, env: dict[str, str], timeout: float = 60) -> AsyaResult:
    done = subprocess.run([ASYA, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)
    return AsyaResult(done.returncode, done.stdout, done.stderr)


def _one_line(run: AsyaResult, *expected: str) -> str:
    assert run.returncode == EXIT_AWS, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("asya: error: ")
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", MESH_COMMANDS, ids=lambda c: c[0])
def test_an_unreachable_endpoint_names_it_and_the_fix(tmp_path: Path, command: list[str]):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    run = _asya(*command, "--sqs-endpoint", endpoint, "--namespace", "ops", env=_without_aws(tmp_path))
    _one_line(run, f"cannot reach {endpoint}", "--sqs-endpoint")


def test_no_credentials_for_aws(tmp_path: Path):
    run = _asya("status", "--namespace", "ops", "--region", "eu-west-1", env=_without_aws(tmp_path))
    _one_line(run, "no AWS credentials", "AWS_PROFILE", "aws sso login")


def test_a_missing_profile(tmp_path: Path):
    run = _asya("status", "--namespace", "ops", env=_without_aws(tmp_path, AWS_PROFILE="nightly"))
    _one_line(run, "nightly", "AWS_PROFILE")


def test_an_unknown_region_suggests_the_near_ones(tmp_path: Path):
    env = _without_aws(tmp_path, AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="secret")
    run = _asya("status", "--namespace", "ops", "--region", "us-eest-1", env=env)
    _one_line(run, "unknown AWS region 'us-eest-1'", "us-east-1", "--region")


def test_aws_unreachable_in_a_known_region_names_network_and_region(tmp_path: Path):
    """AWS itself unreachable: boto3's own AWS_ENDPOINT_URL_SQS points its SQS at a closed port (as a firewall
    would), while asya believes it talks to AWS in eu-west-1."""
    closed = f"http://127.0.0.1:{_closed_port()}"
    env = _without_aws(tmp_path, AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="secret",
                       AWS_ENDPOINT_URL_SQS=closed)
    run = _asya("status", "--namespace", "ops", "--region", "eu-west-1", env=env)
    _one_line(run, f"cannot reach {closed}", "HTTPS_PROXY", "'eu-west-1'")


def test_a_region_that_is_not_a_name(tmp_path: Path):
    env = _without_aws(tmp_path, AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="secret")
    _one_line(_asya("status", "--namespace", "ops", "--region", "us east", env=env), "'us east' is not an AWS region")


class _AwsErrorServer(ThreadingHTTPServer):
    """Answers every request with one AWS error response (status, SQS JSON body, query-compatibility header)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _AwsErrorHandler)
        self.reply: tuple[int, dict[str, Any], dict[str, str]] = (500, {}, {})

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _AwsErrorHandler(BaseHTTPRequestHandler):
    server: _AwsErrorServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body, headers = self.server.reply
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/x-amz-json-1.0", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def aws_errors() -> Iterator[_AwsErrorServer]:
    server = _AwsErrorServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


DENIED = (
    "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: sqs:listqueues on resource: "
    "arn:aws:sqs:us-east-1:123456789012: because no identity-based policy allows the sqs:listqueues action"
)


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (403, {"__type": "com.amazon.coral.service#AccessDeniedException", "Message": DENIED},
         {"x-amzn-query-error": "AccessDenied;Sender"},
         ["access denied", "ListQueues", "sqs:listqueues", "AWS_PROFILE"]),
        (400, {"__type": "com.amazon.coral.service#AccessDeniedException", "Message": DENIED}, {},
         ["access denied", "AccessDeniedException"]),
        (403, {"__type": "com.amazon.coral.service#ExpiredTokenException",
               "message": "The security token included in the request is expired"},
         {"x-amzn-query-error": "ExpiredToken;Sender"}, ["credentials have expired", "aws sso login"]),
        (403, {"__type": "com.amazon.coral.service#UnrecognizedClientException",
               "message": "The security token included in the request is invalid."}, {},
         ["does not accept these credentials", "aws sts get-caller-identity"]),
    ],
    ids=["denied", "denied-without-query-header", "expired-token", "unknown-key"],
)
def test_aws_refusals_name_the_fix(
    tmp_path: Path, aws_errors: _AwsErrorServer, status: int, body: dict[str, Any], headers: dict[str, str],
    expected: list[str],
):
    aws_errors.reply = (status, body, headers)
    env = _without_aws(tmp_path, AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="secret")
    _one_line(_asya("status", "--sqs-endpoint", aws_errors.endpoint, "--namespace", "ops", env=env), *expected)


@pytest.mark.parametrize("credentials", ["none", "keys"])
def test_the_local_broker_works_with_and_without_credentials(
    tmp_path: Path, broker: LocalBroker, sqs: Any, namespace: str, credentials: str
):
    """A local endpoint needs no AWS account: without credentials the CLI signs with test/test; with them it uses
    them (the local server accepts any)."""
    mesh = load_pipeline_dir(EXAMPLES / "image-scoring").model_copy(update={"namespace": namespace})
    create_queues(sqs=sqs, settings=mesh_queue_settings(mesh))
    keys = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"} if credentials == "keys" else {}
    run = _asya("status", "--sqs-endpoint", broker.endpoint, "--namespace", namespace, "--json",
                env=_without_aws(tmp_path, **keys))
    assert run.returncode == 0, run.stderr
    assert {row["actor"] for row in json.loads(run.stdout)["actors"]} >= {"preprocess", "judge", "error-sink"}
