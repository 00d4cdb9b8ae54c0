"""Mixed-integer linear program for device placement, solved through PuLP ([1]_, Section 5).

The problem is first contracted into blocks (:mod:`placer.solvers.blocks`); the MILP assigns
blocks, not ops.  Two models:

* **contiguous** (the default, the DP's model): ``T`` pipeline positions, one per
  device.  ``x[b, t, k]`` puts block ``b`` at position ``t`` on a device of kind ``k``;
  ``kind[t, k]`` gives position ``t`` kind ``k``, at most ``count_k`` positions per
  kind.  The prefix ``y[b, t] = sum over t' <= t of x[b, t', ·]`` is an ideal of the
  block DAG (``y[v, t] <= y[u, t]`` for every arc ``u -> v``), so stage ``t`` is
  ``y[·, t] - y[·, t-1]`` and the stages form a chain of ideals -- exactly the
  contiguous placements, since a stage graph is acyclic iff its stages can be put in
  an order that every arc follows.  Used positions come first and hold a block each,
  which removes the empty positions' symmetry;
* **non-contiguous**: ``x[b, d]`` puts block ``b`` (a colour class) on device ``d``.
  Devices of one kind are identical, so they are ordered by the smallest block they
  hold: device ``j`` may hold ``b`` only if device ``j - 1`` holds a block before
  ``b``.

Communication is exact.  When a device's transfers cost the same whatever device is
at the other end (the model of [1]_, or one link speed), it is charged on the hypergraph
of transfers: a device pays ``w(h)`` when hyperedge ``h`` meets it without lying inside
it.  With ``r`` one member of ``h``, that is when ``x[b, ·] != x[r, ·]`` for some member
``b``, so ``cut[h, ·] >= x[b, ·] - x[r, ·]`` and ``cut[h, ·] >= x[r, ·] - x[b, ·]``
(``2 (|h| - 1)`` rows).  With links of different speeds, each transfer is charged over
the link it crosses: the receiver by the kind its sender runs on, the sender by the
slowest link to its receivers (:func:`_link_charges`).  The charge variables may be
continuous: each only covers expressions of the assignment, and only the bottleneck
device's are pushed down to their floor.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import contextlib
import math
import re
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pulp

from placer.errors import InfeasiblePlacement, NoPlacementFound, OverTotalMemory
from placer.evaluator import Evaluation, evaluate
from placer.problem import Placement, Problem
from placer.solvers.base import (
    BoundSource,
    MipBackend,
    SolveResult,
    SolverOptions,
    relative_gap,
)
from placer.solvers.blocks import BlockGraph, colour_blocks, contract
from placer.solvers.bounds import trivial_bound, volume_bound
from placer.solvers.feasibility import check_feasible, explain_infeasible
from placer.solvers.highs import silence_highs_banner
from placer.util.interrupts import LEFT_RUNNING, terminate_children
from placer.util.units import format_bytes

#: Relative gap HiGHS and CBC stop at unless ``mip_gap`` says otherwise (HiGHS's own
#: default, 1e-4, would let optima differ from the DP's in the fifth digit).
DEFAULT_GAP = 1e-7
_PROVEN = 1e-6  # a gap this small (after rounding in the backend) counts as optimal
_PROGRESS_EVERY = 0.5  # seconds between progress reports from the interrupt callback
#: HiGHS's MIP presolve checks the time limit seldom and takes no interrupt (15 to 30 s
#: over a 2 s limit on a 56,000-column model), so under a shorter limit it is off.
_PRESOLVE_MIN_SECONDS = 30.0
#: Most terms (variable appearances in the objective and rows) placer builds a MILP
#: with: about 1 GiB of PuLP objects.  Larger models are refused before building.
MAX_MILP_TERMS = 4_000_000
#: Seconds HiGHS may run past the deadline (it checks its time limit only now and then)
#: before placer stops waiting for it.
_GRACE = 1.0
#: HiGHS refuses a matrix value of 1e15 or more (and takes 1e20 for infinity).  The
#: seconds and bytes of real models sit far below, but in-range extremes do not (a
#: 1 kFLOP/s device running a batch of 2**31: 1e15 s per op).  Above these, times and
#: sizes enter the model divided by a power of two (exact), which keeps them at most
#: 1e6 and 1e12 and leaves every ordinary model exactly as it was.
_LARGEST_TIME = 1e6
_LARGEST_SIZE = 1e12


@dataclass
class MilpModel:
    """A built PuLP model and the variables needed to read a placement back.

    ``assign[(b, t, k)]`` (contiguous) or ``assign[(b, d)]`` (non-contiguous) are the
    block variables; ``kind[(t, k)]`` the kinds of positions (contiguous only).
    """

    prob: pulp.LpProblem
    blocks: BlockGraph
    contiguous: bool
    max_load: pulp.LpVariable
    assign: dict[tuple[int, ...], pulp.LpVariable]
    kind: dict[tuple[int, int], pulp.LpVariable] = field(default_factory=dict)
    prefix: dict[tuple[int, int], pulp.LpVariable] = field(default_factory=dict)
    #: Time units per unit of the model's times (a power of two, 1 for ordinary
    #: models): the model's max-load, objective and bounds times this are the problem's.
    time_scale: float = 1.0
    #: Communication variables, each with the expressions it must cover (``v >= e``):
    #: at a placement its least feasible value is the largest of them, or 0.
    floors: dict[str, tuple[pulp.LpVariable, list]] = field(default_factory=dict)
    load: dict[int, pulp.LpAffineExpression] = field(default_factory=dict)

    def at_least(self, name: str, expression, constraint: str) -> pulp.LpVariable:
        """The non-negative variable ``name`` (made on first use), held ``>= expression``."""
        if name not in self.floors:
            self.floors[name] = (self.prob.add_variable(name, lowBound=0), [])
        var, exprs = self.floors[name]
        exprs.append(expression)
        self.prob += var >= expression, constraint
        return var


class OutOfTime(Exception):
    """The deadline passed while the model was being built (internal to the solvers)."""


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
    clock = _Clock(deadline)
    category = pulp.LpContinuous if relax else pulp.LpBinary
    kinds = [k for k, kind in enumerate(problem.kinds) if kind.count > 0]
    allowed = {
        (b, k)
        for b in range(blocks.n_blocks)
        for k in kinds
        if blocks.fits(problem, b, k)
    }
    blocks, time_scale, size_scale = _scaled(blocks)
    prob = pulp.LpProblem("placement", pulp.LpMinimize)
    max_load = prob.add_variable("max_load", lowBound=0)
    prob += max_load, "max_load_of_the_bottleneck_device"
    model = MilpModel(prob, blocks, contiguous, max_load, assign={}, time_scale=time_scale)
    if contiguous:
        grid = _positions(problem, model, kinds, sorted(allowed), category, clock)
    else:
        grid = _devices(problem, model, sorted(allowed), category, clock)
    _one_slot_per_block(grid)
    covered = _cover_charges(grid)
    caps = {k: problem.kinds[k].memory_bytes / size_scale for k in kinds}
    for t in grid.slots:
        clock.check()
        _memory_rows(grid, t, covered, caps)
    if contiguous:
        _contiguity(problem, grid, kinds)
    else:
        _order_identical_devices(problem, grid)
    if blocks.exact_communication:
        communication = _hyperedge_charges(grid)
    else:
        communication = _link_charges(problem, grid)
    _load_rows(grid, covered, communication)
    return model


@dataclass(frozen=True)
class _Grid:
    """The slots blocks are placed on (one per device: pipeline positions, or the
    devices themselves), the kinds each slot may take, and the variables that place
    blocks there; every row of the model ranges over it."""

    model: MilpModel
    slots: range
    slot_kinds: dict[int, list[int]]
    clock: _Clock

    def on(self, b: int, t: int, k: int) -> pulp.LpVariable | None:
        """The variable putting block b on slot t as kind k (None if not allowed)."""
        return self.model.assign.get((b, t, k) if self.model.contiguous else (b, t))


def _positions(problem: Problem, model: MilpModel, kinds, allowed, category, clock) -> _Grid:
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
    return _Grid(model, slots, {t: kinds for t in slots}, clock)


def _devices(problem: Problem, model: MilpModel, allowed, category, clock) -> _Grid:
    """The non-contiguous model's slots: the devices, each of its own kind, with the
    variables ``x[b, d]`` for the ``allowed`` (block, kind) pairs."""
    devices = problem.devices
    slots = range(len(devices))
    for b, k in allowed:
        for d in slots:
            if devices[d].kind == k:
                model.assign[b, d] = model.prob.add_variable(f"x_{b}_{d}", 0, 1, cat=category)
    return _Grid(model, slots, {d: [devices[d].kind] for d in slots}, clock)


def _one_slot_per_block(grid: _Grid) -> None:
    """Every block on exactly one slot, as one of the slot's kinds."""
    on, slots, slot_kinds = grid.on, grid.slots, grid.slot_kinds
    for b in range(grid.model.blocks.n_blocks):
        grid.clock.check()
        grid.model.prob += (
            pulp.lpSum(on(b, t, k) for t in slots for k in slot_kinds[t] if on(b, t, k) is not None)
            == 1,
            f"block_{b}_on_one_device",
        )


