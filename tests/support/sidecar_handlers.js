// Node.js counterparts of sidecar_handlers.py, run behind handler_server.js by the sidecar tests.
"use strict";

const fs = require("fs");

// Appends {"key", "pid", "t"} to ASYA_TEST_CALLS, as sidecar_handlers.py's _record does.
function record(payload) {
  const path = process.env.ASYA_TEST_CALLS;
  if (path) fs.appendFileSync(path, JSON.stringify({ key: payload.key ?? null, pid: process.pid, t: Date.now() / 1000 }) + "\n");
}

// Yields payload.n children, each routed on to payload.next and tagged with its index in a header.
function* fan_out(payload) {
  yield ["SET", ".route.next", payload.next];
  for (let i = 0; i < payload.n; i++) {
    yield ["SET", ".headers.x-index", i];
    yield { key: payload.key, i };
  }
}

// Asya-style partial outputs (dropped by the sidecar) around one real output.
function* flies(payload) {
  for (let i = 0; i < 3; i++) yield ["FLY", { partial: true, text: `token ${i}` }];
  yield { ...payload, flew: true };
}

/** A TypeError from the handler's own code: the policy decides, as for any exception (py: type_error_inside). */
function type_error_inside(payload) {
  record(payload);
  return { n: payload.key.length }; // payload.key is undefined here: TypeError
}

// A batched handler (spec.batch), as sidecar_handlers.py's batch_echo: one line per call, then per payload an Error
// (`fail`: that item fails), null (`end`), or the payload with batch_size.
function batch_echo(payloads) {
  const path = process.env.ASYA_TEST_CALLS;
  if (path) fs.appendFileSync(path, JSON.stringify({ keys: payloads.map((p) => p.key ?? null), pid: process.pid, t: Date.now() / 1000 }) + "\n");
  return payloads.map((p) => (p.fail ? new RangeError(`refusing ${p.key}`) : p.end ? null : { ...p, batch_size: payloads.length }));
}

// A fan-in handler (spec.fanIn), as sidecar_handlers.py's gather: records the list it was called with.
function gather(items) {
  const path = process.env.ASYA_TEST_CALLS;
  if (path) fs.appendFileSync(path, JSON.stringify({ key: "gather", items, pid: process.pid, t: Date.now() / 1000 }) + "\n");
  return { items, runtime: "node" };
}

module.exports = { fan_out, flies, type_error_inside, batch_echo, gather };
