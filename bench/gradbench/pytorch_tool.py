#!/usr/bin/python3
"""The six GradBench evals written with PyTorch, the baseline of bench/gradbench/run.

Speaks the same JSON-Lines protocol as tapegrad-gradbench (bench/gradbench/README.md), float64,
one thread. Each objective is written once, with the same tensor ops as bench/gradbench/evals.cpp
where PyTorch has them; the primal runs under torch.no_grad(), each gradient run makes fresh
leaf tensors, runs forward and backward, and copies the gradient out.
"""
import ctypes
import json
import math
import sys
import time

import torch

torch.set_num_threads(1)
# The same glibc malloc settings as tapegrad-gradbench (tool.cpp): freed memory stays in the
# process, no fastbins.
_libc = ctypes.CDLL("libc.so.6")
M_MXFAST, M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = 1, -1, -3
for option, value in ((M_MMAP_THRESHOLD, 512 << 20), (M_TRIM_THRESHOLD, 1 << 30), (M_MXFAST, 0)):
    if _libc.mallopt(option, value) != 1:
        sys.exit(f"pytorch_tool.py: mallopt({option}, {value}) failed")
F64 = torch.float64


def lse(x):
    # a + log(sum(exp(x - a))) with a = max(x), a constant.
    a = x.max().detach()
    return a + torch.log(torch.sum(torch.exp(x - a)))


def llsq(x, n):
    m = x.shape[0]
    t = -1.0 + torch.arange(0, 2 * n, 2, dtype=F64) / (n - 1)
    powers = torch.cat([torch.ones(n, 1, dtype=F64), t[:, None].expand(n, m - 1)], 1).cumprod(1)
    r = torch.sign(t) - powers @ x
    return (r * r).sum() * 0.5


def ode(x, steps):
    n = x.shape[0]
    h = 2.0 / steps

    def f(y):
        return x * torch.nn.functional.pad(y[:-1], (1, 0), value=1.0)

    y = torch.zeros(n, dtype=F64)
    for _ in range(steps):
        k1 = f(y)
        k2 = f(y + k1 * (h / 2))
        k3 = f(y + k2 * (h / 2))
        k4 = f(y + k3 * h)
        y = y + (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6)
    return y


def gmm_constant(n, d, k, m, gamma):
    nu = d + m + 1
    log_gamma_d = d * (d - 1) / 4 * math.log(math.pi) + sum(math.lgamma(nu / 2 + (1 - j) / 2) for j in range(1, d + 1))
    c = nu * d * (math.log(gamma) - 0.5 * math.log(2)) - log_gamma_d
    return -n * d / 2 * math.log(2 * math.pi) + k * c


def gmm(alpha, mu, q, l, x, m, gamma):
    n, d = x.shape
    k = alpha.shape[0]
    # Strictly lower part of Q_k filled column by column from l_k.
    rows, cols = [], []
    for c in range(d):
        for r in range(c + 1, d):
            rows.append(r)
            cols.append(c)
    lower = torch.zeros(k, d, d, dtype=F64)
    lower[:, rows, cols] = l
    diagonal = torch.exp(q)
    qmat = lower + torch.diag_embed(diagonal)
    qt = qmat.transpose(1, 2)
    r = torch.matmul(x, qt) - torch.matmul(mu[:, None, :], qt)                 # (k, n, d)
    beta = (alpha + q.sum(1))[:, None] - (r * r).sum(2) * 0.5                   # (k, n)
    data = torch.logsumexp(beta, 0).sum() - torch.logsumexp(alpha, 0) * n
    prior = ((diagonal * diagonal).sum() + (l * l).sum()) * (-gamma * gamma / 2) + q.sum() * m
    return data + prior + gmm_constant(n, d, k, m, gamma)


def lstm(main_params, extra_params, state, sequence):
    layers = main_params.shape[0] // 2
    b = main_params.shape[1] // 4
    c = sequence.shape[0]
    weights = []
    for i in range(layers):
        w, bias = main_params[2 * i], main_params[2 * i + 1]
        weights.append([w[g * b:(g + 1) * b] for g in range(4)] + [bias[g * b:(g + 1) * b] for g in range(4)])
    hidden = [state[2 * i] for i in range(layers)]
    cell = [state[2 * i + 1] for i in range(layers)]
    w_in, w_out, b_out = extra_params[0], extra_params[1], extra_params[2]
    yhat = []
    for t in range(c - 1):
        u = sequence[t] * w_in
        for i in range(layers):
            wf, wi, wo, wc, bf, bi, bo, bc = weights[i]
            f = torch.sigmoid(u * wf + bf)
            g = torch.sigmoid(hidden[i] * wi + bi)
            o = torch.sigmoid(u * wo + bo)
            change = torch.tanh(hidden[i] * wc + bc)
            cell[i] = cell[i] * f + g * change
            hidden[i] = o * torch.tanh(cell[i])
            u = hidden[i]
        yhat.append(u * w_out + b_out)
    y = torch.stack(yhat)
    log_norm = torch.log(torch.exp(y).sum(1, keepdim=True) + 2.0)
    return (sequence[1:] * (y - log_norm)).sum() * (-1.0 / ((c - 1) * b))


