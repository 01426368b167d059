// A worker that takes one job and then hangs holding it, until the test kills
// it with SIGKILL: a worker dying mid-job, deterministically.
// Usage: node --import tsx test/queue/_victim.ts <redis-url> <queue-name>

import { parseQueueUrl } from "../../src/queue/connection.ts";
import { startSurfaceWorker } from "../../src/queue/worker.ts";

const [url, name] = process.argv.slice(2);
if (!url || !name) throw new Error("usage: _victim.ts <redis-url> <queue-name>");
await startSurfaceWorker(
  { connection: parseQueueUrl(url), name },
  {
    threads: 1,
    workerName: "victim",
    lockSeconds: 1,
    onChunk: async ({ job }) => {
      process.stdout.write(`holding ${job}\n`);
      await new Promise(() => {});
    },
  },
);
process.stdout.write("ready\n");
