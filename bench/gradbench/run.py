#!/usr/bin/python3
"""Drives tapegrad-gradbench and the PyTorch tool through GradBench's protocol, side by side.

Generates each eval's default workloads as bench/gradbench/README.md describes, sends every
workload's primal and derivative to both tools in the same run (alternating which goes first),
and prints per eval, workload and function: the mean "evaluate" time of each tool, the ratio
tapegrad/PyTorch, and whether the outputs agree to 1e-6 (GradBench's comparison, at 1e-6 instead
of 1e-4). --json prints the same rows as JSON.
"""
import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EVALS = ("lse", "llsq", "ode", "gmm", "lstm")
FUNCTIONS = {"lse": ("primal", "gradient"), "llsq": ("primal", "gradient"), "ode": ("primal", "gradient"),
             "gmm": ("objective", "jacobian"), "lstm": ("objective", "jacobian")}


def lse_workloads():
    np.random.seed(31337)
    for n in (2500, 5000, 10000, 20000, 40000, 80000, 160000, 320000, 640000, 1280000):
        yield f"n={n}", {"x": np.random.rand(n).tolist()}


def llsq_workloads():
    np.random.seed(31337)
    m = 128
    for n in (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8196, 16392):
        yield f"n={n},m={m}", {"x": np.random.rand(m).tolist(), "n": n}


def ode_workloads():
    np.random.seed(31337)
    for n, s in ((1000, 1), (1000, 10), (10000, 1), (1000, 100), (10000, 10), (100000, 1), (10000, 100),
                 (100000, 10), (100000, 100)):
        yield f"n={n},s={s}", {"x": np.random.rand(n).tolist(), "s": s}


