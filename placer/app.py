"""The jobs behind each command: load the input, solve or read a plan, wrap the result.

The command line (:mod:`placer.cli`) only parses options, calls these and renders.
"""

from __future__ import annotations

import math
from pathlib import Path

from placer.blocks import contract
from placer.errors import InputError
from placer.model import Problem
from placer.plans import read_plan
from placer.result import PlacementResult, from_plan, from_solve
from placer.solvers import SolverOptions, get_solver
from placer.solvers.feasibility import check_feasible
from placer.workload import read_workload


def load_problem(path: str | Path) -> Problem:
    """Load a problem from a profiled workload (``.json``).

    Raises
    ------
    InputError
        The file type is not supported, or the file is invalid.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        return read_workload(path)
    raise InputError(f"{path}: unsupported input type {path.suffix!r}; expected a .json workload")


def trivial_lower_bound(problem: Problem) -> float:
    """A lower bound on the max-load of any valid placement, contiguous or not.

    The larger of: the largest block's cheapest latency on a kind that can hold it
    (a block never splits), and the total of every block's cheapest latency spread
    evenly over all devices.  Communication only adds load, so both are valid.
    """
    blocks = contract(problem, absorb_free_leaves=False)
    available = [k for k, kind in enumerate(problem.kinds) if kind.count > 0]
    if not available or blocks.n_blocks == 0:
        return 0.0
    cheapest = []
    for b in range(blocks.n_blocks):
        options = [
            blocks.latency[k, b]
            for k in available
            if blocks.size[b] <= problem.kinds[k].memory_bytes
        ]
        cheapest.append(min(options, default=math.inf))
    devices = sum(problem.kinds[k].count for k in available)
    return max(max(cheapest), sum(cheapest) / devices)


def place(problem: Problem, solver: str, options: SolverOptions | None = None) -> PlacementResult:
    """Solve ``problem`` with the named solver and evaluate the answer.

    Raises
    ------
    InputError
        Unknown solver name.
    InfeasiblePlacement
        No placement fits.
    """
    solve = get_solver(solver)
    check_feasible(problem, contract(problem))
    solved = solve(problem, options or SolverOptions())
    return from_solve(problem, solved, trivial_lower_bound(problem))


def evaluate_plan(problem: Problem, plan_path: str | Path) -> PlacementResult:
    """Read a plan for ``problem`` and evaluate it."""
    placement = read_plan(plan_path, problem)
    return from_plan(problem, placement, trivial_lower_bound(problem))
