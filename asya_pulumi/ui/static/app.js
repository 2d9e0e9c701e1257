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

function fmtTime(epoch) {
  if (epoch === null || epoch === undefined) return "";
  const d = new Date(epoch * 1000);
  return d.toISOString().replace("T", " ").replace("Z", "").slice(0, 23);
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
    document.getElementById("refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    showError("graph-error", error);
  }
}

function drawGraph(graph) {
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
  }, el("svg:path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }))));
  for (const edge of graph.edges) {
    const a = pos[edge.from], b = pos[edge.to];
    if (!a || !b) continue;
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    const d = x2 > x1 ? `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`
      : `M ${a.x + NODE_W / 2} ${a.y + NODE_H} C ${a.x} ${a.y + 2 * NODE_H}, ${b.x} ${b.y - NODE_H}, ${b.x + NODE_W / 2} ${b.y}`;
    svg.append(el("svg:path", { d, class: `edge ${edge.kind}`, "marker-end": "url(#arrow)" },
      el("svg:title", {}, `${edge.from} → ${edge.to} (${edge.kind})`)));
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

async function searchRecords(filters) {
  const form = searchForm();
  if (filters) {
    for (const [name, value] of Object.entries(filters)) form.elements[name].value = value;
  }
  const query = new URLSearchParams();
  for (const name of ["id", "actor", "status", "error_type"]) {
    const value = form.elements[name].value.trim();
    if (value) query.set(name, value);
  }
  const body = document.querySelector("#records tbody");
  const mine = ++searchSeq;
  try {
    const data = await api(`/api/records?${query}`);
    if (mine !== searchSeq) return; // a newer search was started meanwhile: its answer wins
    showError("records-error", null);
    body.replaceChildren(...data.records.map(recordRow));
    if (!data.records.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no records match")));
    const id = form.elements.id.value.trim();
    if (id && data.records.length) openTrace(id);
  } catch (error) {
    showError("records-error", error);
  }
}

function recordRow(record) {
  const error = record.error_type ? `${record.error_type}: ${record.error_message || ""}` : "";
  return el("tr", { class: `record ${record.status}`, "data-id": record.id },
    el("td", { class: "mono" }, el("a", { href: `#trace=${encodeURIComponent(record.id)}` }, record.id)),
    el("td", {}, el("span", { class: `badge ${record.status}` }, record.status)),
    el("td", {}, (record.route || []).join(" → ")),
    el("td", { class: "error-cell", title: error }, error),
    el("td", { class: "mono" }, fmtTime(record.written ?? record.ended)),
    el("td", {}, record.status === "failed"
      ? el("button", { type: "button", onclick: () => askReplay({ ids: [record.id] }) }, "Replay…") : ""));
}

// ---------------------------------------------------------------------------------------------------- trace

let traceSeq = 0;

async function openTrace(id) {
  const panel = document.getElementById("trace-panel");
  panel.hidden = false;
  document.getElementById("trace-id").textContent = id;
  const timeline = document.getElementById("timeline");
  timeline.replaceChildren(el("p", { class: "muted" }, "loading…"));
  document.getElementById("trace-errors").replaceChildren();
  document.getElementById("trace-records").replaceChildren();
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

function hopRow(step, t0, span) {
  const left = step.start == null ? 0 : ((step.start - t0) / span) * 100;
  const width = step.start == null || step.end == null ? 0 : ((step.end - step.start) / span) * 100;
  const label = step.folded ? `${step.folded} earlier hops` : `${step.actor ?? "?"} #${step.attempt ?? "?"}`;
  const info = [fmtMs(step.duration_s == null ? null : step.duration_s * 1000), step.outcome];
  if (step.error_type) info.push(step.error_type);
  if (step.waited_s) info.push(`queued ${fmtMs(step.waited_s * 1000)}`);
  if (step.replica) info.push(step.replica);
  const outcome = step.folded ? "folded" : String(step.outcome || "unknown").replace(/[^a-z-]/g, "");
  return el("div", { class: `hop outcome-${outcome}`, "data-actor": step.actor || "" },
    el("span", { class: "hop-label" }, label),
    el("span", { class: "hop-track" },
      el("span", { class: "hop-bar", style: { marginLeft: `${left.toFixed(2)}%`, width: `${Math.max(width, 0.5).toFixed(2)}%` } })),
    el("span", { class: "hop-info" }, info.filter(Boolean).join(" · ")));
}

function drawTrace(trace) {
  document.getElementById("trace-summary").textContent = traceSummary(trace);
  const branches = trace.branches || [];
  const steps = branches.flatMap((b) => b.steps || []);
  const starts = steps.map((s) => s.start).filter((t) => t != null);
  const ends = steps.map((s) => s.end ?? s.start).filter((t) => t != null);
  const t0 = starts.length ? Math.min(...starts) : 0;
  const span = Math.max((ends.length ? Math.max(...ends) : t0) - t0, 0.001);
  const timeline = document.getElementById("timeline");
  timeline.replaceChildren(...branches.map((branch) => el("div", { class: `branch ${branch.status}`, "data-id": branch.id },
    el("h3", {}, el("span", { class: `badge ${branch.status}` }, branch.status), " ",
      el("span", { class: "mono" }, branch.id),
      branch.replay_of ? ` · replay of ${branch.replay_of}` : "",
      branch.replayed_as ? ` · replayed as ${branch.replayed_as.replay_id}` : ""),
    ...(branch.steps || []).map((step) => hopRow(step, t0, span)))));
  if (!branches.length) timeline.append(el("p", { class: "muted" }, "no final record yet"));
  const errors = document.getElementById("trace-errors");
  errors.replaceChildren(...steps.filter((s) => s.error).map((s) => el("div", { class: "trace-error" },
    el("h3", {}, `${s.error.actor || s.actor || "?"}: ${s.error.type || "error"}${s.error.reason ? ` (${s.error.reason})` : ""}`),
    el("p", {}, s.error.message || ""),
    s.error.traceback ? el("pre", {}, s.error.traceback) : null)));
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

let pendingReplay = null;

async function postReplay(request) {
  return api("/api/replay", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Asya-Token": TOKEN },
    body: JSON.stringify(request),
  });
}

async function askReplay(request) {
  const dialog = document.getElementById("replay-dialog");
  const list = document.getElementById("replay-list");
  const plan = document.getElementById("replay-plan");
  const confirm = document.getElementById("replay-confirm");
  document.getElementById("replay-result").textContent = "";
  list.replaceChildren();
  plan.textContent = "planning…";
  confirm.disabled = true;
  dialog.showModal();
  try {
    const planned = await postReplay({ ...request, dry_run: true });
    plan.textContent = planned.summary || `${planned.items.length} envelope(s) would be sent`;
    list.replaceChildren(...planned.items.map((item) => el("li", { class: "mono" },
      `${item.id} → ${item.actor}${item.reason ? ` (${item.reason})` : ""}`)));
    pendingReplay = request;
    confirm.disabled = !planned.to_send;
  } catch (error) {
    plan.textContent = `cannot plan: ${error.message || error}`;
  }
}

async function confirmReplay() {
  const result = document.getElementById("replay-result");
  const confirm = document.getElementById("replay-confirm");
  if (!pendingReplay) return;
  confirm.disabled = true;
  try {
    const sent = await postReplay({ ...pendingReplay, dry_run: false });
    result.textContent = sent.summary || `sent ${sent.sent}`;
  } catch (error) {
    result.textContent = `replay failed: ${error.message || error}`;
  }
  pendingReplay = null;
  refreshGraph();
}

// ----------------------------------------------------------------------------------------------------- wiring

function onHash() {
  const match = /^#trace=(.+)$/.exec(location.hash);
  if (match) openTrace(decodeURIComponent(match[1]));
}

document.addEventListener("DOMContentLoaded", () => {
  searchForm().addEventListener("submit", (event) => {
    event.preventDefault();
    searchRecords();
  });
  document.getElementById("replay-confirm").addEventListener("click", confirmReplay);
  document.getElementById("replay-matching").addEventListener("click", () => {
    const form = searchForm();
    askReplay({ failed_at: form.elements.actor.value.trim() || null, error_type: form.elements.error_type.value.trim() || null });
  });
  window.addEventListener("hashchange", onHash);
  refreshGraph();
  searchRecords();
  onHash();
  setInterval(() => {
    if (document.getElementById("live").checked) refreshGraph();
  }, POLL_MS);
});
