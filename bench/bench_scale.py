"""``make bench``: whole ``placer place`` commands on 100,000-node graphs.

Two workloads in the paper's JSON format, written here (deterministic): a chain of
100,000 layers (each feeds the next), and a graph 100,000 wide (one source, 99,998
parallel branches, one sink). Each command runs in a fresh process, three times; the
table gives the median wall time, the median CPU time of the process (the solver's
threads included) and the largest peak resident memory. "solve" is the part after
loading: the time ``--time-limit`` bounds.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 3
N = 100_000


def chain(n: int) -> dict:
    nodes = [
        {"id": i, "supportedOnFpga": 1, "cpuLatency": 1.0 + i % 7,
         "fpgaLatency": 0.1 + (i % 5) * 0.01, "isBackwardNode": 0, "colorClass": i,
         "size": 1000.0}
        for i in range(n)
    ]  # fmt: skip
    edges = [{"sourceId": i - 1, "destId": i, "cost": 0.01} for i in range(1, n)]
    return {"maxSizePerFPGA": 1e12, "maxFPGAs": 4, "maxCPUs": 1, "nodes": nodes, "edges": edges}


def wide(n: int) -> dict:
    document = chain(n)
    middle = range(1, n - 1)
    document["edges"] = [{"sourceId": 0, "destId": i, "cost": 0.01} for i in middle] + [
        {"sourceId": i, "destId": n - 1, "cost": 0.01} for i in middle
    ]
    return document


_CHILD = r"""
import json, sys, time
from placer import api as app
from placer.solvers import SolverOptions
started = time.perf_counter()
problem = app.load_problem(sys.argv[1])
from placer.solvers.blocks import contract
contract(problem)  # part of building the problem: --time-limit starts after it
loaded = time.perf_counter()
limit = float(sys.argv[2]) if sys.argv[2] != "none" else None
result = app.place(problem, "auto", SolverOptions(time_limit=limit))
done = time.perf_counter()
print(json.dumps({"load": loaded - started, "solve": done - loaded,
                  "optimal": result.optimal, "max_load": result.max_load,
                  "note": result.notes[0] if result.notes else ""}))
"""


def measure(path: Path, limit: str) -> dict:
    walls, cpus, peaks, rows = [], [], [], []
    for _ in range(RUNS):
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), limit], stdout=subprocess.PIPE, text=True
        )
        out = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        walls.append(time.perf_counter() - start)
        cpus.append(usage.ru_utime + usage.ru_stime)
        peaks.append(usage.ru_maxrss * 1024)
        if process.returncode != 0:
            raise SystemExit(f"{path.name}: exit {process.returncode}")
        rows.append(json.loads(out))
    return {
        "wall": statistics.median(walls),
        "cpu": statistics.median(cpus),
        "peak": max(peaks),
        "load": statistics.median(r["load"] for r in rows),
        "solve": statistics.median(r["solve"] for r in rows),
        "optimal": rows[0]["optimal"],
        "note": rows[0]["note"],
    }


def main() -> None:
    print(f"whole `placer place` on {N:,}-node graphs: median of {RUNS} fresh processes")
    print(f"{'graph':<22}{'wall s':>8}{'cpu s':>8}{'load s':>8}{'solve s':>9}"
          f"{'peak MiB':>10}  answer")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, document, limit in (
            ("chain", chain(N), "none"),
            ("wide, --time-limit 5", wide(N), "5"),
        ):
            path = Path(tmp) / f"{name.split(',')[0]}.json"
            path.write_text(json.dumps(document))
            row = measure(path, limit)
            answer = "optimal" if row["optimal"] else row["note"][:70]
            print(
                f"{name:<22}{row['wall']:>8.1f}{row['cpu']:>8.1f}{row['load']:>8.1f}"
                f"{row['solve']:>9.2f}{row['peak'] / 2**20:>10.0f}  {answer}"
            )


if __name__ == "__main__":
    main()
