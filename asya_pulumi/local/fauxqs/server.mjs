// The embedded SQS + S3 server of `asya dev` and the tests: fauxqs (in-memory), on loopback only.
// Usage: node server.mjs PORT   (started and stopped by asya_pulumi/local/broker.py)
// Runs from the per-user install directory that asya_pulumi/local/broker_install.py fills: this file, a copy of
// node20/ or node22/'s package.json and lock, and their node_modules. Works with fauxqs 1.9.2 and 2.x alike.
//
// Two things differ from fauxqs's own CLI, each for a reason:
// - it listens on 127.0.0.1, not on every interface: a broker with no authentication must not be reachable
//   from the network;
// - before GetQueueAttributes it settles every queue's timers. fauxqs moves an expired in-flight or delayed
//   message back to "visible" only when a receive touches the queue, so without this the visible / in-flight /
//   delayed split that `asya status` and the progress bar show goes stale on a queue nobody polls (the total is
//   always right). Real SQS reports the split as of the request.
import { buildApp } from "fauxqs";

// The stores are not exported by the package's entry point; importing the module file directly is the only way
// to hand buildApp a store we can also reach (pinned versions: node20/ and node22/package-lock.json).
const { SqsStore } = await import(new URL("./node_modules/fauxqs/dist/sqs/sqsStore.js", import.meta.url));

const port = Number.parseInt(process.argv[2] ?? "", 10);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node server.mjs PORT");
  process.exit(2);
}
const sqsStore = new SqsStore();
const app = buildApp({ logger: false, stores: { sqsStore } });
app.addHook("onRequest", (request, _reply, done) => {
  if (request.headers["x-amz-target"] === "AmazonSQS.GetQueueAttributes") {
    sqsStore.processAllTimers();
  }
  done();
});
await app.listen({ port, host: "127.0.0.1" });
console.log(`fauxqs listening on http://127.0.0.1:${port}`);
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => app.close().then(() => process.exit(0)));
}
