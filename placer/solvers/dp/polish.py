"""Moves of single blocks out of a plan's bottleneck stage, scored by the evaluator.

Where links differ in speed, the neighbour DP (:mod:`placer.solvers.dp.neighbours`)
charges each stage at most its true load, so its value bounds the optimum, but the plan
it backtracks is one of the paths of least *charged* max-load, and where several tie
(the bottleneck is an earlier stage, so the later ones may vary) the one it keeps can
be a path whose charges fall short: its true max-load is then above the bound while
another path of the tie meets it.  On MobileNetV2 training over 2 A100 + 4 T4 + a CPU
the two differ by one residual ``Add`` on either side of a cut.

So, once the runs are over and the best plan does not meet the bound, the blocks at the
edge of its bottleneck stage are tried, one at a time, on the device of the stage across
each edge they share with it; the move that lowers the max-load most is kept, and the
search repeats from the new plan until no move helps.  This is the boundary refinement
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

#: Moves kept at most (each lowers the max-load).
MAX_MOVES = 64
_TIE = 1e-12  # relative: stages within this of the max-load are bottlenecks too


def polish(problem: Problem, blocks: BlockGraph, placement: Placement,
           options: SolverOptions, target: float = 0.0) -> Placement | None:  # fmt: skip
    """A placement of lower max-load than ``placement``'s reached by moving blocks out of
    its bottleneck stages one at a time, or None where no move helps; stops at
    ``target`` (a proven bound: nothing lower exists) and at ``options``' deadline."""
    device = np.asarray(placement.device_of_op, dtype=np.int64)
    first = np.array([ops[0] for ops in blocks.ops_of_block], dtype=np.int64)
    evaluation = evaluate(problem, placement)
    if not evaluation.valid:
        return None
    improved = None
    for _ in range(MAX_MOVES):
        if evaluation.max_load <= target * (1 + 1e-9) or options.out_of_time():
            break
        best: tuple[float, Placement, Evaluation] | None = None
        for block, there in _moves(blocks, device[first], evaluation):
            if options.out_of_time():
                break
            moved = device.copy()
            moved[list(blocks.ops_of_block[block])] = there
            candidate = Placement(tuple(int(d) for d in moved))
            scored = evaluate(problem, candidate)
            if scored.valid and (best is None or scored.max_load < best[0]):
                best = (scored.max_load, candidate, scored)
        if best is None or best[0] >= evaluation.max_load * (1 - _TIE):
            break
        _, improved, evaluation = best
        device = np.asarray(improved.device_of_op, dtype=np.int64)
    return improved


def _moves(blocks: BlockGraph, block_device: np.ndarray, evaluation: Evaluation):
    """``(block, device)``: each block of a bottleneck stage with an arc to another
    stage, and that stage's device."""
    top = evaluation.max_load * (1 - _TIE)
    bottlenecks = {stage.device for stage in evaluation.stages if stage.load >= top}
    seen: set[tuple[int, int]] = set()
    for u, v in blocks.edges:
        a, b = int(block_device[u]), int(block_device[v])
        if a == b:
            continue
        for block, here, there in ((int(u), a, b), (int(v), b, a)):
            if here in bottlenecks and (block, there) not in seen:
                seen.add((block, there))
                yield block, there
