"""PyTorch peer of bench/train.ts: one SGD training step (forward, backward, update) per batch.

Model in train mode (batch statistics), mean cross-entropy, SGD momentum 0.9, weight decay 5e-4.
Builds the model, warms up with two steps and prints "ready"; then, for each line "round" read on
stdin, runs one unmeasured step and then `steps` measured steps, and prints one JSON line {"rate": samples/s, "torch": version}. Rounds are
driven by bench/train.ts so that they alternate with losscape's.
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
    name, threads, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    shape = tuple(int(s) for s in sys.argv[5].split(","))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(name, shape, 10).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, *shape)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            continue
        step()  # wakes the OpenMP threads after losscape's round
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rate = batch * steps / (time.perf_counter() - t0)
        print(json.dumps({"rate": rate, "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
