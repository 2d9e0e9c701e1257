#!/usr/bin/env node
// asya handler server for Node.js (>= 18, no dependencies): the same wire protocol as handler_server.py
// (docs/protocol.md), so a sidecar cannot tell them apart.
//
//   ASYA_HANDLER=handlers.js:handle node handler_server.js   # serve
//   node handler_server.js --health                          # liveness probe: exit 0 if healthy, else 1
//
// Two threads. The main thread owns the socket, the concurrency limit, health and the hung-call watchdog; the
// user's handler runs in one worker thread. A handler stuck in a synchronous loop therefore blocks only the worker:
// health still answers `hung` and the watchdog still ends the process with status 70.
"use strict";

const fs = require("fs");
const net = require("net");
const path = require("path");
const { pathToFileURL } = require("url");
const { createRequire } = require("module");
const { Worker, isMainThread, parentPort, workerData } = require("worker_threads");

const ENV_HANDLER = "ASYA_HANDLER";
const ENV_SOCKET_PATH = "ASYA_SOCKET_PATH";
const ENV_HANDLER_CONCURRENCY = "ASYA_HANDLER_CONCURRENCY";
const ENV_HANDLER_PATH = "ASYA_HANDLER_PATH";
const ENV_HANDLER_DRAIN_S = "ASYA_HANDLER_DRAIN_S";
const DEFAULT_SOCKET_PATH = "/var/run/asya/handler.sock";
const DEFAULT_DRAIN_S = 25;
const HUNG_GRACE_S = 2;
const HEALTH_PROBE_TIMEOUT_MS = 800;
const IDLE_CLOSE_GRACE_MS = 100; // after SIGTERM, idle connections are closed this long after the socket file went
const EXIT_OK = 0;
const EXIT_UNHEALTHY = 1;
const EXIT_STARTUP_ERROR = 2;
const EXIT_HUNG = 70;
const WATCHDOG_INTERVAL_MS = 100;
const ROOTS = ["id", "parent_id", "route", "headers", "status", "payload"];
const WRITABLE_HINT = "writable paths are .route.next, .headers.<key>, .status and .payload.<key>";

class ContractError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}
class HandlerResultError extends ContractError {}
class EnvelopeCommandError extends ContractError {}
class ProtocolError extends ContractError {}
/**
 * The server cannot start; `message` is one readable line, `ASYA_HANDLER='…': <what is wrong; the fix>`. `problem`,
 * `missing` and `candidates` travel in `--check`'s answer (the same fields as handler_server.py's StartupError).
 */
class StartupError extends Error {
  constructor(detail, { spec = null, problem = "config", missing = null, candidates = [] } = {}) {
    super(spec === null ? detail : `${ENV_HANDLER}='${spec}': ${detail}`);
    Object.assign(this, { detail, spec, problem, missing, candidates });
  }

  answer() {
    const { spec: handler, problem, detail: message, missing, candidates } = this;
    return { ok: false, handler, problem, message, missing, candidates };
  }
}

function log(level, event, fields = {}) {
  const record = { time: new Date().toISOString(), level, logger: "asya.handler_server", event, ...fields };
  fs.writeSync(2, JSON.stringify(record) + "\n"); // synchronous: the line is out before any exit
}

// ------------------------------------------------------------------------------------------------ error frames

function errorFrame(err, retryable) {
  if (!(err instanceof Error)) {
    return { ok: false, error: { type: "Error", mro: ["Error"], message: String(err), traceback: "", retryable } };
  }
  const chain = [];
  for (let proto = Object.getPrototypeOf(err); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    const name = proto.constructor && proto.constructor.name;
    if (name && !chain.includes(name)) chain.push(name);
  }
  // `class RateLimited extends Error {}` keeps name "Error" unless it sets one: prefer the class name then.
  const type = typeof err.name === "string" && err.name && err.name !== "Error" ? err.name : chain[0] || "Error";
  const mro = [type, ...chain.filter((name) => name !== type)];
  return { ok: false, error: { type, mro, message: String(err.message), traceback: userStack(err), retryable } };
}

/** The stack without this server's and Node's internal frames, so it points at the user's code. */
function userStack(err) {
  const lines = String(err.stack || "").split("\n");
  return lines.filter((line) => !(/^\s+at /.test(line) && (line.includes(__filename) || line.includes("node:internal")))).join("\n");
}

// -------------------------------------------------------------------------------------------- generator commands

// Paths and the access table are envelope_paths.py's (its docstring is the reference); this is the same grammar.

const NAME = /[^.\[\]\s]+/y;

