// losscape's library API: everything the CLI does is available from here.

export { type GradientGraph, type GradientOptions, gradientGraph } from "./autodiff/gradient.ts";
export { createHvpSession, hvpGraph } from "./autodiff/hvp.ts";
export { jvpGraph } from "./autodiff/jvp.ts";
export {
  createGradientSession,
  type GradientSession,
  type GradientStep,
  type UpdateStep,
} from "./autodiff/session.ts";
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
export {
  type Eigenpairs,
  hutchinsonTrace,
  hutchPlusPlusTrace,
  type LanczosQuadrature,
  type LanczosResult,
  lanczos,
  lanczosEigenpairs,
  lanczosQuadrature,
  lanczosTridiagonal,
  type ProbeDistribution,
  probeVectors,
} from "./core/lanczos.ts";
export { type FocusLevelOptions, focusLevels } from "./core/levels.ts";
export {
  learningRate,
  type OptimizerConfig,
  optimizerState,
  optimizerStep,
  paperSchedule,
  type StepSchedule,
} from "./core/optim.ts";
export { type PcaResult, pcaDirections, projectPoint } from "./core/pca.ts";
export { Random } from "./core/random.ts";
export { combine, dot, norm } from "./core/vector.ts";
export {
  type HessianExtremes,
  hessianExtremes,
  operatorExtremes,
  TRACE_METHODS,
  type TraceMethod,
} from "./curvature/hessian.ts";
export { filterMask, type HessianOperator, hessianOperator } from "./curvature/hvp.ts";
export {
  type AverageSharpness,
  averageCaseSharpness,
  epsilonSharpness,
  modelObjective,
  type PerturbedParameters,
  type SharpnessNorm,
  type SharpnessObjective,
  type SharpnessOptions,
  type SharpnessRow,
  sharpnessMarkdown,
  sharpnessTable,
  worstCaseSharpness,
} from "./curvature/sharpness.ts";
export {
  type HessianSpectrum,
  hessianSpectrum,
  hessianTraceHutchPlusPlus,
  operatorSpectrum,
  type SpectralDensity,
  spectralDensity,
  spectrumMoments,
  spectrumTrace,
} from "./curvature/spectrum.ts";
export { hessianSurface } from "./curvature/surface.ts";
export { readCifar } from "./data/cifar.ts";
export { type Dataset, datasetSize, sampleSize } from "./data/dataset.ts";
export { FASHION_MNIST_CLASSES, loadEmbedded } from "./data/embedded.ts";
export { readMnist } from "./data/idx.ts";
export { readImageFolder } from "./data/images.ts";
export { DATASET_STATS, type LoadOptions, loadDataset, type Split } from "./data/load.ts";
export { openNpy, parseNpy, readNpy } from "./data/npy.ts";
export { openNpz, readNpz } from "./data/npz.ts";
export { loadEmbeddedText, readTokens } from "./data/tokens.ts";
export {
  channelStats,
  describeNormalization,
  normalize,
  parseNormalize,
  parseSubset,
  subset,
} from "./data/transform.ts";
export { type DemoOptions, type DemoResult, runDemo } from "./demo.ts";
export type { Engine, EvaluateOptions, LossName, Metrics } from "./engine/engine.ts";
export { createOrtEngine, type OrtOptions } from "./engine/ort.ts";
export { LOSS_NAMES, outputLayout, type TaskOptions, taskIdentity } from "./engine/task.ts";
export { writeFileAtomic } from "./formats/atomic.ts";
export { type DirectionFile, readDirectionFile, writeDirectionFile } from "./formats/direction-file.ts";
export {
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
} from "./formats/safetensors.ts";
export { readSurface, type Surface, type SurfaceQuantity, writeSurface } from "./formats/surface-file.ts";
export {
  BATCH_NORM_HANDLINGS,
  type BatchNormHandling,
  type BatchNormRecalibrator,
  batchNormProblems,
  createBatchNormRecalibrator,
  type RecomputeOptions,
  recalibratedEngine,
  recalibrationBatches,
} from "./landscape/bn.ts";
export {
  type Barrier,
  barrierHeight,
  type Connection,
  CURVE_KINDS,
  type Curve,
  type CurveKind,
  type CurvePlane,
  controlGradient,
  curveLearningRate,
  curvePlane,
  curvePoint,
  curveWeights,
  evaluateConnection,
  fitCurve,
  linePoint,
  trainCurve,
} from "./landscape/connect.ts";
export { type ConnectJob, type ConnectResult, connectModels } from "./landscape/connect-job.ts";
export {
  directionsAt,
  HESSIAN_AXES,
  type HessianAxes,
  loadDirections,
  makeDirections,
  makeHessianDirections,
  makeModelDirection,
} from "./landscape/plan.ts";
export {
  computePlanes,
  type PlaneSharpness,
  type PlanesJob,
  type PlanesResult,
  planeFiles,
  planeSharpness,
  spread,
} from "./landscape/planes.ts";
export {
  checkResume,
  computeSurface,
  jobIdentity,
  mergeSurfaces,
  type SurfaceJob,
} from "./landscape/surface.ts";
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
export { connectionFigure, curvePlaneFigure } from "./plot/connect.ts";
export { exportSurface, landscapeMesh } from "./plot/export.ts";
export { type PdfFigure, type PdfOptions, svgToPdf } from "./plot/pdf.ts";
export { type PlotOptions, plotSurfaces, writeFigure } from "./plot/plot.ts";
export { svgToPng } from "./plot/png.ts";
export { type SpectrumCurve, spectrumFigure } from "./plot/spectrum.ts";
export { type TrainConfig, type TrainResult, train } from "./train/train.ts";
export { trajectoryPlane, trajectorySvg } from "./trajectory/plane.ts";
export {
  projectTrajectory,
  readProjection,
  trajectoryPca,
  writeProjection,
} from "./trajectory/trajectory.ts";
export { ZOO_NAMES, type ZooOptions, zooModel, zooProto } from "./zoo/zoo.ts";
// The viewer (vite) and the queue (BullMQ) load heavy dependencies: import them from
// "losscape/viewer" and "losscape/queue".
