// losscape's library API: everything the CLI does is available from here.

export {
  type DirectionMode,
  filterNorms,
  type ModelDirectionOptions,
  modelDirection,
  NORMALIZATIONS,
  type Normalization,
  normalizeDirection,
  orthogonalize,
  type RandomDirectionOptions,
  randomDirection,
} from "./core/directions.ts";
export {
  type Axis,
  axisValues,
  type Grid,
  gridSize,
  inShard,
  parseAxis,
  parseShard,
  pointCoords,
  type Shard,
} from "./core/grid.ts";
export { Random } from "./core/random.ts";
export { combine, dot, norm } from "./core/vector.ts";
export { readCifar } from "./data/cifar.ts";
export { type Dataset, datasetSize, sampleSize } from "./data/dataset.ts";
export { FASHION_MNIST_CLASSES, loadEmbedded } from "./data/embedded.ts";
export { readMnist } from "./data/idx.ts";
export { DATASET_STATS, type LoadOptions, loadDataset, type Split } from "./data/load.ts";
export { channelStats, normalize, parseSubset, subset } from "./data/transform.ts";
export { type DemoOptions, type DemoResult, runDemo } from "./demo.ts";
export type { Engine, EvaluateOptions, LossName, Metrics } from "./engine/engine.ts";
export { createOrtEngine, type OrtOptions } from "./engine/ort.ts";
export { writeFileAtomic } from "./formats/atomic.ts";
export {
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
} from "./formats/safetensors.ts";
export {
  loadParams,
  onnxWithParams,
  paramsFromSafetensors,
  paramsToSafetensors,
  saveModel,
} from "./model/checkpoint.ts";
export { fromProto, type ImportOptions, parseOnnx, readOnnx } from "./model/import.ts";
export { isTrainable, type Model, type ParamRole, type ParamSpec, paramView } from "./model/model.ts";
export { type OpenOptions, openModel } from "./model/open.ts";
export { ZOO_NAMES, type ZooOptions, zooModel, zooProto } from "./zoo/zoo.ts";
