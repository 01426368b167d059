"""PyTorch peer of bench/hessian.ts: the reference approach to Hessian extremes.

Usage: torch_hessian.py FILE THREADS BATCH ITERATIONS ROUNDS [PROBES STEPS]

FILE (safetensors, written by bench/hessian.ts) holds the model's parameters under their
state_dict names, "__input__" and "__labels__"; "__name__" and the input shape come from the
file's metadata. As the reference code (hess_vec_prod.py), Hessian-vector products w.r.t. the
filter (rank >= 2) weights are taken by double backward in eval mode over the whole set, in
batches, float32. The reference hands them to scipy's eigsh (ARPACK, implicitly restarted
Lanczos); scipy is not installed here, so a numpy Lanczos with full reorthogonalization runs the
same number of products losscape used (ITERATIONS) and reads lambda_max and lambda_min off the
tridiagonal matrix. Each round builds the model afresh; one product on one batch warms up first.
Prints one JSON line: wall and CPU seconds per round, seconds per product, samples/s of one more
product alone, lambda_max, lambda_min.

With PROBES and STEPS, each round also times the spectral density by stochastic Lanczos quadrature
(Ghorbani et al. 2019, as PyHessian does it): from each probe "__z<p>__:<param>" of FILE (the very
probes losscape uses), STEPS Lanczos steps with full reorthogonalization on the same products, the
tridiagonal's eigenvalues as nodes and squared first components as weights; it reports the wall
and CPU seconds, the moments mean_p sum_j w t^k (k = 0..2) and the largest node.
"""

import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
from torch_reference import build, load, read_safetensors  # noqa: E402


def build_any(name, shape, classes):
    """A zoo model (fixtures/torch_reference.py) or a model fixture (fixtures/torch_models.py)."""
    import torch_models

    if name in torch_models.MODELS:
        return torch_models.MODELS[name][0]()
    return build(name, shape, classes)


def read_metadata(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n).decode("utf-8")).get("__metadata__", {})


def hvp_fn(model, x, y, params, batch):
    n = x.shape[0]

    def hvp(vs):
        out = [torch.zeros_like(p) for p in params]
        for s in range(0, n, batch):
            xb, yb = x[s : s + batch], y[s : s + batch]
            loss = F.cross_entropy(model(xb), yb) * (xb.shape[0] / n)
            grads = torch.autograd.grad(loss, params, create_graph=True)
            dot = sum((g * v).sum() for g, v in zip(grads, vs))
            hv = torch.autograd.grad(dot, params)
            for o, h in zip(out, hv):
                o.add_(h)
        return out

    return hvp


def lanczos(hvp, shapes, steps, seed):
    rng = np.random.default_rng(seed)
    sizes = [int(np.prod(s)) for s in shapes]

    def split(vec):
        out, at = [], 0
        for s, k in zip(shapes, sizes):
            out.append(torch.from_numpy(vec[at : at + k].astype(np.float32).reshape(s)))
            at += k
        return out

    q = rng.standard_normal(sum(sizes))
    q /= np.linalg.norm(q)
    basis, alpha, beta = [], [], []
    for _ in range(steps):
        basis.append(q)
        w = np.concatenate([t.detach().numpy().ravel() for t in hvp(split(q))]).astype(np.float64)
        alpha.append(float(w @ q))
        Q = np.array(basis)
        for _ in range(2):
            w -= Q.T @ (Q @ w)
        b = float(np.linalg.norm(w))
        if b < 1e-12:
            break
        beta.append(b)
        q = w / b
    m = len(alpha)
    t = np.diag(alpha) + np.diag(beta[: m - 1], 1) + np.diag(beta[: m - 1], -1)
    ev = np.linalg.eigvalsh(t)
    return float(ev[-1]), float(ev[0]), m