def _load_rows(grid: _Grid, covered, communication) -> None:
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


def _memory_rows(grid: _Grid, t: int, covered, caps) -> None:
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


class _Clock:
    """Checks a deadline now and then (every call costs a ``time.monotonic()``)."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def check(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise OutOfTime


def _largest_time(blocks: BlockGraph) -> float:
    """The largest finite latency or transfer weight of ``blocks``."""
    latency = blocks.latency[np.isfinite(blocks.latency)]
    return float(
        max(
            latency.max(initial=0.0),
            blocks.weights.max(initial=0.0),
            blocks.cover_latency.max(initial=0.0),
        )
    )


def _scaled(blocks: BlockGraph) -> tuple[BlockGraph, float, float]:
    """``blocks`` with times and sizes divided by the powers of two that bring them
    within :data:`_LARGEST_TIME` and :data:`_LARGEST_SIZE`, and those two powers."""
    time_scale = _power_of_two_above(_largest_time(blocks), _LARGEST_TIME)
    size_scale = _power_of_two_above(float(blocks.size.max(initial=0.0)), _LARGEST_SIZE)
    scaled = replace(
        blocks,
        latency=blocks.latency / time_scale,
        weights=blocks.weights / time_scale,
        size=blocks.size / size_scale,
        cover_latency=blocks.cover_latency / time_scale,
        cover_size=blocks.cover_size / size_scale,
    )
    return scaled, time_scale, size_scale


def _power_of_two_above(value: float, limit: float) -> float:
    """The least power of two ``s`` with ``value / s <= limit`` (1 when already so).

    Examples
    --------
    >>> _power_of_two_above(5e5, 1e6), _power_of_two_above(3e6, 1e6)
    (1.0, 4.0)
    """
    if not value <= limit:  # also for inf and NaN, which are not coefficients anyway
        return 2.0 ** math.ceil(math.log2(value / limit)) if math.isfinite(value) else 1.0
    return 1.0


def _cover_charges(grid: _Grid) -> dict[tuple, list]:
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


def _hyperedge_charges(grid: _Grid) -> dict[int, list]:
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


def _link_charges(problem: Problem, grid: _Grid) -> dict[int, list]:
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


def _placed(grid: _Grid, n_kinds: int) -> _Placed:
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


def _receive_charges(grid: _Grid, transfer: _Transfer, t: int, c: int, placed: _Placed) -> list:
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


def _send_charge(grid: _Grid, transfer: _Transfer, t: int, a: int, placed: _Placed):
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


def _contiguity(problem: Problem, grid: _Grid, kinds: list[int]) -> None:
    """Kinds of positions, and the prefix ideals that make the stages a pipeline."""
    _position_kinds(problem, grid, kinds)
    if len(grid.model.blocks.edges):
        _prefix_ideals(grid, kinds)


def _position_kinds(problem: Problem, grid: _Grid, kinds: list[int]) -> None:
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


def _prefix_ideals(grid: _Grid, kinds: list[int]) -> None:
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


def _order_identical_devices(problem: Problem, grid: _Grid) -> None:
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


def solve_milp(problem: Problem, options: SolverOptions | None = None) -> SolveResult:
    """Place ``problem`` with a MILP solved by HiGHS or CBC through PuLP.

    Parameters
    ----------
    problem : Problem
    options : SolverOptions, optional
        ``contiguous`` picks the model; ``mip_solver``, ``time_limit``, ``mip_gap`` and
        ``threads`` go to the backend; ``warm_start`` seeds it; ``progress`` is called
        with (elapsed, incumbent, bound) while HiGHS solves.

    Returns
    -------
    SolveResult
        ``optimal`` when the backend proved optimality (to a relative 1e-6);
        otherwise the best placement found, with ``lower_bound`` and ``gap``.

    Raises
    ------
    InfeasiblePlacement
        No placement satisfies memory, support and device counts.
    NoPlacementFound
        The model is too large to build (:data:`MAX_MILP_TERMS`), or the time limit or
        ``deadline`` passed before a placement was found (model building included).
    KeyboardInterrupt
        Ctrl-C: the backend is stopped (HiGHS is left to stop in its thread, CBC is
        killed) and the interrupt propagates at once.

    Notes
    -----
    The contiguous model has O(B · T · K) binaries and O((B · K + arcs + pins) · T)
    rows for B blocks, T devices, K kinds and the hyperedges' total size ``pins``.
    HiGHS reports its dual bound; for CBC the bound is read from its log ("Lower
    bound"), and when the log has none the trivial bound of :mod:`placer.solvers.bounds` is
    reported instead.

    Examples
    --------
    >>> from placer.frontends.workload import parse_workload
    >>> doc = {"maxSizePerFPGA": 10, "maxFPGAs": 2, "maxCPUs": 0, "edges": [
    ...        {"sourceId": 1, "destId": 2, "cost": 0.5}], "nodes": [
    ...        {"id": i, "supportedOnFpga": 1, "cpuLatency": 9.0, "fpgaLatency": 2.0,
    ...         "isBackwardNode": 0} for i in (1, 2)]}
    >>> solve_milp(parse_workload(doc)).objective
    2.5
    """
    options = options or SolverOptions()
    started = time.perf_counter()
    blocks = contract(problem) if options.contiguous else colour_blocks(problem)
    check_feasible(problem, blocks)
    if options.time_limit is not None and options.deadline is None:
        options = replace(options, deadline=time.monotonic() + options.time_limit)
    job = _Job(problem, blocks, options, started)
    model = _build(job)
    stats: dict[str, float] = {
        "blocks": blocks.n_blocks,
        "variables": model.prob.numVariables(),
        "constraints": model.prob.numConstraints(),
    }
    notes: list[str] = []
    warm = _warm_start(job, model, notes)
    backend = _pick_backend(options.mip_solver, notes)
    outcome = _run_backend(backend, model, _with_scaled_progress(options, model), warm)
    stats["solve_seconds"] = outcome.seconds
    solved = _solution(job, model, outcome, backend)
    return _result(job, solved, backend, notes, stats)


@dataclass(frozen=True)
class _Job:
    """What one solve works on: the problem, its blocks, the options (with the deadline
    the time limit sets) and when the solve started (``time.perf_counter()``)."""

    problem: Problem
    blocks: BlockGraph
    options: SolverOptions
    started: float


def _warm_start(job: _Job, model: MilpModel, notes: list[str]) -> bool:
    """Set the start ``job.options.warm_start`` gives, if any; whether one was set (a
    note says when one was given but does not fit)."""
    options = job.options
    warm = options.warm_start is not None and _set_warm_start(
        job.problem, model, options.warm_start
    )
    if options.warm_start is not None and not warm:
        notes.append("the warm start was ignored: it is not a valid placement of this model")
    return warm


def _with_scaled_progress(options: SolverOptions, model: MilpModel) -> SolverOptions:
    """``options`` whose progress callback, if any, is fed the problem's times from
    the model's (scaled) ones."""
    if options.progress is not None and model.time_scale != 1.0:
        return replace(options, progress=_rescaled(options.progress, model.time_scale))
    return options


def _result(job: _Job, solved: _Solved, backend: MipBackend, notes, stats) -> SolveResult:
    """The result of the solve: the placement found, the bound proven and the gap
    between them (a note says why it is not proven optimal)."""
    objective = solved.evaluation.max_load
    bound = _bound(job, solved, backend, notes)
    gap = relative_gap(objective, bound)
    status_optimal = solved.sol_status == pulp.LpSolutionOptimal
    optimal = gap <= _PROVEN and (status_optimal or bound >= objective)
    if not optimal:
        stop = "stopped at the requested gap" if status_optimal else "time limit reached"
        notes.append(f"{stop}: not proven optimal, gap {gap:.3%} (bound {bound:.6g})")
    return SolveResult(
        solver="milp",
        placement=solved.placement,
        objective=objective,
        optimal=optimal,
        seconds=time.perf_counter() - job.started,
        stats=stats,
        notes=tuple(notes),
        lower_bound=bound,
        gap=gap,
        bound_source=BoundSource.MILP_DUAL,
    )


def _build(job: _Job) -> MilpModel:
    """The :class:`MilpModel`, with ``options.lower_bound`` as a row; refused (no
    placement found) when it would be too large or its building outlasts the time."""
    problem, blocks, options = job.problem, job.blocks, job.options
    terms = estimated_terms(problem, blocks, options.contiguous)
    if terms > MAX_MILP_TERMS:
        raise NoPlacementFound(
            f"MILP: the model would have about {terms:.2g} terms ({blocks.n_blocks:,} blocks "
            f"on {problem.total_devices:,} devices), more than placer builds "
            f"({MAX_MILP_TERMS:.2g}, about 1 GiB); use --solver dp, or fewer devices"
        )
    try:
        model = build_model(
            problem, blocks, contiguous=options.contiguous, deadline=options.deadline
        )
    except OutOfTime:
        raise NoPlacementFound(
            f"MILP: the time limit ran out while building the model "
            f"({time.perf_counter() - job.started:.1f} s); raise --time-limit"
        ) from None
    if options.lower_bound is not None and math.isfinite(options.lower_bound):
        # a hair below, so that rounding never cuts off the optimum
        model.prob += (
            model.max_load >= options.lower_bound / model.time_scale * (1 - 1e-9),
            "max_load_is_at_least_the_proven_bound",
        )
    return model


@dataclass(frozen=True)
class _Solved:
    """What the backend left: the placement read back with its evaluation, the solution
    status (integer feasible when it came from the last reported incumbent), and the
    backend's bound in the model's scaled time (None if it gave none)."""

    placement: Placement
    evaluation: Evaluation
    sol_status: int
    bound: float | None


def _solution(job: _Job, model: MilpModel, outcome: _Outcome, backend: MipBackend) -> _Solved:
    """The placement the backend found.

    Raises
    ------
    InfeasiblePlacement
        The backend proved that no placement exists.
    NoPlacementFound
        It stopped without one.
    """
    problem, blocks, options = job.problem, job.blocks, job.options
    sol_status = model.prob.sol_status
    # CBC proves some models infeasible in presolve and says so in the status alone
    proven = sol_status == pulp.LpSolutionInfeasible or model.prob.status == pulp.LpStatusInfeasible
    if proven and not outcome.abandoned:
        if options.contiguous:
            raise explain_infeasible(problem, blocks)
        raise _explain_packing(problem, blocks)
    found = None
    if sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        found = _valid_placement(problem, model, options.contiguous)
        if found is None and sol_status == pulp.LpSolutionOptimal:
            raise RuntimeError("MILP: the backend's optimal solution is not a valid placement")
    if found is None and outcome.incumbent is not None:
        # stopped in a phase with no integer solution of its own (HiGHS left running,
        # or interrupted in an LP, whose values PuLP reads as "integer feasible"): the
        # last placement HiGHS reported, or the warm start
        # values by column, in the order of prob.variables() (PuLP numbers HiGHS's so)
        for column, var in enumerate(model.prob.variables()):
            var.varValue = float(outcome.incumbent[column])
        found = _valid_placement(problem, model, options.contiguous)
        sol_status = pulp.LpSolutionIntegerFeasible
    if found is None:
        why = (
            f"no placement found within {options.time_limit:g} s"
            if options.time_limit is not None
            else "the solver found no placement"
        )
        raise NoPlacementFound(f"MILP ({backend.value}): {why}; raise --time-limit")
    placement, evaluation = found
    raw = None if outcome.bound is None else outcome.bound * model.time_scale
    return _Solved(placement, evaluation, sol_status, raw)


def _bound(job: _Job, solved: _Solved, backend: MipBackend, notes: list[str]) -> float:
    """The lower bound the MILP proves: the backend's (never below the trivial and
    volume bounds, or ``options.lower_bound``), the objective itself at "optimal" within
    the gap asked for; a note says when the backend reported none."""
    problem, blocks, options = job.problem, job.blocks, job.options
    objective = solved.evaluation.max_load
    status_optimal = solved.sol_status == pulp.LpSolutionOptimal
    bound = solved.bound
    if bound is None or not math.isfinite(bound):
        if status_optimal:
            bound = objective
        else:
            notes.append(f"{backend.value} reported no bound: the volume bound is shown")
            bound = max(trivial_bound(problem, blocks), volume_bound(problem, blocks))
    else:  # a search stopped early may not have lifted its bound past the trivial one
        bound = max(bound, trivial_bound(problem, blocks), volume_bound(problem, blocks))
    if options.lower_bound is not None:
        bound = max(bound, options.lower_bound)
    if status_optimal:
        # the backend stops at "optimal" only within its relative gap, whatever dual
        # bound it reports (HiGHS can leave that at a bound it was given as a row)
        bound = max(bound, objective * (1 - _gap(options)))
    return min(bound, objective)


def _rescaled(progress, scale: float):
    """``progress`` fed the problem's times from a model whose times are ``/ scale``."""

    def report(elapsed: float, incumbent: float | None, bound: float | None) -> None:
        progress(
            elapsed,
            None if incumbent is None else incumbent * scale,
            None if bound is None else bound * scale,
        )

    return report


def _explain_packing(problem: Problem, blocks: BlockGraph) -> InfeasiblePlacement:
    """The error when colour classes, each fitting somewhere, cannot all be packed."""
    error = explain_infeasible(problem, blocks)
    if isinstance(error, OverTotalMemory):
        return error
    biggest = int(blocks.size.argmax())
    return InfeasiblePlacement(
        f"the {blocks.n_blocks} colour classes cannot be packed into the devices' memory "
        f"(the largest needs {format_bytes(blocks.size[biggest])})"
    )


@dataclass
class _Outcome:
    bound: float | None
    seconds: float
    abandoned: bool = False  # HiGHS overran the deadline and was left running
    incumbent: np.ndarray | None = None  # then: its last reported solution, if any


def _gap(options: SolverOptions) -> float:
    return DEFAULT_GAP if options.mip_gap is None else options.mip_gap


class _Abandoned(Exception):
    """HiGHS overran the deadline and its grace; nothing of it may be read."""


class _HiGHS(pulp.HiGHS):
    """PuLP's HiGHS with a warm start, progress reports, a deadline and a prompt Ctrl-C.

    PuLP's HiGHS interface builds the model inside ``actualSolve`` and has no warm
    start, so the start solution is handed to highspy just before it runs.  The solve
    runs in a thread of its own so that the main thread stays responsive.  At the
    ``deadline`` (or on Ctrl-C) placer asks HiGHS to stop through its interrupt
    callbacks, which it checks in the LPs and the branch and bound but not in presolve
    or every heuristic; if it has not stopped ``_GRACE`` seconds later, placer stops
    waiting (the thread is left to finish, or to end with the process) and keeps the
    last solution HiGHS reported (:attr:`incumbent`), or the warm start.
    """

    def __init__(self, *, warm: bool, progress, presolve: bool = True, deadline=None, **kwargs):
        super().__init__(**kwargs)
        self.warm = warm
        self.progress = progress
        self.presolve = presolve
        self.deadline = deadline
        self.abandoned = False
        self.bound: float | None = None
        #: The best solution HiGHS reported (column values) and its dual bound then:
        #: what is left of a solve that overran the deadline and was abandoned.
        self.incumbent: np.ndarray | None = None

    def callSolver(self, lp):
        highs = lp.solverModel
        if not self.presolve:
            highs.setOptionValue("presolve", "off")
        columns = len(lp.variables())
        if self.warm:
            self._start_from(highs, lp, columns)
        stop = threading.Event()
        self._listen(highs, stop, columns)
        # highspy's own startSolve keeps its "running" lock on the class, shared by every
        # Highs: one solve left running would refuse all later ones in the process
        done = threading.Event()

        def run() -> None:
            try:
                highs.run()  # releases the interpreter lock while HiGHS works
            finally:
                done.set()

        worker = threading.Thread(target=run, name="placer-highs", daemon=True)
        worker.start()
        self._wait(highs, worker, done, stop)
        info = highs.getInfo()
        self.bound = _finite(info.mip_dual_bound)

    def _start_from(self, highs, lp, columns: int) -> None:
        """Hand HiGHS the variables' values as its start; the start is the incumbent
        until HiGHS reports a better one."""
        given = [(v.index, v.varValue) for v in lp.variables() if v.varValue is not None]
        self.incumbent = np.zeros(columns)
        for index, value in given:
            self.incumbent[index] = value
        highs.setSolution(
            len(given),
            np.array([i for i, _ in given], dtype=np.int32),
            np.array([x for _, x in given], dtype=np.float64),
        )

    def _listen(self, highs, stop: threading.Event, columns: int) -> None:
        """Subscribe to HiGHS's callbacks: they interrupt it once ``stop`` is set, keep
        its dual bound and its last solution, and report progress."""
        last = [-math.inf]

        def on_interrupt_check(event):
            if stop.is_set():
                event.interrupt()
            out = event.data_out
            self.bound = _finite(out.mip_dual_bound)
            if self.progress is not None and out.running_time - last[0] >= _PROGRESS_EVERY:
                last[0] = out.running_time
                self._report(out)

        def on_improving(event):
            out = event.data_out
            solution = np.array(out.mip_solution, dtype=np.float64)
            if solution.shape == (columns,):  # a solution of the model as placer built it
                self.incumbent = solution
            self.bound = _finite(out.mip_dual_bound)
            if self.progress is not None:
                self._report(out)

        highs.cbMipInterrupt.subscribe(on_interrupt_check)
        highs.cbMipImprovingSolution.subscribe(on_improving)
        for lp_check in (highs.cbSimplexInterrupt, highs.cbIpmInterrupt):
            lp_check.subscribe(lambda event: event.interrupt() if stop.is_set() else None)

    def _report(self, out) -> None:
        """Pass HiGHS's running time, incumbent and bound to the progress callback."""
        self.progress(out.running_time, _finite(out.mip_primal_bound), _finite(out.mip_dual_bound))

    def _wait(self, highs, worker: threading.Thread, done: threading.Event, stop) -> None:
        """Wait for the solve in ``worker`` to end: past the deadline ask HiGHS to stop,
        and past the grace (or on Ctrl-C) leave it running.

        Raises
        ------
        _Abandoned
            HiGHS overran the deadline and its grace.
        """
        try:
            while not done.wait(0.1):
                now = time.monotonic()
                if self.deadline is not None and now > self.deadline:
                    stop.set()  # the callbacks stop the search at their next check
                    if now > self.deadline + _GRACE:
                        self._abandon(highs, worker)
                        raise _Abandoned
        except KeyboardInterrupt:
            stop.set()
            self._abandon(highs, worker)
            raise

    def _abandon(self, highs, worker: threading.Thread) -> None:
        self.abandoned = True
        LEFT_RUNNING.append((highs, worker))


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) and abs(value) < 1e300 else None


