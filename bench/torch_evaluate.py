"""PyTorch peer of bench/evaluate.ts: the eval loop of the reference code.

Usage: torch_evaluate.py MODEL THREADS BATCH SAMPLES

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


def main():
    name, threads, batch, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
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
                loss += F.cross_entropy(out, y[s : s + batch], reduction="sum").item()
                correct += (out.argmax(1) == y[s : s + batch]).sum().item()
        return samples / (time.perf_counter() - t0)

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
