"""The handler pre-flight for deploy (``stacks/``, so ``asya render`` and ``pulumi preview``): the pipeline's own
handler files are imported in throwaway processes (the handler servers' ``--check``) and a mistake of the code fails
the program with the manifest named; what only the image has, or what only this machine lacks, is passed over."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from asya_pulumi.checks.handlers import load_checked_pipeline
from asya_pulumi.spec import SpecError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _copy(tmp_path: Path, example: str) -> Path:
    directory = tmp_path / example
    shutil.copytree(EXAMPLES / example, directory)
    return directory


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_the_examples_pass() -> None:
    for example in ("image-scoring", "text-chunking"):
        assert load_checked_pipeline(EXAMPLES / example).actors


@pytest.mark.parametrize(
    ("manifest", "old", "new", "fix"),
    [
        ("chunk.yaml", "handlers.chunk", "handlers.chunck", "handler: handlers.chunk"),
        ("count-words.yaml", "words.countWords", "words.countWord", "handler: words.countWords"),
    ],
    ids=["python", "node"],
)
def test_a_misspelled_handler_fails_the_program_naming_the_manifest_and_the_fix(
    tmp_path: Path, manifest: str, old: str, new: str, fix: str
) -> None:
    directory = _copy(tmp_path, "text-chunking")
    _edit(directory / manifest, old, new)
    with pytest.raises(SpecError) as info:
        load_checked_pipeline(directory)
    [problem] = info.value.problems
    assert problem.startswith(f"{directory / manifest}: handler '{new}'")
    assert "did you mean" in problem and fix in problem


def test_a_handler_only_the_image_holds_is_passed_over_in_silence(tmp_path: Path) -> None:
    directory = _copy(tmp_path, "text-chunking")
    _edit(directory / "chunk.yaml", "handlers.chunk", "textkit.pipeline.chunk")  # a package installed in the image
    _edit(directory / "count-words.yaml", "words.countWords", "counting.countWords")
    assert len(load_checked_pipeline(directory).actors) == 3


def test_what_only_this_machine_lacks_is_passed_over_but_a_syntax_error_is_not(tmp_path: Path) -> None:
    directory = _copy(tmp_path, "text-chunking")
    handlers = directory / "handlers.py"
    _edit(handlers, "from typing import Any\n", "from typing import Any\n\nimport torch_only_in_the_image\n")
    assert len(load_checked_pipeline(directory).actors) == 3  # the image installs it: not this machine's to judge
    _edit(handlers, "def summarize(payload: dict[str, Any])", "def summarize(payload: dict[str, Any]")
    with pytest.raises(SpecError) as info:
        load_checked_pipeline(directory)
    [problem] = info.value.problems  # one module, one mistake: both actors' manifests in one line
    assert "SyntaxError" in problem and "handlers.py" in problem and "(the same module:" in problem
