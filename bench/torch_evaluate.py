"""PyTorch peer of bench/evaluate.ts: the eval loop of the reference code.

Usage: torch_evaluate.py MODEL THREADS BATCH SAMPLES [ONNX_OUT]

MODEL "gpt-lm" is a small GPT-style decoder (vocabulary 256, context 64, width 64, 4 heads, 2
blocks) on the first SAMPLES 64-token windows of the embedded byte-level text (data/text/train.bin),
scored per token; it is exported to ONNX_OUT (python/losscape_export.py) for losscape's side.

Builds the model and the synthetic set, warms up with one round and prints "ready"; then, for each
line "round" read on stdin, runs one unmeasured batch (threads wake up), then replaces the weights (as the reference sets weights for every grid
point) and evaluates the whole set in eval mode under no_grad with batch BATCH (forward, summed
cross-entropy, correct count), and prints one JSON line {"rate": img/s, "torch": version}. Rounds
are driven by bench/evaluate.ts, which alternates them with its own.
"""

import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
from torch_reference import build  # noqa: E402


def language_model(samples, out):
    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
    from losscape_export import export
    from torch_models import GPT

    T = 64
    model = GPT(vocab=256, ctx=T, dim=64, heads=4, depth=2).eval()
    export(model, (torch.zeros(1, T, dtype=torch.int64),), out, opset=14, input_names=["idx"], output_names=["logits"])
    text = os.path.join(os.path.dirname(__file__), "..", "data", "text", "train.bin")
    tokens = torch.from_numpy(np.fromfile(text, dtype="<u2").astype(np.int64))
    x = torch.stack([tokens[k * T : k * T + T] for k in range(samples)])
    y = torch.stack([tokens[k * T + 1 : k * T + T + 1] for k in range(samples)])
    return model, x, y


def main():
    name, threads, batch, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if name == "gpt-lm":
        model, x, y = language_model(samples, sys.argv[5])
    else:
        shape = (3, 32, 32)
        model = build(name, shape, 10).eval()
        x = torch.randn(samples, *shape)
        y = torch.randint(0, 10, (samples,))
    base = {k: v.clone() for k, v in model.state_dict().items()}

    def round_(r):
        with torch.no_grad():
            model(x[:batch])  # unmeasured: wakes the thread pool after the other side's round
        t0 = time.perf_counter()
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.dtype.is_floating_point:
                    v.copy_(base[k] + 1e-4 * (r + 1))
            loss = 0.0
            correct = 0
            for s in range(0, samples, batch):
                out = model(x[s : s + batch])
                t = y[s : s + batch]
                loss += F.cross_entropy(out.reshape(-1, out.shape[-1]), t.reshape(-1), reduction="sum").item()
                correct += (out.argmax(-1) == t).sum().item()
        # Samples per second (tokens per second for the language model: samples x 64).
        return samples * (x.shape[1] if x.dtype == torch.int64 else 1) / (time.perf_counter() - t0)

    round_(0)
    print("ready", flush=True)
    r = 1
    for line in sys.stdin:
        if line.strip() != "round":
            continue
        print(json.dumps({"rate": round_(r), "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
        r += 1


if __name__ == "__main__":
    main()
