"""The table of bench/transforms/run from the JSON lines of both sides: per function and
transform, the median milliseconds over the rounds of tapegrad and of each PyTorch variant, the
ratio of PyTorch's fastest variant to tapegrad (above 1: tapegrad faster), and the checks. Exits
non-zero when a result of the two sides differs (their checksums)."""
import json
import statistics
import sys
from collections import defaultdict


def main(path):
    times, checksums, errors = defaultdict(list), {}, {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            key = (r["workload"], r["transform"], r["side"], r["variant"])
            if "error" in r:
                errors[key] = r["error"]
                continue
            times[key].append(r["ms"])
            checksums[key] = r["checksum"]
    median = {k: statistics.median(v) for k, v in times.items()}
    rows, mismatches = [], []
    order = list(dict.fromkeys((k[0], k[1]) for k in list(median) + list(errors)))
    print("| function | transform | tapegrad ms | PyTorch ms, by variant | PyTorch fastest / tapegrad |")
    print("|---|---|---|---|---|")
    for workload, transform in order:
        ours = median.get((workload, transform, "tapegrad", ""))
        theirs = {k[3]: v for k, v in median.items() if k[:3] == (workload, transform, "pytorch")}
        failed = {k[3]: v for k, v in errors.items() if k[:3] == (workload, transform, "pytorch")}
        mine = checksums.get((workload, transform, "tapegrad", ""))
        for variant in theirs:
            other = checksums[(workload, transform, "pytorch", variant)]
            if mine is not None and abs(mine - other) > 1e-8 * max(1.0, abs(mine)):
                mismatches.append(f"{workload} {transform} ({variant or 'PyTorch'}): {mine} against {other}")
        cells = [f"{v:.3g} ({name or 'autograd.grad'})" for name, v in theirs.items()]
        cells += [f"n/a ({name}: {e})" for name, e in failed.items()]
        fastest = min(theirs.values()) if theirs else None
        ratio = f"{fastest / ours:.2f}" if ours and fastest else "n/a"
        print(f"| {workload} | {transform} | {ours:.3g} | {'; '.join(cells)} | {ratio} |")
        rows.append((workload, transform, ours))
    ours = {(w, t): v for w, t, v in rows}
    print()
    if ("wide", "jacrev") in ours and ("wide", "jacfwd") in ours:
        print(f"wide (R^16 -> R^4096): jacrev / jacfwd = {ours[('wide', 'jacrev')] / ours[('wide', 'jacfwd')]:.1f}"
              " (the issue asks at least 5)")
    for workload in dict.fromkeys(w for w, _ in ours):
        if (workload, "hvp") in ours and (workload, "grad") in ours:
            print(f"{workload}: hvp / gradient = {ours[(workload, 'hvp')] / ours[(workload, 'grad')]:.2f}"
                  " (the issue asks at most 3)")
    for m in mismatches:
        print("results differ:", m)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
