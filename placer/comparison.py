"""Run several solvers on one problem and line their plans up (``placer compare``).

The exact DP against the baselines of :mod:`placer.solvers.baselines` shows what the
optimum gains over common ways of splitting a pipeline; every figure comes from the one
evaluator.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from placer.errors import InputError, PlacerError
from placer.evaluator import evaluate
from placer.problem import Problem, throughput
from placer.solvers import BASELINES, SOLVERS, SolverOptions, get_solver
from placer.solvers.blocks import contract
from placer.solvers.feasibility import check_feasible

#: The MILP joins the default list only below this many ops (it may run to its limit).
MILP_MAX_OPS = 60
#: Seconds the MILP may take in a comparison when no time limit is given.
MILP_SECONDS = 10.0


@dataclass(frozen=True)
class ComparisonRow:
    """One solver's plan, or why it has none (``error``; the figures are then None)."""

    solver: str
    max_load: float | None
    throughput: float | None
    optimal: bool
    seconds: float
    speedup_vs_single: float | None
    peak_memory_bytes: float | None
    valid: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "solver": self.solver,
            "max_load": self.max_load,
            "throughput": self.throughput,
            "optimal": self.optimal,
            "seconds": self.seconds,
            "speedup_vs_single": self.speedup_vs_single,
            "peak_memory_bytes": self.peak_memory_bytes,
            "valid": self.valid,
        }
        if self.error is not None:
            document["error"] = self.error
        return document


@dataclass(frozen=True)
class Comparison:
    """The rows of a comparison, in the order the solvers were asked for."""

    problem: str
    time_unit: str
    rows: tuple[ComparisonRow, ...]

    @property
    def best(self) -> ComparisonRow | None:
        """The valid row with the least max-load (the first one on a tie)."""
        placed = [r for r in self.rows if r.valid and r.max_load is not None]
        return min(placed, key=lambda r: r.max_load, default=None)

    def to_dict(self) -> dict[str, Any]:
        """``{"results": [row, ...]}``; the README lists each row's keys."""
        return {"results": [row.to_dict() for row in self.rows]}


def default_solvers(problem: Problem) -> list[str]:
    """The DP and every baseline, plus the MILP on instances small enough for it."""
    names = ["dp", *BASELINES]
    if "milp" in SOLVERS and len(problem.ops) <= MILP_MAX_OPS:
        names.append("milp")
    return names


def compare(
    problem: Problem, solver_names: Sequence[str], options: SolverOptions | None = None
) -> Comparison:
    """Solve ``problem`` with each named solver and evaluate every plan.

    Parameters
    ----------
    problem : Problem
    solver_names : sequence of str
        Names from :data:`placer.solvers.SOLVERS`; each runs once, in this order.
    options : SolverOptions, optional
        Shared by the solvers; without a time limit the MILP gets :data:`MILP_SECONDS`.

    Returns
    -------
    Comparison
        A row per solver.  A solver that finds no placement (infeasible, time limit) is
        a row with its one-line error, not an exception.  The speed-up is over the
        ``single`` baseline, run on the side when not asked for.

    Raises
    ------
    InputError
        An unknown solver name (checked before any solver runs), or no name at all.
    InfeasiblePlacement
        No placement fits at all (checked before any solver runs, as ``place`` does).
    PlacerError
        No solver found a placement: the first one's error (its exit status with it).
    """
    if not solver_names:
        raise InputError(f"no solver to compare; choose from: {', '.join(sorted(SOLVERS))}")
    solvers = {name: get_solver(name) for name in solver_names}
    check_feasible(problem, contract(problem))
    options = options or SolverOptions()
    if options.time_limit is None:
        options = replace(options, time_limit=MILP_SECONDS)
    rows = []
    errors: list[PlacerError] = []
    for name, solve in solvers.items():
        started = time.perf_counter()
        try:
            solved = solve(problem, options)
        except PlacerError as err:
            errors.append(err)
            rows.append(
                ComparisonRow(
                    name, None, None, False, time.perf_counter() - started, None, None, False,
                    error=str(err),
                )
            )  # fmt: skip
            continue
        evaluation = evaluate(problem, solved.placement, require_contiguous=options.contiguous)
        max_load = evaluation.max_load
        rows.append(
            ComparisonRow(
                solver=name,
                max_load=max_load,
                throughput=throughput(problem.samples_per_step, max_load) if max_load > 0 else None,
                optimal=solved.optimal,
                seconds=solved.seconds,
                speedup_vs_single=None,
                peak_memory_bytes=max((s.memory_bytes for s in evaluation.stages), default=0.0),
                valid=evaluation.valid,
            )
        )
    if len(errors) == len(rows):
        raise errors[0]  # a table of errors alone would be no comparison
    single = next((r.max_load for r in rows if r.solver == "single"), None)
    if single is None and "single" not in solvers:
        try:
            single = get_solver("single")(problem, options).objective
        except PlacerError:
            single = None
    if single is not None and math.isfinite(single):
        rows = [
            replace(r, speedup_vs_single=single / r.max_load) if r.max_load else r for r in rows
        ]
    return Comparison(problem.name, problem.time_unit, tuple(rows))
