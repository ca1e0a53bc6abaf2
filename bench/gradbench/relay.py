#!/usr/bin/env python3
"""GradBench's own evals against a tool, without GradBench's command-line runner (its Rust CLI is
not built offline): this relay starts an eval's Python program from a GradBench checkout and the
tool, passes each message of the eval to the tool and each reply back, as the runner does, and
prints what the eval judged of every output (its "analysis" messages).

    bench/gradbench/relay.py [--record FILE] [--tool-in-checkout] GRADBENCH_CHECKOUT TOOL_COMMAND EVAL [EVAL_ARGS...]

e.g. relay.py ~/gradbench build/bench/gradbench/tapegrad-gradbench kmeans --min-seconds 0.
TOOL_COMMAND is split like a shell command and run in the current directory (in the checkout with
--tool-in-checkout, as GradBench's own tools expect). The eval runs in the
checkout (the evals that validate through GradBench's manual tool run tools/manual/bin/<eval>,
built there beforehand: make -C tools/manual bin/<eval>), with its python/gradbench on
PYTHONPATH. --record appends one JSON line per evaluate (eval, function, description, the mean
of its timed runs in ns, valid) to FILE. Exit status 0 when every output was judged valid.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys


# Runs the eval's module as `python -m` would. GradBench's evals call pydantic 2's
# BaseModel.model_validate; Debian 12 has pydantic 1, whose parse_obj is the same call.
RUN_EVAL = """
import runpy, sys
import pydantic
if not hasattr(pydantic.BaseModel, "model_validate"):
    pydantic.BaseModel.model_validate = classmethod(lambda cls, obj: cls.parse_obj(obj))
module = sys.argv[1]
sys.argv = [module] + sys.argv[2:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def main() -> int:
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("--record")
    parser.add_argument("--tool-in-checkout", action="store_true")
    parser.add_argument("checkout")
    parser.add_argument("tool")
    parser.add_argument("eval_name")
    parser.add_argument("eval_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    checkout, eval_name, eval_args = args.checkout, args.eval_name, args.eval_args
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.abspath(checkout), "python", "gradbench"))
    evaluator = subprocess.Popen([sys.executable, "-c", RUN_EVAL, f"gradbench.evals.{eval_name}.run", *eval_args],
                                 cwd=checkout, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    tool = subprocess.Popen(shlex.split(args.tool), cwd=checkout if args.tool_in_checkout else None, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    described, records, valid, invalid = {}, {}, 0, 0
    for line in evaluator.stdout:
        message = json.loads(line)
        tool.stdin.write(line)
        tool.stdin.flush()
        reply = tool.stdout.readline()
        if not reply:
            print(f"{eval_name}: the tool ended without replying to message {message.get('id')}", file=sys.stderr)
            return 1
        kind = message.get("kind")
        if kind == "evaluate":
            described[message["id"]] = f"{message['function']} {message.get('description', '')}"
            answer = json.loads(reply)
            record = {"eval": eval_name, "function": message["function"],
                      "description": message.get("description", ""), "valid": False}
            records[message["id"]] = record
            if not answer.get("success"):
                invalid += 1
                print(f"{eval_name}: {described[message['id']]}: failed: {str(answer.get('error'))[:300]}")
            else:
                runs = [t["nanoseconds"] for t in answer.get("timings", []) if t["name"] == "evaluate"]
                record["mean_ns"] = sum(runs) / max(1, len(runs))
                described[message["id"]] += f" ({len(runs)} runs, mean {record['mean_ns'] / 1e6:.3f} ms)"
        elif kind == "analysis":
            what = described.get(message.get("of"), str(message.get("of")))
            if message.get("of") in records:
                records[message["of"]]["valid"] = bool(message.get("valid"))
            if message.get("valid"):
                valid += 1
                print(f"{eval_name}: {what}: valid")
            else:
                invalid += 1
                print(f"{eval_name}: {what}: INVALID: {message.get('error')}")
        evaluator.stdin.write(reply)
        evaluator.stdin.flush()
    evaluator.stdin.close()
    tool.stdin.close()
    status = evaluator.wait()
    tool.wait()
    if args.record:
        with open(args.record, "a") as out:
            for record in records.values():
                out.write(json.dumps(record) + "\n")
    print(f"{eval_name}: {valid} outputs valid, {invalid} not (eval exit status {status})")
    return 0 if invalid == 0 and valid > 0 and status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
