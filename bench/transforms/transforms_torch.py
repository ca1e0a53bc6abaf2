"""PyTorch's side of bench/transforms: torch.autograd.functional's jacobian, hessian and hvp, and
torch.autograd.grad, on the functions and values of transforms.cpp, in double, one thread.
Each transform in PyTorch's variants: the default, and vectorized (vmap over the seeds) with the
reverse or the forward strategy where PyTorch offers it. One JSON object per line."""
import json
import math
import statistics
import time

import torch
from torch.autograd.functional import hessian, hvp, jacobian

torch.set_num_threads(1)
F64 = torch.float64

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gradbench"))
from pytorch_tool import gmm  # noqa: E402  (GradBench's gmm objective in PyTorch, as the tool runs it)


def fill(shape, seed, scale=0.5):
    n = math.prod(shape)
    return torch.tensor([scale * math.sin(1.7 * i + seed) for i in range(n)], dtype=F64).reshape(shape)


def median_ms(run):
    """Median ms per call of run(), the checksum of its last result computed outside the timed calls."""
    result = run()
    times, seconds = [], 0.0
    while (len(times) < 5 or seconds < 0.25) and len(times) < 2000:
        start = time.perf_counter()
        result = run()
        s = time.perf_counter() - start
        times.append(s * 1e3)
        seconds += s
    return statistics.median_low(times), total(result)


def total(result):
    if isinstance(result, torch.Tensor):
        return float(result.sum())
    return sum(total(r) for r in result)


def report(workload, transform, variant, run):
    line = {"side": "pytorch", "workload": workload, "transform": transform, "variant": variant}
    try:
        ms, checksum = median_ms(run)
        line.update(ms=ms, checksum=checksum)
    except Exception as e:  # a variant PyTorch does not support on this function
        line.update(error=f"{type(e).__name__}: {str(e).splitlines()[0]}")
    print(json.dumps(line), flush=True)


def measure(name, primals, f, scalar):
    primals = tuple(primals)
    if f is not None:
        report(name, "jacrev", "default", lambda: jacobian(f, primals))
        report(name, "jacrev", "vectorize", lambda: jacobian(f, primals, vectorize=True))
        report(name, "jacfwd", "vectorize, forward-mode",
               lambda: jacobian(f, primals, vectorize=True, strategy="forward-mode"))
    if scalar is None:
        return

    def gradient():
        xs = tuple(p.detach().requires_grad_(True) for p in primals)
        return torch.autograd.grad(scalar(*xs), xs)

    report(name, "grad", "", gradient)
    vs = tuple(fill(tuple(p.shape), 20.0 + i) for i, p in enumerate(primals))
    report(name, "hvp", "default", lambda: hvp(scalar, primals, vs)[1])
    report(name, "hessian", "default", lambda: hessian(scalar, primals))
    report(name, "hessian", "vectorize", lambda: hessian(scalar, primals, vectorize=True))
    report(name, "hessian", "vectorize, forward-over-reverse",
           lambda: hessian(scalar, primals, vectorize=True, outer_jacobian_strategy="forward-mode"))


def main():
    w1, b1, w2, b2 = fill((64, 16), 2, 0.25), fill((64, 1), 3), fill((16, 64), 4, 0.25), fill((16, 1), 5)

    def mlp(x):
        return w2 @ torch.tanh(w1 @ x + b1) + b2

    measure("mlp", [fill((16, 1), 1)], mlp, lambda x: torch.logsumexp(mlp(x), 0).sum())

    labels = torch.tensor([i * 3 % 10 for i in range(8)])
    measure("softmax_ce", [fill((8, 10), 6, 2.0)], lambda z: torch.softmax(z, 1),
            lambda z: torch.nn.functional.cross_entropy(z, labels))

    x = fill((1000, 2), 7, 1.0)

    def gmm_objective(alpha, mu, q, l):
        return gmm(alpha, mu, q, l, x, 0.0, 1.0)

    measure("gmm", [fill((5,), 8), fill((5, 2), 9), fill((5, 2), 10), fill((5, 1), 11)], gmm_objective, gmm_objective)

    w, b = fill((4096, 16), 13, 0.25), fill((4096, 1), 14)
    measure("wide", [fill((16, 1), 12)], lambda x: torch.tanh(w @ x + b), None)


if __name__ == "__main__":
    main()
