// Example: build a zoo model, evaluate it on a seeded subset of the embedded
// Fashion-MNIST test set, and perturb it along a random direction.
// Run: npx tsx examples/evaluate-zoo.ts

import { createOrtEngine, loadDataset, zooModel } from "../src/index.ts";

const data = loadDataset("fashion-mnist", "test", { subset: { count: 500 }, seed: 1 });
const model = zooModel("cnn", { inputShape: data.shape, classes: data.classes, seed: 0 });
const engine = await createOrtEngine(model, { threads: 2 });
try {
  const { loss, accuracy, count } = await engine.evaluate(model.initial, data);
  console.log(
    `cnn at its initial parameters: loss ${loss.toFixed(4)}, accuracy ${(100 * accuracy).toFixed(1)} % on ${count} samples`,
  );
} finally {
  await engine.dispose();
}
