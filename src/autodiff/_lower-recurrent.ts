// LSTM, GRU and RNN nodes written out as primitive ops over their time steps
// (MatMul, Add, Slice, Sigmoid/Tanh/Relu, Mul, Concat), so that the gradient
// and forward-mode rules of those primitives differentiate them. Follows the
// ONNX operator definitions (opset 14): gate orders i, o, f, c (LSTM) and
// z, r, h (GRU), B = [Wb, Rb], `linear_before_reset`, `clip`, directions,
// layouts 0 and 1. The input projection of all steps is one MatMul.

import { attr, type Node } from "../onnx/proto.ts";
import type { Emitter } from "./_emit.ts";
import { fail } from "./_rules.ts";
import type { Dim } from "./_shapes.ts";

/** The recurrent ops lowered here. */
export const RECURRENT = new Set(["LSTM", "GRU", "RNN"]);

const GATES: Record<string, number> = { LSTM: 4, GRU: 3, RNN: 1 };
const DEFAULT_ACTIVATIONS: Record<string, string[]> = {
  LSTM: ["Sigmoid", "Tanh", "Tanh"],
  GRU: ["Sigmoid", "Tanh"],
  RNN: ["Tanh"],
};
const SUPPORTED = new Set(["Sigmoid", "Tanh", "Relu"]);

/**
 * Emits the primitive form of a recurrent `node` into `e`, writing its outputs under their names.
 * `xDims` are the dims of its input X; the number of time steps must be static.
 */
