// Node.js counterparts of sidecar_handlers.py, run behind handler_server.js by the sidecar tests.
"use strict";

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

module.exports = { fan_out, flies };
