"""Building the MILP of a problem over its blocks: the assignment variables, the rows
that put every block on one slot within memory, and the max-load objective over the
slots' loads; the ordering rows (:mod:`placer.solvers.milp.order`) and the charges
(:mod:`placer.solvers.milp.charges`) go in through it."""

from __future__ import annotations

import math

import pulp

from placer.problem import Problem
from placer.solvers.blocks import BlockGraph
from placer.solvers.milp.charges import cover_charges, hyperedge_charges, link_charges
from placer.solvers.milp.model import Clock, Grid, MilpModel
from placer.solvers.milp.order import contiguity_rows, order_identical_devices
from placer.solvers.milp.scaling import scale_blocks

#: Most terms (variable appearances in the objective and rows) placer builds a MILP
#: with: about 1 GiB of PuLP objects.  Larger models are refused before building.
MAX_MILP_TERMS = 4_000_000


def estimated_terms(problem: Problem, blocks: BlockGraph, contiguous: bool) -> int:
    """About how many terms :func:`build_model` writes: assignment, prefix and
    transfer rows, each a handful of terms per variable.  With links of different
    speeds, each sender's row per receiver and kind also sums where the receiver runs
    over every slot: a term per slot, per slot."""
    slots = _slot_count(problem, blocks) if contiguous else len(problem.devices)
    kinds = sum(1 for kind in problem.kinds if kind.count > 0)
    pins = sum(len(h) for h in blocks.hyperedges)
    per_slot = 4 * blocks.n_blocks * kinds + 4 * pins * kinds + 3 * len(blocks.edges)
    terms = slots * per_slot
    if not blocks.exact_communication:
        receivers = sum(len(h) - 1 for h in blocks.hyperedges)
        terms += 2 * slots * slots * kinds * kinds * receivers
    return terms


def _slot_count(problem: Problem, blocks: BlockGraph) -> int:
    """Pipeline positions of the contiguous model: a device each, but never more than
    the blocks, since every used position holds one at least."""
    return min(problem.total_devices, blocks.n_blocks)


def build_model(
    problem: Problem,
    blocks: BlockGraph,
    *,
    contiguous: bool = True,
    relax: bool = False,
    deadline: float | None = None,
) -> MilpModel:
    """The MILP of ``problem`` over ``blocks`` (its LP relaxation if ``relax``).

    Raises
    ------
    OutOfTime
        ``time.monotonic()`` passed ``deadline`` before the model was built.
    """
    clock = Clock(deadline)
    category = pulp.LpContinuous if relax else pulp.LpBinary
    kinds = [k for k, kind in enumerate(problem.kinds) if kind.count > 0]
    allowed = {
        (b, k)
        for b in range(blocks.n_blocks)
        for k in kinds
        if blocks.fits(problem, b, k)
    }
    blocks, time_scale, size_scale = scale_blocks(blocks)
    prob = pulp.LpProblem("placement", pulp.LpMinimize)
    max_load = prob.add_variable("max_load", lowBound=0)
    prob += max_load, "max_load_of_the_bottleneck_device"
    model = MilpModel(prob, blocks, contiguous, max_load, assign={}, time_scale=time_scale)
    if contiguous:
        grid = _pipeline_grid(problem, model, kinds, sorted(allowed), category, clock)
    else:
        grid = _device_grid(problem, model, sorted(allowed), category, clock)
    _one_slot_per_block(grid)
    covered = cover_charges(grid)
    caps = {k: problem.kinds[k].memory_bytes / size_scale for k in kinds}
    for t in grid.slots:
        clock.check()
        _memory_rows(grid, t, covered, caps)
    if contiguous:
        contiguity_rows(problem, grid, kinds)
    else:
        order_identical_devices(problem, grid)
    if blocks.exact_communication:
        communication = hyperedge_charges(grid)
    else:
        communication = link_charges(problem, grid)
    _load_rows(grid, covered, communication)
    return model


def _pipeline_grid(problem: Problem, model: MilpModel, kinds, allowed, category, clock) -> Grid:
    """The contiguous model's slots: pipeline positions, each of any of ``kinds``, with
    the variables ``kind[t, k]`` and ``x[b, t, k]`` for the ``allowed`` (block, kind)
    pairs."""
    prob = model.prob
    slots = range(_slot_count(problem, model.blocks))
    for t in slots:
        for k in kinds:
            model.kind[t, k] = prob.add_variable(f"kind_{t}_{k}", 0, 1, cat=category)
    for b, k in allowed:
        clock.check()
        for t in slots:
            model.assign[b, t, k] = prob.add_variable(f"x_{b}_{t}_{k}", 0, 1, cat=category)
    return Grid(model, slots, {t: kinds for t in slots}, clock)


def _device_grid(problem: Problem, model: MilpModel, allowed, category, clock) -> Grid:
    """The non-contiguous model's slots: the devices, each of its own kind, with the
    variables ``x[b, d]`` for the ``allowed`` (block, kind) pairs."""
    devices = problem.devices
    slots = range(len(devices))
    for b, k in allowed:
        for d in slots:
            if devices[d].kind == k:
                model.assign[b, d] = model.prob.add_variable(f"x_{b}_{d}", 0, 1, cat=category)
    return Grid(model, slots, {d: [devices[d].kind] for d in slots}, clock)


def _one_slot_per_block(grid: Grid) -> None:
    """Every block on exactly one slot, as one of the slot's kinds."""
    on, slots, slot_kinds = grid.on, grid.slots, grid.slot_kinds
    for b in range(grid.model.blocks.n_blocks):
        grid.clock.check()
        grid.model.prob += (
            pulp.lpSum(on(b, t, k) for t in slots for k in slot_kinds[t] if on(b, t, k) is not None)
            == 1,
            f"block_{b}_on_one_device",
        )


def _memory_rows(grid: Grid, t: int, covered, caps) -> None:
    """Slot ``t``'s memory cap on each of its kinds: its blocks and the side
    computations it covers fit ``caps[k]`` (rows only where they could exceed it)."""
    model, on = grid.model, grid.on
    blocks, n_blocks = model.blocks, model.blocks.n_blocks
    for k in grid.slot_kinds[t]:
        here = [(b, on(b, t, k)) for b in range(n_blocks) if on(b, t, k) is not None]
        sides = [(blocks.cover_size[c], y) for c, y in covered.get((t, k), ())]
        cap = caps[k]
        most = sum(blocks.size[b] for b, _ in here) + sum(size for size, _ in sides)
        if math.isfinite(cap) and most > cap:
            model.prob += (
                pulp.lpSum(
                    [blocks.size[b] * x for b, x in here]
                    + [size * y for size, y in sides if size > 0]
                )
                <= cap,
                f"memory_of_slot_{t}_kind_{k}",
            )


def _load_rows(grid: Grid, covered, communication) -> None:
    """Each slot's load (its blocks, the side computations it covers, its transfers),
    all held under the max-load the objective pushes down."""
    model, on = grid.model, grid.on
    blocks, n_blocks = model.blocks, model.blocks.n_blocks
    for t in grid.slots:
        grid.clock.check()
        model.load[t] = pulp.lpSum(
            [blocks.latency[k, b] * on(b, t, k)
             for k in grid.slot_kinds[t] for b in range(n_blocks) if on(b, t, k) is not None]
            + [blocks.cover_latency[k, c] * y
               for k in grid.slot_kinds[t] for c, y in covered.get((t, k), ())
               if blocks.cover_latency[k, c] > 0]
            + communication[t]
        )  # fmt: skip
        model.prob += model.max_load >= model.load[t], f"max_load_covers_slot_{t}"
