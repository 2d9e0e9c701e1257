"""Every module imports on its own, in a fresh interpreter; no library module imports the CLI; no runtime module
imports the Pulumi package; ``asya trace``'s library loads no aiobotocore.

A cycle hidden behind a package ``__init__`` shows up only when the cycle's *second* module is imported first, so
each module is imported alone. One Python process imports the third-party dependencies once (they cannot hide a
cycle of ours), checks that none of our modules came with them, then forks a child per module: each child starts
from that state, imports one module, reports what it loaded and exits. About a hundred forks take a few seconds,
where a hundred fresh interpreters each loading pydantic and Pulumi's SDKs took a minute on two cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"asya_pulumi": ROOT / "asya_pulumi", "asya_runtime": ROOT / "runtime" / "asya_runtime"}

_CHILDREN = r"""
import importlib, json, os, sys, traceback

for third_party in ("pydantic", "yaml", "rich", "boto3", "botocore", "aiohttp",
                    "pulumi", "pulumi_aws", "pulumi_kubernetes", "prometheus_client"):
    try:
        importlib.import_module(third_party)
    except ImportError:
        pass
import pydantic, pydantic.json_schema  # pydantic imports its schema machinery on the first model: do it once here


class _Warm(pydantic.BaseModel):
    n: pydantic.PositiveInt = 1


_Warm.model_json_schema()
ours = sorted(m for m in sys.modules if m.split(".")[0] in ("asya_pulumi", "asya_runtime"))
if ours:
    raise SystemExit(f"a third-party import loaded our modules: {ours}")

results = {}
for module in json.loads(sys.argv[1]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(module)
            answer = {"ok": True, "loaded": sorted(m for m in sys.modules if m.startswith(("asya_", "aiobotocore")))}
        except BaseException:
            answer = {"ok": False, "error": traceback.format_exc()}
        with os.fdopen(write, "w") as out:
            json.dump(answer, out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as got:
        text = got.read()
    os.waitpid(pid, 0)
    results[module] = json.loads(text) if text else {"ok": False, "error": "the child died without an answer"}
print(json.dumps(results))
"""


def _modules() -> list[str]:
    found = []
    for package, directory in PACKAGES.items():
        for path in sorted(directory.rglob("*.py")):
            parts = path.relative_to(directory).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found.append(".".join((package, *parts)))
    return found


def _import_each() -> dict[str, dict[str, object]]:
    modules = _modules()
    half = len(modules) // 2
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILDREN, json.dumps(chunk)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for chunk in (modules[:half], modules[half:])  # two processes: the machine has two cores
    ]
    results: dict[str, dict[str, object]] = {}
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        results.update(json.loads(out))
    return results


def test_every_module_imports_alone_and_the_layers_point_down() -> None:
    results = _import_each()
    assert len(results) > 100 and "asya_pulumi.observability.scrape" in results
    failed = {m: r["error"] for m, r in results.items() if not r["ok"]}
    assert not failed, "\n".join(f"{m}:\n{e}" for m, e in failed.items())

    up_to_cli = {
        module: [m for m in r["loaded"] if m.startswith("asya_pulumi.cli")]  # type: ignore[attr-defined]
        for module, r in results.items()
        if not module.startswith("asya_pulumi.cli")
    }
    assert not {m: found for m, found in up_to_cli.items() if found}, "a library module imports the CLI"

    runtime_up = {
        module: [m for m in r["loaded"] if m.startswith("asya_pulumi")]  # type: ignore[attr-defined]
        for module, r in results.items()
        if module.startswith("asya_runtime")
    }
    assert not {m: found for m, found in runtime_up.items() if found}, "the runtime imports the Pulumi package"

    for light in ("asya_pulumi.ops.trace", "asya_pulumi.ops.records", "asya_pulumi.records"):
        assert not [m for m in results[light]["loaded"] if m.startswith("aiobotocore")], light  # type: ignore[attr-defined]
