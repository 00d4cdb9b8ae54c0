"""What every solver takes and returns."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from placer.problem import Placement, Problem

if TYPE_CHECKING:
    from collections.abc import Iterable

    from placer.solvers.blocks import BlockGraph


class MipBackend(str, Enum):
    """The MILP solver PuLP drives."""

    HIGHS = "highs"
    CBC = "cbc"


#: ``progress(elapsed_seconds, incumbent, bound)``; incumbent and bound may be unknown.
ProgressCallback = Callable[[float, "float | None", "float | None"], None]


class OutOfTime(Exception):
    """The deadline passed while a solver was preparing its work (a MILP being built,
    a bracket's charges): internal to the solvers, which answer without that work."""


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


#: What a command keeps of its ``--time-limit`` for the work after the solve (the
#: bounds' check, the evaluation, writing the plan): this share of it, at most
#: :data:`MAX_RESERVE_SECONDS`.
RESERVE_SHARE = 0.05
MAX_RESERVE_SECONDS = 2.0


def command_deadline(started: float, time_limit: float | None) -> float | None:
    """The solve's deadline (``time.monotonic()``) for a command that started at
    ``started`` with ``--time-limit``: the limit counts from the command's start, model
    loading included, less a reserve for what follows the solve; None without a limit.

    >>> command_deadline(100.0, 30.0), command_deadline(100.0, 60.0), command_deadline(0.0, None)
    (128.5, 158.0, None)
    """
    if time_limit is None:
        return None
    return started + time_limit - min(MAX_RESERVE_SECONDS, RESERVE_SHARE * time_limit)


class BoundSource(str, Enum):
    """Where a :class:`SolveResult`'s ``lower_bound`` comes from."""

    #: the exact DP's optimum, its own bound
    DP_EXACT = "dp exact"
    #: the DP's bracket over the ideals (:mod:`placer.solvers.dp.bracket`)
    DP_BRACKET = "dp bracket"
    #: the DP's runs under the fastest links (:mod:`placer.solvers.dp.costing`)
    DP_LINKS = "dp links"
    #: the exact DP over the splits within a bound below the plan (it found none)
    DP_PRUNED = "dp pruned"
    #: the DP on the graph without its widest blocks (:mod:`placer.solvers.dp.relax`)
    DP_RELAXED = "dp relaxed"
    #: the MILP's dual bound, which starts from its LP relaxation
    MILP_DUAL = "milp dual"


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
    #: Whether the DP split the graph by its bracket (:mod:`placer.solvers.dp.bracket`)
    #: because the exact DP's pairs were too many: ``lower_bound`` is the bracket's.
    bracketed: bool = False
    #: Where ``lower_bound`` comes from (the MILP's even when it proved none).
    bound_source: BoundSource | None = None
    #: The limit the exact DP met before it finished, in words ("more than 500,000
    #: ideals"); None when it did not give up.
    gave_up: str | None = None

    @property
    def bound_at_least_relaxation(self) -> bool:
        """Whether the solver's bound is already at least the LP relaxation's, so that
        solving the relaxation again cannot improve it: the MILP's dual bound starts
        from it, and the DP's brackets bound a tighter model."""
        if self.bound_source is BoundSource.MILP_DUAL:
            return True
        return self.bound_source is not None and self.lower_bound is not None


def relative_gap(objective: float, bound: float | None) -> float | None:
    """``(objective - bound) / objective``: how far above a proven bound a plan may be
    (None without a bound; 0 for a zero objective)."""
    if bound is None:
        return None
    return (objective - bound) / objective if objective > 0 else 0.0


def placement_of_stages(
    problem: Problem, blocks: BlockGraph, stages: Iterable[tuple[int, np.ndarray]]
) -> Placement:
    """The placement of ``stages``, ``(kind, blocks)`` in pipeline order: each stage on
    the next unused device of its kind, devices numbered kind by kind as in
    :attr:`placer.problem.Problem.devices`."""
    first_device = np.cumsum([0] + [kind.count for kind in problem.kinds])
    used = [0] * len(problem.kinds)
    device_of_block = np.empty(blocks.n_blocks, dtype=np.int64)
    for k, members in stages:
        device_of_block[members] = first_device[k] + used[k]
        used[k] += 1
    return Placement(tuple(device_of_block[blocks.block_of_op].tolist()))
