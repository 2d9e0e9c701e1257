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
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from asya_pulumi.local.broker import LocalBroker
from e2e.conftest import ASYA, EXAMPLES, REPO, read_jsonl

CHROMIUM = os.environ.get("ASYA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = REPO / "build" / "ui-screenshots"
MARKUP = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
BROKEN_ID = "0badc0de-0000-4000-8000-000000000001"
STORED_ID = "600dc0de-0000-4000-8000-000000000001"  # img-000, which the judge sends to `store`

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium (scripts/test does)"
)


class DevUi:
    """A running ``asya dev --ui``: its page URL and its results file, once the run is over."""

    def __init__(self, process: subprocess.Popen[str], url: str, results: Path) -> None:
        self.process, self.url, self.results = process, url, results


class Output:
    """The lines a process prints, collected by a thread (a select() on a buffered pipe misses lines already read)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(process,), daemon=True).start()

    def _pump(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, *, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r} from asya dev --ui:\n{''.join(self.seen)}")


@pytest.fixture
def dev_ui(broker: LocalBroker, namespace: str, tmp_path: Path) -> Iterator[DevUi]:
    inputs = tmp_path / "in.jsonl"
    broken = {"route": "score", "id": BROKEN_ID, "payload": {"image_id": MARKUP, "pixels": []}}
    lines = [*read_jsonl(EXAMPLES / "image-scoring" / "input.jsonl"), broken]
    lines[0] = {**lines[0], "id": STORED_ID}
    inputs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    results = tmp_path / "results.jsonl"
    process = subprocess.Popen(
        [ASYA, "dev", str(EXAMPLES / "image-scoring"), "--input", str(inputs), "--results", str(results), "--ui",
         "--sqs-endpoint", broker.endpoint, "--namespace", namespace],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, start_new_session=True,
    )
    output = Output(process)
    try:
        url = output.wait_for(r"asya ui: (http://127\.0\.0\.1:\d+/)", timeout_s=120).group(1)
        output.wait_for(r"keeps running", timeout_s=120)  # the run is over, every record is stored
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
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15_000)
            page.goto(dev_ui.url)
            yield page
        finally:
            browser.close()


def _search(page: Any, envelope_id: str) -> str:
    """Search by id from the mesh view; the one matching row's text, once its id link opened the trace view and
    that shows its hops."""
    if page.locator("#records-panel").is_hidden():
        page.click("#trace-back")
    page.fill('#search input[name="id"]', envelope_id)
    page.click('#search button[type="submit"]')
    expect(page.locator("#records tr.record")).to_have_count(1)  # the search's answer replaced the recent list
    row = page.locator(f'#records tr.record[data-id="{envelope_id}"]')
    text = str(row.inner_text())
    row.locator("a.trace-link").click()
    page.wait_for_selector(f'#timeline .branch[data-id="{envelope_id}"] .hop')
    return text


def _assert_hops_shown(page: Any, record: dict[str, Any]) -> None:
    """One timeline row per entry of the record's hop history, in order, with its actor, attempt and outcome."""
    rows = page.locator("#timeline .hop")
    assert rows.count() == len(record["hops"])
    for i, hop in enumerate(record["hops"]):
        text = rows.nth(i).inner_text()
        assert f'{hop["actor"]} #{hop["attempt"]}' in text and hop["outcome"] in text, (hop, text)


def test_page_shows_the_mesh_finds_an_envelope_and_its_hops(dev_ui: DevUi, page: Any):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    records = {r["id"]: r for r in read_jsonl(dev_ui.results)}

    # The graph: every actor of the example mesh and both sinks, with their live numbers.
    for actor in ("preprocess", "score-image", "judge", "store", "human-review", "success-sink", "error-sink"):
        page.wait_for_selector(f'svg .node[data-actor="{actor}"]')
    page.wait_for_selector('svg .edge.observed', state="attached")  # hops records took: judge → store, human-review
    assert "errors 1" in page.text_content('svg .node[data-actor="preprocess"]')  # SVG: no innerText
    page.locator("#graph-panel").screenshot(path=str(SCREENSHOTS / "graph.png"))

    # A succeeded envelope, found by id: its four hops in order, each with its timing.
    row = _search(page, STORED_ID)
    assert "succeeded" in row
    assert [h["actor"] for h in records[STORED_ID]["hops"]] == ["preprocess", "score-image", "judge", "store"]
    _assert_hops_shown(page, records[STORED_ID])
    page.locator("#trace-panel").screenshot(path=str(SCREENSHOTS / "trace.png"))
    page.screenshot(path=str(SCREENSHOTS / "page.png"), full_page=True)

    # The failed one: its hop, the error with the handler's traceback.
    row = _search(page, BROKEN_ID)
    assert "failed" in row and "ValueError" in row
    _assert_hops_shown(page, records[BROKEN_ID])
    page.click("#trace-errors details.traceback summary")  # the traceback is folded until asked for
    errors = page.inner_text("#trace-errors")
    assert "ValueError" in errors and "Traceback (most recent call last)" in errors
    page.locator("#trace-panel").screenshot(path=str(SCREENSHOTS / "trace-failed.png"))

    # Record content is data: the markup in the payload is shown as text and never runs.
    assert json.dumps(MARKUP) in page.inner_text("#trace-records")  # as JSON text, quotes escaped
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#trace-records img, #trace-records script, #records img").count() == 0
    page.click("#trace-back")
    page.locator("#graph-panel").screenshot(path=str(SCREENSHOTS / "graph.png"))  # with the error edge
    page.click(f'#records tr.record[data-id="{BROKEN_ID}"] a.trace-link')
    page.wait_for_selector(f'#timeline .branch[data-id="{BROKEN_ID}"] .hop')

    # Replay asks first (a dry run lists what would be sent), then sends on confirmation.
    page.click("#replay-trace")
    page.wait_for_selector("#replay-list li")
    assert BROKEN_ID in page.inner_text("#replay-list") and "preprocess" in page.inner_text("#replay-list")
    page.click("#replay-confirm")
    expect(page.locator("#replay-result")).to_contain_text("sent 1")  # (wait_for_function would need eval: CSP)
