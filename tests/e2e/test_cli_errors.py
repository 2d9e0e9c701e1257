"""Bad command lines and inputs: one ``asya: error:`` line on stderr naming the problem, exit status 2, no traceback.

Each of these fails before any process or broker starts, so these tests are fast.
"""

from __future__ import annotations

import shutil
import time
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


# --------------------------------------------------------------------------- handlers, imported before anything starts


def _pipeline(tmp_path: Path, example: str, edits: dict[str, tuple[str, str]]) -> Path:
    """A copy of ``example`` with ``edits`` ({file: (old, new)}) applied."""
    directory = tmp_path / example
    shutil.copytree(EXAMPLES / example, directory)
    for name, (old, new) in edits.items():
        text = (directory / name).read_text()
        assert old in text, (name, old)
        (directory / name).write_text(text.replace(old, new))
    return directory


def _assert_fails_before_the_broker(directory: Path, *expected: str) -> None:
    """``asya dev`` exits 2 with one line naming ``expected``, having started no broker and no process (it says
    so on stdout when it does, and ``--logs`` would hold their logs); and quickly: it waits on no process."""
    logs = directory.parent / "logs"
    started = time.monotonic()
    run = run_asya("dev", str(directory), "--logs", str(logs), timeout=60)
    elapsed = time.monotonic() - started
    assert run.returncode == 2, run.stdout + run.stderr
    assert "starting the embedded broker" not in run.stdout and "processes" not in run.stdout, run.stdout
    assert not logs.exists()
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("asya: error: ") and "Traceback" not in run.stderr
    for text in expected:
        assert text in line, (text, line)
    assert elapsed < 10, f"{elapsed:.1f} s to report a handler that cannot load"


def test_a_misspelled_python_handler_fails_before_the_broker_with_did_you_mean(tmp_path: Path):
    directory = _pipeline(tmp_path, "text-chunking", {"chunk.yaml": ("handlers.chunk", "handlers.chunck")})
    _assert_fails_before_the_broker(
        directory, "chunk.yaml", "'handlers.chunck'", "'chunck'", "did you mean 'chunk'?", "handler: handlers.chunk"
    )


def test_a_misspelled_node_handler_fails_before_the_broker_with_did_you_mean(tmp_path: Path):
    directory = _pipeline(tmp_path, "text-chunking", {"count-words.yaml": ("words.countWords", "words.countWord")})
    _assert_fails_before_the_broker(
        directory, "count-words.yaml", "'words.countWord'", "did you mean 'countWords'?", "handler: words.countWords"
    )


def test_a_missing_handler_module_fails_before_the_broker(tmp_path: Path):
    directory = _pipeline(tmp_path, "image-scoring", {"store.yaml": ("handlers.store", "handler.store")})
    _assert_fails_before_the_broker(directory, "store.yaml", "'handler.store'", "did you mean 'handlers'?",
                                    "handler: handlers.store")


def test_a_handler_module_whose_import_raises_fails_before_the_broker_naming_the_module(tmp_path: Path):
    edits = {"handlers.py": ("from __future__ import annotations\n",
                             "from __future__ import annotations\n\nimport a_dependency_that_is_not_installed\n")}
    directory = _pipeline(tmp_path, "text-chunking", edits)
    _assert_fails_before_the_broker(directory, "importing 'handlers'", "a_dependency_that_is_not_installed")


def test_a_handler_of_the_wrong_arity_fails_before_the_broker(tmp_path: Path):
    edits = {"handlers.py": ("def summarize(payload: dict[str, Any])", "def summarize(payload: dict[str, Any], ctx)")}
    directory = _pipeline(tmp_path, "text-chunking", edits)
    _assert_fails_before_the_broker(directory, "summarize.yaml", "cannot be called with one argument, the payload")
