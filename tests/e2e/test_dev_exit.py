"""``asya dev`` exits promptly: once the results are printed, every process (the sidecars on their quiet queues,
the handler servers, the embedded broker) is stopped and the command has exited within a second — measured here
with a wide margin for a busy machine. The sidecars end their 20 s long polls with a wake-up message
(runtime/asya_runtime/sidecar/wakeup.py), so nothing waits for the supervisor's SIGKILL."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psutil

from e2e.conftest import ASYA, EXAMPLES, REPO

#: The promise is 1 s; the margin is for a 2-core machine shared with other work.
EXIT_WITHIN_S = 3.0


def test_the_command_exits_within_seconds_of_printing_the_results(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    process = subprocess.Popen(
        [ASYA, "dev", str(EXAMPLES / "image-scoring"), "--input", str(EXAMPLES / "image-scoring" / "input.jsonl"),
         "--results", str(results), "--logs", str(tmp_path / "logs")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
    )
    assert process.stdout is not None
    lines: list[str] = []
    children: list[psutil.Process] = []
    printed_at = 0.0
    for line in process.stdout:
        lines.append(line)
        if line.startswith("sent "):  # every process runs now: remember them to prove they are gone at the end
            children = psutil.Process(process.pid).children(recursive=True)
        if line.startswith("results: "):  # the summary's last line
            printed_at = time.monotonic()
    code = process.wait(timeout=60)
    exited_s = time.monotonic() - printed_at
    output = "".join(lines)

    assert code == 0, output
    assert printed_at, output
    assert len(results.read_text().splitlines()) == 5
    print(f"exited {exited_s:.2f} s after printing the results")
    logs = log_tails(tmp_path / "logs")
    assert exited_s < EXIT_WITHIN_S, f"exited {exited_s:.2f} s after the results:\n{output}\n{logs}"
    assert len(children) >= 7  # broker, sidecar host, 5 handler servers
    _gone, alive = psutil.wait_procs(children, timeout=0.5)
    assert alive == [], [" ".join(p.cmdline()) for p in alive]
    # One process hosted every sidecar; each line of its log names the sidecar it comes from.
    events = [json.loads(line) for line in (tmp_path / "logs" / "sidecars-0.log").read_text().splitlines()]
    actors = {"preprocess", "score-image", "judge", "store", "human-review", "success-sink", "error-sink"}
    assert {e["actor"] for e in events if e["event"] in ("started", "stopped")} == actors
    assert sum(e["event"] == "stopped" for e in events) == len(actors)  # each drained and ended on its own


def log_tails(directory: Path, *, lines: int = 8) -> str:
    """The last lines of every process log: which process was still stopping when the supervisor killed it."""
    return "\n".join(
        f"--- {log.name}\n" + "".join(log.read_text(errors="replace").splitlines(keepends=True)[-lines:])
        for log in sorted(directory.rglob("*.log"))
    )
