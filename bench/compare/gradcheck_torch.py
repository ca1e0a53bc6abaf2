"""(e), PyTorch's side: torch.autograd.gradcheck of conv2d on x (2, 3, 8, 8), w (4, 3, 3, 3) in
double, full Jacobian and fast mode (one random projection), one thread. Prints one JSON line each,
like `compare --gradcheck`."""
import json
import sys
import time

import torch

torch.set_num_threads(1)
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
gen = torch.Generator().manual_seed(7)
x = (torch.rand(2, 3, 8, 8, generator=gen, dtype=torch.float64) * 2 - 1).requires_grad_(True)
w = (torch.rand(4, 3, 3, 3, generator=gen, dtype=torch.float64) * 2 - 1).requires_grad_(True)
f = lambda a, b: torch.nn.functional.conv2d(a, b)
for fast, name in ((False, "full Jacobian"), (True, "random projection")):
    times, ok = [], True
    for i in range(reps + 2):
        start = time.perf_counter()
        ok = torch.autograd.gradcheck(f, (x, w), fast_mode=fast) and ok
        if i >= 2:
            times.append((time.perf_counter() - start) * 1e6)
    times.sort()
    print(json.dumps({"workload": "e. gradcheck conv2d x(2,3,8,8) w(4,3,3,3), " + name, "dtype": "float64",
                      "side": "pytorch", "reps": reps, "min": times[0], "median": times[len(times) // 2], "ok": ok}))
