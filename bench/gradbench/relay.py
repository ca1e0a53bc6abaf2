#!/usr/bin/env python3
"""GradBench's own evals against tapegrad's tool, without GradBench's command-line runner (its Rust
CLI is not built offline): this relay starts an eval's Python program from a GradBench checkout
and the tool, passes each message of the eval to the tool and each reply back, as the runner does,
and prints what the eval judged of every output (its "analysis" messages).

    bench/gradbench/relay.py GRADBENCH_CHECKOUT TOOL EVAL [EVAL_ARGS...]

e.g. relay.py ~/gradbench build/bench/gradbench/tapegrad-gradbench kmeans --min-seconds 0.
The eval runs in the checkout (the evals that validate through GradBench's manual tool run
tools/manual/bin/<eval>, built there beforehand: make -C tools/manual bin/<eval>), with its
python/gradbench on PYTHONPATH. Exit status 0 when every output was judged valid.
"""
import json
import os
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
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    checkout, tool, eval_name, eval_args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    env = dict(os.environ, PYTHONPATH=os.path.join(checkout, "python", "gradbench"))
    evaluator = subprocess.Popen([sys.executable, "-c", RUN_EVAL, f"gradbench.evals.{eval_name}.run", *eval_args],
                                 cwd=checkout, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    tapegrad = subprocess.Popen([os.path.abspath(tool)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    described, valid, invalid = {}, 0, 0
    for line in evaluator.stdout:
        message = json.loads(line)
        tapegrad.stdin.write(line)
        tapegrad.stdin.flush()
        reply = tapegrad.stdout.readline()
        if not reply:
            print(f"{eval_name}: the tool ended without replying to message {message.get('id')}", file=sys.stderr)
            return 1
        kind = message.get("kind")
        if kind == "evaluate":
            described[message["id"]] = f"{message['function']} {message.get('description', '')}"
            answer = json.loads(reply)
            if not answer.get("success"):
                invalid += 1
                print(f"{eval_name}: {described[message['id']]}: failed: {answer.get('error')}")
            else:
                runs = [t["nanoseconds"] for t in answer.get("timings", []) if t["name"] == "evaluate"]
                described[message["id"]] += f" ({len(runs)} runs, mean {sum(runs) / max(1, len(runs)) / 1e6:.3f} ms)"
        elif kind == "analysis":
            what = described.get(message.get("of"), str(message.get("of")))
            if message.get("valid"):
                valid += 1
                print(f"{eval_name}: {what}: valid")
            else:
                invalid += 1
                print(f"{eval_name}: {what}: INVALID: {message.get('error')}")
        evaluator.stdin.write(reply)
        evaluator.stdin.flush()
    evaluator.stdin.close()
    tapegrad.stdin.close()
    status = evaluator.wait()
    tapegrad.wait()
    print(f"{eval_name}: {valid} outputs valid, {invalid} not (eval exit status {status})")
    return 0 if invalid == 0 and valid > 0 and status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
