// The conformance suite's handlers in JavaScript: the same as abi_script.py (its docstring says what each does).

function* script(payload) {
  const results = [];
  let last = null;
  for (const step of payload.steps) {
    if (step === "mutate") {
      if (Array.isArray(last)) last.push("mutated");
      else if (last && typeof last === "object") last.mutated = true;
      results.push("mutated");
      continue;
    }
    let item = step;
    if (step && typeof step === "object" && !Array.isArray(step) && "emit" in step) item = step.emit;
    else if (step === "yield_text") item = "not a dict";
    if (Array.isArray(step) && step[0] === "SET" && step.length === 3) last = step[2];
    let reply;
    try {
      reply = yield item;
    } catch (err) {
      results.push({ refused: err.name, message: err.message });
      continue;
    }
    if (Array.isArray(step) && step[0] === "GET") last = reply;
    results.push(reply === undefined ? null : structuredClone(reply)); // as it came back, before any 'mutate'
  }
  yield { results };
}

function* setRouting(...actors) {
  yield ["SET", ".route.next", actors];
}

function* delegating(payload) {
  yield* setRouting("actor_a", "actor_b");
  yield payload;
}

async function* asyncRouting(...actors) {
  yield ["SET", ".route.next", actors];
}

async function* async_delegating(payload) {
  for await (const instruction of asyncRouting("actor_a", "actor_b")) yield instruction;
  yield payload;
}

function* splitter(payload) {
  for (const item of payload.items) {
    yield ["SET", ".route.next", ["item_processor"]];
    yield { item };
  }
}

module.exports = { script, delegating, async_delegating, splitter };
