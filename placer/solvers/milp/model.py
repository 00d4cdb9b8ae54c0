"""The MILP as built: the PuLP problem with the variables that read a placement back
(:class:`MilpModel`), and the grid of slots its rows range over (:class:`Grid`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pulp

from placer.solvers.base import OutOfTime
from placer.solvers.blocks import BlockGraph


@dataclass
class MilpModel:
    """A built PuLP model and the variables needed to read a placement back.

    ``assign[(b, t, k)]`` (contiguous) or ``assign[(b, d)]`` (non-contiguous) are the
    block variables; ``kind[(t, k)]`` the kinds of positions (contiguous only).
    """

    prob: pulp.LpProblem
    blocks: BlockGraph
    contiguous: bool
    max_load: pulp.LpVariable
    assign: dict[tuple[int, ...], pulp.LpVariable]
    kind: dict[tuple[int, int], pulp.LpVariable] = field(default_factory=dict)
    prefix: dict[tuple[int, int], pulp.LpVariable] = field(default_factory=dict)
    #: Time units per unit of the model's times (a power of two, 1 for ordinary
    #: models): the model's max-load, objective and bounds times this are the problem's.
    time_scale: float = 1.0
    #: Communication variables, each with the expressions it must cover (``v >= e``):
    #: at a placement its least feasible value is the largest of them, or 0.
    floors: dict[str, tuple[pulp.LpVariable, list]] = field(default_factory=dict)
    load: dict[int, pulp.LpAffineExpression] = field(default_factory=dict)

    def at_least(self, name: str, expression, constraint: str) -> pulp.LpVariable:
        """The non-negative variable ``name`` (made on first use), held ``>= expression``."""
        if name not in self.floors:
            self.floors[name] = (self.prob.add_variable(name, lowBound=0), [])
        var, exprs = self.floors[name]
        exprs.append(expression)
        self.prob += var >= expression, constraint
        return var


@dataclass(frozen=True)
class Grid:
    """The slots blocks are placed on (one per device: pipeline positions, or the
    devices themselves), the kinds each slot may take, and the variables that place
    blocks there; every row of the model ranges over it."""

    model: MilpModel
    slots: range
    slot_kinds: dict[int, list[int]]
    clock: Clock

    def on(self, b: int, t: int, k: int) -> pulp.LpVariable | None:
        """The variable putting block b on slot t as kind k (None if not allowed)."""
        return self.model.assign.get((b, t, k) if self.model.contiguous else (b, t))


class Clock:
    """Checks a deadline now and then (every call costs a ``time.monotonic()``)."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def check(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise OutOfTime
