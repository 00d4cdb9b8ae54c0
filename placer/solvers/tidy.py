"""Tidying a plan: a CPU stage that does not speed the pipeline up is folded into an
accelerator stage beside it, or else moved onto an accelerator that holds no stage.

Ties are common: when one op bounds the max-load (a language model's head), many plans
reach it, and a solver keeps whichever it met first, which may hold a CPU stage that
gains nothing.  A practitioner reads a host CPU in a GPU pipeline as a mistake, and it
costs host transfers that a real run pays more dearly than the model says.  Two
consecutive stages of a pipeline merged stay a pipeline (no path can leave the pair and
come back), so moving a CPU stage's ops onto a neighbouring accelerator stage gives a
contiguous plan; it is kept when the one evaluator says it is valid and its max-load is
no higher: the same throughput on fewer devices.  A stage moved whole onto an idle
accelerator keeps its place in the pipeline, so that plan is contiguous too.
"""

from __future__ import annotations

from dataclasses import replace

from placer.evaluator import Evaluation, evaluate
from placer.problem import DeviceClass, Placement, Problem
from placer.solvers.base import SolveResult, relative_gap


def fold_cpu_stages(problem: Problem, solved: SolveResult) -> SolveResult:
    """``solved`` with each CPU stage whose ops an accelerator stage beside it can take
    without raising the max-load folded into that stage (the one that ends with the
    least max-load, then the least load), or else moved whole onto an accelerator that
    holds no stage; unchanged when there is neither.  O(ops + edges + devices²) per CPU
    stage and move."""
    current = evaluate(problem, solved.placement)
    if not current.valid or not current.contiguous:
        return solved
    placement, folded = solved.placement, []
    while (found := _fold_one(problem, placement, current)
           or _move_one(problem, placement, current)) is not None:  # fmt: skip
        placement, current, note = found
        folded.append(note)
    if not folded:
        return solved
    return replace(
        solved,
        placement=placement,
        objective=current.max_load,
        gap=relative_gap(current.max_load, solved.lower_bound),
        notes=(*solved.notes, *folded),
    )


def cpu_stage_moves(problem: Problem, placement: Placement, current: Evaluation):
    """For each CPU stage of the contiguous plan ``current`` scores, in pipeline order:
    ``(position, moves)``, ``moves`` a ``(target, placement, evaluation)`` for each
    accelerator stage beside it, the stage's ops moved onto that stage's device and the
    result scored by the evaluator.  Lazy: each stage's moves are made when reached."""
    devices, kinds = problem.devices, problem.kinds
    stages = current.stages

    def device_class(position: int) -> DeviceClass:
        return kinds[devices[stages[position].device].kind].device_class

    for position, stage in enumerate(stages):
        if device_class(position) is not DeviceClass.CPU:
            continue
        moves = []
        for other in (position - 1, position + 1):
            if not 0 <= other < len(stages) or device_class(other) is not DeviceClass.ACCELERATOR:
                continue
            target = stages[other].device
            moved = list(placement.device_of_op)
            for op in stage.ops:
                moved[op] = target
            candidate = Placement(tuple(moved))
            moves.append((target, candidate, evaluate(problem, candidate)))
        yield position, moves


def _fold_one(problem: Problem, placement: Placement, current: Evaluation):
    """The first CPU stage of ``current`` that folds: ``(placement, evaluation, note)``,
    or None."""
    devices = problem.devices
    for position, moves in cpu_stage_moves(problem, placement, current):
        options = [
            (score.max_load, next(s.load for s in score.stages if s.device == target), target,
             candidate, score)
            for target, candidate, score in moves
            if score.valid and score.contiguous and score.max_load <= current.max_load
        ]  # fmt: skip
        if options:
            _, _, target, candidate, score = min(options, key=lambda option: option[:3])
            cpu = devices[current.stages[position].device].name
            note = (f"{cpu}'s stage folded into {devices[target].name}'s: the same max-load "
                    "without a CPU stage")  # fmt: skip
            return candidate, score, note
    return None


def _move_one(problem: Problem, placement: Placement, current: Evaluation):
    """The first CPU stage of ``current`` that an idle accelerator takes whole without
    raising the max-load (the kind that ends with the least max-load): ``(placement,
    evaluation, note)``, or None.  The stage keeps its place in the pipeline: only its
    device changes, so the plan stays contiguous (audit: Qwen2 on two A100s and four
    T4s put six ops of a layer on the host CPU between two T4 stages, with a T4 idle
    that ran them at the same max-load)."""
    devices, kinds = problem.devices, problem.kinds
    used = {stage.device for stage in current.stages}
    idle: dict[int, int] = {}  # one device of each kind: devices of a kind are alike
    for d, device in enumerate(devices):
        if d not in used and kinds[device.kind].device_class is DeviceClass.ACCELERATOR:
            idle.setdefault(device.kind, d)
    if not idle:
        return None
    for stage in current.stages:
        if kinds[devices[stage.device].kind].device_class is not DeviceClass.CPU:
            continue
        options = []
        for target in idle.values():
            moved = list(placement.device_of_op)
            for op in stage.ops:
                moved[op] = target
            candidate = Placement(tuple(moved))
            score = evaluate(problem, candidate)
            if score.valid and score.contiguous and score.max_load <= current.max_load:
                options.append((score.max_load, target, candidate, score))
        if options:
            _, target, candidate, score = min(options, key=lambda option: option[:2])
            note = (f"{devices[stage.device].name}'s stage moved onto {devices[target].name}, "
                    "which held none: the same max-load without a CPU stage")  # fmt: skip
            return candidate, score, note
    return None
