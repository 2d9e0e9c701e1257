"""``asya init NAME`` writes a pipeline directory that ``asya dev NAME`` runs as it is, with no other argument.

The whole user path, as installed commands in a subprocess: init, then dev (which reads the directory's
input.jsonl), every input ends in the success sink with the handler's greeting. Measured ~8 s on the 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

from asya_pulumi.cli.errors import EXIT_USAGE
from asya_pulumi.spec import load_pipeline_dir
from e2e.conftest import read_jsonl, run_asya


def test_init_then_dev_runs_as_is(tmp_path: Path):
    created = run_asya("init", "hello-mesh", cwd=tmp_path, timeout=60)
    assert created.returncode == 0, created.stderr
    assert "asya dev hello-mesh" in created.stdout
    directory = tmp_path / "hello-mesh"
    assert sorted(p.name for p in directory.iterdir()) == [
        "Dockerfile", "handlers.py", "hello.yaml", "input.jsonl", "mesh.yaml"
    ]
    mesh = load_pipeline_dir(directory)
    assert (mesh.namespace, [a.name for a in mesh.actors], mesh.routes) == ("hello-mesh", ["hello"],
                                                                            {"greet": ["hello"]})

    run = run_asya("dev", "hello-mesh", cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "input: hello-mesh/input.jsonl" in run.stdout
    assert "3 input(s) → 3 final record(s): 3 succeeded, 0 failed" in run.stdout

    results = tmp_path / "out.jsonl"
    again = run_asya("dev", "hello-mesh", "--send", "greet", '{"name": "ops"}', "--results", str(results),
                     cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    [record] = read_jsonl(results)
    assert record["payload"] == {"name": "ops", "greeting": "hello, ops!"}
    assert record["route"]["prev"] == ["hello"]


def test_init_refuses_a_bad_name_and_an_existing_directory_and_writes_nothing(tmp_path: Path):
    bad = run_asya("init", "Hello_Mesh", cwd=tmp_path, timeout=60)
    assert bad.returncode == EXIT_USAGE
    assert bad.stderr.strip().startswith("asya: error: NAME 'Hello_Mesh' is the mesh namespace")
    assert "not a DNS-1123 label" in bad.stderr and "'hello-mesh'" in bad.stderr
    assert not (tmp_path / "Hello_Mesh").exists()

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    taken = run_asya("init", "taken", cwd=tmp_path, timeout=60)
    assert taken.returncode == EXIT_USAGE
    assert "already exists" in taken.stderr
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]
