"""The entry point: which errors become one line (AWS's) and which keep their traceback (asya's bugs), and that
commands which never talk to AWS never import boto3 (``asya --version``, ``asya init`` stay instant)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ParamValidationError

from asya_pulumi.cli.aws import describe_aws_error
from asya_pulumi.cli.errors import EXIT_AWS
from asya_pulumi.cli.main import main


def test_bugs_keep_their_traceback():
    assert describe_aws_error(ValueError("a bug"), region="us-east-1", endpoint=None) is None
    assert describe_aws_error(ParamValidationError(report="bad"), region="us-east-1", endpoint=None) is None


def test_any_other_refusal_is_still_one_line_with_aws_words():
    error = ClientError({"Error": {"Code": "QueueDeletedRecently", "Message": "wait 60 s"}}, "CreateQueue")
    assert describe_aws_error(error, region="us-east-1", endpoint=None) == (
        "AWS refused CreateQueue (AWS: QueueDeletedRecently: wait 60 s)"
    )


def test_the_region_decides_between_unknown_region_and_network():
    down = EndpointConnectionError(endpoint_url="https://sqs.eu-west-1.amazonaws.com/")
    assert "check the network" in (describe_aws_error(down, region="eu-west-1", endpoint=None) or "")
    assert "unknown AWS region 'eu-wset-1'" in (describe_aws_error(down, region="eu-wset-1", endpoint=None) or "")


def test_without_region_the_line_names_the_one_boto3_used_never_none(monkeypatch: pytest.MonkeyPatch) -> None:
    down = EndpointConnectionError(endpoint_url="https://sqs.eu-west-1.amazonaws.com/")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    assert "that region 'eu-west-1' is the mesh's" in (describe_aws_error(down, region=None, endpoint=None) or "")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    line = describe_aws_error(down, region=None, endpoint=None) or ""
    assert "None" not in line and "that a region (none is set) is the mesh's (--region or AWS_REGION)" in line


def test_a_command_raising_an_aws_error_exits_4(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Through ``main``: what the command raises is reported as one line on stderr."""
    import asya_pulumi.cli.status as status

    def no_credentials(args: object) -> int:
        raise NoCredentialsError()

    monkeypatch.setattr(status, "run", no_credentials)
    assert main(["status", "--namespace", "ops"]) == EXIT_AWS
    assert capsys.readouterr().err.startswith("asya: error: no AWS credentials found")


@pytest.mark.parametrize("command", [["--version"], ["init", "{tmp}/fresh"], ["--help"]])
def test_commands_that_do_not_talk_to_aws_do_not_import_boto3(tmp_path: Path, command: list[str]):
    argv = [part.replace("{tmp}", str(tmp_path)) for part in command]
    program = (
        "import sys\nfrom asya_pulumi.cli.main import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_asya_alone_prints_the_commands_and_succeeds(capsys: pytest.CaptureFixture[str]):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: asya") and all(f"    {name} " in out for name in ("dev", "send", "render", "ui"))


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["sned", "a", "{}"], "invalid choice: 'sned' (choose from 'dev', 'send',"),
        (["status", "--namspace", "x"], "unrecognized arguments: --namspace x; did you mean '--namespace'?"),
        (["dlq", "redrve", "x"], "dlq: argument COMMAND: invalid choice: 'redrve' (choose from 'redrive'); did you "
                                 "mean 'redrive'?"),
        (["kube", "stauts"], "did you mean 'status'?"),
        (["render", "--trie"], "unrecognized arguments: --trie; did you mean '--tree'?"),
    ],
)
def test_a_mistyped_command_or_option_suggests_the_closest(argv: list[str], said: str,
                                                            capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and said in err
    assert argv[0] != "sned" or err.rstrip().endswith("; did you mean 'send'?")


def test_nothing_close_suggests_nothing(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        main(["status", "--zzzzz"])
    assert capsys.readouterr().err == "asya: error: unrecognized arguments: --zzzzz\n"


def test_a_closed_endpoint_is_unreachable_at_once_and_a_proxy_is_left_to_answer(monkeypatch: pytest.MonkeyPatch):
    """`reachable` tries one TCP connection, so a one-shot command does not wait out botocore's retries of a
    refused connection (3 attempts with backoff: ~6 s)."""
    from asya_pulumi.cli.aws import Endpoints, reachable, sqs_client
    from asya_pulumi.local.broker import free_port

    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    closed = f"http://127.0.0.1:{free_port()}"
    client = sqs_client(Endpoints(region="us-east-1", sqs_endpoint=closed))
    with pytest.raises(EndpointConnectionError) as raised:
        reachable(client)
    assert "cannot reach" in (describe_aws_error(raised.value, region="us-east-1", endpoint=closed) or "")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    assert reachable(client) is client  # through a proxy, the proxy's answer is what counts
