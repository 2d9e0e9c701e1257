"""Bad command lines and inputs: one ``asya: error:`` line on stderr naming the problem, exit status 2, no traceback.

Each of these fails before any process or broker starts, so these tests are fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.conftest import EXAMPLES, run_asya

IMAGE = str(EXAMPLES / "image-scoring")


def _assert_usage_error(args: list[str], *expected: str) -> None:
    run = run_asya(*args, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("asya: error: ")
    assert "Traceback" not in run.stderr
    for text in expected:
        assert text in lines[0]


def test_missing_pipeline_directory(tmp_path: Path):
    _assert_usage_error(["dev", str(tmp_path / "nope"), "--send", "a", "{}"], "nope", "does not exist")


def test_manifest_error_names_the_file_and_field(tmp_path: Path):
    for source in (EXAMPLES / "image-scoring").glob("*.yaml"):
        text = source.read_text()
        if source.name == "judge.yaml":
            text = text.replace("concurrency: 8", "concurency: 8")
        (tmp_path / source.name).write_text(text)
    _assert_usage_error(["dev", str(tmp_path), "--send", "judge", "{}"], "judge.yaml", "concurency", "concurrency")


def test_unknown_actor_in_send():
    _assert_usage_error(["dev", IMAGE, "--send", "preprocess,scorer", '{"pixels": [1]}'], "unknown actor 'scorer'")


def test_unknown_route_name_in_send():
    _assert_usage_error(["dev", IMAGE, "--send", "rank", "{}"], "'rank'", "routes: score")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"route": "score", "payload": {"pixels": [1]}', "not a JSON object"),
        ('{"route": "score"}', '"payload"'),
        ('{"route": ["preprocess", "ghost"], "payload": {}}', "unknown actor 'ghost'"),
        ('{"route": "score", "payload": [1, 2]}', "'payload' must be a JSON object"),
    ],
)
def test_unreadable_input_line_names_file_and_line(tmp_path: Path, line: str, expected: str):
    path = tmp_path / "in.jsonl"
    path.write_text('{"route": "score", "payload": {"pixels": [1]}}\n' + line + "\n")
    _assert_usage_error(["dev", IMAGE, "--input", str(path)], f"{path}:2", expected)


def test_missing_input_file(tmp_path: Path):
    _assert_usage_error(["dev", IMAGE, "--input", str(tmp_path / "none.jsonl")], "cannot read input file")


def test_bad_payload_json_and_bad_replicas():
    _assert_usage_error(["dev", IMAGE, "--send", "score", "{pixels"], "PAYLOAD is not valid JSON")
    _assert_usage_error(["dev", IMAGE, "--send", "score", "{}", "--replicas", "ghost=2"], "unknown actor 'ghost'")


def test_unknown_command_and_option():
    _assert_usage_error(["deploy"], "invalid choice")
    _assert_usage_error(["dev", IMAGE, "--fast"], "unrecognized arguments: --fast")


def test_an_unknown_broker_names_the_choices():
    _assert_usage_error(["dev", IMAGE, "--broker", "elasticmq", "--send", "judge", "{}"], "elasticmq", "fauxqs")
