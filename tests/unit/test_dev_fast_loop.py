"""The pieces of a fast ``asya dev``: lazy CLI imports, one process for every sidecar (started early, waiting for
its queues), multi-marker readiness, and ``--watch``'s file polling and result diff."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asya_pulumi.cli.dev.run import RunOutcome
from asya_pulumi.cli.dev.watch import FilePoller, print_diff, record_lines, watched_files
from asya_pulumi.local.plan import SIDECAR_HOST_GROUP, MeshPlan, process_specs
from asya_pulumi.local.processes import ProcessSpec, Supervisor
from asya_pulumi.records import FinalRecord
from asya_pulumi.spec.actor import AsyncActorSpec
from asya_pulumi.spec.mesh import MeshSpec
from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import new_envelope
from asya_runtime.sidecar.host import ENV_START_FILE, parse_configs

_MODULES_AFTER = """
import sys
from asya_pulumi.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "pulumi", "aiobotocore"))))
"""


@pytest.mark.parametrize("argv", [["--help"], ["dev", "--help"], ["bogus"]])
def test_asya_help_and_usage_errors_import_no_cloud_sdk(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", _MODULES_AFTER, *argv], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "", done.stdout


def test_the_lazy_import_check_would_see_boto3() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _MODULES_AFTER, "status", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "boto3" in done.stdout.splitlines()[-1]  # `asya status` itself needs boto3: it is imported then


def _mesh(*names: str) -> MeshSpec:
    actors = [AsyncActorSpec.model_validate({"name": n, "image": "x", "handler": f"steps.{n}"}) for n in names]
    return MeshSpec(namespace="fast", actors=actors, routes={"r": list(names)})


def _plan(tmp_path: Path, mesh: MeshSpec, **extra: object) -> MeshPlan:
    return MeshPlan(
        mesh=mesh, pipeline_dir=tmp_path, region="us-east-1", sqs_endpoint="http://127.0.0.1:1",
        s3_endpoint="http://127.0.0.1:1", bucket="b", socket_dir=tmp_path, **extra,  # type: ignore[arg-type]
    )


def test_every_sidecar_of_a_replica_index_runs_in_one_process(tmp_path: Path) -> None:
    plan = _plan(tmp_path, _mesh("a", "b", "c"), replicas={"b": 2})
    specs = {s.name: s for s in process_specs(plan)}
    assert sorted(specs) == ["a-0-handler", "b-0-handler", "b-1-handler", "c-0-handler", "sidecars-0", "sidecars-1"]
    hosted = {name: parse_configs(specs[name].argv[3:]) for name in ("sidecars-0", "sidecars-1")}
    assert [(c.actor, c.mode) for c in hosted["sidecars-0"]] == [
        ("a", "actor"), ("b", "actor"), ("c", "actor"), ("success-sink", "success-sink"), ("error-sink", "error-sink")
    ]
    assert [(c.actor, c.socket_path) for c in hosted["sidecars-1"]] == [("b", str(tmp_path / "b-1.sock"))]
    assert specs["sidecars-0"].ready_count == 5 and specs["sidecars-1"].ready_count == 1
    assert specs["sidecars-0"].group == SIDECAR_HOST_GROUP
    assert not any(k.startswith("ASYA_") for k in specs["sidecars-0"].env)  # settings travel per sidecar, in argv


def test_a_plan_can_still_run_one_process_per_sidecar_as_pods_do(tmp_path: Path) -> None:
    specs = process_specs(_plan(tmp_path, _mesh("a"), replicas={}, shared_sidecars=False))
    assert sorted(s.name for s in specs) == ["a-0-handler", "a-0-sidecar", "error-sink-0", "success-sink-0"]
    sidecar = next(s for s in specs if s.name == "a-0-sidecar")
    assert SidecarConfig.from_env(sidecar.env).actor == "a"


def test_the_host_names_the_argument_that_is_not_a_sidecar_config() -> None:
    good = json.dumps({"ASYA_ACTOR": "a", "ASYA_NAMESPACE": "n"})
    assert [c.actor for c in parse_configs([good])] == ["a"]
    with pytest.raises(ValueError, match="sidecar 2 of 2: not a JSON object"):
        parse_configs([good, "[1]"])
    with pytest.raises(ValueError, match="sidecar 1 of 1: ASYA_NAMESPACE: Field required"):
        parse_configs([json.dumps({"ASYA_ACTOR": "a"})])


def _spec(name: str, code: str, tmp_path: Path, **extra: object) -> ProcessSpec:
    return ProcessSpec(
        name=name, argv=[sys.executable, "-c", code], env=dict(os.environ), cwd=tmp_path, group=name,
        **extra,  # type: ignore[arg-type]
    )


def test_readiness_can_need_a_marker_several_times(tmp_path: Path) -> None:
    """A process hosting several sidecars is ready once each has logged that it consumes its queue."""
    twice = "import time; print('up', flush=True); time.sleep(1); print('up', flush=True); time.sleep(60)"
    spec = _spec("host", twice, tmp_path, ready_marker="up", ready_count=2)
    with Supervisor(specs=[spec], log_dir=tmp_path / "logs") as supervisor:
        assert supervisor.wait_ready(timeout_s=30) == []
        assert supervisor.log_since_start("host").count("up") == 2  # not ready at the first one


def test_the_sidecar_processes_of_asya_dev_wait_for_the_start_file(tmp_path: Path) -> None:
    plan = _plan(tmp_path, _mesh("a"), replicas={}, sidecar_start_file=tmp_path / "go")
    [host] = [s for s in process_specs(plan) if s.group == SIDECAR_HOST_GROUP]
    assert host.env[ENV_START_FILE] == str(tmp_path / "go")
    code = "import sys; from pathlib import Path; from asya_runtime.sidecar.host import wait_for_file; " \
        "wait_for_file(Path(sys.argv[1])); print('went')"
    waiting = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "go")], stdout=subprocess.PIPE, text=True)
    with pytest.raises(subprocess.TimeoutExpired):
        waiting.wait(timeout=1)
    (tmp_path / "go").touch()
    assert waiting.communicate(timeout=30)[0] == "went\n"


def test_watched_files_reload_their_own_actors_and_helpers_reload_every_actor(tmp_path: Path) -> None:
    for name in ("steps.py", "helpers.py", "tool.js", "notes.txt"):
        (tmp_path / name).write_text("")
    mesh = MeshSpec(
        namespace="w",
        actors=[
            AsyncActorSpec.model_validate({"name": "a", "image": "x", "handler": "steps.a"}),
            AsyncActorSpec.model_validate({"name": "b", "image": "x", "handler": "tool.b"}),
        ],
        routes={"r": ["a", "b"]},
    )
    files = watched_files(mesh, tmp_path)
    assert {p.name: v for p, v in files.items()} == {
        "steps.py": ["a"], "tool.js": ["b"], "helpers.py": ["a", "b"]
    }


def test_the_poller_reports_a_changed_file_once(tmp_path: Path) -> None:
    path = tmp_path / "h.py"
    path.write_text("x = 1\n")
    poller = FilePoller([path])
    assert poller.changed() == []
    path.write_text("x = 22\n")
    assert poller.changed() == [path]
    assert poller.changed() == []


def _record(envelope_id: str, payload: object, *, parent: str | None = None, ok: bool = True) -> FinalRecord:
    envelope = {"id": envelope_id, "route": {"prev": ["a"]}, "payload": payload}
    if parent:
        envelope["parent_id"] = parent
    if not ok:
        envelope["status"] = {"error": {"actor": "a", "type": "ValueError", "message": "bad"}}
    return FinalRecord(key=f"{'succeeded' if ok else 'failed'}/{envelope_id}.json", envelope=envelope)


def test_the_diff_shows_only_inputs_whose_records_changed(capsys: pytest.CaptureFixture[str]) -> None:
    one, two = new_envelope(route=["a"], payload={}), new_envelope(route=["a"], payload={})
    before = RunOutcome(
        inputs=[one, two], records=[_record(one.id, {"v": 1}), _record(two.id, {"v": 2})], missing=[], problems=[],
        owners={one.id: one.id, two.id: two.id},
    )
    after = RunOutcome(
        inputs=[one, two], records=[_record(one.id, {"v": 1}), _record("kid", {"v": 3}, parent=two.id, ok=False)],
        missing=[], problems=[], owners={one.id: one.id, "kid": two.id},
    )
    print_diff(before=record_lines(before), after=record_lines(after), labels=["input 1", "input 2"])
    out = capsys.readouterr().out
    assert "input 1" not in out
    assert '  input 2:\n    - ok   a  {"v": 2}\n    + FAIL at a: ValueError: bad\n' in out
    assert "1 input(s) changed, 1 unchanged since the previous run" in out


def test_resend_without_watch_is_a_usage_error() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "image-scoring"
    done = subprocess.run(
        [sys.executable, "-m", "asya_pulumi.cli.main", "dev", str(examples), "--send", "score", "{}", "--resend"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "--resend re-sends after a reload: it needs --watch" in done.stderr + done.stdout


def test_a_failed_reload_shows_the_handler_server_s_message_and_traceback_not_raw_json() -> None:
    from asya_pulumi.cli.dev.watch import _tail

    event = {"event": "startup_failed", "message": "importing 'shout' raised SyntaxError",
             "traceback": "Traceback (most recent call last):\n  File \"shout.py\", line 1\n"
                          "SyntaxError: '(' was never closed"}
    shown = _tail("starting\n" + json.dumps(event) + "\n")
    assert shown.splitlines() == [
        "  starting", "  importing 'shout' raised SyntaxError", "  Traceback (most recent call last):",
        '    File "shout.py", line 1', "  SyntaxError: '(' was never closed",
    ]
