// The embedded SQS + S3 server of `asya dev` and the tests: fauxqs 2.x, on loopback only.
// Usage: node server.mjs PORT [DATA_DIR]   (started, restarted and stopped by asya_pulumi/local/broker.py)
// Runs from the per-user install directory that asya_pulumi/local/broker_install.py fills: this file, a copy of
// package.json and its lock, and their node_modules.
//
// What differs from fauxqs's own CLI (`startFauxqs`), each for a reason:
// - it listens on 127.0.0.1, not on every interface: a broker with no authentication must not be reachable
//   from the network;
// - before GetQueueAttributes it settles every queue's timers. fauxqs moves an expired in-flight or delayed
//   message back to "visible" only when a receive touches the queue, so without this the visible / in-flight /
//   delayed split that `asya status` and the progress bar show goes stale on a queue nobody polls (the total is
//   always right). Real SQS reports the split as of the request;
// - PutObject honours S3's conditional writes, which fauxqs 2.4.1 ignores: `If-None-Match: *` (write only if no
//   object has the key) and `If-Match: ETAG` (only if the object's ETag is that) answer 412 PreconditionFailed when
//   the condition fails (If-Match on no object: 404 NoSuchKey), and 409 ConditionalRequestConflict while another
//   conditional write of the same key is under way, as AWS does. Fan-in's exactly-once claim rests on them
//   (runtime asya_runtime/sidecar/fanin.py);
// - with DATA_DIR, every queue, message (visible, delayed and in flight, with its receipt handle and deadline) and
//   object is written through to DATA_DIR/fauxqs.db (fauxqs's PersistenceManager: SQLite in WAL mode) before the
//   request is answered, and loaded back on start: a broker that is killed and started again on the same
//   DATA_DIR has lost nothing it acknowledged. `synchronous = NORMAL` instead of SQLite's FULL: a commit is in the
//   operating system's cache before the answer, which a killed process cannot lose (only a power cut could), and
//   it skips an fsync per SQS call.
import { buildApp } from "fauxqs";

// The stores and the persistence manager are not exported by the package's entry point; importing the module
// files directly is the only way to hand buildApp stores we can also reach (pinned: package-lock.json).
const dist = new URL("./node_modules/fauxqs/dist/", import.meta.url);
const { SqsStore } = await import(new URL("sqs/sqsStore.js", dist));
const { SnsStore } = await import(new URL("sns/snsStore.js", dist));
const { S3Store } = await import(new URL("s3/s3Store.js", dist));
const { PersistenceManager } = await import(new URL("persistence.js", dist));
const { S3Error } = await import(new URL("common/errors.js", dist));

const port = Number.parseInt(process.argv[2] ?? "", 10);
const dataDir = process.argv[3];
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node server.mjs PORT [DATA_DIR]");
  process.exit(2);
}
const sqsStore = new SqsStore();
const snsStore = new SnsStore();
const s3Store = new S3Store();
let persistence;
if (dataDir) {
  // As startFauxqs does it: load first (so loading writes nothing back), then wire the manager into every store.
  persistence = new PersistenceManager(dataDir);
  persistence.db.exec("PRAGMA synchronous = NORMAL");
  // fauxqs 2.4.1's updateMessageReady (a release: ChangeMessageVisibility to 0) writes NULL into the NOT NULL
  // receive count and throws, after the message has left the in-flight set and before it is back in the queue: the
  // caller gets MessageNotInflight and the message is gone until a restart reloads it. Ours clears only the
  // receipt handle and deadline; the receive count stays, as in SQS (tests/runtime/test_broker_semantics.py).
  const release = persistence.db.prepare(
    "UPDATE sqs_messages SET receipt_handle = NULL, visibility_deadline = NULL WHERE message_id = ?",
  );
  persistence.updateMessageReady = (messageId) => {
    release.run(messageId);
  };
  persistence.load(sqsStore, snsStore, s3Store);
  sqsStore.persistence = snsStore.persistence = s3Store.persistence = persistence;
  for (const queue of sqsStore.allQueues()) {
    queue.persistence = persistence;
  }
}
const app = buildApp({ logger: false, stores: { sqsStore, snsStore, s3Store } });
app.addHook("onRequest", (request, _reply, done) => {
  if (request.headers["x-amz-target"] === "AmazonSQS.GetQueueAttributes") {
    sqsStore.processAllTimers();
  }
  done();
});
// Conditional PutObject (see the header). The check runs after the body is read, in the same turn of the event loop
// as the write when nothing awaits between them; the set of keys with a conditional write under way covers the case
// where something does, so two conditional writers of one key can never both pass.
const conditionalWrites = new Set();
const stripQuotes = (etag) => String(etag).trim().replace(/^W\//, "").replace(/^"|"$/g, "");
app.addHook("preHandler", (request, reply, done) => {
  const ifNoneMatch = request.headers["if-none-match"];
  const ifMatch = request.headers["if-match"];
  const bucket = request.params?.bucket;
  const key = request.params?.["*"];
  if (request.method !== "PUT" || (ifNoneMatch === undefined && ifMatch === undefined) || !bucket || !key ||
      request.headers["x-amz-copy-source"]) {
    done();
    return;
  }
  const slot = `${bucket}/${key}`;
  const refuse = (code, message, status) => {
    reply.code(status).header("content-type", "application/xml").send(new S3Error(code, message, status).toXml());
  };
  if (conditionalWrites.has(slot)) {
    refuse("ConditionalRequestConflict", "A conflicting conditional operation is currently in progress against this resource.", 409);
    return;
  }
  let current;
  try {
    current = s3Store.headObject(bucket, key);
  } catch {
    current = undefined; // no such key (or bucket: the write itself says so)
  }
  if (ifNoneMatch !== undefined && current !== undefined && (ifNoneMatch.trim() === "*" ||
      stripQuotes(ifNoneMatch) === stripQuotes(current.etag))) {
    refuse("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412);
    return;
  }
  if (ifMatch !== undefined && current === undefined) {
    refuse("NoSuchKey", "The specified key does not exist.", 404);
    return;
  }
  if (ifMatch !== undefined && ifMatch.trim() !== "*" && stripQuotes(ifMatch) !== stripQuotes(current.etag)) {
    refuse("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412);
    return;
  }
  conditionalWrites.add(slot);
  request.asyaConditionalSlot = slot;
  done();
});
const releaseConditional = (request) => {
  if (request.asyaConditionalSlot) {
    conditionalWrites.delete(request.asyaConditionalSlot);
  }
};
app.addHook("onResponse", (request, _reply, done) => {
  releaseConditional(request);
  done();
});
app.addHook("onRequestAbort", (request, done) => {
  releaseConditional(request);
  done();
});
if (persistence) {
  app.addHook("preClose", () => {
    persistence.close();
  });
}
await app.listen({ port, host: "127.0.0.1" });
const restored = [...sqsStore.allQueues()].length;
console.log(
  `fauxqs listening on http://127.0.0.1:${port}` +
    (dataDir ? ` (state in ${dataDir}/fauxqs.db; ${restored} queues restored)` : " (in memory)"),
);
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => app.close().then(() => process.exit(0)));
}
