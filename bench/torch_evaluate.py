"""PyTorch peer of bench/evaluate.ts: the eval loop of the reference code.

For each round the weights are replaced (as the reference sets weights for every grid
point), then the whole set is evaluated in eval mode under no_grad with batch B:
forward, summed cross-entropy, correct count. Prints one JSON line with img/s per round.
"""

import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
from torch_reference import build  # noqa: E402


def main():
    name, threads, batch, samples, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    shape = (3, 32, 32)
    model = build(name, shape, 10).eval()
    x = torch.randn(samples, *shape)
    y = torch.randint(0, 10, (samples,))
    base = {k: v.clone() for k, v in model.state_dict().items()}
    rates = []
    with torch.no_grad():
        for r in range(rounds + 1):
            t0 = time.perf_counter()
            for k, v in model.state_dict().items():
                if v.dtype.is_floating_point:
                    v.copy_(base[k] + 1e-4 * (r + 1))
            loss = 0.0
            correct = 0
            for s in range(0, samples, batch):
                out = model(x[s : s + batch])
                loss += F.cross_entropy(out, y[s : s + batch], reduction="sum").item()
                correct += (out.argmax(1) == y[s : s + batch]).sum().item()
            dt = time.perf_counter() - t0
            if r > 0:  # round 0 is warm-up
                rates.append(samples / dt)
    print(json.dumps({"rates": rates, "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
