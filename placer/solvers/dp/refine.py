"""A plan for graphs too wide for the exact DP: split by whole layers, then refined op by
op around the cuts.

An encoder-decoder's decoder reads the encoder's output in every layer, and the
projections of that output can run anywhere between the two: the ideals of its op DAG
number in the millions, and the exact DP gives up.  Its layers, though, form a short
chain.  So, where the model names its layers (:func:`placer.frontends.layers.layer_map`):

1. every layer's ops are kept on one device (one colour class, as ``--granularity
   layer`` does) and the DP solves that coarse problem, exactly and in a second;
2. the groups that the plan puts next to a cut (an edge between two of their ops
   crosses devices) are split one scope level further (``decoder.block.3`` into its
   ``layer.0``, ``layer.1``, ...; at the last level, into ops), the others stay whole,
   and the DP solves again, over a lattice that is wide only where the cuts are;
3. step 2 repeats from the best plan so far until the groups at its cuts are single
   ops, or time runs out.

Every plan is a placement of the original problem (colour classes only restrict it),
scored by the evaluator; none is claimed optimal.  The bound comes from elsewhere (the
bracket, the MILP).  This is the coarse-then-refine scheme of multilevel graph
partitioning [1]_, with layers as the coarse level.

References
----------
.. [1] Karypis & Kumar (1998). A Fast and High Quality Multilevel Scheme for
   Partitioning Irregular Graphs. SIAM J. Sci. Comput.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from placer.errors import InfeasiblePlacement, NoPlacementFound, SearchGaveUp
from placer.frontends.layers import colour_groups, layer_map
from placer.problem import Placement, Problem
from placer.solvers.base import SolveResult, SolverOptions

#: The share of the time left that the coarse split and its refinements may take, and
#: their seconds when the solve has no deadline.
TIME_SHARE = 0.4
NO_DEADLINE_SECONDS = 20.0
#: Ideals each round's DP may enumerate: a round whose lattice is wider ends the rounds.
ROUND_IDEALS = 50_000
#: Refinement rounds at most (each splits the groups next to the last plan's cuts one
#: scope level further).
MAX_ROUNDS = 8


def refined_plans(
    problem: Problem,
    options: SolverOptions,
    solve: Callable[[Problem, SolverOptions], SolveResult],
) -> list[Placement]:
    """The plans of the coarse split and of each refinement round, in order, by
    ``solve`` (a DP that does not refine in turn); empty when the model names fewer
    than two layers or the coarse problem has no placement."""
    scopes = _scopes(problem)
    if len({scope[:depth] for scope, depth in scopes if scope is not None}) < 2:
        return []
    left = options.seconds_left()
    budget = NO_DEADLINE_SECONDS if left is None else TIME_SHARE * left
    options = replace(options, deadline=time.monotonic() + budget,
                      max_ideals=min(options.max_ideals, ROUND_IDEALS))  # fmt: skip
    levels = [0] * len(problem.ops)  # scope parts below its layer each op is grouped by
    plans: list[Placement] = []
    best = None
    for _ in range(MAX_ROUNDS + 1):
        if options.out_of_time():
            break
        try:
            result = solve(_grouped(problem, scopes, levels), options)
        except (InfeasiblePlacement, NoPlacementFound, SearchGaveUp):
            break
        plans.append(result.placement)
        if result.gave_up is not None:
            break  # its lattice was too wide: finer groups would only be wider
        if best is None or result.objective < best[0]:
            best = (result.objective, result.placement)
        keys = _keys(scopes, levels)
        cut = _cut_groups(problem, keys, best[1])
        finer = [
            level + 1 if keys[u] in cut and scopes[u][0] is not None else level
            for u, level in enumerate(levels)
        ]
        if _keys(scopes, finer) == keys:
            break  # the groups at the cuts are single ops already
        levels = finer
    return plans


def _scopes(problem: Problem) -> list[tuple[tuple[str, ...] | None, int]]:
    """Each op's scope as parts, and how many of them name its layer (its first scope
    that has one); ``(None, 0)`` for an op of no layer."""
    layers = layer_map(scope for op in problem.ops for scope in op.scopes)
    found: list[tuple[tuple[str, ...] | None, int]] = []
    for op in problem.ops:
        named = ((scope, layers.get(scope)) for scope in op.scopes)
        scope, layer = next(((s, layer) for s, layer in named if layer is not None), ("", None))
        if layer is None:
            found.append((None, 0))
        else:
            found.append((tuple(scope.split(".")), len(layer.name.split("."))))
    return found


def _keys(scopes, levels: list[int]) -> list[object]:
    """Each op's group: its scope cut ``levels[u]`` parts below its layer; the op alone
    once the level runs past its scope, or when it has no layer."""
    keys: list[object] = []
    for u, ((scope, depth), level) in enumerate(zip(scopes, levels, strict=True)):
        if scope is None or depth + level > len(scope):
            keys.append(u)
        else:
            keys.append(scope[: depth + level])
    return keys


def _grouped(problem: Problem, scopes, levels: list[int]) -> Problem:
    """``problem`` with the ops of each group (:func:`_keys`) in one colour class."""
    return colour_groups(problem, [(key,) for key in _keys(scopes, levels)])[0]


def _cut_groups(problem: Problem, keys: list[object], plan: Placement) -> set[object]:
    """The groups with an op at either end of an edge that ``plan`` cuts."""
    device = plan.device_of_op
    cut: set[object] = set()
    for u, v in problem.edges:
        if device[u] != device[v]:
            cut.update((keys[u], keys[v]))
    return cut