def gmm_workloads():
    n = 1000
    sizes = sorted(((d, k) for d in (2, 10, 20, 32, 64) for k in (5, 10, 25, 50, 100)), key=lambda dk: dk[0] * dk[1])
    for d, k in sizes:
        rng = np.random.default_rng(31337)
        x = rng.standard_normal((n, d))
        alpha = rng.standard_normal(k)
        mu = rng.uniform(size=(k, d))
        q = rng.standard_normal((k, d))
        l = rng.standard_normal((k, d * (d - 1) // 2))
        yield f"{d}_{k}_{n}", {"d": d, "k": k, "n": n, "x": x.tolist(), "m": 0, "gamma": 1.0, "alpha": alpha.tolist(),
                               "mu": mu.tolist(), "q": q.tolist(), "l": l.tolist()}


# ADBench's lstm_full.txt (Shakespeare's sonnets) is not on this machine: a stand-in text from
# Debian, encoded the same way (code points in binary, most significant bit first), with b = 14
# bits as the sonnets give (they contain U+2019), so the shapes are GradBench's.
TEXT = Path("/usr/share/common-licenses/GPL-3")
BITS = 14


def lstm_workloads():
    text = TEXT.read_text()
    np.random.seed(31337)
    for layers, c in ((2, 1024), (4, 1024), (6, 1024), (2, 4096), (2, 8192), (4, 4096), (6, 4096), (4, 8192),
                      (6, 8192)):
        chars = text[:c]
        assert len(chars) == c and max(map(ord, chars)) < 2 ** BITS
        sequence = [[float(bit) for bit in format(ord(ch), f"0{BITS}b")] for ch in chars]
        yield f"l={layers},c={c}", {"main_params": np.random.rand(2 * layers, 4 * BITS).tolist(),
                                    "extra_params": np.random.rand(3, BITS).tolist(),
                                    "state": np.random.rand(2 * layers, BITS).tolist(), "sequence": sequence}


WORKLOADS = {"lse": lse_workloads, "llsq": llsq_workloads, "ode": ode_workloads, "gmm": gmm_workloads,
             "lstm": lstm_workloads}


def mismatches(expected, actual, tolerance, path=""):
    """GradBench's structural comparison (§1.6) with the given tolerance; also flags non-finite."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or expected.keys() != actual.keys():
            return [f"{path}: keys {sorted(expected)} != {sorted(actual) if isinstance(actual, dict) else actual}"]
        return [m for k in expected for m in mismatches(expected[k], actual[k], tolerance, f"{path}.{k}")]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(expected) != len(actual):
            return [f"{path}: lengths differ"]
        return [m for i, (e, a) in enumerate(zip(expected, actual)) for m in mismatches(e, a, tolerance, f"{path}[{i}]")]
    finite = math.isfinite(expected) and math.isfinite(actual)
    if not finite or abs(actual - expected) > tolerance * max(1.0, abs(actual) + abs(expected)):
        return [f"{path}: {expected} != {actual}"]
    return []


class Tool:
    def __init__(self, name, command):
        self.name = name
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.next_id = 0

    def send(self, message):
        message = {"id": self.next_id, **message}
        self.next_id += 1
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"run.py: {self.name} exited without answering {message['kind']}")
        response = json.loads(line)
        if response.get("id") != message["id"]:
            sys.exit(f"run.py: {self.name} answered id {response.get('id')} to id {message['id']}")
        return response

    def close(self):
        self.process.stdin.close()
        if self.process.wait(timeout=60) != 0:
            sys.exit(f"run.py: {self.name} exited with status {self.process.returncode}")


def mean_evaluate_seconds(response):
    runs = [t["nanoseconds"] for t in response["timings"] if t["name"] == "evaluate"]
    return sum(runs) / len(runs) / 1e9, len(runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tool", help="the tapegrad-gradbench executable")
    parser.add_argument("--evals", default=",".join(EVALS), help="comma-separated, from " + ",".join(EVALS))
    parser.add_argument("--min-runs", type=int, default=1)
    parser.add_argument("--min-seconds", type=float, default=1.0, help="per function and workload (GradBench: 1)")
    parser.add_argument("--max-workloads", type=int, default=None, help="only the first N workloads of each eval")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows, failures = [], 0
    for eval_name in args.evals.split(","):
        if eval_name not in WORKLOADS:
            sys.exit(f"run.py: unknown eval '{eval_name}' (known: {', '.join(EVALS)})")
        tools = [Tool("tapegrad", [args.tool]), Tool("pytorch", ["/usr/bin/python3", str(HERE / "pytorch_tool.py")])]
        for tool in tools:
            tool.send({"kind": "start", "eval": eval_name})
            if not tool.send({"kind": "define", "module": eval_name})["success"]:
                sys.exit(f"run.py: {tool.name} does not define {eval_name}")
        for index, (description, data) in enumerate(WORKLOADS[eval_name]()):
            if args.max_workloads is not None and index >= args.max_workloads:
                break
            data = {**data, "min_runs": args.min_runs, "min_seconds": args.min_seconds}
            for function in FUNCTIONS[eval_name]:
                message = {"kind": "evaluate", "module": eval_name, "function": function, "input": data,
                           "description": description}
                order = tools if index % 2 == 0 else tools[::-1]
                responses = {tool.name: tool.send(message) for tool in order}
                for name, r in responses.items():
                    if not r.get("success"):
                        sys.exit(f"run.py: {name} failed {eval_name}.{function} {description}: {r.get('error')}")
                (tg_time, tg_runs), (pt_time, pt_runs) = (mean_evaluate_seconds(responses[t]) for t in ("tapegrad", "pytorch"))
                wrong = mismatches(responses["pytorch"]["output"], responses["tapegrad"]["output"], 1e-6)
                failures += bool(wrong)
                rows.append({"eval": eval_name, "workload": description, "function": function,
                             "tapegrad_seconds": tg_time, "pytorch_seconds": pt_time, "ratio": tg_time / pt_time,
                             "tapegrad_runs": tg_runs, "pytorch_runs": pt_runs, "agree_1e-6": not wrong,
                             "first_mismatches": wrong[:3]})
                if not args.json:
                    r = rows[-1]
                    print(f"{eval_name:5} {description:16} {function:9} tapegrad {tg_time * 1e3:10.3f} ms  "
                          f"pytorch {pt_time * 1e3:10.3f} ms  ratio {r['ratio']:7.3f}  "
                          f"{'agree' if not wrong else 'DIFFER ' + '; '.join(wrong[:3])}", flush=True)
        for tool in tools:
            tool.close()
    if args.json:
        print(json.dumps(rows, indent=1))
    if failures:
        sys.exit(f"run.py: {failures} outputs differ from PyTorch's by more than 1e-6")


if __name__ == "__main__":
    main()
