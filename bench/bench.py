"""``make bench``: wall time and peak memory of placer's DP on the reference workloads.

Each workload runs in its own process (so that peak memory is its own): one warm-up
solve (numba's compiled kernels are cached on disk after the first run), then three
timed solves; the median is reported beside the reference C++ DP's time measured on a
machine of the same kind (tests/data/dnn-partitioning/expected.json) and their ratio.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "dnn-partitioning"
RUNS = 3

_CHILD = r"""
import json, resource, sys, time
from placer.workload import read_workload
from placer.solvers.dp import solve_dp
problem = read_workload(sys.argv[1])
solve_dp(problem)  # warm-up: loads the compiled kernels
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    solved = solve_dp(problem)
    times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"ops": len(problem.ops), "times": times, "peak": peak,
                  "objective": solved.objective, "optimal": solved.optimal, **solved.stats}))
"""


def main() -> None:
    expected = json.loads((REFERENCE / "expected.json").read_text())
    header = (
        f"{'workload':38} {'nodes':>5} {'blocks':>6} {'ideals':>7} {'pairs':>10} "
        f"{'max-load':>10} {'DP s':>7} {'ref s':>6} {'speed-up':>8} {'peak MiB':>8}"
    )
    print(f"placer DP, median of {RUNS} runs (each workload in a fresh process)")
    print(header)
    print("-" * len(header))
    ratios = []
    for workload, reference_seconds in expected["reference_dp_seconds"].items():
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(REFERENCE / f"{workload}.json"), str(RUNS)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        row = json.loads(out)
        median = statistics.median(row["times"])
        ratio = reference_seconds / median
        ratios.append(ratio)
        optimum = expected["optimal"][workload]
        flag = "" if abs(row["objective"] - optimum) <= 1e-5 * optimum else "  MISMATCH"
        print(
            f"{workload:38} {row['ops']:5d} {row['blocks']:6.0f} {row['ideals']:7.0f} "
            f"{row.get('pairs', 0):10.0f} {row['objective']:10.6g} {median:7.3f} "
            f"{reference_seconds:6.2f} {ratio:7.1f}x {row['peak'] / 2**20:8.0f}{flag}"
        )
    print(
        f"speed-up over the reference C++ DP: min {min(ratios):.1f}x, "
        f"median {statistics.median(ratios):.1f}x (reference times below 0.01 s are "
        "reported as 0.01 s, so those ratios are lower bounds)"
    )


if __name__ == "__main__":
    main()
