"""numpy peer for the GEMM benchmark. Prints one JSON line {n: GFLOPS}. Usage: python numpy_gemm.py SECONDS N...

GEMM_START_AT (ms since the epoch): wait until then, so that processes started side by side measure together."""
import json
import os
import sys
import time

import numpy as np

# GEMM_CLOCK=cpu: GFLOP per CPU-second of this process (time.process_time) instead of wall-clock GFLOPS.
clock = time.process_time if os.environ.get("GEMM_CLOCK") == "cpu" else time.perf_counter
secs = float(sys.argv[1])
start_at = float(os.environ.get("GEMM_START_AT", "0")) / 1000
while time.time() < start_at:
    time.sleep(0.005)
out = {"numpy": np.__version__}
for n in map(int, sys.argv[2:]):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    # Warm up for a third of the measuring time, as the glmv side does (clock ramp-up, threads waking).
    w0 = time.perf_counter()
    while time.perf_counter() - w0 < secs / 3:
        a @ b
    it, t0 = 0, clock()
    while clock() - t0 < secs:
        a @ b
        it += 1
    out[str(n)] = 2 * n**3 * it / (clock() - t0) / 1e9
print(json.dumps(out))
