"""PyTorch peer of bench/train.ts: one SGD training step (forward, backward, update) per batch.

Model in train mode (batch statistics), mean cross-entropy, SGD momentum 0.9, weight decay 5e-4.
Prints one JSON line with samples/s per round (each round = `steps` steps after a warm-up).
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
    name, threads, batch, steps, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    shape = tuple(int(s) for s in sys.argv[6].split(","))
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
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(batch * steps / (time.perf_counter() - t0))
    print(json.dumps({"rates": rates, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
