"""``make bench``: wall time and peak memory of placer's DP on the reference workloads.

Each workload runs in its own process (so that peak memory is its own): one warm-up
solve (numba's compiled kernels are cached on disk after the first run), then three
timed solves; the median is reported beside the reference C++ DP's time measured on a
machine of the same kind (tests/data/dnn-partitioning/expected.json) and their ratio.
"peak MiB" is the process's peak resident memory (Python, NumPy, numba and the data
included); "DP MiB" is how far the solves raised it above the process with everything
loaded.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "dnn-partitioning"
RUNS = 3

_CHILD = r"""
import json, os, resource, sys, time
from placer.frontends.workload import parse_workload, read_workload
from placer.solvers.dp.search import solve_dp
tiny = {"maxSizePerFPGA": 1, "maxFPGAs": 1, "maxCPUs": 1, "edges": [], "nodes": [
    {"id": 0, "supportedOnFpga": 1, "cpuLatency": 1, "fpgaLatency": 1, "isBackwardNode": 0}]}
solve_dp(parse_workload(tiny))  # loads the compiled kernels
problem = read_workload(sys.argv[1])
with open("/proc/self/statm") as statm:  # resident pages now: the baseline
    baseline = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
solve_dp(problem)  # warm-up
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    solved = solve_dp(problem)
    times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"ops": len(problem.ops), "times": times, "peak": peak,
                  "dp_peak": max(0, peak - baseline), "objective": solved.objective,
                  "optimal": solved.optimal, **solved.stats}))
"""


_MODEL_CHILD = r"""
import json, sys, time
from placer import api as app
from placer.choices import Mode
from placer.costs.roofline import CostOptions, build_problem
from placer.solvers import SolverOptions
options = app.ModelOptions(mode=sys.argv[2], input_shapes=json.loads(sys.argv[3]))
rows = []
for _ in range(int(sys.argv[4])):
    t0 = time.perf_counter()
    graph = app.load_graph(sys.argv[1], options)
    t1 = time.perf_counter()
    cost = CostOptions(mode=Mode(options.mode), batch_size=app.batch_size(options))
    problem = build_problem(graph, app.load_cluster(None), cost)
    t2 = time.perf_counter()
    result = app.place(problem, "dp", SolverOptions())
    t3 = time.perf_counter()
    rows.append((t1 - t0, t2 - t1, t3 - t2, result.max_load, len(problem.ops)))
print(json.dumps(rows))
"""

SAMPLES = [
    ("bert_base", {"input_ids": [8, 128]}),
    ("gpt2_small", {"input_ids": [8, 128]}),
    ("mobilenet_v2", {"input": [8, 3, 224, 224]}),
]


def bench_models() -> None:
    """Load, cost and place each sample model on the default cluster; and the whole
    ``placer place`` command (Python start-up included), median of three."""
    print()
    print(f"sample models on the default cluster, batch 8, median of {RUNS} runs")
    header = (
        f"{'model':14} {'mode':9} {'ops':>5} {'load s':>7} {'cost s':>7} {'place s':>7} "
        f"{'command s':>9} {'max-load ms':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, shapes in SAMPLES:
        model = ROOT / "sample_models" / f"{name}.onnx"
        for mode in ("inference", "training"):
            out = subprocess.run(
                [sys.executable, "-c", _MODEL_CHILD, str(model), mode, json.dumps(shapes),
                 str(RUNS)],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            rows = json.loads(out)
            load, cost, place = (statistics.median(r[i] for r in rows) for i in range(3))
            flags = [f"--input-shape={k}={','.join(map(str, v))}" for k, v in shapes.items()]
            command = [sys.executable, "-m", "placer", "place", str(model), "--mode", mode,
                       *flags, "--format", "json"]  # fmt: skip
            walls = []
            for _ in range(RUNS):
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                walls.append(time.perf_counter() - start)
            print(
                f"{name:14} {mode:9} {rows[0][4]:5d} {load:7.3f} {cost:7.3f} {place:7.3f} "
                f"{statistics.median(walls):9.3f} {rows[0][3] * 1e3:11.4g}"
            )


def main() -> None:
    expected = json.loads((REFERENCE / "expected.json").read_text())
    header = (
        f"{'workload':38} {'nodes':>5} {'blocks':>6} {'ideals':>7} {'pairs':>10} "
        f"{'max-load':>10} {'DP s':>7} {'ref s':>6} {'speed-up':>8} {'peak MiB':>8} "
        f"{'DP MiB':>6}"
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
            f"{reference_seconds:6.2f} {ratio:7.1f}x {row['peak'] / 2**20:8.0f} "
            f"{row['dp_peak'] / 2**20:6.0f}{flag}"
        )
    print(
        f"speed-up over the reference C++ DP: min {min(ratios):.1f}x, "
        f"median {statistics.median(ratios):.1f}x (reference times below 0.01 s are "
        "reported as 0.01 s, so those ratios are lower bounds)"
    )
    bench_models()


if __name__ == "__main__":
    main()
