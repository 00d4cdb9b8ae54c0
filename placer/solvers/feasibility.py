"""Checks that name what makes a problem infeasible, before and after solving."""

from __future__ import annotations

import math

from placer.errors import InfeasiblePlacement, OverTotalMemory
from placer.problem import Problem
from placer.solvers.blocks import BlockGraph
from placer.util.units import format_bytes, format_bytes_apart


def _unit(problem: Problem, blocks: BlockGraph, b: int) -> str:
    """Block ``b`` named, with its size and what part of it it shares."""
    size, own = blocks.unit_size[b], blocks.size[b]
    shared = f", {format_bytes(size - own)} of it shared with other ops" if size > own else ""
    return f"{_describe_block(problem, blocks, b)} ({format_bytes(size)}{shared})"


def _describe_block(problem: Problem, blocks: BlockGraph, b: int) -> str:
    ops = blocks.ops_of_block[b]
    first = problem.ops[ops[0]]
    label = f"op {first.key}" if str(first.key) == first.name else f"op {first.key} ({first.name})"
    others = len(ops) - 1
    if others == 1:
        label += " and the op that must share its device"
    elif others > 1:
        label += f" and the {others} ops that must share its device"
    return label


def check_feasible(problem: Problem, blocks: BlockGraph) -> None:
    """Raise :class:`InfeasiblePlacement` if some block fits on no available device.

    Raises
    ------
    InfeasiblePlacement
        There are no devices, or a block is unsupported or too large on every kind that
        has devices.
    """
    available = [k for k, kind in enumerate(problem.kinds) if kind.count > 0]
    if blocks.n_blocks and not available:
        names = ", ".join(f"{kind.name}: 0" for kind in problem.kinds)
        raise InfeasiblePlacement(f"no devices to place on ({names})")
    for b in range(blocks.n_blocks):
        if any(blocks.fits(problem, b, k) for k in available):
            continue
        reasons = []
        for k in available:
            kind = problem.kinds[k]
            if not math.isfinite(blocks.latency[k, b]):
                # an infinite latency marks an unsupported op; say so only when it is one
                supported = all(problem.ops[i].supported[k] for i in blocks.ops_of_block[b])
                reasons.append(
                    f"takes longer on {kind.name} than a float holds"
                    if supported
                    else f"is not supported on {kind.name}"
                )
            else:
                reasons.append(_too_large(problem, k, blocks.unit_size[b]))
        absent = [kind.name for kind in problem.kinds if kind.count == 0]
        tail = f" and there is no {' or '.join(absent)}" if absent else ""
        raise InfeasiblePlacement(
            f"{_describe_block(problem, blocks, b)} {' and '.join(reasons)}{tail}"
        )


def _too_large(problem: Problem, k: int, size: float) -> str:
    """Why a unit of ``size`` bytes fits no device of kind ``k``."""
    kind = problem.kinds[k]
    reserved = problem.reserved_bytes
    if reserved and kind.memory_bytes < 0:
        whole, live = format_bytes_apart(problem.capacity(k), reserved)
        return (f"does not fit {kind.name}, whose {whole} cannot hold the {live} of "
                "activations live at once")  # fmt: skip
    need, cap = format_bytes_apart(size, kind.memory_bytes)
    if reserved:
        live = format_bytes(reserved)
        return (f"needs {need}, more than the {cap} {kind.name} has beside {live} of "
                "live activations")  # fmt: skip
    return f"needs {need}, more than {kind.name}'s {cap}"


def explain_infeasible(problem: Problem, blocks: BlockGraph) -> InfeasiblePlacement:
    """The error for a problem where every block fits somewhere but no placement does."""
    capped = [k for k, kind in enumerate(problem.kinds) if kind.count > 0]
    if all(math.isfinite(problem.kinds[k].memory_bytes) for k in capped):
        room = sum(problem.kinds[k].count * problem.kinds[k].memory_bytes for k in capped)
        need = float(blocks.size.sum() + blocks.cover_size.sum())
        if need > room:
            need_text, room_text = format_bytes_apart(need, room)
            beside = ""
            if problem.reserved_bytes:
                beside = f" beside {format_bytes(problem.reserved_bytes)} each of live activations"
            return OverTotalMemory(
                f"the ops need {need_text} but all devices together hold {room_text}{beside}"
            )
    biggest = int(blocks.unit_size.argmax())
    return InfeasiblePlacement(
        "no contiguous placement fits the devices' memory; the largest unit that must stay "
        f"whole is {_unit(problem, blocks, biggest)}"
    )
