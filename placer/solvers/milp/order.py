"""Rows that order the slots: for the contiguous model, the kinds of pipeline positions
and the prefix ideals that make the stages a pipeline; for the non-contiguous one,
devices of one kind ordered by their smallest block (which removes their permutations)."""

from __future__ import annotations

import pulp

from placer.problem import Problem
from placer.solvers.milp.model import Grid


def contiguity_rows(problem: Problem, grid: Grid, kinds: list[int]) -> None:
    """Kinds of positions, and the prefix ideals that make the stages a pipeline."""
    _position_kinds(problem, grid, kinds)
    if len(grid.model.blocks.edges):
        _prefix_ideals(grid, kinds)


def _position_kinds(problem: Problem, grid: Grid, kinds: list[int]) -> None:
    """A position takes one kind at most, and only if it holds a block of that kind;
    positions are used in order, and no kind on more positions than it has devices."""
    model, on = grid.model, grid.on
    n_blocks = model.blocks.n_blocks
    prob = model.prob
    for t in grid.slots:
        grid.clock.check()
        prob += pulp.lpSum(model.kind[t, k] for k in kinds) <= 1, f"position_{t}_has_one_kind"
        for k in kinds:
            for b in range(n_blocks):
                if on(b, t, k) is not None:
                    prob += (
                        on(b, t, k) <= model.kind[t, k],
                        f"block_{b}_at_{t}_needs_kind_{k}_there",
                    )
            # a used position holds something: empty positions are dropped, not skipped
            prob += (
                model.kind[t, k]
                <= pulp.lpSum(on(b, t, k) for b in range(n_blocks) if on(b, t, k) is not None),
                f"position_{t}_of_kind_{k}_is_not_empty",
            )
        if t > 0:
            prob += (
                pulp.lpSum(model.kind[t, k] for k in kinds)
                <= pulp.lpSum(model.kind[t - 1, k] for k in kinds),
                f"position_{t}_used_only_after_position_{t - 1}",
            )
    for k in kinds:
        prob += (
            pulp.lpSum(model.kind[t, k] for t in grid.slots) <= problem.kinds[k].count,
            f"at_most_{problem.kinds[k].count}_devices_of_{problem.kinds[k].name}",
        )


def _prefix_ideals(grid: Grid, kinds: list[int]) -> None:
    """``y[b, t]``: block ``b`` sits at position ``t`` or earlier (the ``t``-th prefix),
    held an ideal of the block DAG along every arc."""
    model, on = grid.model, grid.on
    prob = model.prob
    for b in range(model.blocks.n_blocks):
        grid.clock.check()
        for t in grid.slots[:-1]:
            y = prob.add_variable(f"y_{b}_{t}", 0, 1)
            model.prefix[b, t] = y
            before = model.prefix[b, t - 1] if t > 0 else 0
            prob += (
                y == before + pulp.lpSum(on(b, t, k) for k in kinds if on(b, t, k) is not None),
                f"prefix_{t}_holds_block_{b}",
            )
    for u, v in model.blocks.edges:
        for t in grid.slots[:-1]:
            prob += (
                model.prefix[int(v), t] <= model.prefix[int(u), t],
                f"prefix_{t}_is_an_ideal_along_{u}_to_{v}",
            )


def order_identical_devices(problem: Problem, grid: Grid) -> None:
    """Order devices of a kind by their smallest block (removes their permutations)."""
    devices = problem.devices
    for d in range(1, len(devices)):
        if devices[d - 1].kind != devices[d].kind:
            continue
        # seen[b] = how many of blocks 0..b-1 device d - 1 holds
        seen = 0
        for b in range(grid.model.blocks.n_blocks):
            x = grid.on(b, d, devices[d].kind)
            if x is not None:
                prob_name = (
                    f"device_{d}_holds_block_{b}_only_after_device_{d - 1}_holds_an_earlier_one"
                )
                grid.model.prob += x <= seen, prob_name
            x_prev = grid.on(b, d - 1, devices[d].kind)
            if x_prev is not None:
                seen = seen + x_prev
