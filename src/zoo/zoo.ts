// The paper's model families built as ONNX graphs: MLP, a small CNN, VGG-9,
// ResNet-20/56/110 with and without skip connections, and Wide-ResNets.
// Parameter names follow PyTorch `state_dict` names so that checkpoints and
// reference direction files map onto them by name.

import { Random } from "../core/random.ts";
import { fromProto, type ImportOptions } from "../model/import.ts";
import type { Model } from "../model/model.ts";
import { GraphBuilder } from "../onnx/builder.ts";
import type { ModelProto } from "../onnx/proto.ts";
import {
  type Activation,
  activate,
  batchNorm,
  type Ctx,
  conv,
  flatten,
  globalAvgPool,
  linear,
  maxPool,
} from "./_layers.ts";

export type { Activation } from "./_layers.ts";

/** Options shared by all zoo models. */
export interface ZooOptions {
  /** Shape of one sample (default [1, 28, 28], the embedded Fashion-MNIST). */
  inputShape?: readonly number[];
  /** Number of classes (default 10). */
  classes?: number;
  /** Seed of the initial parameters (default 0). */
  seed?: number;
  /** Width multiplier: channels (VGG, ResNet) or hidden units (MLP) times this (default 1). */
  width?: number;
  /** MLP hidden layer sizes (default [512, 256]). */
  hidden?: readonly number[];
  /**
   * The nonlinearity after every hidden layer (default "relu", the paper's). "softplus" gives a
   * network without kinks, whose float32 gradients and curvature match float64 ones to rounding
   * wherever it is evaluated (ReLU units within rounding of 0 can flip either way).
   */
  activation?: Activation;
}

/** What a zoo name can be: `mlp`, `cnn`, `vgg9`, `resnet<6n+2>`, `resnet<6n+2>-noshort`, `wrn<6n+2>-<k>`. */
export const ZOO_NAMES = [
  "mlp",
  "cnn",
  "vgg9",
  "resnet20",
  "resnet56",
  "resnet110",
  "resnet20-noshort",
  "resnet56-noshort",
  "resnet110-noshort",
  "wrn56-2",
  "wrn56-4",
  "wrn56-8",
] as const;

/**
 * Builds a zoo model with seeded, PyTorch-default initial parameters.
 *
 * @example
 * const model = zooModel("resnet20", { inputShape: [3, 32, 32], seed: 1 });
 */
export function zooModel(
  name: string,
  options: ZooOptions & Pick<ImportOptions, "trainable" | "constant"> = {},
): Model {
  const { trainable, constant } = options;
  return fromProto(zooProto(name, options), {
    name,
    ...(trainable ? { trainable } : {}),
    ...(constant ? { constant } : {}),
  });
}

/** The ONNX graph of a zoo model (see zooModel). */
export function zooProto(name: string, options: ZooOptions = {}): ModelProto {
  const {
    inputShape = [1, 28, 28],
    classes = 10,
    seed = 0,
    width = 1,
    hidden = [512, 256],
    activation = "relu",
  } = options;
  if (!Number.isInteger(classes) || classes < 2)
    throw new Error(`zoo: 'classes' must be an integer >= 2, got ${classes}`);
  if (!(width > 0)) throw new Error(`zoo: 'width' must be positive, got ${width}`);
  if (activation !== "relu" && activation !== "softplus")
    throw new Error(`zoo: 'activation' must be "relu" or "softplus", got ${JSON.stringify(activation)}`);
  const ctx: Ctx = { b: new GraphBuilder(name), rng: new Random(seed), activation };
  const x = ctx.b.input("input", ["N", ...inputShape]);
  let logits: string;
  const resnet = /^(resnet|wrn)(\d+)(?:-(noshort|\d+))?$/.exec(name);
  if (name === "mlp")
    logits = mlp(
      ctx,
      x,
      inputShape,
      classes,
      hidden.map((h) => Math.round(h * width)),
    );
  else if (name === "cnn") logits = cnn(ctx, x, image(inputShape, name), classes, width);
  else if (name === "vgg9") logits = vgg9(ctx, x, image(inputShape, name), classes, width);
  else if (resnet) {
    const depth = Number(resnet[2]);
    if ((depth - 2) % 6 !== 0 || depth < 8) {
      throw new Error(
        `zoo: '${name}' needs a depth of the form 6n+2 (20, 32, 44, 56, 110, ...), got ${depth}`,
      );
    }
    const wide = resnet[1] === "wrn";
    if (wide && (resnet[3] === undefined || resnet[3] === "noshort")) {
      throw new Error(`zoo: '${name}' needs a width factor, e.g. wrn56-4`);
    }
    if (!wide && resnet[3] !== undefined && resnet[3] !== "noshort") {
      throw new Error(
        `zoo: '${name}': a ResNet suffix must be '-noshort' (use wrn<depth>-<k> for wide ones)`,
      );
    }
    const k = wide ? Number(resnet[3]) : width;
    logits = resnetCifar(
      ctx,
      x,
      image(inputShape, name),
      classes,
      (depth - 2) / 6,
      k,
      resnet[3] !== "noshort",
    );
  } else {
    throw new Error(
      `zoo: unknown model '${name}'; choose one of ${ZOO_NAMES.join(", ")} (any resnet<6n+2>, resnet<6n+2>-noshort, wrn<6n+2>-<k>)`,
    );
  }
  ctx.b.output(ctx.b.rename(logits, "logits"), ["N", classes]);
  return ctx.b.build();
}

