"""Why a plan looks the way it does: what the evaluator says it would cost without a
CPU stage, and why devices are left unused.

A host CPU is far slower than an accelerator, so a CPU stage surprises; it pays when the
ops it holds would make a neighbouring accelerator stage the new bottleneck. For each
CPU stage of a contiguous plan, :func:`cpu_stages` moves its ops onto the neighbouring
accelerator stage that suffers least and scores the result with the one evaluator.
Devices left unused surprise too; when the bottleneck holds a single op, no split can
lower the max-load, and :func:`explanations` says so.  Both go to the table and to the
plan's ``explanations``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from placer.solvers.tidy import cpu_stage_moves
from placer.util.units import format_bytes

if TYPE_CHECKING:
    from placer.outputs.result import PlacementResult

__all__ = ["CpuStage", "cpu_stages", "explanations", "time_scale"]


def time_scale(unit: str) -> tuple[float, str]:
    """How times in ``unit`` are shown: seconds as milliseconds; other units as they are."""
    return (1e3, "ms") if unit == "s" else (1.0, unit)


def explanations(result: PlacementResult) -> list[str]:
    """One line per CPU stage (what the plan would cost with its ops on the neighbouring
    accelerator stage), and one when devices are left unused because the bottleneck
    holds a single op; times in the unit :func:`time_scale` shows."""
    scale, unit = time_scale(result.problem.time_unit)
    unit = f" {unit}" if unit else ""

    def t(value: float) -> str:
        return f"{value * scale:.4g}{unit}"

    lines = []
    for stage in cpu_stages(result):
        head = f"{stage.device} holds {stage.holds} ({t(stage.load)})"
        onto = f"onto {stage.neighbour}'s stage"
        they = "it" if stage.holds == "1 op" else "they"
        if not stage.fits:
            need, cap = format_bytes(stage.memory_bytes), format_bytes(stage.memory_cap_bytes)
            why = f"moved {onto} {they} would not fit ({need}, over its {cap})"
        elif stage.moved_max_load > stage.max_load:
            why = (f"moved {onto} {they} would raise the max-load from {t(stage.max_load)} "
                   f"to {t(stage.moved_max_load)}")  # fmt: skip
        else:
            why = (f"moved {onto} the max-load would be {t(stage.moved_max_load)}, no higher: "
                   "this CPU stage does not speed the pipeline up")  # fmt: skip
        lines.append(f"{head}: {why}")
    if unused := _single_op_bottleneck(result):
        lines.append(unused)
    return lines


def _single_op_bottleneck(result: PlacementResult) -> str:
    """Why devices are left unused when the bottleneck holds one op (with its backward
    op in training): no split divides it.  "" otherwise."""
    problem, evaluation = result.problem, result.evaluation
    bottleneck = evaluation.bottleneck
    unused = problem.total_devices - len(evaluation.stages)
    if bottleneck is None or unused <= 0:
        return ""
    ops = bottleneck.ops
    if len({problem.ops[i].color for i in ops}) != 1:
        return ""
    position = evaluation.stages.index(bottleneck)
    layers = result.stage_layers[position][1] if result.stage_layers is not None else ""
    name = problem.ops[next(i for i in ops if not problem.ops[i].backward)].name
    what = f"{name} ({layers})" if layers and layers != name else name
    device = problem.devices[bottleneck.device].name
    used = len(evaluation.stages)
    # (not "k of n unused": a tiny model's problem counts no more devices of a kind than
    # it has ops, fewer than the cluster has)
    return (f"only {used} device{'' if used == 1 else 's'} hold{'s' if used == 1 else ''} a "
            f"stage: the bottleneck {device} holds a single op, {what}, that no split "
            "divides, so more stages cannot lower the max-load")  # fmt: skip


@dataclass(frozen=True)
class CpuStage:
    """A CPU stage of a plan and what moving its ops onto an accelerator stage would do.

    Parameters
    ----------
    device : str
        The CPU device (``cpu:0``).
    holds : str
        What it holds: its layer range, else its number of ops.
    load : float
        Its load (time unit of the problem).
    neighbour : str
        The neighbouring accelerator stage's device the ops were moved onto.
    max_load : float
        The plan's max-load.
    moved_max_load : float
        The max-load with the CPU stage's ops on ``neighbour`` instead.
    memory_bytes, memory_cap_bytes : float
        What ``neighbour`` would then hold, and its capacity; the move is possible only
        when the first is within the second.
    """

    device: str
    holds: str
    load: float
    neighbour: str
    max_load: float
    moved_max_load: float
    memory_bytes: float
    memory_cap_bytes: float

    @property
    def fits(self) -> bool:
        """Whether ``neighbour`` could hold the ops as well."""
        return self.memory_bytes <= self.memory_cap_bytes


def cpu_stages(result: PlacementResult) -> tuple[CpuStage, ...]:
    """Each CPU stage of a contiguous plan with an accelerator stage beside it, and the
    max-load if its ops moved onto that stage (the neighbour that gives the least
    max-load among those that can hold them, else among all).

    Merging two consecutive stages of a pipeline keeps it a pipeline (no path can leave
    and re-enter the pair), so the moved plan is a valid contiguous plan but for memory.

    Notes
    -----
    Two evaluations per CPU stage: O(ops + edges + devices²) each.
    """
    problem, evaluation = result.problem, result.evaluation
    if not evaluation.contiguous:
        return ()
    devices = problem.devices
    texts = result.stage_layers
    found = []
    for position, moves in cpu_stage_moves(problem, result.placement, evaluation):
        if not moves:
            continue
        options = []
        for target, _, score in moves:
            held = next(s for s in score.stages if s.device == target)
            cap = problem.capacity(devices[target].kind)
            options.append((held.memory_bytes > cap, score.max_load, target, held.memory_bytes))
        moved_max_load, target, memory = min(options)[1:]
        stage = evaluation.stages[position]
        layers = texts[position][1] if texts is not None else ""
        count = len(stage.ops)
        found.append(
            CpuStage(
                device=devices[stage.device].name,
                holds=layers or f"{count} op{'' if count == 1 else 's'}",
                load=stage.load,
                neighbour=devices[target].name,
                max_load=evaluation.max_load,
                moved_max_load=moved_max_load,
                memory_bytes=memory,
                memory_cap_bytes=problem.capacity(devices[target].kind),
            )
        )
    return tuple(found)
