#!/usr/bin/env python3
"""tapegrad's GradBench tool beside GradBench's own tools, under GradBench's own evals, in one run:

    bench/gradbench/side_by_side.py GRADBENCH_CHECKOUT TAPEGRAD_TOOL [--evals kmeans,det,...]
        [--min-seconds S] [--rounds N] [--eval-args EVAL='ARGS' ...]
        [--tools tapegrad,manual,pytorch,...] [--tapegrad-native TOOL]
        [--codipack CODIPACK_SOURCE] [--adept ADEPT_PREFIX]

For each eval, the tools that implement it run one after another, round after round (the order
rotating each round): tapegrad's; with --tapegrad-native, a second build of it (compiled with
-march=native, to show what the flags are worth); GradBench's hand-written C++ tool "manual";
with --codipack (a CoDiPack source tree, e.g. a v2.3.1 snapshot: its include/ is used) its
CoDiPack tool; with --adept (an Adept-2 install prefix: include/ and lib/) its Adept tool; and
GradBench's PyTorch tool (Debian's python3-torch). GradBench's C++ tools are built by its cpp.py
as its Dockerfiles do (-O3 -march=native, CPATH and LIBRARY_PATH naming the libraries,
nlohmann-json from Debian). Every output is validated by the eval (relay.py). Prints, per workload
and function, each tool's median over the rounds of its mean time per run with its spread
(slowest round / fastest), and tapegrad's ratio to each other tool. Eval arguments
default to each eval's own defaults (ht: --max 11, the last hand file being absent from some
snapshots).
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
CPP_TOOLS = ("manual", "codipack", "adept")


def tools_for(checkout, eval_name, args):
    tools = [("tapegrad", os.path.abspath(args.tapegrad))]
    if args.tapegrad_native:
        tools.append(("tapegrad-native", os.path.abspath(args.tapegrad_native)))
    for tool in CPP_TOOLS:
        given = tool == "manual" or getattr(args, tool)
        if given and os.path.exists(os.path.join(checkout, "tools", tool, f"{eval_name}.cpp")):
            tools.append((tool, f"{sys.executable} python/gradbench/gradbench/cpp.py {tool}"))
    if os.path.exists(os.path.join(checkout, "tools", "pytorch", f"{eval_name}.py")) or os.path.exists(
            os.path.join(checkout, "python", "gradbench", "gradbench", "tools", "pytorch", f"{eval_name}.py")):
        tools.append(("pytorch", f"{sys.executable} python/gradbench/gradbench/tools/pytorch/run.py"))
    return tools


def search_paths(args):
    """CPATH, LIBRARY_PATH and LD_LIBRARY_PATH for GradBench's CoDiPack and Adept tools, as their
    Dockerfiles set them."""
    include, lib = [], []
    if args.codipack:
        include.append(os.path.join(os.path.abspath(args.codipack), "include"))
    if args.adept:
        include.append(os.path.join(os.path.abspath(args.adept), "include"))
        lib.append(os.path.join(os.path.abspath(args.adept), "lib"))
    joined = lambda paths, name: ":".join(paths + [p for p in [os.environ.get(name)] if p])
    paths = {"CPATH": joined(include, "CPATH"), "LIBRARY_PATH": joined(lib, "LIBRARY_PATH"),
             "LD_LIBRARY_PATH": joined(lib, "LD_LIBRARY_PATH")}
    # An empty LIBRARY_PATH would add the working directory to the linker's search path.
    return {name: value for name, value in paths.items() if value}


def main() -> int:
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("checkout")
    parser.add_argument("tapegrad")
    parser.add_argument("--evals", default="kmeans,det,ba,ht,particle,saddle")
    parser.add_argument("--min-seconds", default="1")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--eval-args", action="append", default=[])
    parser.add_argument("--tools", default="tapegrad,tapegrad-native,manual,codipack,adept,pytorch")
    parser.add_argument("--tapegrad-native")
    parser.add_argument("--codipack")
    parser.add_argument("--adept")
    args = parser.parse_args()
    for path, what in ((args.codipack, "include/codi.hpp"), (args.adept, "include/adept.h")):
        if path and not os.path.exists(os.path.join(path, what)):
            print(f"side_by_side: {path} has no {what}", file=sys.stderr)
            return 2
    eval_args = dict(DEFAULT_ARGS)
    for item in args.eval_args:
        name, _, value = item.partition("=")
        eval_args[name] = value
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               CXXFLAGS="-std=c++17 -O3 -Wall -I../../cpp -I/usr/include/nlohmann", **search_paths(args))
    times, invalid, order = {}, 0, []
    for eval_name in args.evals.split(","):
        tools = [t for t in tools_for(args.checkout, eval_name, args) if t[0] in args.tools.split(",")]
        if not tools:
            print(f"{eval_name}: none of the tools {args.tools} implements it", file=sys.stderr)
            continue
        order += [t[0] for t in tools if t[0] not in order]
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
    others = [t for t in order if t != "tapegrad"]
    print("| eval | workload | function | " + " | ".join(f"{t} ms (spread)" for t in order) + " | " +
          " | ".join(f"tapegrad / {t}" for t in others) + " |")
    print("|---" * (3 + len(order) + len(others)) + "|")
    for (eval_name, description, function), by_tool in times.items():
        median = {tool: statistics.median(values) for tool, values in by_tool.items()}
        # The spread: the slowest round over the fastest.
        spread = lambda tool: (f" ({max(by_tool[tool]) / min(by_tool[tool]):.2f})" if min(by_tool[tool]) > 0 else "")
        cell = lambda tool: f"{median[tool]:.3f}{spread(tool)}" if tool in median else ""
        ratio = lambda tool: (f"{median['tapegrad'] / median[tool]:.2f}" if tool in median and "tapegrad" in median
                              and median[tool] > 0 else "")
        print(f"| {eval_name} | {description} | {function} | " + " | ".join(cell(t) for t in order) + " | " +
              " | ".join(ratio(t) for t in others) + " |")
    print(f"{invalid} failures (outputs judged invalid, or runs of a tool that failed)", file=sys.stderr)
    return 0 if invalid == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
