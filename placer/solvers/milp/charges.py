"""What a slot pays beyond its blocks' own time: the side computations it covers and
the transfers it sends and receives, each a variable held above the expressions it
must cover (:meth:`~placer.solvers.milp.model.MilpModel.at_least`).  The package's
docstring (:mod:`placer.solvers.milp`) states the model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pulp

from placer.problem import Problem
from placer.solvers.blocks import BlockGraph
from placer.solvers.milp.model import Grid


def cover_charges(grid: Grid) -> dict[tuple, list]:
    """Side computations: ``y[c, t, k] >= x[b, t, k]`` for each block ``b`` of cover
    ``c``, so a slot computes (and pays for) a side computation when it holds one of its
    readers; ``(c, y)`` pairs per ``(slot, kind)``."""
    model, on = grid.model, grid.on
    charges: dict[tuple, list] = {}
    for c, members in enumerate(model.blocks.covers):
        grid.clock.check()
        for t in grid.slots:
            for k in grid.slot_kinds[t]:
                xs = [(b, on(b, t, k)) for b in members if on(b, t, k) is not None]
                if not xs:
                    continue
                name = f"side_{c}_{t}_{k}"
                for b, x in xs:
                    y = model.at_least(name, x, f"side_{c}_on_slot_{t}_kind_{k}_via_{b}")
                y.upBound = 1
                charges.setdefault((t, k), []).append((c, y))
    return charges


def hyperedge_charges(grid: Grid) -> dict[int, list]:
    """Charges when a device's transfers cost the same whatever the other end.

    A slot pays ``w(h)`` when hyperedge ``h`` meets it without lying inside it, that is
    when ``x[b] != x[r]`` for a member ``b`` and the root ``r``:
    ``cut[h] >= x[b] - x[r]`` and ``cut[h] >= x[r] - x[b]``.
    """
    model, on = grid.model, grid.on
    blocks = model.blocks
    charges: dict[int, list] = {t: [] for t in grid.slots}
    for h, members in enumerate(blocks.hyperedges):
        grid.clock.check()
        root, rest = members[0], members[1:]
        for t in grid.slots:
            for k in grid.slot_kinds[t]:
                if blocks.weights[k, h] <= 0:
                    continue
                xs = {b: on(b, t, k) for b in members}
                if all(x is None for x in xs.values()):
                    continue
                x_root = xs[root] if xs[root] is not None else 0
                name = f"cut_{h}_{t}_{k}"
                for b in rest:
                    x_b = xs[b] if xs[b] is not None else 0
                    model.at_least(
                        name, x_b - x_root, f"transfer_{h}_leaves_slot_{t}_kind_{k}_via_{b}"
                    )
                    cut = model.at_least(
                        name, x_root - x_b, f"transfer_{h}_enters_slot_{t}_kind_{k}_via_{b}"
                    )
                cut.upBound = 1
                charges[t].append(blocks.weights[k, h] * cut)
    return charges


def link_charges(problem: Problem, grid: Grid) -> dict[int, list]:
    """Charges over the link actually crossed, when links differ in speed.

    Transfers are grouped by sender block ``s`` and receiver blocks ``R``;
    ``T[a][c]`` is their time over the link between kinds ``a`` and ``c``.  With
    ``x[b, t, c]`` the assignment, ``X[b, t]`` its sum over kinds and ``z[b, c]`` its
    sum over slots (block ``b`` runs on kind ``c``):

    * a receiving slot ``(t, c)`` pays ``T[a][c]`` when a receiver is there, ``s`` is
      not and ``s`` runs on kind ``a``: ``recv >= x[b, t, c] - X[s, t]`` at the
      cheapest sender kind's price, plus ``extra[a] >= x[b, t, c] + z[s, a] - X[s, t]
      - 1`` for the dearer ones (:func:`_receive_charges`);
    * the sending slot ``(t, a)`` pays the slowest link its output crosses:
      ``send >= T[a][c] (x[s, t, a] + z[b, c] - x[b, t, c] - 1)`` for every receiver
      ``b`` and kind ``c`` (:func:`_send_charge`).
    """
    kinds = problem.kinds
    charges: dict[int, list] = {t: [] for t in grid.slots}
    placed = _placed(grid, len(kinds))
    for g, (sender, receivers, times) in enumerate(_transfers(problem, grid.model.blocks)):
        grid.clock.check()
        sender_kinds = [a for a in range(len(kinds)) if placed.kind_of[sender, a] is not None]
        transfer = _Transfer(g, sender, receivers, times / grid.model.time_scale, sender_kinds)
        for t in grid.slots:
            for c in grid.slot_kinds[t]:
                if kinds[c].pays_communication:
                    charges[t].extend(_receive_charges(grid, transfer, t, c, placed))
            for a in grid.slot_kinds[t]:
                if kinds[a].pays_communication and grid.on(sender, t, a) is not None:
                    var = _send_charge(grid, transfer, t, a, placed)
                    if var is not None:
                        charges[t].append(var)
    return charges


@dataclass(frozen=True)
class _Transfer:
    """Transfer group ``index``: from block ``sender`` to blocks ``receivers``, with
    ``times[a, c]`` its time over the link between kinds ``a`` and ``c`` (in the model's
    time) and ``sender_kinds`` the kinds its sender may run on."""

    index: int
    sender: int
    receivers: tuple[int, ...]
    times: np.ndarray
    sender_kinds: list[int]


@dataclass(frozen=True)
class _Placed:
    """Sums of the assignment: ``here[b, t]`` (block ``b`` is on slot ``t``, any kind)
    and ``kind_of[b, c]`` (block ``b`` runs on kind ``c``, any slot); None where no
    variable could make it so."""

    here: dict[tuple[int, int], pulp.LpAffineExpression | None]
    kind_of: dict[tuple[int, int], pulp.LpAffineExpression | None]


def _placed(grid: Grid, n_kinds: int) -> _Placed:
    """The sums of the assignment over kinds and over slots."""
    on, slots, slot_kinds = grid.on, grid.slots, grid.slot_kinds
    n_blocks = grid.model.blocks.n_blocks
    here = {
        (b, t): _total(on(b, t, k) for k in slot_kinds[t]) for b in range(n_blocks) for t in slots
    }
    kind_of = {
        (b, c): _total(on(b, t, c) for t in slots if c in slot_kinds[t])
        for b in range(n_blocks)
        for c in range(n_kinds)
    }
    return _Placed(here, kind_of)


def _total(items) -> pulp.LpAffineExpression | None:
    """The sum of the variables that exist, or None if none does."""
    present = [v for v in items if v is not None]
    return pulp.lpSum(present) if present else None


def _receive_charges(grid: Grid, transfer: _Transfer, t: int, c: int, placed: _Placed) -> list:
    """What slot ``t`` on kind ``c`` pays to receive ``transfer``: its time from the
    cheapest sender kind when a receiver is there and the sender is not, and the
    difference for each dearer kind the sender runs on."""
    on, model = grid.on, grid.model
    xs = [(b, on(b, t, c)) for b in transfer.receivers if on(b, t, c) is not None]
    if not xs:
        return []
    g, times, sender = transfer.index, transfer.times, transfer.sender
    away_from_t = placed.here[sender, t] if placed.here[sender, t] is not None else 0
    charges = []
    base = min(times[a, c] for a in transfer.sender_kinds)
    if base > 0:
        for b, x in xs:
            var = model.at_least(
                f"recv_{g}_{t}_{c}", x - away_from_t,
                f"slot_{t}_kind_{c}_receives_{g}_via_{b}",
            )  # fmt: skip
        charges.append(base * var)
    for a in transfer.sender_kinds:
        if times[a, c] <= base:
            continue
        for b, x in xs:
            var = model.at_least(
                f"recv_{g}_{t}_{c}_from_{a}",
                x + placed.kind_of[sender, a] - away_from_t - 1,
                f"slot_{t}_kind_{c}_receives_{g}_from_kind_{a}_via_{b}",
            )  # fmt: skip
        charges.append((times[a, c] - base) * var)
    return charges


def _send_charge(grid: Grid, transfer: _Transfer, t: int, a: int, placed: _Placed):
    """The variable slot ``t`` on kind ``a`` pays to send ``transfer``: the slowest link
    its output crosses, ``send >= T[a][c] (x[s, t, a] + z[b, c] - x[b, t, c] - 1)`` for
    every receiver ``b`` and kind ``c``; None if it pays nothing."""
    g, times = transfer.index, transfer.times
    x_s = grid.on(transfer.sender, t, a)
    var = None
    for b in transfer.receivers:
        for c in range(times.shape[1]):
            if placed.kind_of[b, c] is None or times[a, c] <= 0:
                continue
            x_b = grid.on(b, t, c) if c in grid.slot_kinds[t] else None
            away = placed.kind_of[b, c] - (x_b if x_b is not None else 0)
            var = grid.model.at_least(
                f"send_{g}_{t}_{a}", times[a, c] * (x_s + away - 1),
                f"slot_{t}_kind_{a}_sends_{g}_to_{b}_on_kind_{c}",
            )  # fmt: skip
    return var


def _transfers(
    problem: Problem, blocks: BlockGraph
) -> list[tuple[int, tuple[int, ...], np.ndarray]]:
    """Transfers between blocks, grouped by sender block and receiver blocks, with
    ``times[a, c]``: their summed time over the link between kinds ``a`` and ``c``."""
    n_kinds = len(problem.kinds)
    grouped: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
    for u, succ in enumerate(problem.successors):
        sender = int(blocks.block_of_op[u])
        receivers = tuple(sorted({int(blocks.block_of_op[v]) for v in succ} - {sender}))
        if not receivers:
            continue
        times = np.array(
            [[problem.transfer(u, a, c) for c in range(n_kinds)] for a in range(n_kinds)]
        )
        if not times.any():
            continue
        key = (sender, receivers)
        grouped[key] = grouped.get(key, 0.0) + times
    return [(s, r, t) for (s, r), t in grouped.items()]
