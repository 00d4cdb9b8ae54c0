"""Reading a placement back from the variables' values a backend left."""

from __future__ import annotations

import numpy as np

from placer.evaluator import evaluate
from placer.problem import Placement, Problem
from placer.solvers.milp.model import MilpModel


def valid_placement(problem: Problem, model: MilpModel, contiguous: bool):
    """``(placement, evaluation)`` of the variables' values, or None when they are not a
    valid placement (fractional values, a block left out, a broken constraint)."""
    placement = read_placement(problem, model)
    if placement is None:
        return None
    evaluation = evaluate(problem, placement, require_contiguous=contiguous)
    return (placement, evaluation) if evaluation.valid else None


def read_placement(problem: Problem, model: MilpModel) -> Placement | None:
    """The placement the solver's values describe (positions become devices in order),
    or None when some block is on no position."""
    blocks = model.blocks
    slot_of_block = [-1] * blocks.n_blocks
    kind_of_block = [-1] * blocks.n_blocks
    for key, var in model.assign.items():
        if (var.varValue or 0.0) > 0.5:
            slot_of_block[key[0]] = key[1]
            kind_of_block[key[0]] = key[2] if model.contiguous else problem.devices[key[1]].kind
    if min(slot_of_block, default=0) < 0:
        return None
    if model.contiguous:
        first = np.cumsum([0] + [kind.count for kind in problem.kinds])
        used = [0] * len(problem.kinds)
        device_of_slot: dict[tuple[int, int], int] = {}
        for t, k in sorted(set(zip(slot_of_block, kind_of_block, strict=True))):
            device_of_slot[t, k] = int(first[k]) + used[k]
            used[k] += 1
        device_of_block = [
            device_of_slot[t, k] for t, k in zip(slot_of_block, kind_of_block, strict=True)
        ]
    else:
        device_of_block = slot_of_block
    return Placement(tuple(int(device_of_block[b]) for b in blocks.block_of_op))
