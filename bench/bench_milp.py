"""The MILP on the reference workloads, per backend: objective, bound, gap and time.

``python bench/bench_milp.py [--time-limit S] [--non-contiguous] [WORKLOAD.json ...]``
prints one row per workload and backend (all reference workloads by default); the
library function :func:`bench_milp` returns the rows.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from placer.errors import PlacerError  # noqa: E402  (after the path fix above)
from placer.frontends.workload import read_workload  # noqa: E402
from placer.solvers.base import MipBackend, SolverOptions  # noqa: E402
from placer.solvers.milp.solve import solve_milp  # noqa: E402

REFERENCE = ROOT / "tests" / "data" / "dnn-partitioning"


@dataclass(frozen=True)
class Row:
    workload: str
    backend: str
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float
    optimal: bool = False


def bench_milp(
    paths, time_limit: float = 60, *, contiguous: bool = True, backends=tuple(MipBackend)
) -> list[Row]:
    """Solve every workload with every backend under ``time_limit`` seconds each.

    Returns
    -------
    list of Row
        ``(workload, backend, objective, bound, gap, seconds)``; objective, bound and
        gap are None when the backend found no placement in time.
    """
    rows = []
    for path in paths:
        path = Path(path)
        problem = read_workload(path)
        name = f"{path.parent.name}/{path.stem}"
        for backend in backends:
            options = SolverOptions(
                mip_solver=MipBackend(backend), time_limit=time_limit, contiguous=contiguous
            )
            try:
                result = solve_milp(problem, options)
            except PlacerError:
                rows.append(Row(name, MipBackend(backend).value, None, None, None, time_limit))
                continue
            found = (result.objective, result.lower_bound, result.gap, result.seconds)
            rows.append(Row(name, MipBackend(backend).value, *found, result.optimal))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--time-limit", type=float, default=60)
    parser.add_argument("--non-contiguous", action="store_true")
    parser.add_argument("--backend", choices=[b.value for b in MipBackend], action="append")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(REFERENCE.glob("*-graphs/*.json"))
    backends = args.backend or [b.value for b in MipBackend]
    print(f"{'workload':40} {'backend':7} {'objective':>10} {'bound':>10} {'gap':>8} {'s':>7}")
    for row in bench_milp(paths, args.time_limit, contiguous=not args.non_contiguous,
                          backends=backends):  # fmt: skip
        cells = [
            f"{x:10.6g}" if x is not None else f"{'-':>10}" for x in (row.objective, row.bound)
        ]
        gap = f"{row.gap:8.3%}" if row.gap is not None else f"{'-':>8}"
        print(f"{row.workload:40} {row.backend:7} {cells[0]} {cells[1]} {gap} {row.seconds:7.1f}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