function parsePath(p) {
  if (typeof p !== "string" || !p.startsWith(".") || p.length < 2) {
    throw new EnvelopeCommandError(`path ${JSON.stringify(p)} must start with '.' and name a field, e.g. '.headers.x'`);
  }
  const segments = [];
  let position = 0;
  while (position < p.length) {
    if (p[position] === "." && p[position + 1] === "[") position += 1; // jq's `.["key"]`
    if (p[position] === ".") {
      NAME.lastIndex = position + 1;
      const match = NAME.exec(p);
      if (!match) throw new EnvelopeCommandError(`path '${p}' has an empty segment at character ${position + 2}`);
      segments.push(match[0]);
      position = NAME.lastIndex;
    } else if (p[position] === "[") {
      const [segment, next] = bracket(p, position);
      segments.push(segment);
      position = next;
    } else {
      throw new EnvelopeCommandError(`path '${p}': unexpected '${p[position]}' at character ${position + 1}`);
    }
  }
  if (!ROOTS.includes(segments[0])) {
    const roots = ROOTS.map((root) => "." + root).join(", ");
    throw new EnvelopeCommandError(`path '${p}' starts with an unknown field; paths start with one of ${roots}`);
  }
  return segments;
}

/** The segment in the brackets at `start` and the position after them; a slice is `{slice: [low, high]}`. */
function bracket(p, start) {
  if (p[start + 1] === '"') {
    let end = start + 2;
    while (end < p.length && p[end] !== '"') end += p[end] === "\\" ? 2 : 1;
    let key;
    try {
      key = JSON.parse(p.slice(start + 1, end + 1));
    } catch (err) {
      throw new EnvelopeCommandError(`path '${p}': unterminated string at character ${start + 2}`);
    }
    if (p[end + 1] !== "]") throw new EnvelopeCommandError(`path '${p}': expected ']' after the key at character ${end + 2}`);
    return [String(key), end + 2];
  }
  const end = p.indexOf("]", start);
  if (end < 0) throw new EnvelopeCommandError(`path '${p}': '[' at character ${start + 1} is never closed`);
  const inner = p.slice(start + 1, end).trim();
  if (/^-?\d+$/.test(inner)) return [Number(inner), end + 1];
  const slice = /^(-?\d+)?:(-?\d+)?$/.exec(inner);
  if (slice) {
    const bound = (text) => (text === undefined ? null : Number(text));
    return [{ slice: [bound(slice[1]), bound(slice[2])] }, end + 1];
  }
  throw new EnvelopeCommandError(`path '${p}': [${inner}] is not a quoted key, an index or a slice`);
}

const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
const isPlainObject = (v) => isObject(v) && [Object.prototype, null].includes(Object.getPrototypeOf(v));
const isSlice = (segment) => typeof segment === "object" && segment !== null;
/** A deep copy (GET's answer, SET's value); a value that is not data (a function) is kept as it is, and fails
 * as HandlerResultError when the output holding it is serialised, as Python's server fails it. */
function clone(value) {
  if (value === undefined) return null;
  try {
    return structuredClone(value);
  } catch (err) {
    return value;
  }
}

function child(value, segment) {
  if (isObject(value) && typeof segment === "string") {
    return Object.prototype.hasOwnProperty.call(value, segment) && value[segment] !== undefined ? value[segment] : null;
  }
  if (Array.isArray(value) && typeof segment === "number" && segment >= -value.length && segment < value.length) {
    return value[segment < 0 ? value.length + segment : segment];
  }
  return null;
}

function render(segments) {
  return segments
    .map((s) => {
      if (typeof s === "string") return /^[^.\[\]\s]+$/.test(s) ? "." + s : `[${JSON.stringify(s)}]`;
      if (typeof s === "number") return `[${s}]`;
      return `[${s.slice[0] === null ? "" : s.slice[0]}:${s.slice[1] === null ? "" : s.slice[1]}]`;
    })
    .join("");
}

/** Python's slice bounds: negative counts from the end, clamped to [0, length]. */
function sliceBound(bound, length, fallback) {
  if (bound === null) return fallback;
  return Math.min(Math.max(bound < 0 ? length + bound : bound, 0), length);
}

function isRouteNext(segments) {
  return segments[0] === "route" && segments[1] === "next";
}

function checkWritable(segments, p, op) {
  const root = segments[0];
  if (isRouteNext(segments) || root === "status" || (["headers", "payload"].includes(root) && segments.length > 1)) {
    const slices = segments.map((s, depth) => (isSlice(s) ? depth : -1)).filter((depth) => depth >= 0);
    if (slices.length && (op !== "SET" || !isRouteNext(segments) || slices.length !== 1 || slices[0] !== 2 || segments.length !== 3)) {
      throw new EnvelopeCommandError(`${op} ${p}: slices are for SET of .route.next only, e.g. .route.next[:0]`);
    }
    return;
  }
  throw new EnvelopeCommandError(`${p} is read-only; ${WRITABLE_HINT}`);
}

