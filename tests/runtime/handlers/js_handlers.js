// Node.js test handlers for the handler-server protocol tests; each mirrors the one of the same name in
// py_handlers.py, so the same test proves both servers.
"use strict";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function echo(payload) {
  return payload;
}

function end_here() {
  return null;
}

/** Each child is routed to its own worker and carries its index in a header set just before it is yielded. */
function* fan_out(payload) {
  for (let index = 0; index < payload.n; index++) {
    yield ["SET", ".route.next", [`worker-${index}`]];
    yield ["SET", ".headers.index", index];
    yield { i: index };
  }
}

function* commands() {
  const trace = yield ["GET", ".headers.traceparent"];
  const curr = yield ["GET", ".route.curr"];
  const prev = yield ["GET", ".route.prev"];
  const attempt = yield ["GET", ".status.attempt"];
  const missing = yield ["GET", ".payload.nope.deeper"];
  yield ["SET", ".headers.seen", { trace, curr, prev, attempt, missing }];
  yield ["SET", ".headers.nested.deep", 1];
  yield ["DEL", ".headers.drop_me"];
  yield ["DEL", ".headers.never_there"];
  yield ["SET", ".payload.added", true];
  yield ["DEL", ".payload.remove"];
  yield ["SET", ".route.next", ["store"]];
  const whole = yield ["GET", ".payload"];
  yield whole;
}

/** Issues the command the test asks for, then yields an output (it never gets there when refused). */
function* write_path(payload) {
  yield payload.command;
  yield { unreachable: true };
}

function returns_list() {
  return [1, 2, 3];
}

function* yields_string() {
  yield "not a dict";
}

class TransientError extends Error {}
class RateLimited extends TransientError {}

function fail() {
  throw new RateLimited("slow down");
}

function* flies(payload) {
  const replies = [];
  for (let i = 0; i < (payload.n ?? 3); i++) replies.push((yield ["FLY", { partial: true, text: `token ${i}` }]) ?? null);
  yield { done: true, replies };
}

function* only_flies() {
  yield ["FLY", { progress: 50 }];
}

async function* async_flies() {
  yield ["FLY", { partial: true, text: "a" }];
  yield ["FLY", { partial: true, text: "b" }];
  yield { done: true };
}

function* bad_fly() {
  yield ["FLY"];
}

async function async_echo(payload) {
  await sleep(10);
  return { ...payload, async: true };
}

async function* async_fan_out(payload) {
  for (let index = 0; index < payload.n; index++) {
    await sleep(0);
    yield ["SET", ".headers.index", index];
    const curr = yield ["GET", ".route.curr"];
    yield { i: index, curr };
  }
}

let instances = 0;

/** Counts its calls: state that survives across calls proves the class is instantiated once. */
class Counter {
  constructor() {
    instances += 1;
    this.calls = 0;
  }

  handle() {
    this.calls += 1;
    return { calls: this.calls, instances };
  }
}

class Broken {
  constructor() {
    throw new Error("model weights missing");
  }

  handle(payload) {
    return payload;
  }
}

let active = 0;
let maxActive = 0;

/** Sleeps, reporting the most calls that were ever inside it at once. */
async function slow_async(payload) {
  active += 1;
  maxActive = Math.max(maxActive, active);
  try {
    await sleep(payload.sleep_s * 1000);
  } finally {
    active -= 1;
  }
  return { max_active: maxActive };
}

async function slow(payload) {
  await sleep(payload.sleep_s * 1000);
  return { slept: payload.sleep_s };
}

/** Never returns and never yields the thread: the hardest kind of hang to detect. */
function hang() {
  for (;;) {
    // spin
  }
}

function exits() {
  process.exit(3);
}

/** Yields each of payload.steps (as py_handlers.script does: replies as {got}, refusals as {refused}). */
function* script(payload) {
  for (const step of (payload && payload.steps) || []) {
    let reply;
    try {
      reply = yield step;
    } catch (error) {
      yield { refused: error.name };
      continue;
    }
    if (reply !== undefined && reply !== null) yield { got: reply };
  }
}

/** Wants a second argument the server never passes: refused at load, before any call. */
function two_args(payload, context) {
  return { ...payload, context };
}

function* batchRoute(payload) {
  yield ["SET", ".route.next", ["elsewhere"]];
  yield { routed: payload.x };
  yield { routed: payload.x + 1 };
}

// A batched handler: per payload `op` says what its slot holds (py_handlers.py has the same).
function batch_mixed(payloads) {
  return payloads.map((p) => {
    if (p.op === "fail") return new RangeError(String(p.key));
    if (p.op === "none") return null;
    if (p.op === "route") return batchRoute(p);
    if (p.op === "bad") return "not a dict";
    return { y: p.x * 2, n: payloads.length };
  });
}

function batch_short(payloads) {
  return payloads.slice(1).map(() => ({}));
}

function batch_raises(payloads) {
  throw new TypeError(`GPU busy for ${payloads.length}`);
}

async function batch_async(payloads) {
  await Promise.resolve();
  return payloads.map((p) => ({ y: p.x }));
}

async function batch_slow(payloads) {
  await sleep(Math.max(...payloads.map((p) => p.sleep_s)) * 1000);
  return payloads.map((p) => ({ slept: p.sleep_s }));
}

module.exports = {
  batch_slow, batch_mixed, batch_short, batch_raises, batch_async,
  two_args, script, flies, only_flies, async_flies, bad_fly,
  echo, end_here, fan_out, commands, write_path, returns_list, yields_string, fail, async_echo, async_fan_out,
  Counter, Broken, slow_async, slow, hang, exits,
};
