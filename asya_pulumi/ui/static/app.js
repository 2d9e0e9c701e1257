// asya ui: the mesh graph, final records, one envelope's trace, replay. No framework, no build step.
// Every value that comes from a record (ids, payloads, errors, actor names) is user data: it reaches the page
// only through textContent / setAttribute, never innerHTML.
"use strict";

const TOKEN = document.querySelector('meta[name="asya-token"]').content;
const SVG_NS = "http://www.w3.org/2000/svg";
const NODE_W = 178, NODE_H = 64, COL_W = 236, ROW_H = 86, PAD = 16;
const POLL_MS = 3000;

function el(tag, attrs, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "onclick") node.addEventListener("click", value);
    else if (key === "style") Object.assign(node.style, value); // CSSOM: allowed by the CSP, unlike style=""
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options) {
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function showError(id, error) {
  const box = document.getElementById(id);
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

// The page's one time format: UTC, to the millisecond, the zone named ("2026-12-07 16:30:05.123 UTC"), the same
// whatever the browser's zone, so a time on the page reads the same as in `asya trace` and in the records.
function fmtTime(epoch) {
  if (epoch === null || epoch === undefined) return "";
  return new Date(epoch * 1000).toISOString().replace("T", " ").replace("Z", " UTC");
}

// A time for the page: a <time> element (machine-readable datetime, the one format as text).
function timeEl(epoch) {
  if (epoch === null || epoch === undefined) return "";
  return el("time", { class: "ts", datetime: new Date(epoch * 1000).toISOString() }, fmtTime(epoch));
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "";
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

// ---------------------------------------------------------------------------------------------------- graph

async function refreshGraph() {
  try {
    const graph = await api("/api/graph");
    drawGraph(graph);
    showError("graph-error", graph.records_problem ? `no recent records: ${graph.records_problem}` : null);
    document.getElementById("refreshed").replaceChildren("updated ", timeEl(Date.now() / 1000));
  } catch (error) {
    showError("graph-error", error);
  }
}

// Actors with a queue (replay targets), from the latest graph.
let knownActors = [];

function drawGraph(graph) {
  knownActors = graph.nodes.filter((n) => n.kind === "actor" && n.has_queue).map((n) => n.name);
  const svg = document.getElementById("graph");
  svg.replaceChildren();
  const pos = {};
  let width = 0, height = 0;
  for (const node of graph.nodes) {
    const x = PAD + node.column * COL_W, y = PAD + node.row * ROW_H;
    pos[node.name] = { x, y };
    width = Math.max(width, x + NODE_W + PAD);
    height = Math.max(height, y + NODE_H + PAD);
  }
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.append(el("svg:defs", {}, el("svg:marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  }, el("svg:path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" })), el("svg:marker", {
    id: "arrow-error", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  }, el("svg:path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead error" }))));
  for (const edge of graph.edges) {
    const a = pos[edge.from], b = pos[edge.to];
    if (!a || !b) continue;
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    const d = x2 > x1 ? `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`
      : `M ${a.x + NODE_W / 2} ${a.y + NODE_H} C ${a.x} ${a.y + 2 * NODE_H}, ${b.x} ${b.y - NODE_H}, ${b.x + NODE_W / 2} ${b.y}`;
    const what = edge.kind === "error" ? `${edge.count} envelope(s) ended here recently` : edge.kind;
    svg.append(el("svg:path", {
      d, class: `edge ${edge.kind}`, "data-from": edge.from, "data-to": edge.to,
      "marker-end": edge.kind === "error" ? "url(#arrow-error)" : "url(#arrow)",
    }, el("svg:title", {}, `${edge.from} → ${edge.to} (${what})`)));
    if (edge.kind === "error") {
      svg.append(el("svg:text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, class: "edge-label error" }, `✕ ${edge.count}`));
    }
  }
  for (const node of graph.nodes) {
    const { x, y } = pos[node.name];
    const classes = ["node", node.kind];
    if (node.dlq > 0) classes.push("dead");
    if (node.errors > 0) classes.push("erring");
    if (!node.has_queue) classes.push("missing");
    const rate = node.error_rate === null ? "" : ` (${Math.round(node.error_rate * 100)}%)`;
    const stats = node.has_queue
      ? `waiting ${node.waiting} · in flight ${node.in_flight} · DLQ ${node.dlq}`
      : "no queue in this namespace";
    const group = el("svg:g", {
      class: classes.join(" "), "data-actor": node.name, transform: `translate(${x},${y})`,
      onclick: () => searchRecords({ id: "", actor: node.name }),
    },
      el("svg:rect", { width: NODE_W, height: NODE_H, rx: 8 }),
      el("svg:text", { x: 10, y: 20, class: "name" }, node.name),
      el("svg:text", { x: 10, y: 38, class: "stats" }, stats),
      el("svg:text", { x: 10, y: 54, class: "stats errors" },
        node.kind === "sink" ? `stored ${node.passed} recently` : `errors ${node.errors}${rate} · done ${node.passed}`),
      el("svg:title", {}, `${node.name}: click to list its records`));
    svg.append(group);
  }
}

// -------------------------------------------------------------------------------------------------- records

function searchForm() {
  return document.getElementById("search");
}

let searchSeq = 0;
let searchOffset = 0;

// One page of the records matching the form (the server counts and pages them): `offset` is where the page
// starts; a new search (filters given, or the form submitted) starts at 0.
async function searchRecords(filters, offset) {
  const form = searchForm();
  if (filters) {
    for (const [name, value] of Object.entries(filters)) form.elements[name].value = value;
  }
  searchOffset = offset || 0;
  const query = new URLSearchParams();
  for (const name of ["id", "actor", "status", "error_type", "since", "until", "limit"]) {
    const value = form.elements[name].value.trim();
    if (value) query.set(name, value);
  }
  if (searchOffset) query.set("offset", String(searchOffset));
  const body = document.querySelector("#records tbody");
  const mine = ++searchSeq;
  try {
    const data = await api(`/api/records?${query}`);
    if (mine !== searchSeq) return; // a newer search was started meanwhile: its answer wins
    showError("records-error", null);
    body.replaceChildren(...data.records.map(recordRow));
    if (!data.records.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no records match")));
    drawPager(data);
  } catch (error) {
    showError("records-error", error);
  }
}

function drawPager(data) {
  const first = data.records.length ? data.offset + 1 : 0, last = data.offset + data.records.length;
  const range = [];
  if (data.since != null) range.push("since ", timeEl(data.since));
  if (data.until != null) range.push(range.length ? " until " : "until ", timeEl(data.until));
  document.getElementById("records-count").replaceChildren(
    el("strong", { id: "records-total" }, `${data.total} match`), ` · showing ${first}–${last}`,
    ...(range.length ? [" · written ", ...range] : []));
  const prev = document.getElementById("records-prev"), next = document.getElementById("records-next");
  prev.disabled = data.offset <= 0;
  next.disabled = last >= data.total;
  prev.onclick = () => searchRecords(null, Math.max(0, data.offset - data.limit));
  next.onclick = () => searchRecords(null, data.offset + data.limit);
}

function traceLink(id) {
  return el("a", { href: `#/trace/${encodeURIComponent(id)}`, class: "trace-link" }, id);
}

function recordRow(record) {
  const error = record.error_type ? `${record.error_type}: ${record.error_message || ""}` : "";
  return el("tr", { class: `record ${record.status}`, "data-id": record.id },
    el("td", { class: "mono" }, traceLink(record.id)),
    el("td", {}, el("span", { class: `badge ${record.status}` }, record.status)),
    el("td", {}, (record.route || []).join(" → ")),
    el("td", { class: "error-cell", title: error }, error),
    el("td", { class: "mono" }, timeEl(record.written ?? record.ended)),
    el("td", {}, record.status === "failed"
      ? el("button", { type: "button", onclick: () => askReplay({ ids: [record.id] }) }, "Replay…") : ""));
}

// ------------------------------------------------------------------------------------------------ in flight
// From the mesh's status store (a mesh with a front door): envelopes pending, running or paused, with the actor
// that last reported each and its attempt. A mesh without a store hides the panel.

let hasStore = true;

async function refreshInFlight() {
  if (!hasStore) return;
  try {
    const data = await api("/api/inflight?limit=50");
    const panel = document.getElementById("inflight-panel");
    if (data.configured === false) {
      hasStore = false;
      panel.hidden = true;
      return;
    }
    panel.hidden = document.getElementById("trace-panel").hidden === false;
    showError("inflight-error", data.available ? null : data.reason);
    const counts = Object.entries(data.totals || {}).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`);
    document.getElementById("inflight-count").textContent = counts.length ? `(${counts.join(", ")})` : "(none)";
    document.querySelector("#inflight tbody").replaceChildren(...data.envelopes.map((e) =>
      el("tr", { class: `inflight ${e.status}`, "data-id": e.id },
        el("td", { class: "mono" }, traceLink(e.id)),
        el("td", {}, el("span", { class: `badge ${e.status}` }, e.status)),
        el("td", { class: "actor" }, e.actor || ""),
        el("td", { class: "attempt" }, e.attempt ?? ""),
        el("td", {}, e.progress === null || e.progress === undefined ? "" : `${e.progress}%`),
        el("td", {}, e.route || ""),
        el("td", { class: "mono" }, (e.updated_at || "").replace("T", " ").replace("Z", " UTC")))));
  } catch (error) {
    showError("inflight-error", error);
  }
}

// ---------------------------------------------------------------------------------------------------- trace

let traceSeq = 0;

async function openTrace(id) {
  document.getElementById("trace-id").textContent = id;
  const timeline = document.getElementById("timeline");
  timeline.replaceChildren(el("p", { class: "muted" }, "loading…"));
  for (const part of ["trace-summary", "trace-totals", "trace-axis", "trace-errors", "trace-records"]) {
    document.getElementById(part).replaceChildren();
  }
  document.getElementById("replay-trace").hidden = true;
  const mine = ++traceSeq;
  try {
    const trace = await api(`/api/trace?id=${encodeURIComponent(id)}`);
    if (mine === traceSeq) drawTrace(trace); // else another trace was opened meanwhile
  } catch (error) {
    if (mine === traceSeq) timeline.replaceChildren(el("p", { class: "error" }, String(error.message || error)));
  }
}

function traceSummary(trace) {
  const parts = [trace.state];
  const location = trace.location;
  if (location && location.dlq) parts.push(`in the DLQ of ${location.dlq}`);
  if (location && location.busy_queues && location.busy_queues.length) {
    parts.push(`queues holding messages now: ${location.busy_queues.map((q) => q.actor).join(", ")}`);
  }
  const branches = trace.branches || [];
  if (branches.length > 1) parts.push(`${branches.length} final records (fan-out or replays)`);
  return parts.join(" · ");
}

function pct(value) {
  return `${Math.max(0, Math.min(100, value)).toFixed(2)}%`;
}

// One hop: the time it waited in the queue (from the previous hop's end) and the attempt itself, both placed on
// the trace's shared axis (left = start - t0, width = duration, as shares of the whole trace).
function hopRow(step, t0, span) {
  const label = step.folded ? `${step.folded} earlier hops` : `${step.actor ?? "?"} #${step.attempt ?? "?"}`;
  const info = [fmtMs(step.duration_s == null ? null : step.duration_s * 1000), step.outcome];
  if (step.error_type) info.push(step.error_type);
  if (step.waited_s) info.push(`queued ${fmtMs(step.waited_s * 1000)}`);
  if (step.replica) info.push(step.replica);
  const outcome = step.folded ? "folded" : String(step.outcome || "unknown").replace(/[^a-z-]/g, "");
  const track = el("span", { class: "hop-track" });
  if (step.start != null) {
    if (step.waited_s > 0) {
      track.append(el("span", { class: "hop-wait", title: `queued ${fmtMs(step.waited_s * 1000)}`, style: {
        left: pct(((step.start - step.waited_s - t0) / span) * 100), width: pct((step.waited_s / span) * 100),
      } }));
    }
    const width = step.end == null ? 0 : ((step.end - step.start) / span) * 100;
    track.append(el("span", { class: "hop-bar", title: `${fmtTime(step.start)} → ${fmtTime(step.end)}`, style: {
      left: pct(((step.start - t0) / span) * 100), width: pct(Math.max(width, 0.5)),
    } }));
  }
  return el("div", { class: `hop outcome-${outcome}`, "data-actor": step.actor || "", "data-start": step.start ?? "",
    "data-end": step.end ?? "" },
    el("span", { class: "hop-label" }, label), track, el("span", { class: "hop-info" }, info.filter(Boolean).join(" · ")));
}

// The axis under the title: ticks at fifths of the trace's span, labelled by time since its start.
function axisRow(span) {
  const track = el("span", { class: "axis-track" });
  for (let i = 0; i <= 4; i++) {
    track.append(el("span", { class: `tick${i === 4 ? " last" : ""}`, style: { left: pct(i * 25) } },
      `+${fmtMs((span * i * 1000) / 4)}`));
  }
  return el("div", { class: "hop axis" }, el("span", { class: "hop-label muted" }, "time"), track, el("span", {}));
}

function drawTrace(trace) {
  document.getElementById("trace-summary").textContent = traceSummary(trace);
  const branches = trace.branches || [];
  const steps = branches.flatMap((b) => b.steps || []);
  const starts = steps.map((s) => s.start).filter((t) => t != null);
  const ends = steps.map((s) => s.end ?? s.start).filter((t) => t != null);
  const t0 = starts.length ? Math.min(...starts) : 0;
  const total = (ends.length ? Math.max(...ends) : t0) - t0;
  const span = Math.max(total, 0.001);
  const attempts = steps.filter((s) => !s.folded).length + steps.reduce((n, s) => n + (s.folded || 0), 0);
  const errors = steps.filter((s) => s.error_type || s.outcome === "error").length;
  document.getElementById("trace-totals").replaceChildren(...(starts.length ? [
    "started ", el("span", { id: "trace-start" }, timeEl(t0)), " · total ",
    el("strong", { id: "trace-total" }, fmtMs(total * 1000)), " · ",
  ] : []), el("span", { id: "trace-attempts" }, `${attempts} attempt(s)`), " · ",
  el("span", { id: "trace-error-count", class: errors ? "error" : "" }, `${errors} error(s)`));
  document.getElementById("trace-axis").replaceChildren(...(starts.length ? [axisRow(span)] : []));
  const timeline = document.getElementById("timeline");
  timeline.replaceChildren(...branches.map((branch) => el("div", { class: `branch ${branch.status}`, "data-id": branch.id },
    el("h3", {}, el("span", { class: `badge ${branch.status}` }, branch.status), " ",
      el("span", { class: "mono" }, branch.id),
      branch.replay_of ? ` · replay of ${branch.replay_of}` : "",
      branch.replayed_as ? ` · replayed as ${branch.replayed_as.replay_id} into ${branch.replayed_as.to}` : ""),
    ...(branch.steps || []).map((step) => hopRow(step, t0, span)))));
  if (!branches.length) timeline.append(el("p", { class: "muted" }, "no final record yet"));
  document.getElementById("trace-errors").replaceChildren(...steps.filter((s) => s.error).map((s) => el("div", { class: "trace-error" },
    el("h3", {}, `${s.error.actor || s.actor || "?"}: ${s.error.type || "error"}${s.error.reason ? ` (${s.error.reason})` : ""}`),
    el("p", {}, s.error.message || ""),
    s.error.traceback ? el("details", { class: "traceback" }, el("summary", {}, "traceback"), el("pre", {}, s.error.traceback)) : null)));
  document.getElementById("trace-records").replaceChildren(...branches.filter((b) => b.payload !== undefined)
    .map((branch) => el("div", { class: "trace-record" },
      el("h3", {}, `payload of ${branch.id}`),
      el("pre", { class: "payload" }, JSON.stringify(branch.payload, null, 2)))));
  const failed = branches.filter((b) => b.status === "failed" && !b.replayed_as).map((b) => b.id);
  const replay = document.getElementById("replay-trace");
  replay.hidden = !failed.length;
  replay.onclick = () => askReplay({ ids: failed });
}

// --------------------------------------------------------------------------------------------------- replay
// The dialog always shows a dry run of exactly what Send would send (ids, new ids, target, payload); changing the
// target or the payload disables Send until "Review" has planned the changed request again.

let selection = null; // what to replay: { ids } or { failed_at, error_type }
let reviewed = null; // the request the shown plan is for; Send sends exactly this one

async function postReplay(request) {
  return api("/api/replay", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Asya-Token": TOKEN },
    body: JSON.stringify(request),
  });
}

function replayRequest() {
  const request = { ...selection };
  const to = document.getElementById("replay-to").value;
  if (to) request.to = to;
  if (document.getElementById("replay-edit").checked) {
    request.payload = JSON.parse(document.getElementById("replay-payload").value); // a SyntaxError: shown
  }
  return request;
}

function itemLine(item) {
  const where = item.actor ? ` → ${item.actor}` : "";
  return `${item.id} ⇒ ${item.replay_id}${where}${item.reason ? ` (skipped: ${item.reason})` : ""}`;
}

async function askReplay(request) {
  selection = request;
  const dialog = document.getElementById("replay-dialog");
  const to = document.getElementById("replay-to");
  to.replaceChildren(el("option", { value: "" }, "the actor that failed it"),
    ...knownActors.map((name) => el("option", { value: name }, name)));
  const edit = document.getElementById("replay-edit");
  edit.checked = false;
  document.getElementById("replay-payload").value = "";
  document.getElementById("replay-payload").disabled = true;
  document.getElementById("replay-edit-row").hidden = !(request.ids && request.ids.length === 1);
  document.getElementById("replay-result").replaceChildren();
  document.getElementById("replay-sent").replaceChildren();
  if (!dialog.open) dialog.showModal();
  await reviewReplay();
  const first = lastPlan && lastPlan.items.find((item) => item.payload !== undefined);
  if (first) document.getElementById("replay-payload").value = JSON.stringify(first.payload, null, 2);
}

let lastPlan = null;

async function reviewReplay() {
  const list = document.getElementById("replay-list");
  const plan = document.getElementById("replay-plan");
  const confirm = document.getElementById("replay-confirm");
  list.replaceChildren();
  plan.textContent = "planning…";
  confirm.disabled = true;
  reviewed = null;
  lastPlan = null;
  let request;
  try {
    request = replayRequest();
  } catch (error) {
    plan.textContent = `the payload is not JSON: ${error.message || error}`;
    return;
  }
  try {
    const planned = await postReplay({ ...request, dry_run: true });
    lastPlan = planned;
    plan.textContent = `${planned.summary}. Send will send exactly this:`;
    list.replaceChildren(...planned.items.map((item) => el("li", { class: "mono", "data-id": item.id },
      itemLine(item),
      item.payload !== undefined ? el("pre", { class: "replay-payload" }, JSON.stringify(item.payload, null, 2)) : null)));
    reviewed = request;
    confirm.disabled = !planned.to_send;
  } catch (error) {
    plan.textContent = `cannot plan: ${error.message || error}`;
  }
}

function optionsChanged() {
  reviewed = null;
  document.getElementById("replay-confirm").disabled = true;
  document.getElementById("replay-plan").textContent = "changed: Review to see what will be sent";
  document.getElementById("replay-list").replaceChildren();
}

async function confirmReplay() {
  const result = document.getElementById("replay-result");
  const confirm = document.getElementById("replay-confirm");
  if (!reviewed) return;
  confirm.disabled = true;
  const request = reviewed;
  reviewed = null;
  try {
    const sent = await postReplay({ ...request, dry_run: false });
    result.textContent = sent.summary || `sent ${sent.sent}`;
    document.getElementById("replay-sent").replaceChildren(...sent.sent_items.map((item) => el("li", { class: "mono" },
      `${item.id} ⇒ ${item.replay_id} sent to ${item.actor} · `, traceLink(item.id))),
    ...sent.refused.map((item) => el("li", { class: "mono error" }, `${item.id}: refused (${item.reason})`)));
  } catch (error) {
    result.textContent = `replay failed: ${error.message || error}`;
  }
  refreshGraph();
}

// ----------------------------------------------------------------------------------------------------- wiring
// Two views, addressed by the URL's hash so they can be linked and reloaded: "#/" the mesh and its records,
// "#/trace/ID" one envelope's trace. The older "#trace=ID" still opens a trace.

function onHash() {
  const legacy = /^#trace=(.+)$/.exec(location.hash);
  if (legacy) {
    location.replace(`#/trace/${legacy[1]}`);
    return;
  }
  const match = /^#\/trace\/(.+)$/.exec(location.hash);
  document.getElementById("trace-panel").hidden = !match;
  document.getElementById("graph-panel").hidden = !!match;
  document.getElementById("records-panel").hidden = !!match;
  document.getElementById("inflight-panel").hidden = !!match || !hasStore;
  if (match) {
    openTrace(decodeURIComponent(match[1]));
    window.scrollTo(0, 0);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  searchForm().addEventListener("submit", (event) => {
    event.preventDefault();
    searchRecords();
  });
  document.getElementById("replay-confirm").addEventListener("click", confirmReplay);
  document.getElementById("replay-review").addEventListener("click", reviewReplay);
  document.getElementById("replay-to").addEventListener("change", optionsChanged);
  document.getElementById("replay-payload").addEventListener("input", optionsChanged);
  document.getElementById("replay-edit").addEventListener("change", (event) => {
    document.getElementById("replay-payload").disabled = !event.target.checked;
    optionsChanged();
  });
  document.getElementById("replay-matching").addEventListener("click", () => {
    const form = searchForm();
    askReplay({ failed_at: form.elements.actor.value.trim() || null, error_type: form.elements.error_type.value.trim() || null });
  });
  window.addEventListener("hashchange", onHash);
  refreshGraph();
  refreshInFlight();
  searchRecords();
  onHash();
  setInterval(() => {
    if (!document.getElementById("live").checked) return;
    refreshGraph();
    refreshInFlight();
  }, POLL_MS);
});
