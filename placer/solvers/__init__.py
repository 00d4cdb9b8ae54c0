"""Solvers, by name.  Each maps a :class:`~placer.problem.Problem` to a SolveResult."""

from __future__ import annotations

from collections.abc import Callable

from placer.errors import InputError
from placer.problem import Problem
from placer.solvers.base import SolveResult, SolverOptions

Solver = Callable[[Problem, SolverOptions], SolveResult]


def _dp(problem: Problem, options: SolverOptions) -> SolveResult:
    from placer.solvers.dp.search import solve_dp

    return solve_dp(problem, options)


def _milp(problem: Problem, options: SolverOptions) -> SolveResult:
    from placer.solvers.milp.solve import solve_milp

    return solve_milp(problem, options)


def _auto(problem: Problem, options: SolverOptions) -> SolveResult:
    from placer.solvers.auto import solve_auto

    return solve_auto(problem, options)


def _baseline(name: str) -> Solver:
    """A baseline of :mod:`placer.solvers.baselines`, imported when first called."""

    def solve(problem: Problem, options: SolverOptions) -> SolveResult:
        from placer.solvers import baselines

        return getattr(baselines, f"solve_{name}")(problem, options)

    solve.__name__ = f"_{name}"
    return solve


#: Baselines (how pipelines are commonly split), compared against the optimum.
BASELINES = ("pipedream", "uniform", "params", "greedy", "single")

#: Registry of solver names; values import their module lazily (numba, PuLP are slow to load).
SOLVERS: dict[str, Solver] = {
    "dp": _dp,
    "milp": _milp,
    "auto": _auto,
    **{name: _baseline(name) for name in BASELINES},
}


def get_solver(name: str) -> Solver:
    """The solver called ``name``.

    Raises
    ------
    InputError
        ``name`` is not a known solver; the message lists the valid ones.
    """
    try:
        return SOLVERS[name]
    except KeyError:
        raise InputError(
            f"unknown solver {name!r}; choose one of: {', '.join(sorted(SOLVERS))}"
        ) from None


__all__ = ["BASELINES", "SOLVERS", "SolveResult", "Solver", "SolverOptions", "get_solver"]
