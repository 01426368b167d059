// Example: a regression model (real-valued targets, mean squared error) from a NumPy-style array
// file, and its loss along a random filter-normalized direction. The batch is the one
// fixtures/torch_tasks.py wrote with export_data(); an .npz with x and float y reads the same way
// (`--data npz:FILE --loss mse`).
// Run: npx tsx examples/regression.ts

import { combine, createOrtEngine, loadDataset, makeDirections, readOnnx } from "../src/index.ts";

const dir = new URL("../fixtures/tasks/", import.meta.url).pathname;
const model = await readOnnx(`${dir}regress.onnx`);
const data = loadDataset(`safetensors:${dir}regress-batch.safetensors`, "train");
const engine = await createOrtEngine(model, { threads: 2 });
try {
  const { directions } = makeDirections(model, model.initial, { dims: 1, seed: 0 });
  const theta = new Float32Array(model.size);
  for (const a of [-1, 0, 1]) {
    combine(model.initial, directions, [a], theta);
    const m = await engine.evaluate(theta, data, { loss: "mse" });
    console.log(`a = ${a.toFixed(1).padStart(4)}: mse loss ${m.loss.toFixed(6)} over ${m.count} samples`);
  }
} finally {
  await engine.dispose();
}