def _time_limit(options: SolverOptions) -> float | None:
    """Seconds the backend may run: the time limit, cut to what the deadline leaves."""
    left = options.seconds_left()
    if left is None:
        return options.time_limit
    return max(0.01, left if options.time_limit is None else min(left, options.time_limit))


def _pick_backend(requested: MipBackend, notes: list[str]) -> MipBackend:
    """The backend asked for, or CBC when that is HiGHS and highspy is not installed (a
    note says so)."""
    backend = MipBackend(requested)
    if backend is MipBackend.HIGHS and not pulp.HiGHS().available():
        notes.append("HiGHS (highspy) is not installed: solved with PuLP's CBC instead")
        backend = MipBackend.CBC
    return backend


def _run_backend(backend: MipBackend, model: MilpModel, options: SolverOptions, warm: bool):
    """Solve ``model`` with ``backend`` (from its warm start if ``warm``)."""
    run = _run_highs if backend is MipBackend.HIGHS else _run_cbc
    return run(model, options, warm)


def _run_highs(model: MilpModel, options: SolverOptions, warm: bool) -> _Outcome:
    silence_highs_banner()
    limit = _time_limit(options)
    short = limit is not None and limit < _PRESOLVE_MIN_SECONDS
    solver = _HiGHS(
        warm=warm,
        progress=options.progress,
        presolve=not short,
        deadline=options.deadline,
        msg=False,
        timeLimit=limit,
        gapRel=_gap(options),
        threads=options.threads,
    )
    started = time.perf_counter()
    with contextlib.suppress(_Abandoned):  # PuLP must not read a solver still running
        model.prob.solve(solver)
    seconds = time.perf_counter() - started
    return _Outcome(solver.bound, seconds, solver.abandoned, solver.incumbent)


