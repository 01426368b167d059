// losscape/queue: surfaces computed by many workers through BullMQ on Redis (docs/scale-out.md).

export { collectSurface, computeSurfaceOnQueue } from "./collect.ts";
export { parseQueueUrl } from "./connection.ts";
export { submitSurface } from "./submit.ts";
export { startSurfaceWorker } from "./worker.ts";
