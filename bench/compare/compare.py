"""Runs bench/compare's workloads, tapegrad against LibTorch (PyTorch for the gradient check),
alternating in one run, and prints a table, or JSON with --json. Called by bench/compare/run."""
import argparse
import json
import os
import statistics
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))


def lines(command):
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("binary", help="the compare executable")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=0, help="repetitions per workload (default: per workload)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated process runs for (e) and (f)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows = []
    base = [args.binary, "--threads", str(args.threads)] + (["--reps", str(args.reps)] if args.reps else [])
    if args.threads == 1:
        # One process, the two sides alternating step by step.
        rows += lines(base)
    else:
        # One process per side, alternating workload by workload: at several threads each side's
        # idle threads (LibTorch's OpenMP, tapegrad's pool) spin on the cores the other needs.
        for key in "abcd":
            ours = lines(base + ["--only", key, "--side", "tapegrad"])
            theirs = lines(base + ["--only", key, "--side", "libtorch"])
            for t, l in zip(ours, theirs):
                for field in ("libtorch_min", "libtorch_median", "libtorch_gflops"):
                    t[field] = l[field]
                t["ratio"] = t["tapegrad_median"] / t["libtorch_median"]
                rows.append(t)

    # (e): the two programs alternately, each timing its own repetitions.
    python = "/usr/bin/python3"
    reps = str(args.reps or 20)
    ours, theirs = {}, {}
    for _ in range(args.rounds):
        for r in lines([args.binary, "--gradcheck", "--reps", reps]):
            ours.setdefault(r["workload"], []).append(r)
        for r in lines([python, os.path.join(here, "gradcheck_torch.py"), reps]):
            theirs.setdefault(r["workload"], []).append(r)
    for name in ours:
        t = statistics.median(r["median"] for r in ours[name])
        p = statistics.median(r["median"] for r in theirs[name])
        rows.append({"workload": name, "dtype": "float64", "unit": "us", "baseline": "PyTorch",
                     "tapegrad_min": min(r["min"] for r in ours[name]), "tapegrad_median": t,
                     "libtorch_min": min(r["min"] for r in theirs[name]), "libtorch_median": p, "ratio": t / p,
                     "ok": all(r["ok"] for r in ours[name] + theirs[name])})

    # (f): peak resident memory of 200 LeNet-5 steps, one process per side, alternately.
    peaks = {"tapegrad": [], "libtorch": []}
    for _ in range(args.rounds):
        for side in ("tapegrad", "libtorch"):
            peaks[side] += [r["peak_rss_mb"] for r in lines([args.binary, "--memory", side, "--threads", str(args.threads)])]
    t, l = statistics.median(peaks["tapegrad"]), statistics.median(peaks["libtorch"])
    rows.append({"workload": "f. peak RSS, 200 LeNet-5 steps", "dtype": "float32", "unit": "MB",
                 "tapegrad_min": min(peaks["tapegrad"]), "tapegrad_median": t,
                 "libtorch_min": min(peaks["libtorch"]), "libtorch_median": l, "ratio": t / l})

    if args.json:
        print(json.dumps({"threads": args.threads, "rows": rows}, indent=2))
        return
    print(f"tapegrad vs LibTorch (PyTorch for e), {args.threads} thread(s), medians (min in brackets)")
    header = (f"{'workload':58} {'dtype':8} {'tapegrad':>20} {'baseline':>20} {'ratio':>6} {'GFLOP/s t/b':>12} "
              f"{'same result':>11}")
    print(header)
    print("-" * len(header))
    for r in rows:
        unit = r.get("unit", "us")
        fmt = lambda m, lo: f"{m:.2f} ({lo:.2f}) {unit}"
        flops = f"{r['tapegrad_gflops']:.1f}/{r['libtorch_gflops']:.1f}" if r.get("tapegrad_gflops") else ""
        same = r.get("same_result_rel_diff")
        same = f"{same:.0e}" if same is not None else ("ok" if r.get("ok") else "")
        print(f"{r['workload']:58} {r['dtype']:8} {fmt(r['tapegrad_median'], r['tapegrad_min']):>20} "
              f"{fmt(r['libtorch_median'], r['libtorch_min']):>20} {r['ratio']:6.2f} {flops:>12} {same:>11}")


if __name__ == "__main__":
    main()
