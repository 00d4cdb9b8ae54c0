"""Moves of blocks out of a plan's bottleneck stage, scored by the evaluator.

Where links differ in speed, the neighbour DP (:mod:`placer.solvers.dp.neighbours`)
charges each stage at most its true load, so its value bounds the optimum, but the plan
it backtracks is one of the paths of least *charged* max-load, and where several tie
(the bottleneck is an earlier stage, so the later ones may vary) the one it keeps can
be a path whose charges fall short: its true max-load is then above the bound while
another path of the tie meets it.  On MobileNetV2 training over 2 A100 + 4 T4 + a CPU
the two differ by one residual ``Add`` on either side of a cut.

So, once the runs are over and the best plan does not meet the bound, the blocks at the
edge of its bottleneck stage are tried, one at a time, on the device of the stage across
each edge they share with it; the move that lowers the stages' loads most, sorted from
the highest, is kept, and the search repeats from the new plan until no move helps
(where several stages share the max-load, each is unloaded in turn).  Where no single
move helps, a pair is tried: a block out of the bottleneck, then one on out of the stage
that took it (work passing through a stage towards one with room).  This is the boundary refinement
of graph partitioning (Fiduccia & Mattheyses [1]_, in its greedy form), aimed at the
bottleneck.  Every candidate is a placement scored by the evaluator, which checks
contiguity, memory and support; the result claims nothing beyond its own max-load.

References
----------
.. [1] Fiduccia & Mattheyses (1982). A Linear-Time Heuristic for Improving Network
   Partitions. DAC.
"""

from __future__ import annotations

import numpy as np

from placer.evaluator import Evaluation, evaluate
from placer.problem import Placement, Problem
from placer.solvers.base import SolverOptions
from placer.solvers.blocks import BlockGraph

#: Moves kept at most (each lowers the sorted loads, see :func:`_lower`).
MAX_MOVES = 200
_TIE = 1e-12  # relative: stages within this of the max-load are bottlenecks too


def polish(problem: Problem, blocks: BlockGraph, placement: Placement,
           options: SolverOptions, target: float = 0.0) -> Placement | None:  # fmt: skip
    """A placement of lower max-load than ``placement``'s reached by moving blocks out of
    its bottleneck stages, or None where no move helps; stops at ``target`` (a proven
    bound: nothing lower exists) and at ``options``' deadline.

    A move is kept when it lowers the stages' loads sorted from the highest, compared
    in turn (:func:`_lower`): where several stages share the max-load, unloading one
    of them is progress although the max-load stays.  Where no single move helps, a
    block moved out of the bottleneck followed by one moved on out of the stage that
    took it is tried (work passing through a stage towards one with room)."""
    mover = _Mover(problem, blocks, options)
    evaluation = evaluate(problem, placement)
    if not evaluation.valid:
        return None
    device = np.asarray(placement.device_of_op, dtype=np.int64)
    found, lowest = None, evaluation.max_load
    for _ in range(MAX_MOVES):
        if evaluation.max_load <= target * (1 + 1e-9) or options.out_of_time():
            break
        step = mover.step(device, evaluation)
        if step is None:
            break
        device, kept, evaluation = step
        if evaluation.max_load < lowest * (1 - _TIE):
            found, lowest = kept, evaluation.max_load
    return found


class _Mover:
    """The moves of :func:`polish`, scored by the evaluator."""

    def __init__(self, problem: Problem, blocks: BlockGraph, options: SolverOptions) -> None:
        self.problem, self.blocks, self.options = problem, blocks, options
        self.first = np.array([ops[0] for ops in blocks.ops_of_block], dtype=np.int64)
        self.n_devices = len(problem.devices)

    def step(self, device: np.ndarray, evaluation: Evaluation):
        """``(device array, placement, evaluation)`` of the best single move out of a
        bottleneck stage that lowers the sorted loads, else of the best such pair;
        None where neither does."""
        now = _loads(evaluation, self.n_devices)
        top = evaluation.max_load * (1 - _TIE)
        sources = {stage.device for stage in evaluation.stages if stage.load >= top}
        singles = list(self.moved(device, sources))
        best = _least(singles)
        if best is None or not _lower(best[3], now):
            best = _least(second for moved, _, _, _, there in singles
                          for second in self.moved(moved, {there}))  # fmt: skip
        if best is not None and _lower(best[3], now):
            return best[:3]
        return None

    def moved(self, device: np.ndarray, sources: set[int]):
        """Each valid placement with one block of a stage of ``sources`` moved onto the
        device of a stage it shares an arc with: ``(device array, placement,
        evaluation, sorted loads, that device)``."""
        blocks = self.blocks
        block_device = device[self.first]
        seen: set[tuple[int, int]] = set()
        for u, v in blocks.edges:
            a, b = int(block_device[u]), int(block_device[v])
            if a == b:
                continue
            for block, here, there in ((int(u), a, b), (int(v), b, a)):
                if here not in sources or (block, there) in seen:
                    continue
                seen.add((block, there))
                if self.options.out_of_time():
                    return
                moved = device.copy()
                moved[list(blocks.ops_of_block[block])] = there
                candidate = Placement(tuple(int(d) for d in moved))
                scored = evaluate(self.problem, candidate)
                if scored.valid:
                    yield moved, candidate, scored, _loads(scored, self.n_devices), there


def _least(moves):
    """The move of least sorted loads (:func:`_lower`), the first of equals; None for
    none."""
    best = None
    for move in moves:
        if best is None or _lower(move[3], best[3]):
            best = move
    return best


def _loads(evaluation: Evaluation, n_devices: int) -> tuple[float, ...]:
    """The loads of the devices, highest first (0 for a device without a stage)."""
    loads = [stage.load for stage in evaluation.stages]
    return tuple(sorted(loads, reverse=True)) + (0.0,) * (n_devices - len(loads))


def _lower(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether the sorted loads ``a`` are below ``b``: at the first load where they
    differ by more than the tie tolerance, ``a``'s is the lower."""
    for x, y in zip(a, b, strict=True):
        if x < y * (1 - _TIE) - 1e-300:
            return True
        if x > y * (1 + _TIE) + 1e-300:
            return False
    return False
