#!/usr/bin/env python3
"""tapegrad's GradBench tool beside GradBench's own tools, under GradBench's own evals, in one run:

    bench/gradbench/side_by_side.py GRADBENCH_CHECKOUT TAPEGRAD_TOOL [--evals kmeans,det,...]
        [--min-seconds S] [--rounds N] [--eval-args EVAL='ARGS' ...] [--tools tapegrad,manual,pytorch]

For each eval, the tools that implement it run one after another, round after round (the order
rotating each round): tapegrad's, GradBench's hand-written C++ tool "manual" (built by GradBench's
cpp.py with its flags, -O3 -march=native, nlohmann-json from Debian), and GradBench's PyTorch tool
(Debian's python3-torch). Every output is validated by the eval (relay.py). Prints, per workload
and function, each tool's median over the rounds of its mean time per run, and tapegrad's ratio to
each. Eval arguments default to each eval's own defaults (ht: --max 11, the last hand file being
absent from some snapshots).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ARGS = {"ht": "--max 11"}


def tools_for(checkout, eval_name, tapegrad):
    tools = [("tapegrad", os.path.abspath(tapegrad))]
    if os.path.exists(os.path.join(checkout, "tools", "manual", f"{eval_name}.cpp")):
        tools.append(("manual", f"{sys.executable} python/gradbench/gradbench/cpp.py manual"))
    if os.path.exists(os.path.join(checkout, "tools", "pytorch", f"{eval_name}.py")) or os.path.exists(
            os.path.join(checkout, "python", "gradbench", "gradbench", "tools", "pytorch", f"{eval_name}.py")):
        tools.append(("pytorch", f"{sys.executable} python/gradbench/gradbench/tools/pytorch/run.py"))
    return tools


def main() -> int:
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("checkout")
    parser.add_argument("tapegrad")
    parser.add_argument("--evals", default="kmeans,det,ba,ht,particle,saddle")
    parser.add_argument("--min-seconds", default="1")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--eval-args", action="append", default=[])
    parser.add_argument("--tools", default="tapegrad,manual,pytorch")
    args = parser.parse_args()
    eval_args = dict(DEFAULT_ARGS)
    for item in args.eval_args:
        name, _, value = item.partition("=")
        eval_args[name] = value
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               CXXFLAGS="-std=c++17 -O3 -Wall -I../../cpp -I/usr/include/nlohmann")
    times, invalid = {}, 0
    for eval_name in args.evals.split(","):
        tools = [t for t in tools_for(args.checkout, eval_name, args.tapegrad) if t[0] in args.tools.split(",")]
        if not tools:
            print(f"{eval_name}: none of the tools {args.tools} implements it", file=sys.stderr)
            continue
        for round_number in range(args.rounds):
            shift = round_number % len(tools)
            for tool_name, command in tools[shift:] + tools[:shift]:
                with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as record:
                    run = [sys.executable, os.path.join(HERE, "relay.py"), "--record", record.name, "--tool-in-checkout",
                           args.checkout, command, eval_name, "--min-seconds", args.min_seconds,
                           *eval_args.get(eval_name, "").split()]
                    done = subprocess.run(run, env=env, capture_output=True, text=True)
                    print(f"{eval_name}, {tool_name}, round {round_number + 1}: {done.stdout.strip().splitlines()[-1:]}",
                          file=sys.stderr)
                    if done.returncode != 0:   # a tool that died, or an output judged invalid
                        invalid += 1
                        print(done.stderr[-2000:], file=sys.stderr)
                    for line in record:
                        r = json.loads(line)
                        if not r["valid"]:
                            invalid += 1
                            continue
                        key = (eval_name, r["description"], r["function"])
                        times.setdefault(key, {}).setdefault(tool_name, []).append(r["mean_ns"] / 1e6)
    print("| eval | workload | function | tapegrad ms | manual ms | PyTorch ms | tapegrad / manual | tapegrad / PyTorch |")
    print("|---|---|---|---|---|---|---|---|")
    for (eval_name, description, function), by_tool in times.items():
        median = {tool: statistics.median(values) for tool, values in by_tool.items()}
        cell = lambda tool: f"{median[tool]:.3f}" if tool in median else ""
        ratio = lambda tool: (f"{median['tapegrad'] / median[tool]:.2f}" if tool in median and "tapegrad" in median
                              and median[tool] > 0 else "")
        print(f"| {eval_name} | {description} | {function} | {cell('tapegrad')} | {cell('manual')} | {cell('pytorch')} "
              f"| {ratio('manual')} | {ratio('pytorch')} |")
    print(f"{invalid} failures (outputs judged invalid, or runs of a tool that failed)", file=sys.stderr)
    return 0 if invalid == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
