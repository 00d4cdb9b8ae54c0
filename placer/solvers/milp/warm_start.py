"""The warm start: every variable's value under a given placement, handed to the
backend as its start."""

from __future__ import annotations

import numpy as np
import pulp

from placer.evaluator import Evaluation, evaluate
from placer.problem import Placement, Problem
from placer.solvers.milp.model import MilpModel


def set_warm_start(problem: Problem, model: MilpModel, placement: Placement) -> bool:
    """Give every variable its value under ``placement``; False if it does not fit."""
    homes = _device_of_block(problem, model, placement)
    if homes is None:
        return False
    evaluation, device_of_block = homes
    if model.contiguous:
        slot_of_block, kind_of_slot = _stage_positions(problem, evaluation, device_of_block)
    else:
        slot_of_block, kind_of_slot = _relabelled_devices(problem, device_of_block)
    values = _assignment_values(problem, model, slot_of_block, kind_of_slot)
    if values is None:
        return False  # a block's kind is not allowed in this model (memory, support)

    def value(expression) -> float:
        expression = pulp.LpAffineExpression(expression)
        return expression.constant + sum(values.get(v.name, 0.0) * c for v, c in expression.items())

    # communication variables last: they only cover expressions of the assignment
    for name, (_, floors) in model.floors.items():
        values[name] = max(0.0, *(value(e) for e in floors))
    loads = {t: value(expr) for t, expr in model.load.items()}
    values[model.max_load.name] = max(loads.values(), default=0.0)
    for var in model.prob.variables():
        var.setInitialValue(values.get(var.name, 0.0))
    return True


def _device_of_block(problem: Problem, model: MilpModel, placement: Placement):
    """``(evaluation, device of each block)`` of ``placement``, or None when it is not
    a valid placement for the model or splits a block."""
    n_devices = len(problem.devices)
    if len(placement.device_of_op) != len(problem.ops) or not all(
        0 <= d < n_devices for d in placement.device_of_op
    ):
        return None
    evaluation = evaluate(problem, placement, require_contiguous=model.contiguous)
    if not evaluation.valid:
        return None
    device_of_block = []
    for ops in model.blocks.ops_of_block:
        homes = {placement.device_of_op[i] for i in ops}
        if len(homes) != 1:
            return None
        device_of_block.append(homes.pop())
    return evaluation, device_of_block


def _stage_positions(problem: Problem, evaluation: Evaluation, device_of_block: list[int]):
    """The contiguous model's ``(slot of each block, kind of each slot)``: a stage's
    position in the pipeline."""
    devices = problem.devices
    position = {stage.device: t for t, stage in enumerate(evaluation.stages)}
    slot_of_block = [position[d] for d in device_of_block]
    kind_of_slot = {t: devices[s.device].kind for t, s in enumerate(evaluation.stages)}
    return slot_of_block, kind_of_slot


def _relabelled_devices(problem: Problem, device_of_block: list[int]):
    """The non-contiguous model's ``(slot of each block, kind of each slot)``: devices
    of each kind relabelled in order of their smallest block, as the model orders them."""
    devices = problem.devices
    relabel: dict[int, int] = {}
    first = {k: min(i for i, d in enumerate(devices) if d.kind == k)
             for k in {d.kind for d in devices}}  # fmt: skip
    used = dict.fromkeys(first, 0)
    for d in device_of_block:
        if d not in relabel:
            k = devices[d].kind
            relabel[d] = first[k] + used[k]
            used[k] += 1
    slot_of_block = [relabel[d] for d in device_of_block]
    kind_of_slot = {relabel[d]: devices[d].kind for d in relabel}
    return slot_of_block, kind_of_slot


def _assignment_values(problem: Problem, model: MilpModel, slot_of_block, kind_of_slot):
    """The values of the assignment, kind and prefix variables by name, or None when
    some block's kind has no variable in the model."""
    values: dict[str, float] = {}
    placed = np.zeros(model.blocks.n_blocks)
    for key, var in model.assign.items():
        b, t = key[0], key[1]
        k = key[2] if model.contiguous else problem.devices[t].kind
        values[var.name] = float(slot_of_block[b] == t and kind_of_slot.get(t) == k)
        placed[b] += values[var.name]
    if np.any(placed != 1):
        return None
    for (t, k), var in model.kind.items():
        values[var.name] = float(kind_of_slot.get(t) == k)
    for (b, t), var in model.prefix.items():
        values[var.name] = float(slot_of_block[b] <= t)
    return values
