// Example: a language model's loss landscape on a token stream. The embedded byte-level text
// (`--data tokens`, the King James Bible) is cut into 32-token windows with next-token targets;
// a byte-level GPT exported from PyTorch (fixtures/torch_tasks.py) is evaluated per token and
// along a filter-normalized direction that moves only its last block.
// Run: npx tsx examples/token-lm.ts [model.onnx]

import { combine, createOrtEngine, loadDataset, makeDirections, readOnnx } from "../src/index.ts";

const path = process.argv[2] ?? new URL("../fixtures/tasks/byte-gpt.onnx", import.meta.url).pathname;
const model = await readOnnx(path);
const text = loadDataset("tokens", "test", { context: 32, subset: { count: 64 }, seed: 0 });
const engine = await createOrtEngine(model, { threads: 2 });
try {
  const at = await engine.evaluate(model.initial, text);
  console.log(
    `${model.name} on ${text.name}: loss ${at.loss.toFixed(4)} per token (perplexity ${Math.exp(at.loss).toFixed(1)}), accuracy ${(100 * at.accuracy).toFixed(1)} %`,
  );
  const { directions } = makeDirections(model, model.initial, { dims: 1, seed: 0, only: /^blocks\.0\./ });
  const theta = new Float32Array(model.size);
  for (const a of [-1, -0.5, 0, 0.5, 1]) {
    combine(model.initial, directions, [a], theta);
    const m = await engine.evaluate(theta, text);
    console.log(`  a = ${a.toFixed(1).padStart(4)}: loss ${m.loss.toFixed(4)}`);
  }
} finally {
  await engine.dispose();
}