def tensor(v):
    return torch.tensor(v, dtype=F64)


def leaf(t):
    return t.clone().requires_grad_(True)


def primal(objective):
    def run(args):
        with torch.no_grad():
            return objective(*args)
    return run


def hello_double(args):
    x = leaf(args[0])
    (x * x).backward()
    return x.grad


def lse_gradient(args):
    (x,) = args
    x = leaf(x)
    lse(x).backward()
    return x.grad


def llsq_gradient(args):
    x, n = args
    x = leaf(x)
    llsq(x, n).backward()
    return x.grad


def ode_gradient(args):
    x, s = args
    x = leaf(x)
    ode(x, s)[-1].backward()
    return x.grad


def gmm_jacobian(args):
    alpha, mu, q, l, x, m, gamma = args
    params = [leaf(p) for p in (alpha, mu, q, l)]
    gmm(*params, x, m, gamma).backward()
    return {name: p.grad for name, p in zip(("alpha", "mu", "q", "l"), params)}


def lstm_jacobian(args):
    main_params, extra_params, state, sequence = args
    main_params, extra_params = leaf(main_params), leaf(extra_params)
    lstm(main_params, extra_params, state, sequence).backward()
    return torch.cat([main_params.grad.reshape(-1), extra_params.grad.reshape(-1)])


def gmm_args(i):
    return (tensor(i["alpha"]), tensor(i["mu"]), tensor(i["q"]), tensor(i["l"]), tensor(i["x"]), i["m"], i["gamma"])


def lstm_args(i):
    return tuple(tensor(i[k]) for k in ("main_params", "extra_params", "state", "sequence"))


# module -> function -> (prepare: input -> args, run: args -> output)
MODULES = {
    "hello": {
        "square": (lambda i: (tensor(i),), primal(lambda x: x * x)),
        "double": (lambda i: (tensor(i),), hello_double),
    },
    "lse": {"primal": (lambda i: (tensor(i["x"]),), primal(lse)), "gradient": (lambda i: (tensor(i["x"]),), lse_gradient)},
    "llsq": {
        "primal": (lambda i: (tensor(i["x"]), i["n"]), primal(llsq)),
        "gradient": (lambda i: (tensor(i["x"]), i["n"]), llsq_gradient),
    },
    "ode": {
        "primal": (lambda i: (tensor(i["x"]), i["s"]), primal(ode)),
        "gradient": (lambda i: (tensor(i["x"]), i["s"]), ode_gradient),
    },
    "gmm": {"objective": (gmm_args, primal(gmm)), "jacobian": (gmm_args, gmm_jacobian)},
    "lstm": {"objective": (lstm_args, primal(lstm)), "jacobian": (lstm_args, lstm_jacobian)},
}


def to_json(output):
    if isinstance(output, dict):
        return {k: to_json(v) for k, v in output.items()}
    return output.tolist()


def evaluate(message):
    prepare, run = MODULES[message["module"]][message["function"]]
    data = message["input"]
    reps = data if isinstance(data, dict) else {}
    min_runs, min_seconds = reps.get("min_runs", 1), reps.get("min_seconds", 1)
    start = time.perf_counter_ns()
    args = prepare(data)
    timings = [{"name": "prepare", "nanoseconds": time.perf_counter_ns() - start}]
    runs = total = 0
    while runs < min_runs or total < min_seconds * 1e9:
        t0 = time.perf_counter_ns()
        output = run(args)
        ns = time.perf_counter_ns() - t0
        timings.append({"name": "evaluate", "nanoseconds": ns})
        runs += 1
        total += ns
    return {"success": True, "output": to_json(output), "timings": timings}


def respond(message):
    kind = message["kind"]
    if kind == "start":
        return {"tool": "pytorch", "config": {"torch": torch.__version__, "threads": torch.get_num_threads()}}
    if kind == "define":
        return {"success": message["module"] in MODULES}
    if kind == "evaluate":
        if message["function"] not in MODULES.get(message["module"], {}):
            return {"success": False, "error": "not implemented"}
        return evaluate(message)
    return {}


def main():
    for line in sys.stdin:
        message = json.loads(line)
        response = {"id": message["id"], **respond(message)}
        sys.stdout.write(json.dumps(response, allow_nan=False) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