function actorNames(value, p) {
  if (!Array.isArray(value) || !value.every((actor) => typeof actor === "string" && actor)) {
    throw new EnvelopeCommandError(`${p} must be a list of actor names, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Set an own property, also for a key such as "__proto__", which plain assignment would take as the prototype. */
function setOwn(object, key, value) {
  Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
}

/**
 * What holds the last segment; SET creates missing objects on the way (the outermost one created is pushed to
 * `created` with whether it held null, so that a refusal can take it back), DEL stops (null) at a missing one.
 */
function parentOf(envelope, segments, create, p, created) {
  let node = envelope;
  for (let depth = 0; depth < segments.length - 1; depth++) {
    const segment = segments[depth];
    let next = child(node, segment);
    if (next === null && create && isObject(node) && typeof segment === "string") {
      if (created && !created.length) created.push([node, segment, Object.prototype.hasOwnProperty.call(node, segment)]);
      next = {};
      setOwn(node, segment, next);
    }
    if (next === null) {
      if (create) throw new EnvelopeCommandError(`cannot write ${p}: ${render(segments.slice(0, depth + 1))} does not exist`);
      return null;
    }
    if (typeof next !== "object") {
      const where = render(segments.slice(0, depth + 1));
      throw new EnvelopeCommandError(`cannot write ${p}: ${where} is a ${typeName(next)}, not an object`);
    }
    node = next;
  }
  return node;
}

function assign(parent, segment, value, p) {
  if (isObject(parent) && typeof segment === "string") {
    setOwn(parent, segment, value);
  } else if (Array.isArray(parent) && typeof segment === "number") {
    if (segment < -parent.length || segment >= parent.length) {
      throw new EnvelopeCommandError(`cannot write ${p}: index ${segment} is out of range (length ${parent.length})`);
    }
    parent[segment < 0 ? parent.length + segment : segment] = value;
  } else {
    const kind = Array.isArray(parent) ? "a list" : "an object";
    throw new EnvelopeCommandError(`cannot write ${p}: the value there is ${kind}, which ${render([segment])} cannot index`);
  }
}

function getPath(envelope, p) {
  const segments = parsePath(p);
  if (segments.some(isSlice)) throw new EnvelopeCommandError(`path '${p}': slices are for SET only; GET an index or the whole list`);
  let value = envelope;
  for (const segment of segments) {
    value = child(value, segment);
    if (value === null) return null;
  }
  return clone(value);
}

function setPath(envelope, p, raw) {
  const segments = parsePath(p);
  checkWritable(segments, p, "SET");
  const value = clone(raw);
  if (isRouteNext(segments)) {
    const rest = segments.slice(2);
    if (envelope.route.next === undefined) envelope.route.next = [];
    const routeNext = envelope.route.next;
    if (rest.length === 0) {
      envelope.route.next = actorNames(value, p);
    } else if (rest.length > 1) {
      throw new EnvelopeCommandError(`${p}: .route.next holds actor names; write the list, an index or a slice`);
    } else if (isSlice(rest[0])) {
      const low = sliceBound(rest[0].slice[0], routeNext.length, 0);
      const high = Math.max(sliceBound(rest[0].slice[1], routeNext.length, routeNext.length), low);
      routeNext.splice(low, high - low, ...actorNames(value, p));
    } else if (typeof rest[0] === "number") {
      if (typeof value !== "string" || !value) throw new EnvelopeCommandError(`${p} must be an actor name, got ${JSON.stringify(value)}`);
      assign(routeNext, rest[0], value, p);
    } else {
      throw new EnvelopeCommandError(`${p}: .route.next is a list; use an index such as .route.next[0]`);
    }
    return;
  }
  if (segments.length === 1) {
    // .status itself (the only writable root)
    if (!isObject(value)) throw new EnvelopeCommandError(`SET .status takes an object, got ${typeName(value)}`);
    envelope.status = value;
    return;
  }
  const created = [];
  try {
    assign(parentOf(envelope, segments, true, p, created), segments[segments.length - 1], value, p);
  } catch (error) {
    // A refused SET leaves the envelope as it was: no objects on the way.
    for (const [node, key, heldNull] of created) {
      if (heldNull) setOwn(node, key, null);
      else delete node[key];
    }
    throw error;
  }
}

function delPath(envelope, p) {
  const segments = parsePath(p);
  checkWritable(segments, p, "DEL");
  if (segments[0] === "status") throw new EnvelopeCommandError(`DEL ${p}: .status can be written, not deleted`);
  if (segments.length === 2 && isRouteNext(segments)) {
    envelope.route.next = [];
    return;
  }
  const parent = parentOf(envelope, segments, false, p);
  const last = segments[segments.length - 1];
  if (isObject(parent) && typeof last === "string") delete parent[last];
  else if (Array.isArray(parent) && typeof last === "number" && last >= -parent.length && last < parent.length) {
    parent.splice(last < 0 ? parent.length + last : last, 1);
  }
}

function applyCommand(envelope, command) {
  const op = command[0];
  const arity = { SET: 3, DEL: 2, GET: 2 }[typeof op === "string" ? op : ""];
  if (arity === undefined) {
    const known = "['SET', path, value], ['DEL', path], ['GET', path]";
    throw new EnvelopeCommandError(`unknown command ${JSON.stringify(op)}; commands are ${known}`);
  }
  if (command.length !== arity) {
    throw new EnvelopeCommandError(`${op} takes ${arity - 1} argument(s), got ${command.length - 1}`);
  }
  if (op === "GET") return getPath(envelope, command[1]);
  if (op === "SET") setPath(envelope, command[1], command[2]);
  else delPath(envelope, command[1]);
  return null;
}

// ------------------------------------------------------------------------------------ the worker: running calls

function typeName(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "object") return (value.constructor && value.constructor.name) || "object";
  return typeof value;
}

/** One output, serialised now: that is the snapshot of route and headers the protocol promises. */
function output(envelope, payload) {
  try {
    return JSON.stringify({ route: envelope.route, headers: envelope.headers, payload });
  } catch (err) {
    throw new HandlerResultError(`the handler's result is not JSON-serialisable: ${err.message}`);
  }
}

/** Handle one yielded item: an object is an output, an array a command (its result is sent back). */
function take(item, envelope, outputs) {
  if (isPlainObject(item)) {
    outputs.push(output(envelope, item));
    return undefined;
  }
  if (Array.isArray(item) && item[0] === "FLY") {
    // Asya's ephemeral partial output: accepted, counted in the answer's `fly`, dropped (docs/protocol.md).
    if (item.length !== 2) throw new EnvelopeCommandError(`FLY takes 1 argument (the partial output), got ${item.length - 1}`);
    outputs.fly += 1;
    return undefined;
  }
  if (Array.isArray(item)) return applyCommand(envelope, item);
  if (item === undefined || item === null) return undefined;
  throw new HandlerResultError(
    `the handler yielded ${typeName(item)}; yield an object (an output) or a command array such as ['SET', '.route.next', ['actor']]`,
  );
}

async function drive(generator, envelope) {
  const outputs = [];
  outputs.fly = 0;
  try {
    let step = await generator.next();
    while (!step.done) {
      let reply;
      try {
        reply = take(step.value, envelope, outputs);
      } catch (err) {
        if (!(err instanceof ContractError)) throw err;
        step = await generator.throw(err); // raised at the user's `yield`, so the stack points there
        continue;
      }
      step = await generator.next(reply);
    }
    return outputs;
  } finally {
    await generator.return(undefined);
  }
}

async function runCall(func, envelope) {
  let result = func(envelope.payload);
  const tag = Object.prototype.toString.call(result);
  if (tag === "[object Generator]" || tag === "[object AsyncGenerator]") {
    const outputs = await drive(result, envelope);
    return [outputs.length ? "stream" : "none", outputs];
  }
  if (result && typeof result.then === "function") result = await result;
  if (result === undefined || result === null) return ["none", []];
  if (!isPlainObject(result)) {
    throw new HandlerResultError(
      `the handler returned ${typeName(result)}; return an object (the next payload) or null (end here)`,
    );
  }
  return ["return", [output(envelope, result)]];
}

async function respond(func, envelope) {
  try {
    const [kind, outputs] = await runCall(func, envelope);
    const fly = outputs.fly ? `,"fly":${outputs.fly}` : "";
    return `{"ok":true,"kind":"${kind}","outputs":[${outputs.join(",")}]${fly}}`;
  } catch (err) {
    return JSON.stringify(errorFrame(err, !(err instanceof ContractError)));
  }
}

/**
 * One call_batch (docs/protocol.md): the handler called once with every envelope's payload, in order; one result
 * per envelope, each what a `call` of that envelope alone would have answered. handler_server.py's respond_batch.
 */
async function respondBatch(func, envelopes) {
  const results = [];
  try {
    let result = func(envelopes.map((envelope) => envelope.payload));
    const tag = Object.prototype.toString.call(result);
    if (tag === "[object Generator]" || tag === "[object AsyncGenerator]") {
      throw new HandlerResultError(
        "the batched handler is a generator; return an array with one result per payload (an item may be a generator: it routes that item as a single call's generator would)",
      );
    }
    if (result && typeof result.then === "function") result = await result;
    if (!Array.isArray(result)) {
      throw new HandlerResultError(`the batched handler returned ${typeName(result)}; return an array with one result per payload`);
    }
    if (result.length !== envelopes.length) {
      throw new HandlerResultError(
        `the batched handler returned ${result.length} results for ${envelopes.length} payloads; return one per payload, in order (an Error instance fails that item alone)`,
      );
    }
    for (let i = 0; i < envelopes.length; i++) results.push(await batchItem(envelopes[i], result[i]));
  } catch (err) {
    return JSON.stringify(errorFrame(err, !(err instanceof ContractError)));
  }
  return `{"ok":true,"results":[${results.join(",")}]}`;
}

/** One item's answer text: an Error instance fails it (retryable, as if its own call had thrown it). */
async function batchItem(envelope, item) {
  if (item instanceof Error) return JSON.stringify(errorFrame(item, !(item instanceof ContractError)));
  try {
    let kind;
    let outputs;
    const tag = Object.prototype.toString.call(item);
    if (tag === "[object Generator]" || tag === "[object AsyncGenerator]") {
      outputs = await drive(item, envelope);
      kind = outputs.length ? "stream" : "none";
    } else {
      if (item && typeof item.then === "function") item = await item;
      if (item === undefined || item === null) [kind, outputs] = ["none", []];
      else if (!isPlainObject(item)) {
        throw new HandlerResultError(`the batched handler's result is ${typeName(item)}; give an object, null, an Error or a generator per payload`);
      } else [kind, outputs] = ["return", [output(envelope, item)]];
    }
    const fly = outputs.fly ? `,"fly":${outputs.fly}` : "";
    return `{"ok":true,"kind":"${kind}","outputs":[${outputs.join(",")}]${fly}}`;
  } catch (err) {
    return JSON.stringify(errorFrame(err, !(err instanceof ContractError)));
  }
}

// ------------------------------------------------------------------------------------ the worker: the handler

const isClass = (v) => typeof v === "function" && /^class[\s{]/.test(Function.prototype.toString.call(v));

/** The JavaScript files in `searchPath` (what a mistyped file name may have meant). */
function scriptFiles(searchPath) {
  const found = new Set();
  for (const dir of searchPath) {
    try {
      for (const name of fs.readdirSync(dir)) if (/\.[cm]?js$/.test(name)) found.add(name);
    } catch {
      // not a readable directory: nothing to offer from it
    }
  }
  return [...found].sort();
}

/** The names `value` offers: own keys, and for a class its prototype's methods. */
function namesOf(value) {
  const names = new Set(Object.keys(Object(value)));
  if (isClass(value)) for (const name of Object.getOwnPropertyNames(value.prototype)) if (name !== "constructor") names.add(name);
  return [...names].filter((name) => !name.startsWith("_") && name !== "default").sort();
}

function construct(spec, cls, name) {
  try {
    return new cls();
  } catch (err) {
    const detail = `creating ${name}() raised ${err.name}: ${err.message}; the class is created without arguments`;
    throw new StartupError(detail, { spec, problem: "constructor" });
  }
}

/**
 * Resolve the handler as handler_server.py does (docs/protocol.md, `ASYA_HANDLER`) and check that it takes at most
 * one parameter, the payload (JavaScript calls a function of more with the rest undefined: a mistake).
 * `instantiate: false` (`--check`) looks a method up on its class's prototype without creating an instance.
 */
async function loadHandler(spec, searchPath, { instantiate = true } = {}) {
  let modulePath, attrs;
  const where = searchPath.join(":");
  const colon = spec.lastIndexOf(":");
  if (colon > 0) {
    const file = spec.slice(0, colon);
    attrs = spec.slice(colon + 1).split(".");
    const candidates = path.isAbsolute(file) ? [file] : searchPath.map((dir) => path.resolve(dir, file));
    modulePath = candidates.find((candidate) => fs.existsSync(candidate));
    if (!modulePath) {
      const detail = `file '${file}' not found (${ENV_HANDLER_PATH}='${where}')`;
      throw new StartupError(detail, { spec, problem: "module", missing: file, candidates: scriptFiles(searchPath) });
    }
  } else {
    const dot = spec.indexOf(".", spec.lastIndexOf("/") + 1);
    if (dot <= 0) throw new StartupError("must be 'path/to/file.js:export' or 'module.export'", { spec, problem: "spec" });
    const name = spec.slice(0, dot);
    attrs = spec.slice(dot + 1).split(".");
    for (const dir of searchPath) {
      try {
        modulePath = createRequire(path.join(dir, "index.js")).resolve(name);
        break;
      } catch {
        // not resolvable from this directory: try the next
      }
    }
    if (!modulePath) {
      throw new StartupError(`module '${name}' not found (${ENV_HANDLER_PATH}='${where}')`, { spec, problem: "module", missing: name });
    }
  }
  if (!attrs.every(Boolean)) throw new StartupError("names an empty export", { spec, problem: "spec" });
  let namespace;
  try {
    namespace = path.isAbsolute(modulePath) ? await import(pathToFileURL(modulePath).href) : await import(modulePath);
  } catch (err) {
    const problem = err && err.name === "SyntaxError" ? "syntax" : "import";
    throw new StartupError(`loading '${modulePath}' raised ${err.name}: ${String(err.message).split("\n")[0]}`, { spec, problem });
  }
  let owner = null;
  let target = attrs[0] in namespace ? namespace : namespace.default;
  for (let i = 0; i < attrs.length; i++) {
    const name = attrs[i];
    let holder = target;
    if (isClass(holder) && i > 0 && !instantiate) {
      // --check: a method on the prototype needs no instance; one the constructor sets does
      holder = name in holder.prototype ? holder.prototype : construct(spec, holder, attrs[i - 1]);
    }
    if (holder === null || holder === undefined || !(name in Object(holder))) {
      const at = i === 0 ? modulePath : attrs.slice(0, i).join(".");
      const names = namesOf(i === 0 ? { ...namespace.default, ...namespace } : target);
      const listed = names.length ? ` (it has ${names.slice(0, 8).join(", ")})` : "";
      throw new StartupError(`'${at}' has no export or attribute '${name}'${listed}`, { spec, problem: "attribute", missing: name, candidates: names });
    }
    owner = i === 0 ? null : holder;
    target = holder[name];
    if (isClass(target) && i < attrs.length - 1 && instantiate) target = construct(spec, target, name);
  }
  if (isClass(target)) {
    throw new StartupError("names a class; name one of its methods: file.js:Class.method", { spec, problem: "target" });
  }
  if (typeof target !== "function") throw new StartupError(`names a ${typeName(target)}, not a function`, { spec, problem: "target" });
  if (target.length > 1) {
    const name = target.name || attrs[attrs.length - 1];
    const detail = `${name} takes ${target.length} parameters but is called with one, the payload; define it as function ${name}(payload)`;
    throw new StartupError(detail, { spec, problem: "signature" });
  }
  return owner ? target.bind(owner) : target;
}

/** `--check`: load the handler as serving would, print one JSON line, exit 0 or 2 (handler_server.py's `check`). */
async function check(env) {
  let answer;
  try {
    const config = settings(env);
    await loadHandler(config.handler, config.searchPath, { instantiate: false });
    answer = { ok: true, handler: config.handler };
  } catch (err) {
    if (!(err instanceof StartupError)) throw err;
    answer = { ...err.answer(), handler: (env[ENV_HANDLER] || "").trim() || null };
  }
  fs.writeSync(1, JSON.stringify(answer) + "\n");
  return answer.ok ? EXIT_OK : EXIT_STARTUP_ERROR;
}

async function workerMain() {
  let func;
  try {
    func = await loadHandler(workerData.handler, workerData.searchPath);
  } catch (err) {
    parentPort.postMessage({ type: "startup_error", message: err instanceof StartupError ? err.message : String(err) });
    return;
  }
  parentPort.on("message", async ({ id, envelope, envelopes }) => {
    const frame = envelopes ? await respondBatch(func, envelopes) : await respond(func, envelope);
    parentPort.postMessage({ type: "result", id, frame });
  });
  parentPort.postMessage({ type: "ready" });
}

// ------------------------------------------------------------------------------------- the main thread: server

function settings(env) {
  const handler = (env[ENV_HANDLER] || "").trim();
  if (!handler) throw new StartupError(`${ENV_HANDLER} is not set; set it to 'path/to/file.js:export' or 'module.export'`);
  const concurrencyText = env[ENV_HANDLER_CONCURRENCY] || "1";
  const concurrency = Number(concurrencyText);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new StartupError(`${ENV_HANDLER_CONCURRENCY}='${concurrencyText}' must be a whole number >= 1`);
  }
  const drainText = env[ENV_HANDLER_DRAIN_S] || String(DEFAULT_DRAIN_S);
  const drainS = Number(drainText);
  if (!Number.isFinite(drainS)) throw new StartupError(`${ENV_HANDLER_DRAIN_S}='${drainText}' must be a number of seconds`);
  const searchPath = (env[ENV_HANDLER_PATH] || "").split(":").filter(Boolean);
  return {
    handler,
    concurrency,
    drainS,
    searchPath: searchPath.length ? searchPath : [process.cwd()],
    socketPath: env[ENV_SOCKET_PATH] || DEFAULT_SOCKET_PATH,
  };
}

/** What tells one file at `p` from the next: the inode number (reused at once on tmpfs) and its ctime. */
function identity(p) {
  const info = fs.statSync(p, { bigint: true });
  return `${info.ino}:${info.ctimeNs}`;
}

function unlink(p) {
  try {
    fs.unlinkSync(p);
  } catch (err) {
    if (err.code !== "ENOENT") throw err;
  }
}

class HandlerServer {
  constructor(config, worker) {
    Object.assign(this, config);
    this.worker = worker;
    this.running = new Map(); // call id → {started (ms), timeoutS}
    this.results = new Map(); // call id → resolve(frame)
    this.nextId = 0;
    this.active = 0;
    this.waiting = [];
    this.connections = new Set();
    this.draining = false;
    worker.on("message", ({ id, frame }) => {
      const resolve = this.results.get(id);
      this.results.delete(id);
      if (resolve) resolve(frame);
    });
  }

  listen() {
    fs.mkdirSync(path.dirname(this.socketPath), { recursive: true });
    unlink(this.socketPath); // a socket left by a previous process that died
    this.server = net.createServer((socket) => this.serveConnection(socket));
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.socketPath, () => {
        this.socketIdentity = identity(this.socketPath);
        resolve();
      });
    });
  }

  /** Whether the socket file is still the one this server bound (a successor may have bound the path since). */
  ownsSocket() {
    try {
      return identity(this.socketPath) === this.socketIdentity;
    } catch (err) {
      if (err.code !== "ENOENT") throw err;
      return false;
    }
  }

  /** Remove the socket file if it is still this server's. */
  unlinkSocket() {
    if (this.ownsSocket()) unlink(this.socketPath);
  }

  serveConnection(socket) {
    this.connections.add(socket);
    let pending = [];
    let queue = Promise.resolve();
    socket.answering = 0; // requests read and not yet answered: the connection is busy, not idle
    socket.on("data", (data) => {
      let start = 0;
      for (let end = data.indexOf(10); end !== -1; end = data.indexOf(10, start)) {
        pending.push(data.subarray(start, end));
        const line = Buffer.concat(pending).toString("utf8");
        pending = [];
        start = end + 1;
        if (!line.trim()) continue;
        socket.answering++;
        queue = queue.then(() => this.respond(line)).then((frame) => {
          socket.write(frame + "\n");
          socket.answering--;
        });
      }
      if (start < data.length) pending.push(data.subarray(start));
      socket.partial = pending.length > 0;
    });
    socket.on("error", () => {}); // the client went away; its call (if any) still runs
    socket.on("close", () => this.connections.delete(socket));
  }

  async respond(line) {
    let request;
    try {
      request = JSON.parse(line);
    } catch (err) {
      return JSON.stringify(errorFrame(new ProtocolError(`the frame is not JSON: ${err.message}`), false));
    }
    const op = isObject(request) ? request.op : undefined;
    if (op === "call") {
      const { envelope, timeout_s: timeoutS } = request;
      if (!isObject(envelope) || !isObject(envelope.route)) {
        return JSON.stringify(errorFrame(new ProtocolError("a call needs 'envelope': an object with a 'route' object"), false));
      }
      if (timeoutS !== undefined && timeoutS !== null && typeof timeoutS !== "number") {
        const problem = new ProtocolError(`'timeout_s' must be a number of seconds or null, got ${JSON.stringify(timeoutS)}`);
        return JSON.stringify(errorFrame(problem, false));
      }
      return this.call(envelope, timeoutS === undefined ? null : timeoutS);
    }
    if (op === "call_batch") return this.callBatch(request);
    if (op === "health") return JSON.stringify(this.health());
    return JSON.stringify(errorFrame(new ProtocolError(`unknown op ${JSON.stringify(op)}; ops are 'call', 'call_batch' and 'health'`), false));
  }

  /** call_batch: checked like a call; the batch takes one slot and is one running call for the watchdog. */
  async callBatch(request) {
    const { envelopes, timeout_s: timeoutS } = request;
    if (!Array.isArray(envelopes) || !envelopes.length || !envelopes.every((e) => isObject(e) && isObject(e.route))) {
      const problem = new ProtocolError("a call_batch needs 'envelopes': a non-empty list of objects with a 'route' object");
      return JSON.stringify(errorFrame(problem, false));
    }
    if (timeoutS !== undefined && timeoutS !== null && typeof timeoutS !== "number") {
      const problem = new ProtocolError(`'timeout_s' must be a number of seconds or null, got ${JSON.stringify(timeoutS)}`);
      return JSON.stringify(errorFrame(problem, false));
    }
    if (this.active < this.concurrency) this.active++;
    else await new Promise((resolve) => this.waiting.push(resolve)); // the slot is handed over by release
    const id = this.nextId++;
    this.running.set(id, { started: performance.now(), timeoutS: timeoutS === undefined ? null : timeoutS });
    try {
      return await new Promise((resolve) => {
        this.results.set(id, resolve);
        this.worker.postMessage({ id, envelopes });
      });
    } finally {
      this.running.delete(id);
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  async call(envelope, timeoutS) {
    if (this.active < this.concurrency) this.active++;
    else await new Promise((resolve) => this.waiting.push(resolve)); // the slot is handed over by release
    const id = this.nextId++;
    this.running.set(id, { started: performance.now(), timeoutS });
    try {
      return await new Promise((resolve) => {
        this.results.set(id, resolve);
        this.worker.postMessage({ id, envelope });
      });
    } finally {
      this.running.delete(id);
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  health() {
    const now = performance.now();
    let overdue = false;
    for (const { started, timeoutS } of this.running.values()) {
      if (timeoutS !== null && now - started > timeoutS * 1000) overdue = true;
    }
    const status = overdue ? "hung" : this.draining ? "draining" : "ok";
    return { ok: !overdue, status, handler: this.handler, pid: process.pid, in_flight: this.running.size, concurrency: this.concurrency };
  }

  watchdog() {
    const now = performance.now();
    for (const { started, timeoutS } of this.running.values()) {
      if (timeoutS !== null && now - started > (timeoutS + HUNG_GRACE_S) * 1000) {
        const runningS = Math.round(now - started) / 1000;
        log("error", "hung", { pid: process.pid, running_s: runningS, grace_s: HUNG_GRACE_S, exit_status: EXIT_HUNG });
        this.unlinkSocket();
        process.exit(EXIT_HUNG);
      }
    }
  }

  /**
   * After SIGTERM: stop accepting, let in-flight calls finish, close idle connections (once IDLE_CLOSE_GRACE_MS
   * has passed: a client that picked one just before has written its request, which is answered), within the
   * drain bound. handler_server.py's _drain does the same.
   */
  stop() {
    if (this.draining) return;
    this.draining = true;
    // libuv removes a Unix socket's file when its server closes: close only a server whose file it still is (a
    // successor may have bound the path); otherwise refuse what it might still accept (nothing can reach it).
    if (this.ownsSocket()) this.server.close();
    else this.server.on("connection", (socket) => socket.destroy());
    this.unlinkSocket();
    log("info", "stopping", { pid: process.pid, in_flight: this.running.size, connections: this.connections.size });
    const started = performance.now();
    const deadline = started + this.drainS * 1000;
    const poll = setInterval(() => {
      if (performance.now() - started >= IDLE_CLOSE_GRACE_MS) {
        for (const socket of this.connections) if (!socket.answering && !socket.partial) socket.destroy();
      }
      const drained = this.running.size === 0 && this.connections.size === 0;
      if (!drained && performance.now() < deadline) return;
      clearInterval(poll);
      if (drained) log("info", "stop", { pid: process.pid });
      else log("warning", "stop", { pid: process.pid, drain_timed_out: true, in_flight: this.running.size });
      process.exit(EXIT_OK);
    }, 20);
  }
}

async function serve() {
  let config;
  try {
    config = settings(process.env);
  } catch (err) {
    log("error", "startup_failed", { message: err.message });
    return EXIT_STARTUP_ERROR;
  }
  const worker = new Worker(__filename, { workerData: { handler: config.handler, searchPath: config.searchPath } });
  const first = await new Promise((resolve) => {
    worker.once("message", resolve);
    worker.once("error", (err) => resolve({ type: "startup_error", message: `${ENV_HANDLER}='${config.handler}': ${err}` }));
  });
  if (first.type !== "ready") {
    log("error", "startup_failed", { message: first.message });
    return EXIT_STARTUP_ERROR;
  }
  const server = new HandlerServer(config, worker);
  const crash = (detail) => {
    if (server.draining) return;
    log("error", "crash", { pid: process.pid, ...detail });
    server.unlinkSocket();
    process.exit(EXIT_UNHEALTHY);
  };
  worker.on("error", (err) => crash({ error: err.name, message: err.message }));
  worker.on("exit", (code) => crash({ error: "WorkerExit", message: `the handler's thread exited with code ${code}` }));
  await server.listen();
  setInterval(() => server.watchdog(), WATCHDOG_INTERVAL_MS);
  for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.stop());
  log("info", "start", {
    handler: config.handler, socket: config.socketPath, pid: process.pid,
    concurrency: config.concurrency, runtime: `node ${process.versions.node}`,
  });
  return null; // keeps running
}

function probeHealth(socketPath) {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    let reply = "";
    const done = (healthy, seen) => {
      socket.destroy();
      resolve([healthy, seen]);
    };
    socket.setTimeout(HEALTH_PROBE_TIMEOUT_MS, () => done(false, "no answer in time"));
    socket.on("error", (err) => done(false, `cannot reach ${socketPath}: ${err.message}`));
    socket.on("connect", () => socket.write('{"op":"health"}\n'));
    socket.on("data", (data) => {
      reply += data.toString("utf8");
      if (!reply.includes("\n")) return;
      const answer = JSON.parse(reply);
      done(Boolean(answer.ok), `status '${answer.status}'`);
    });
    socket.on("end", () => done(false, "the server closed the connection without answering"));
  });
}

async function main(args) {
  if (args.length === 1 && args[0] === "--health") {
    const [healthy, seen] = await probeHealth(process.env[ENV_SOCKET_PATH] || DEFAULT_SOCKET_PATH);
    if (!healthy) process.stderr.write(`asya handler server unhealthy: ${seen}\n`);
    return healthy ? EXIT_OK : EXIT_UNHEALTHY;
  }
  if (args.length === 1 && args[0] === "--check") return check(process.env);
  if (args.length) {
    process.stderr.write("usage: handler_server.js [--health | --check]  (configured by ASYA_* environment variables)\n");
    return EXIT_STARTUP_ERROR;
  }
  return serve();
}

if (isMainThread) {
  main(process.argv.slice(2)).then((code) => {
    if (code !== null) process.exit(code);
  });
} else {
  workerMain();
}
