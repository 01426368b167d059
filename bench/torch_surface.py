"""PyTorch peer of bench/surface.ts: the reference code's surface loop.

Filter-normalized random directions (bias/BN zeroed), then for every grid point the weights
are set to theta + a*d1 + b*d2 and the evaluation set is run in eval mode under no_grad with
batch 128 (summed cross-entropy and correct count), as the reference's crunch() does on one
process. Prints one JSON line: points, seconds, points/s. Optional arguments: SHAPE ("1,28,28") and the number
of points to time (default all).
"""

import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
from torch_reference import build  # noqa: E402


def filter_normalized(weights, gen):
    direction = []
    for w in weights:
        d = torch.randn(w.size(), generator=gen)
        if w.dim() <= 1:
            d.fill_(0)  # ignore biasbn
        else:
            for df, wf in zip(d, w):
                df.mul_(wf.norm() / (df.norm() + 1e-10))
        direction.append(d)
    return direction


def main():
    name, threads, nx, samples, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    # Optional: the sample shape ("1,28,28") and a number of points to time (the loop's cost per
    # point is the same everywhere: the reference computes every point in full).
    shape = tuple(int(v) for v in sys.argv[6].split(",")) if len(sys.argv) > 6 else (3, 32, 32)
    limit = int(sys.argv[7]) if len(sys.argv) > 7 else nx * nx
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(name, shape, 10).eval()
    x = torch.randn(samples, *shape)
    y = torch.randint(0, 10, (samples,))
    params = list(model.parameters())
    theta = [p.data.clone() for p in params]
    gen = torch.Generator().manual_seed(1)
    d1 = filter_normalized(theta, gen)
    d2 = filter_normalized(theta, gen)
    coords = torch.linspace(-1, 1, nx)
    losses = torch.full((nx, nx), -1.0)
    t0 = time.perf_counter()
    done = 0
    with torch.no_grad():
        for i, a in enumerate(coords):
            for j, b in enumerate(coords):
                if done == limit:
                    break
                done += 1
                for p, w, u, v in zip(params, theta, d1, d2):
                    p.data = w + a * u + b * v
                total = 0.0
                correct = 0
                for s in range(0, samples, batch):
                    out = model(x[s : s + batch])
                    total += F.cross_entropy(out, y[s : s + batch], reduction="sum").item()
                    correct += (out.argmax(1) == y[s : s + batch]).sum().item()
                losses[i, j] = total / samples
    dt = time.perf_counter() - t0
    print(json.dumps({"points": done, "seconds": dt, "points_per_s": done / dt, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