def solve_relaxation(model: MilpModel, time_limit: float) -> float | None:
    """The optimum of a relaxed model (``build_model(relax=True)``) found by HiGHS
    within ``time_limit`` seconds, or None (not solved to optimality in time)."""
    silence_highs_banner()
    solver = _HiGHS(
        warm=False,
        progress=None,
        presolve=time_limit >= _PRESOLVE_MIN_SECONDS,
        deadline=time.monotonic() + time_limit,
        msg=False,
        mip=False,
        timeLimit=time_limit,
    )
    with contextlib.suppress(_Abandoned):
        model.prob.solve(solver)
    if solver.abandoned or model.prob.sol_status != pulp.LpSolutionOptimal:
        return None
    value = pulp.value(model.prob.objective)
    return None if value is None else float(value)


def _run_cbc(model: MilpModel, options: SolverOptions, warm: bool) -> _Outcome:
    """CBC through PuLP, in a process of its own; the bound comes from CBC's log.

    On Ctrl-C the CBC process is killed and the interrupt propagates; its files live in
    a temporary directory that goes with it.  CBC checks its time limit only in the
    branch and bound (its preprocessing ran 16 s under a 1 s limit), so it is also
    killed ``_GRACE`` seconds past the deadline, leaving the warm start, if any, as the
    answer.
    """
    incumbent = None
    if warm:
        incumbent = np.array([var.varValue or 0.0 for var in model.prob.variables()])
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "cbc.log"
        with warnings.catch_warnings():
            # PuLP 3 deprecates its bundled CBC, which pyproject keeps by pinning PuLP < 4
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(
                msg=False,
                timeLimit=_time_limit(options),
                gapRel=_gap(options),
                threads=options.threads,
                warmStart=warm,
                logPath=str(log),
            )
        solver.tmpDir = tmp
        started = time.perf_counter()
        left = options.seconds_left()
        killer = threading.Timer(left + _GRACE, _stop_cbc) if left is not None else None
        if killer is not None:
            killer.daemon = True
            killer.start()
        stopped = False
        try:
            model.prob.solve(solver)
        except KeyboardInterrupt:
            terminate_children()
            raise
        except pulp.PulpSolverError:
            if not _CBC_STOPPED.is_set():
                raise
            stopped = True  # killed at the deadline: PuLP found no solution file
        finally:
            if killer is not None:
                killer.cancel()
            _CBC_STOPPED.clear()
        seconds = time.perf_counter() - started
        text = log.read_text(errors="replace") if log.exists() else ""
    if stopped:
        return _Outcome(None, seconds, abandoned=True, incumbent=incumbent)  # the warm start
    bound = None
    match = re.search(r"Lower bound:\s*([-+0-9.eE]+)", text)
    if match:
        with contextlib.suppress(ValueError):
            bound = float(match.group(1))
    return _Outcome(bound, seconds)


