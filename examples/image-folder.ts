// Example: an image-folder dataset (one sub-folder per class, PNG and JPEG), resized and cropped
// like torchvision's Resize + CenterCrop and normalized with ImageNet statistics, evaluated by a
// zoo CNN built for its shape and classes.
// Run: npx tsx examples/image-folder.ts [DIR]

import { createOrtEngine, loadDataset, zooModel } from "../src/index.ts";

const dir = process.argv[2] ?? new URL("../fixtures/data/images", import.meta.url).pathname;
const data = loadDataset(`images:${dir}`, "train", {
  resize: 20,
  crop: 16,
  normalize: "imagenet",
  cache: false, // a folder of your own keeps its decoded pixels in DIR/.losscape-cache
});
console.log(
  `${data.name}: ${data.labels.length} images of shape [${data.shape.join(", ")}], ${data.classes} classes, ${data.normalization}`,
);
const model = zooModel("cnn", { inputShape: data.shape, classes: data.classes });
const engine = await createOrtEngine(model, { threads: 2 });
try {
  const m = await engine.evaluate(model.initial, data);
  console.log(
    `${model.name} (untrained): loss ${m.loss.toFixed(4)}, accuracy ${(100 * m.accuracy).toFixed(1)} %`,
  );
} finally {
  await engine.dispose();
}
