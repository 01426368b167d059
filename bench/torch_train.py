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


def build_any(name, shape):
    """A zoo model (fixtures/torch_reference.py) or a model fixture (fixtures/torch_models.py, seeded weights)."""
    import torch_models

    if name in torch_models.MODELS:
        model = torch_models.MODELS[name][0]()
        torch_models.seeded_state(model)
        return model, torch_models.CLASSES.get(name, 10)
    return build(name, shape, 10), 10


def main():
    name, threads, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    shape = tuple(int(s) for s in sys.argv[5].split(","))
    kind = sys.argv[6] if len(sys.argv) > 6 else "image"
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model, classes = build_any(name, shape)
    model = model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    if kind == "tokens":
        x = torch.randint(0, classes, (batch, *shape))
        y = torch.randint(0, classes, (batch, *shape))
    else:
        x = torch.randn(batch, *shape)
        y = torch.randint(0, classes, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
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
