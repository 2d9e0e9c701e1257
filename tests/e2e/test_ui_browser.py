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

import itertools
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from asya_pulumi.local.broker import LocalBroker
from asya_pulumi.ops.replay import replay_id
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


#: The page's one time format (app.js ``fmtTime``): UTC to the millisecond, the zone named.
TIME_FORMAT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$")


def _epoch(text: str) -> float:
    assert TIME_FORMAT.match(text), text
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f UTC").replace(tzinfo=UTC).timestamp()


def _seconds(text: str) -> float:
    """A duration as the page writes it (``840 ms``, ``1.25 s``), in seconds."""
    number, unit = text.removeprefix("+").split()
    return float(number) / (1000 if unit == "ms" else 1)


def _share(style: str, name: str) -> float:
    match = re.search(rf"(?:^|;)\s*{name}:\s*([\d.]+)%", style)
    assert match, (name, style)
    return float(match.group(1))


def test_trace_view_is_addressable_and_lays_hops_on_a_time_axis(dev_ui: DevUi, page: Any):
    record = {r["id"]: r for r in read_jsonl(dev_ui.results)}[STORED_ID]
    hops = record["hops"]
    t0, t1 = min(h["start"] for h in hops), max(h["end"] for h in hops)

    page.goto(f"{dev_ui.url}#/trace/{STORED_ID}")
    page.wait_for_selector(f'#timeline .branch[data-id="{STORED_ID}"] .hop')
    for _ in range(2):  # as opened from a link, and again after a reload: the view is its address
        assert page.locator("#records-panel").is_hidden() and page.locator("#graph-panel").is_hidden()
        assert abs(_epoch(page.inner_text("#trace-start")) - t0) <= 0.002
        total = _seconds(page.inner_text("#trace-total"))
        assert abs(total - (t1 - t0)) <= 0.01
        assert page.inner_text("#trace-attempts") == f"{len(hops)} attempt(s)"
        assert page.inner_text("#trace-error-count") == "0 error(s)"
        ticks = page.locator("#trace-axis .tick")
        assert ticks.count() == 5 and ticks.first.inner_text() == "+0 ms"
        assert abs(_seconds(ticks.last.inner_text()) - total) <= 0.01
        bars = page.locator("#timeline .hop .hop-bar")
        assert bars.count() == len(hops)
        for i, hop in enumerate(hops):  # each bar starts at its hop's start and is as long as its duration
            style = bars.nth(i).get_attribute("style")
            assert abs(_share(style, "left") - (hop["start"] - t0) / (t1 - t0) * 100) < 0.5, (hop, style)
            width = max((hop["end"] - hop["start"]) / (t1 - t0) * 100, 0.5)
            assert abs(_share(style, "width") - width) < 0.5, (hop, style)
        queued = [b for a, b in itertools.pairwise(hops) if round(b["start"] - a["end"], 3) > 0]
        assert page.locator("#timeline .hop .hop-wait").count() == len(queued)  # time in a queue is drawn
        page.reload()
        page.wait_for_selector(f'#timeline .branch[data-id="{STORED_ID}"] .hop')

    page.goto(f"{dev_ui.url}#/trace/{BROKEN_ID}")
    page.wait_for_selector(f'#timeline .branch[data-id="{BROKEN_ID}"] .hop')
    assert page.inner_text("#trace-error-count") == "1 error(s)"
    traceback = page.locator("#trace-errors details.traceback pre")
    assert traceback.is_hidden()  # folded: the error's type and message show, the traceback on request
    page.click("#trace-errors details.traceback summary")
    assert traceback.is_visible() and "Traceback (most recent call last)" in traceback.inner_text()
    page.click("#trace-back")
    expect(page.locator("#records-panel")).to_be_visible()
    assert page.locator("#trace-panel").is_hidden()