def slq(hvp, shapes, probes, steps):
    """Nodes and weights of each probe's Lanczos quadrature (full reorthogonalization, float64 basis)."""
    sizes = [int(np.prod(s)) for s in shapes]

    def split(vec):
        out, at = [], 0
        for s, k in zip(shapes, sizes):
            out.append(torch.from_numpy(vec[at : at + k].astype(np.float32).reshape(s)))
            at += k
        return out

    out = []
    for z in probes:
        q = z / np.linalg.norm(z)
        basis, alpha, beta = [], [], []
        for k in range(steps):
            basis.append(q)
            w = np.concatenate([t.detach().numpy().ravel() for t in hvp(split(q))]).astype(np.float64)
            alpha.append(float(w @ q))
            Q = np.array(basis)
            for _ in range(2):
                w -= Q.T @ (Q @ w)
            b = float(np.linalg.norm(w))
            if k + 1 == steps or b < 1e-12:
                break
            beta.append(b)
            q = w / b
        m = len(alpha)
        t = np.diag(alpha) + np.diag(beta[: m - 1], 1) + np.diag(beta[: m - 1], -1)
        ev, vec = np.linalg.eigh(t)
        out.append((ev, vec[0, :] ** 2))
    return out


def main():
    path, threads, batch, iterations, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    n_probes = int(sys.argv[6]) if len(sys.argv) > 7 else 0
    steps = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    torch.set_num_threads(threads)
    meta = read_metadata(path)
    name, shape = meta["model"], [int(v) for v in meta["input_shape"].split(",")]
    tensors = read_safetensors(path)
    x = torch.from_numpy(np.array(tensors["__input__"]))
    y = torch.from_numpy(np.array(tensors["__labels__"]).astype(np.int64))
    seconds, cpu, per_product, hvp_rates = [], [], [], []
    slq_seconds, slq_cpu = [], []
    slq_result = None
    lmax = lmin = None
    m = 0
    for r in range(rounds + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        model = build_any(name, shape, int(meta["classes"]))
        load(model, tensors, torch.float32)
        model.eval()
        params = [p for p in model.parameters() if p.dim() >= 2]
        names = [k for k, p in model.named_parameters() if p.dim() >= 2]
        for p in model.parameters():
            p.requires_grad_(p.dim() >= 2)
        if r == 0:  # warm-up: one product on one batch
            hvp_fn(model, x[:batch], y[:batch], params, batch)([torch.randn_like(p) for p in params])
            continue
        hvp = hvp_fn(model, x, y, params, batch)
        lmax, lmin, m = lanczos(hvp, [tuple(p.shape) for p in params], iterations, 0)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        # One more product alone: samples per second of the double-backward product.
        v = [torch.randn_like(p) for p in params]
        t1 = time.perf_counter()
        hvp(v)
        dh = time.perf_counter() - t1
        seconds.append(dt)
        cpu.append(dc)
        per_product.append(dt / m)
        hvp_rates.append(x.shape[0] / dh)
        if n_probes > 0:
            probes = [
                np.concatenate([np.array(tensors[f"__z{p}__:{k}"], dtype=np.float64).ravel() for k in names])
                for p in range(n_probes)
            ]
            t2, c2 = time.perf_counter(), time.process_time()
            quad = slq(hvp, [tuple(p.shape) for p in params], probes, steps)
            slq_seconds.append(time.perf_counter() - t2)
            slq_cpu.append(time.process_time() - c2)
            slq_result = {
                "moments": [float(np.mean([np.sum(w * t**k) for t, w in quad])) for k in range(3)],
                "largestNode": float(max(t.max() for t, _ in quad)),
                "products": int(sum(len(t) for t, _ in quad)),
            }
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpuSeconds": cpu,
                "perProduct": per_product,
                "hvpRates": hvp_rates,
                "lambdaMax": lmax,
                "lambdaMin": lmin,
                "iterations": m,
                "slqSeconds": slq_seconds,
                "slqCpuSeconds": slq_cpu,
                "slq": slq_result,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
