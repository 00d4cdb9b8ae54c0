"""What every solver takes and returns."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from placer.model import Placement


class MipBackend(str, Enum):
    """The MILP solver PuLP drives."""

    HIGHS = "highs"
    CBC = "cbc"


#: ``progress(elapsed_seconds, incumbent, bound)``; incumbent and bound may be unknown.
ProgressCallback = Callable[[float, "float | None", "float | None"], None]


@dataclass(frozen=True)
class SolverOptions:
    """Options shared by the solvers; each solver reads the ones it knows."""

    max_ideals: int = 500_000
    max_pairs: int = 500_000_000
    time_limit: float | None = None
    #: MILP: the backend, relative gap to stop at, threads (None: the backend's default).
    mip_solver: MipBackend = MipBackend.HIGHS
    mip_gap: float | None = None
    threads: int | None = None
    #: Whether placements must be contiguous (the DP's model); False lets a device hold
    #: any set of ops (MILP only).
    contiguous: bool = True
    #: A placement to start the MILP from (ignored if it is invalid).
    warm_start: Placement | None = None
    #: A proven lower bound on the optimum of the model solved (the DP's bracket, for
    #: the contiguous model): the MILP starts its search from it.
    lower_bound: float | None = None
    #: DP: a certified gap at which the bracket's plan is answer enough when the exact
    #: DP would take long (``auto`` sets it; None: always try the exact DP).
    accept_gap: float | None = None
    #: Called now and then while the MILP solves, if the backend reports progress.
    progress: ProgressCallback | None = None
    #: ``time.monotonic()`` by which the whole solve must be over, model building and
    #: bounds included (``--time-limit`` counted from when solving starts); None: no
    #: deadline beyond ``time_limit`` for the MILP backend.
    deadline: float | None = None

    def seconds_left(self) -> float | None:
        """Seconds until :attr:`deadline` (never negative), or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def out_of_time(self) -> bool:
        """Whether the deadline has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline


@dataclass(frozen=True)
class SolveResult:
    """A solver's answer.

    ``objective`` is the max-load of ``placement`` as the evaluator computes it;
    ``optimal`` is True only when the solver proved it optimal for its model
    (contiguous placements for the DP).  ``stats`` holds figures for reports
    (blocks, ideals, pairs).
    """

    solver: str
    placement: Placement
    objective: float
    optimal: bool
    seconds: float
    stats: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: A proven lower bound on the optimum of the solver's model, and the relative gap
    #: ``(objective - lower_bound) / objective``; None when the solver has none.
    lower_bound: float | None = None
    gap: float | None = None
    #: Whether the DP split the graph by its bracket (:mod:`placer.solvers.dp_bracket`)
    #: because the exact DP's pairs were too many: ``lower_bound`` is the bracket's.
    bracketed: bool = False


def relative_gap(objective: float, bound: float | None) -> float | None:
    """``(objective - bound) / objective``: how far above a proven bound a plan may be
    (None without a bound; 0 for a zero objective)."""
    if bound is None:
        return None
    return (objective - bound) / objective if objective > 0 else 0.0