#: Set when placer killed CBC for overrunning its deadline.
_CBC_STOPPED = threading.Event()


def _stop_cbc() -> None:
    _CBC_STOPPED.set()
    terminate_children()


def _set_warm_start(problem: Problem, model: MilpModel, placement: Placement) -> bool:
    """Give every variable its value under ``placement``; False if it does not fit."""
    homes = _device_of_block(problem, model, placement)
    if homes is None:
        return False
    evaluation, device_of_block = homes
    if model.contiguous:
        slot_of_block, kind_of_slot = _positions_of(problem, evaluation, device_of_block)
    else:
        slot_of_block, kind_of_slot = _relabelled(problem, device_of_block)
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


def _positions_of(problem: Problem, evaluation: Evaluation, device_of_block: list[int]):
    """The contiguous model's ``(slot of each block, kind of each slot)``: a stage's
    position in the pipeline."""
    devices = problem.devices
    position = {stage.device: t for t, stage in enumerate(evaluation.stages)}
    slot_of_block = [position[d] for d in device_of_block]
    kind_of_slot = {t: devices[s.device].kind for t, s in enumerate(evaluation.stages)}
    return slot_of_block, kind_of_slot


def _relabelled(problem: Problem, device_of_block: list[int]):
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


def _valid_placement(problem: Problem, model: MilpModel, contiguous: bool):
    """``(placement, evaluation)`` of the variables' values, or None when they are not a
    valid placement (fractional values, a block left out, a broken constraint)."""
    placement = _read_placement(problem, model)
    if placement is None:
        return None
    evaluation = evaluate(problem, placement, require_contiguous=contiguous)
    return (placement, evaluation) if evaluation.valid else None


def _read_placement(problem: Problem, model: MilpModel) -> Placement | None:
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