export function lowerRecurrent(e: Emitter, node: Node, xDims: readonly Dim[] | null): void {
  const op = node.opType;
  const gates = GATES[op]!;
  const layout = attr(node, "layout")?.i ?? 0;
  const H = attr(node, "hidden_size")?.i;
  if (H === undefined) fail(node, "needs the hidden_size attribute to be differentiated");
  const direction = attr(node, "direction")?.s ?? "forward";
  const dirs = direction === "bidirectional" ? 2 : 1;
  if (!["forward", "reverse", "bidirectional"].includes(direction))
    fail(node, `unknown direction '${direction}'`);
  const T = xDims?.[layout === 0 ? 0 : 1];
  if (typeof T !== "number") fail(node, "needs a static number of time steps to be differentiated");
  const [x, w, r, b, seqLens, h0, c0, p] = node.inputs;
  if (seqLens) fail(node, "sequence_lens (packed sequences) cannot be differentiated; export unpacked");
  if (op === "LSTM" && p) fail(node, "peephole weights (input P) cannot be differentiated");
  if (op === "LSTM" && (attr(node, "input_forget")?.i ?? 0) !== 0)
    fail(node, "input_forget = 1 is not supported");
  const names = attr(node, "activations")?.strings ?? [];
  const per = DEFAULT_ACTIVATIONS[op]!.length;
  const acts = Array.from({ length: dirs }, (_, d) =>
    DEFAULT_ACTIVATIONS[op]!.map((def, k) => names[d * per + k] ?? def),
  );
  for (const a of acts.flat())
    if (!SUPPORTED.has(a)) fail(node, `activation '${a}' is not supported (${[...SUPPORTED].join(", ")})`);
  const clip = attr(node, "clip")?.f;
  const beforeReset = (attr(node, "linear_before_reset")?.i ?? 0) === 1;

  // X as [T, B, I].
  const xs = layout === 0 ? x! : e.transpose(x!, [1, 0, 2]);
  const act = (kind: string, v: string) => e.op(kind, [v]);
  const clipped = (v: string) =>
    clip === undefined ? v : e.op("Clip", [v, e.scalar(-clip), e.scalar(clip)]);
  const gate = (v: string, k: number) => e.slice(v, [k * H], [(k + 1) * H], [1]);
  const ys: string[] = [];
  const hs: string[] = [];
  const cs: string[] = [];
  for (let d = 0; d < dirs; d++) {
    const [fAct, gAct, hAct] = acts[d] as [string, string, string?];
    const pick = (v: string, rows: number, cols: number) =>
      e.reshape(e.slice(v, [d], [d + 1], [0]), cols !== 0 ? [rows, cols] : [rows]);
    const wt = e.transpose(pick(w!, gates * H, -1), [1, 0]); // [I, G*H]
    const rt = e.transpose(pick(r!, gates * H, H), [1, 0]); // [H, G*H]
    let wb: string | undefined;
    let rb: string | undefined;
    if (b) {
      const bd = pick(b, 2 * gates * H, 0);
      wb = e.slice(bd, [0], [gates * H], [0]);
      rb = e.slice(bd, [gates * H], [2 * gates * H], [0]);
    }
    // Input projections of every step at once: [T, B, G*H].
    let xw = e.op("MatMul", [xs, wt]);
    const gateBias = op === "GRU" && beforeReset ? wb : wb && rb ? e.op("Add", [wb, rb]) : undefined;
    if (gateBias) xw = e.op("Add", [xw, gateBias]);
    const zeros = (): string => {
      const batch = e.slice(e.op("Shape", [xs]), [1], [2], [0]);
      return e.zeros(e.op("Concat", [batch, e.i64([H])], { axis: 0 }));
    };
    const initial = (v: string | undefined): string =>
      v ? e.reshape(e.slice(v, [d], [d + 1], [0]), [-1, H]) : zeros();
    let h = initial(h0);
    let c = op === "LSTM" ? initial(c0) : "";
    const steps = Array.from({ length: T }, (_, t) => t);
    if (direction === "reverse" || d === 1) steps.reverse();
    const out = new Array<string>(T);
    for (const t of steps) {
      const xt = e.squeeze(e.slice(xw, [t], [t + 1], [0]), [0]); // [B, G*H]
      const hr = e.op("MatMul", [h, rt]);
      if (op === "LSTM") {
        const g = clipped(e.op("Add", [xt, hr]));
        const i = act(fAct, gate(g, 0));
        const o = act(fAct, gate(g, 1));
        const f = act(fAct, gate(g, 2));
        const cc = act(gAct, gate(g, 3));
        c = e.op("Add", [e.op("Mul", [f, c]), e.op("Mul", [i, cc])]);
        h = e.op("Mul", [o, act(hAct!, c)]);
      } else if (op === "GRU") {
        // Rb of the z and r gates joins the input projection; Rbh stays with the recurrent term.
        const rbZr = rb ? e.slice(rb, [0], [2 * H], [0]) : undefined;
        const rbH = rb ? e.slice(rb, [2 * H], [3 * H], [0]) : undefined;
        const hrZr = gate2(e, hr, H);
        // With linear_before_reset = 0 all of Rb is in the input projection already (with Wb).
        let zr = e.op("Add", [gate2(e, xt, H), hrZr]);
        if (rbZr && beforeReset) zr = e.op("Add", [zr, rbZr]);
        zr = clipped(zr);
        const z = act(fAct, gate(zr, 0));
        const rg = act(fAct, gate(zr, 1));
        const xh = gate(xt, 2);
        let hh: string;
        if (beforeReset) {
          const rec = rbH ? e.op("Add", [gate(hr, 2), rbH]) : gate(hr, 2);
          hh = e.op("Add", [xh, e.op("Mul", [rg, rec])]);
        } else {
          const rh = e.slice(rt, [2 * H], [3 * H], [1]); // [H, H]
          hh = e.op("Add", [xh, e.op("MatMul", [e.op("Mul", [rg, h]), rh])]);
        }
        const ht = act(gAct, clipped(hh));
        // h = (1 - z) * ht + z * h
        h = e.op("Add", [ht, e.op("Mul", [z, e.op("Sub", [h, ht])])]);
      } else {
        h = act(fAct, clipped(e.op("Add", [xt, hr])));
      }
      out[t] = e.unsqueeze(h, [0]);
    }
    ys.push(e.unsqueeze(e.op("Concat", out, { axis: 0 }), [1])); // [T, 1, B, H]
    hs.push(e.unsqueeze(h, [0]));
    if (op === "LSTM") cs.push(e.unsqueeze(c, [0]));
  }
  const cat = (parts: string[], axis: number) =>
    parts.length === 1 ? parts[0]! : e.op("Concat", parts, { axis });
  const y = cat(ys, 1); // [T, dirs, B, H]
  const yh = cat(hs, 0); // [dirs, B, H]
  const write = (value: string, name: string | undefined, perm?: number[]) => {
    if (!name) return;
    e.op(perm ? "Transpose" : "Identity", [value], perm ? { perm } : {}, name);
  };
  write(y, node.outputs[0], layout === 1 ? [2, 0, 1, 3] : undefined);
  write(yh, node.outputs[1], layout === 1 ? [1, 0, 2] : undefined);
  if (op === "LSTM") write(cat(cs, 0), node.outputs[2], layout === 1 ? [1, 0, 2] : undefined);
}

/** The z and r gates [B, 2H] of a GRU pre-activation [B, 3H]. */
function gate2(e: Emitter, v: string, H: number): string {
  return e.slice(v, [0], [2 * H], [1]);
}