function image(shape: readonly number[], name: string): [number, number, number] {
  if (shape.length !== 3)
    throw new Error(
      `zoo: '${name}' takes images [channels, height, width]; got input shape [${shape.join(", ")}]`,
    );
  return shape as [number, number, number];
}

/** Fully connected ReLU network on flattened inputs. */
function mlp(ctx: Ctx, x: string, shape: readonly number[], classes: number, hidden: number[]): string {
  let h = flatten(ctx, x);
  let fin = shape.reduce((a, b) => a * b, 1);
  hidden.forEach((units, i) => {
    h = activate(ctx, linear(ctx, `fc${i + 1}`, h, fin, units));
    fin = units;
  });
  return linear(ctx, `fc${hidden.length + 1}`, h, fin, classes);
}

/** Two conv-BN-ReLU-maxpool stages and two dense layers (32/64 channels, 128 hidden units at width 1). */
function cnn(
  ctx: Ctx,
  x: string,
  [c, h, w]: [number, number, number],
  classes: number,
  width: number,
): string {
  const c1 = Math.round(32 * width);
  const c2 = Math.round(64 * width);
  let y = maxPool(ctx, activate(ctx, batchNorm(ctx, "bn1", conv(ctx, "conv1", x, c, c1), c1)));
  y = maxPool(ctx, activate(ctx, batchNorm(ctx, "bn2", conv(ctx, "conv2", y, c1, c2), c2)));
  const fh = Math.floor(Math.floor(h / 2) / 2);
  const fw = Math.floor(Math.floor(w / 2) / 2);
  if (fh < 1 || fw < 1) throw new Error(`zoo: 'cnn' needs images of at least 4x4, got ${h}x${w}`);
  const hiddenUnits = Math.round(128 * width);
  y = activate(ctx, linear(ctx, "fc1", flatten(ctx, y), c2 * fh * fw, hiddenUnits));
  return linear(ctx, "fc2", y, hiddenUnits, classes);
}

/**
 * VGG-9: seven 3x3 conv-BN-ReLU layers (64, M, 128, M, 256, 256, M, 512, 512, M, 512; M = 2x2 max pool),
 * global average pooling, then two dense layers (512 -> 512 -> classes).
 */
function vgg9(
  ctx: Ctx,
  x: string,
  [c, h, w]: [number, number, number],
  classes: number,
  width: number,
): string {
  const cfg: (number | "M")[] = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512];
  let y = x;
  let cin = c;
  let k = 0;
  let size = Math.min(h, w);
  for (const item of cfg) {
    if (item === "M") {
      y = maxPool(ctx, y);
      size = Math.floor(size / 2);
      if (size < 1) throw new Error(`zoo: 'vgg9' needs images of at least 16x16, got ${h}x${w}`);
      continue;
    }
    const cout = Math.round(item * width);
    k++;
    y = activate(ctx, batchNorm(ctx, `bn${k}`, conv(ctx, `conv${k}`, y, cin, cout), cout));
    cin = cout;
  }
  const fc = Math.round(512 * width);
  y = activate(ctx, linear(ctx, "fc1", flatten(ctx, globalAvgPool(ctx, y)), cin, fc));
  return linear(ctx, "fc2", y, fc, classes);
}

/**
 * ResNet for 32x32 images (He et al. 2016, Sec. 4.2): a 3x3 conv, three stages of n basic blocks with
 * 16k, 32k, 64k channels (stride 2 between stages), global average pooling and a dense layer.
 * Projection shortcuts (1x1 conv + BN) where the shape changes; `skip = false` removes every shortcut.
 */
function resnetCifar(
  ctx: Ctx,
  x: string,
  [c]: [number, number, number],
  classes: number,
  n: number,
  k: number,
  skip: boolean,
): string {
  const widths = [16, 32, 64].map((v) => Math.round(v * k));
  let y = activate(ctx, batchNorm(ctx, "bn1", conv(ctx, "conv1", x, c, 16), 16));
  let cin = 16;
  widths.forEach((cout, stage) => {
    for (let i = 0; i < n; i++) {
      const stride = stage > 0 && i === 0 ? 2 : 1;
      const p = `layer${stage + 1}.${i}`;
      let out = activate(
        ctx,
        batchNorm(ctx, `${p}.bn1`, conv(ctx, `${p}.conv1`, y, cin, cout, { stride }), cout),
      );
      out = batchNorm(ctx, `${p}.bn2`, conv(ctx, `${p}.conv2`, out, cout, cout), cout);
      if (skip) {
        let short = y;
        if (stride !== 1 || cin !== cout) {
          short = conv(ctx, `${p}.shortcut.0`, y, cin, cout, { k: 1, stride, pad: 0 });
          short = batchNorm(ctx, `${p}.shortcut.1`, short, cout);
        }
        out = ctx.b.node("Add", [out, short]);
      }
      y = activate(ctx, out);
      cin = cout;
    }
  });
  return linear(ctx, "linear", flatten(ctx, globalAvgPool(ctx, y)), cin, classes);
}
