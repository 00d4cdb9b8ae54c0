"""What every solver takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from placer.model import Placement


@dataclass(frozen=True)
class SolverOptions:
    """Options shared by the solvers; each solver reads the ones it knows."""

    max_ideals: int = 500_000
    max_pairs: int = 500_000_000
    time_limit: float | None = None


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