def test_every_time_on_the_page_is_in_one_format_with_its_zone(dev_ui: DevUi, page: Any):
    page.wait_for_selector("#records tr.record time.ts")
    page.wait_for_selector("#refreshed time.ts")
    page.goto(f"{dev_ui.url}#/trace/{BROKEN_ID}")
    page.wait_for_selector("#trace-start time.ts")
    page.click("#trace-back")
    page.wait_for_selector("#records tr.record time.ts")
    for view in ("#/", f"#/trace/{STORED_ID}"):
        page.goto(f"{dev_ui.url}{view}")
        page.wait_for_selector("#records tr.record time.ts" if view == "#/" else "#trace-start time.ts")
        shown = page.locator("time.ts:visible").all_inner_texts()
        assert shown and all(TIME_FORMAT.match(t) for t in shown), shown
        text = page.inner_text("body")  # no other clock time anywhere, in any other format
        stamps = re.findall(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d[^\n]{0,11}", text)
        assert stamps and all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC", s) for s in stamps), stamps


def test_the_graph_draws_an_error_edge_from_each_actor_that_failed_envelopes(dev_ui: DevUi, page: Any):
    edge = page.locator('svg path.edge.error[data-from="preprocess"][data-to="error-sink"]')
    edge.wait_for(state="attached")
    assert page.locator("svg path.edge.error").count() == 1  # only preprocess failed one: no guessed edges
    assert "1 envelope(s) ended here recently" in page.text_content('svg path.edge.error title')
    declared = page.locator("svg path.edge.declared").first
    style = "e => getComputedStyle(e).stroke + ' ' + getComputedStyle(e).strokeDasharray"
    assert edge.evaluate(style) != declared.evaluate(style)  # drawn apart from the routes


def test_records_show_their_count_page_through_and_filter_by_time(dev_ui: DevUi, page: Any):
    every = {r["id"] for r in read_jsonl(dev_ui.results)}
    page.wait_for_selector("#records tr.record")
    page.select_option('#search select[name="limit"]', "5")
    page.click('#search button[type="submit"]')
    expect(page.locator("#records tr.record")).to_have_count(5)
    expect(page.locator("#records-total")).to_have_text(f"{len(every)} match")
    assert page.is_disabled("#records-prev") and page.is_enabled("#records-next")
    seen = set(page.locator("#records tr.record").evaluate_all("rows => rows.map(r => r.dataset.id)"))
    page.click("#records-next")
    expect(page.locator("#records tr.record")).to_have_count(len(every) - 5)
    assert "showing 6–" in page.inner_text("#records-count")
    assert page.is_enabled("#records-prev") and page.is_disabled("#records-next")
    seen |= set(page.locator("#records tr.record").evaluate_all("rows => rows.map(r => r.dataset.id)"))
    assert seen == every  # every record once, across the pages
    page.click("#records-prev")
    expect(page.locator("#records tr.record")).to_have_count(5)

    page.fill('#search input[name="since"]', "2999-01-01T00:00")
    page.click('#search button[type="submit"]')
    expect(page.locator("#records-total")).to_have_text("0 match")
    assert "no records match" in page.inner_text("#records")
    assert TIME_FORMAT.match(page.locator("#records-count time.ts").inner_text())  # the window, in the one format
    page.fill('#search input[name="since"]', "1h")
    page.fill('#search input[name="until"]', "")
    page.click('#search button[type="submit"]')
    expect(page.locator("#records-total")).to_have_text(f"{len(every)} match")
    page.fill('#search input[name="since"]', "")
    page.fill('#search input[name="until"]', "2020-01-01T00:00")
    page.click('#search button[type="submit"]')
    expect(page.locator("#records-total")).to_have_text("0 match")


def test_replay_dialog_sends_an_edited_payload_to_another_actor_after_review(dev_ui: DevUi, page: Any):
    replayed = replay_id(BROKEN_ID)
    fixed = {"image_id": "fixed-by-hand", "pixels": [10, 20, 30]}
    page.goto(f"{dev_ui.url}#/trace/{BROKEN_ID}")
    page.wait_for_selector(f'#timeline .branch[data-id="{BROKEN_ID}"] .hop')
    page.click("#replay-trace")
    page.wait_for_selector("#replay-list li")
    assert f"{BROKEN_ID} ⇒ {replayed} → preprocess" in page.inner_text("#replay-list")  # the default target
    assert '"pixels": []' in page.input_value("#replay-payload")  # the record's payload, ready to edit

    # the list of targets is filled from a request of its own: on a loaded machine it can come after the dialog
    page.wait_for_function("() => [...document.querySelectorAll('#replay-to option')]"
                           ".some(o => o.value === 'score-image' || o.textContent.trim() === 'score-image')",
                           timeout=60_000)
    page.select_option("#replay-to", "score-image")
    assert page.is_disabled("#replay-confirm")  # a changed request must be reviewed before it can be sent
    page.check("#replay-edit")
    page.fill("#replay-payload", json.dumps(fixed))
    assert page.is_disabled("#replay-confirm")
    page.click("#replay-review")
    expect(page.locator("#replay-list li")).to_contain_text(f"{BROKEN_ID} ⇒ {replayed} → score-image")
    shown = json.loads(page.inner_text("#replay-list li pre.replay-payload"))
    assert shown == fixed  # the confirmation shows exactly the payload Send sends
    assert "Send will send exactly this" in page.inner_text("#replay-plan")
    page.click("#replay-confirm")
    expect(page.locator("#replay-result")).to_have_text("sent 1")
    assert f"{BROKEN_ID} ⇒ {replayed} sent to score-image" in page.inner_text("#replay-sent")

    # What it did, as the trace now tells it: the replay ran from score-image on, with the edited payload (it
    # keeps the original route's rest, so it may fail further on: `asya replay --to` semantics).
    page.click("#replay-cancel")
    deadline = time.monotonic() + 60
    while page.locator(f'#timeline .branch[data-id="{replayed}"] .hop').count() == 0:
        assert time.monotonic() < deadline, page.inner_text("#trace-panel")
        time.sleep(1)
        page.reload()
        page.wait_for_selector(f'#timeline .branch[data-id="{BROKEN_ID}"] .hop')
    branch = page.locator(f'#timeline .branch[data-id="{replayed}"]')
    hops = branch.locator(".hop").evaluate_all("rows => rows.map(r => r.dataset.actor)")
    assert hops[:2] == ["preprocess", "score-image"]  # the original's history, then the replay at its target
    assert "fixed-by-hand" in page.inner_text("#trace-records")


def test_at_800_px_the_page_never_scrolls_sideways(dev_ui: DevUi, page: Any):
    page.set_viewport_size({"width": 800, "height": 900})
    width = "document.scrollingElement.scrollWidth"
    page.wait_for_selector("#records tr.record")
    page.wait_for_selector('svg .node[data-actor="error-sink"]')
    assert page.evaluate(width) <= 800
    page.goto(f"{dev_ui.url}#/trace/{BROKEN_ID}")
    page.wait_for_selector(f'#timeline .branch[data-id="{BROKEN_ID}"] .hop')
    page.click("#trace-errors details.traceback summary")
    assert page.evaluate(width) <= 800
    page.screenshot(path=str(SCREENSHOTS / "trace-800.png"), full_page=True)
    page.click("#replay-trace")
    page.wait_for_selector("#replay-list li")
    assert page.evaluate(width) <= 800
    page.click("#replay-cancel")
    page.goto(f"{dev_ui.url}#/")
    page.wait_for_selector("#records tr.record")
    assert page.evaluate(width) <= 800
    page.screenshot(path=str(SCREENSHOTS / "page-800.png"), full_page=True)
