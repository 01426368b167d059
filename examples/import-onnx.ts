// Example: read an ONNX model exported from PyTorch (BatchNorm kept with
// TrainingMode.PRESERVE), list its parameters with their roles, evaluate it.
// Run: npx tsx examples/import-onnx.ts [model.onnx]

import { createOrtEngine, loadDataset, readOnnx } from "../src/index.ts";

const path = process.argv[2] ?? new URL("../fixtures/torch/tiny_preserve.onnx", import.meta.url).pathname;
const model = await readOnnx(path);
for (const p of model.params) console.log(`${p.name.padEnd(28)} [${p.shape.join(", ")}] ${p.role}`);
const data = loadDataset("fashion-mnist", "test", { subset: { count: 256 }, seed: 0 });
const engine = await createOrtEngine(model);
try {
  const m = await engine.evaluate(model.initial, data);
  console.log(`${model.name}: loss ${m.loss.toFixed(4)}, accuracy ${(100 * m.accuracy).toFixed(1)} %`);
} finally {
  await engine.dispose();
}
