"""``asya dev --ui`` on the image-scoring example, driven in a real headless Chromium (the OS's, via Playwright).

One run of the example with one input that fails on purpose (and carries markup in its payload); then the page:
the graph shows every actor of the mesh, the failed envelope is found by its id, its trace shows every hop the
record says it took and the handler's traceback, the markup is shown as text and never runs, and replay asks for
confirmation before sending. Screenshots of the graph and of the trace go to ``build/ui-screenshots/`` (the README's
picture is one of them).

Chromium comes from the OS packages (``apt-get install -y chromium``; ``scripts/test`` installs it as root); without
it the test is skipped with that reason. Playwright's own browser download is not used.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asya_pulumi.local.broker import LocalBroker
from e2e.conftest import ASYA, EXAMPLES, REPO, read_jsonl

CHROMIUM = os.environ.get("ASYA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = REPO / "build" / "ui-screenshots"
MARKUP = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
BROKEN_ID = "0badc0de-0000-4000-8000-000000000001"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium (scripts/test does)"
)


class DevUi:
    """A running ``asya dev --ui``: its page URL and its results file, once the run is over."""

    def __init__(self, process: subprocess.Popen[str], url: str, results: Path) -> None:
        self.process, self.url, self.results = process, url, results


def _read_until(process: subprocess.Popen[str], pattern: str, *, timeout_s: float, seen: list[str]) -> re.Match[str]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
    raise AssertionError(f"no line matching {pattern!r} from asya dev --ui:\n{''.join(seen)}")


@pytest.fixture
def dev_ui(broker: LocalBroker, namespace: str, tmp_path: Path) -> Iterator[DevUi]:
    inputs = tmp_path / "in.jsonl"
    broken = {"route": "score", "id": BROKEN_ID, "payload": {"image_id": MARKUP, "pixels": []}}
    lines = [*read_jsonl(EXAMPLES / "image-scoring" / "input.jsonl"), broken]
    inputs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    results = tmp_path / "results.jsonl"
    process = subprocess.Popen(
        [ASYA, "dev", str(EXAMPLES / "image-scoring"), "--input", str(inputs), "--results", str(results), "--ui",
         "--sqs-endpoint", broker.endpoint, "--namespace", namespace],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, start_new_session=True,
    )
    seen: list[str] = []
    try:
        url = _read_until(process, r"asya ui: (http://127\.0\.0\.1:\d+/)", timeout_s=120, seen=seen).group(1)
        _read_until(process, r"keeps running", timeout_s=120, seen=seen)  # the run is over, records are stored
        yield DevUi(process, url, results)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def page(dev_ui: DevUi) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15_000)
            page.goto(dev_ui.url)
            yield page
        finally:
            browser.close()


def test_page_shows_the_mesh_finds_an_envelope_and_its_hops(dev_ui: DevUi, page: Any):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    record = next(r for r in read_jsonl(dev_ui.results) if r["id"] == BROKEN_ID)

    # The graph: every actor of the example mesh and both sinks, with their live numbers.
    for actor in ("preprocess", "score-image", "judge", "store", "human-review", "success-sink", "error-sink"):
        page.wait_for_selector(f'svg .node[data-actor="{actor}"]')
    page.wait_for_selector('svg .edge.observed')  # hops records took: judge → store / human-review
    assert "errors 1" in page.inner_text('svg .node[data-actor="preprocess"]')
    page.locator("#graph-panel").screenshot(path=str(SCREENSHOTS / "graph.png"))

    # Find the failed envelope by id: one row, failed, and its trace opens.
    page.fill('#search input[name="id"]', BROKEN_ID)
    page.click('#search button[type="submit"]')
    row = page.locator(f'#records tr.record[data-id="{BROKEN_ID}"]')
    row.wait_for()
    assert page.locator("#records tr.record").count() == 1
    assert "failed" in row.inner_text() and "ValueError" in row.inner_text()
    page.wait_for_selector("#timeline .hop")
    hops = page.locator("#timeline .hop")
    assert len(record["hops"]) >= 2  # preprocess's attempts: retries, then the error
    assert hops.count() == len(record["hops"])  # every attempt the record carries, in order
    for i, hop in enumerate(record["hops"]):
        assert f'{hop["actor"]} #{hop["attempt"]}' in hops.nth(i).inner_text()
        assert hop["outcome"] in hops.nth(i).inner_text()
    errors = page.inner_text("#trace-errors")
    assert "ValueError" in errors and "Traceback (most recent call last)" in errors
    page.locator("#trace-panel").screenshot(path=str(SCREENSHOTS / "trace.png"))

    # Record content is data: the markup in the payload is shown as text and never runs.
    assert MARKUP in page.inner_text("#trace-records")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#trace-records img, #trace-records script").count() == 0

    # Replay asks first (a dry run lists what would be sent), then sends on confirmation.
    page.click("#replay-trace")
    page.wait_for_selector("#replay-list li")
    assert BROKEN_ID in page.inner_text("#replay-list") and "preprocess" in page.inner_text("#replay-list")
    page.click("#replay-confirm")
    page.wait_for_function("document.getElementById('replay-result').textContent.length > 0")
    assert "sent 1" in page.inner_text("#replay-result")
