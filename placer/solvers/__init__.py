"""Solvers, by name.  Each maps a :class:`~placer.model.Problem` to a SolveResult."""

from __future__ import annotations

from collections.abc import Callable

from placer.errors import InputError
from placer.model import Problem
from placer.solvers.base import SolveResult, SolverOptions

Solver = Callable[[Problem, SolverOptions], SolveResult]


def _dp(problem: Problem, options: SolverOptions) -> SolveResult:
    from placer.solvers.dp import solve_dp

    return solve_dp(problem, options)


def _milp(problem: Problem, options: SolverOptions) -> SolveResult:
    from placer.solvers.milp import solve_milp

    return solve_milp(problem, options)


def _auto(problem: Problem, options: SolverOptions) -> SolveResult:
    from placer.solvers.auto import solve_auto

    return solve_auto(problem, options)


#: Registry of solver names; values import their module lazily (numba, PuLP are slow to load).
SOLVERS: dict[str, Solver] = {"dp": _dp, "milp": _milp, "auto": _auto}


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


__all__ = ["SOLVERS", "SolveResult", "Solver", "SolverOptions", "get_solver"]
