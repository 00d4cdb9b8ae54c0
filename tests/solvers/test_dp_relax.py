"""The DP on the graph without its widest blocks (:mod:`placer.solvers.dp.relax`).

Its optimum must never exceed the optimum of the whole graph (dropping blocks is a
relaxation): brute force is the oracle, on random workloads with side computations, on
per-link clusters and in training; and on a graph whose input-only branch and floating
projections make the ideals explode, the fallback's bound is proven, and is the DP's.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placer.errors import InfeasiblePlacement
from placer.evaluator import evaluate
from placer.problem import DeviceClass, DeviceKind, Op, Placement, Problem
from placer.solvers import SolverOptions
from placer.solvers.auto import solve_auto
from placer.solvers.base import BoundSource
from placer.solvers.blocks import contract
from placer.solvers.bounds import volume_bound
from placer.solvers.dp import _ideal_kernels as kernels
from placer.solvers.dp.relax import (
    incomparable,
    knapsack,
    lift,
    relaxation_bound,
    slack_bound,
    without_blocks,
)
from placer.solvers.dp.search import (
    _absorbing,
    _availability,
    _ideal_lattice,
    _narrow_only,
    solve_dp,
)
from tests.solvers.test_dp_links import cluster_problems
from tests.solvers.test_replicas import with_replicas
from tests.strategies import brute_force, describe, workloads


def _reachable(blocks, a: int, b: int) -> bool:
    succ = {}
    for u, v in blocks.edges.tolist():
        succ.setdefault(u, []).append(v)
    stack, seen = [a], {a}
    while stack:
        u = stack.pop()
        if u == b:
            return True
        for v in succ.get(u, ()):
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return False


@settings(max_examples=60, deadline=None)
@given(workloads(max_forward=9))
def test_incomparable_counts_the_blocks_no_path_joins(problem: Problem) -> None:
    blocks = contract(problem)
    m = blocks.n_blocks
    joined = [[a == b or _reachable(blocks, a, b) or _reachable(blocks, b, a)
               for b in range(m)] for a in range(m)]  # fmt: skip
    expected = [row.count(False) for row in joined]
    assert incomparable(blocks).tolist() == expected


def _check_relaxation(problem: Problem, dropped_share: float) -> None:
    """Drop a share of the blocks (the first ones of a fixed shuffle): the DP's proven
    bound on what is left is at most the brute-force optimum of the whole, and the
    subproblem's plan, put back together, is a contiguous placement of the whole."""
    try:
        best = brute_force(problem)
    except InfeasiblePlacement:
        return
    blocks = contract(problem)
    m = blocks.n_blocks
    order = np.random.default_rng(m).permutation(m)
    dropped = sorted(order[: max(1, int(dropped_share * m))].tolist())
    sub, kept = without_blocks(problem, blocks, dropped)
    assert len(sub.ops) == len(kept) < len(problem.ops)
    if not sub.ops:
        return
    found = _narrow_only(sub, SolverOptions())
    assert found is not None, describe(problem)  # a relaxation of a feasible problem
    lower = found.objective if found.optimal else found.lower_bound
    assert lower <= best * (1 + 1e-9) + 1e-9, describe(problem)
    # and the knapsack test of the dropped blocks' work proves no more than the optimum
    raised = slack_bound(problem, blocks, (dropped, sub, kept), (lower, max(lower, 2 * best)),
                         SolverOptions(), _absorbing)  # fmt: skip
    assert lower <= raised <= best * (1 + 1e-9) + 1e-9, describe(problem)
    placement = lift(problem, blocks, dropped, kept, found.placement)
    if placement is not None:
        evaluation = evaluate(problem, placement)
        assert evaluation.contiguous, evaluation.violations
        # the blocks kept stay where the subproblem put them
        assert [placement.device_of_op[i] for i in kept] == list(found.placement.device_of_op)
        if evaluation.valid:
            assert evaluation.max_load >= best - 1e-9


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(with_replicas(workloads(max_forward=8)), st.sampled_from([0.2, 0.4, 0.6]))
def test_without_blocks_the_dp_bounds_the_optimum(problem: Problem, share: float) -> None:
    _check_relaxation(problem, share)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(cluster_problems(), cluster_problems(training=True)),
       st.sampled_from([0.2, 0.5]))  # fmt: skip
def test_without_blocks_the_dp_bounds_the_optimum_over_links(problem: Problem,
                                                            share: float) -> None:  # fmt: skip
    _check_relaxation(problem, share)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(with_replicas(workloads(max_forward=8)))
def test_the_relaxation_bound_is_proven(problem: Problem) -> None:
    try:
        best = brute_force(problem)
    except InfeasiblePlacement:
        return
    blocks = contract(problem)
    found = relaxation_bound(problem, blocks, SolverOptions(), _narrow_only, _absorbing,
                             upper=2 * best + 1)  # fmt: skip
    if found is None:
        return  # nothing incomparable enough to drop
    assert 0 < found.lower <= best * (1 + 1e-9) + 1e-9, describe(problem)
    assert 0 < found.dropped < blocks.n_blocks
    if found.placement is not None and evaluate(problem, found.placement).valid:
        assert evaluate(problem, found.placement).max_load >= best - 1e-9


def encoder_decoder(layers: int = 6, devices: int = 3) -> Problem:
    """T5's shape in miniature: an encoder chain; a decoder chain whose first layer
    reads only the inputs (it may run beside the whole encoder); and, per decoder
    layer, a projection of the encoder's output that may run anywhere between the
    encoder's end and its layer."""
    ops: list[Op] = []
    edges: list[tuple[int, int]] = []

    def op(name: str, latency: float, output: float = 0.1) -> int:
        ops.append(Op(key=name, name=name, latency=(latency, 4 * latency),
                      supported=(True, True), size_bytes=1.0, transfer_cost=output,
                      color=len(ops)))  # fmt: skip
        return len(ops) - 1

    previous = None
    for i in range(layers):
        a = op(f"encoder.{i}.attn", 1.0)
        b = op(f"encoder.{i}.mlp", 1.5)
        if previous is not None:
            edges.append((previous, a))
        edges.append((a, b))
        previous = b
    encoder_out = previous
    previous = None
    for i in range(layers):
        a = op(f"decoder.{i}.self", 1.0)
        k = op(f"decoder.{i}.project", 0.3)
        c = op(f"decoder.{i}.cross", 1.0)
        d = op(f"decoder.{i}.mlp", 1.5)
        if previous is not None:
            edges.append((previous, a))
        edges += [(encoder_out, k), (k, c), (a, c), (c, d)]
        previous = d
    kinds = (
        DeviceKind("gpu", DeviceClass.ACCELERATOR, devices, math.inf),
        DeviceKind("cpu", DeviceClass.CPU, 1, math.inf),
    )
    return Problem(name="encoder-decoder", ops=tuple(ops), edges=tuple(edges), kinds=kinds,
                   time_unit="s", samples_per_step=1)  # fmt: skip


def test_a_graph_too_wide_for_the_dp_gets_the_bound_of_its_narrow_part(monkeypatch) -> None:
    """With the ideals capped below what this graph has, the DP falls back; the DP
    without the projections and the decoder's first layer proves a bound that is the
    whole graph's optimum or below, and above the volume bound (it knows the
    pipeline's order).  The projections in a fixed order (tests/solvers/test_dp_branches.py)
    prove this graph's optimum: they are switched off here, to test the blocks dropped."""
    monkeypatch.setattr("placer.solvers.dp.search.ordered_bound", lambda *args, **kw: None)
    problem = encoder_decoder()
    exact = solve_dp(problem)
    assert exact.optimal
    fallback = solve_dp(problem, SolverOptions(max_ideals=150))
    assert not fallback.optimal
    assert fallback.bound_source is BoundSource.DP_RELAXED
    assert fallback.stats["relaxed_blocks"] > 0
    assert "widest blocks" in fallback.notes[-1]
    assert fallback.lower_bound <= exact.objective * (1 + 1e-9)
    blocks = contract(problem)
    assert fallback.lower_bound > volume_bound(problem, blocks)
    # the knapsack test raises the subproblem's bound: the projections' work is not free
    plain = relaxation_bound(problem, blocks, SolverOptions(max_ideals=150), _narrow_only)
    assert fallback.lower_bound > plain.lower
    assert fallback.gap == pytest.approx(
        (fallback.objective - fallback.lower_bound) / fallback.objective)
    evaluation = evaluate(problem, fallback.placement)
    assert evaluation.valid
    assert evaluation.max_load == pytest.approx(fallback.objective, rel=1e-12)
    # auto starts from that bound: it keeps it, or the MILP closes the gap from it
    auto = solve_auto(problem, SolverOptions(max_ideals=150, time_limit=5))
    assert auto.lower_bound >= fallback.lower_bound * (1 - 1e-12)
    assert auto.lower_bound <= exact.objective * (1 + 1e-9)
    if auto.optimal:
        assert auto.objective == pytest.approx(exact.objective, rel=1e-9)
    else:
        assert "without its widest blocks" in auto.notes[0]


def test_the_blocks_dropped_are_the_ones_that_widen_the_graph() -> None:
    """The projections and the decoder's first layer are incomparable with the most
    blocks; the chains' blocks are not dropped."""
    problem = encoder_decoder()
    blocks = contract(problem)
    counts = incomparable(blocks)
    name = {b: problem.ops[ops[0]].name for b, ops in enumerate(blocks.ops_of_block)}
    widest = {name[b] for b in np.flatnonzero(counts == counts.max())}
    assert widest & {f"decoder.{i}.project" for i in range(6)} or "decoder.0.self" in widest
    assert not any(n.startswith("encoder.") and n.endswith(".mlp") and n != "encoder.5.mlp"
                   for n in widest)  # fmt: skip


def test_the_knapsack_packs_what_is_available_most_work_per_unit_of_time_first() -> None:
    """A stage packs the dropped blocks available to it (kept ancestors before its end,
    no kept descendant before its start) by value per unit of time, free ones first, a
    fraction of the last; a block its kind cannot run adds nothing."""
    ops = tuple(
        Op(key=i, name=f"op{i}", latency=latency, supported=(True, True), size_bytes=0.0,
           transfer_cost=0.0, color=i)
        for i, latency in enumerate([(1.0, 1.0), (2.0, 1.0), (1.0, math.inf), (0.0, 3.0),
                                     (4.0, 1.0), (1.0, 1.0)])
    )  # fmt: skip
    # op 0 feeds the four middle ops, which feed op 5: those four are dropped
    edges = tuple((0, v) for v in range(1, 5)) + tuple((u, 5) for u in range(1, 5))
    problem = Problem(name="diamond", ops=ops, edges=edges, samples_per_step=1, kinds=(
        DeviceKind("gpu", DeviceClass.ACCELERATOR, 2), DeviceKind("cpu", DeviceClass.CPU, 1)))
    blocks = contract(problem, absorb_free_leaves=False)
    dropped = sorted(int(blocks.block_of_op[i]) for i in range(1, 5))
    sub, kept = without_blocks(problem, blocks, dropped)
    packing = knapsack(problem, blocks, dropped, kept)
    value = {problem.ops[blocks.ops_of_block[b][0]].name: v
             for b, v in zip(dropped, packing.value, strict=True)}  # fmt: skip
    assert value == {"op1": 1.0, "op2": 1.0, "op3": 0.0, "op4": 1.0}  # cheapest kind
    assert all(len(before) == 1 and len(after) == 1
               for before, after in zip(packing.before, packing.after, strict=True))  # fmt: skip
    # a bitset per ideal: 0 = {}, 1 = {op0}, 2 = {op0, op5}; every block needs op0 first
    # and op5 after
    early = np.array([[0], [15], [15]], dtype=np.uint64)
    late = np.array([[15], [15], [0]], dtype=np.uint64)
    run = None
    absorbing = kernels.Absorbing(run, packing.time, packing.value, packing.order, early, late)
    # the stage {op5} (i = 2, j = 1): everything available; gpu: op3 free (value 0),
    # op1 (1 per unit), op2 (0.5), op4 (0.25); a room of 2 takes op3, op1 and half of op2
    assert kernels.pack(absorbing, 0, 2, 1, 2.0) == pytest.approx(1.5)
    # cpu: op1, op4 (1 per unit), op3 (0 per unit); op2 cannot run there
    assert kernels.pack(absorbing, 1, 2, 1, 2.0) == pytest.approx(2.0)
    assert kernels.pack(absorbing, 1, 2, 1, 100.0) == pytest.approx(2.0)
    # the stage {op0} (i = 1, j = 0): their descendant op5 is not in j, their ancestor
    # op0 is in i: available; the stage {} before op0 (i = j = 0) gets nothing
    assert kernels.pack(absorbing, 0, 1, 0, 2.0) == pytest.approx(1.5)
    assert kernels.pack(absorbing, 0, 0, 0, 2.0) == 0.0
    # past op5 (j = 2 holds it), nothing is available either
    assert kernels.pack(absorbing, 0, 2, 2, 2.0) == 0.0
    assert kernels.idle_room(absorbing, 2.0).tolist() == pytest.approx([1.5, 2.0])
    # and the bitsets the DP builds over the subproblem's ideals are those
    sub_blocks = contract(sub)
    lattice = _ideal_lattice(sub_blocks, 100, SolverOptions())
    early, late = _availability(sub_blocks, lattice, packing)
    for i in range(lattice.bits.shape[0]):
        held = {problem.ops[kept[op]].name for op in range(len(sub.ops))
                if int(lattice.bits[i, 0]) >> int(sub_blocks.block_of_op[op]) & 1}  # fmt: skip
        assert int(early[i, 0]) == (15 if "op0" in held else 0), held
        assert int(late[i, 0]) == (0 if "op5" in held else 15), held


def test_lift_gives_up_where_the_subproblem_orders_the_neighbours_the_other_way() -> None:
    """Dropping the only path between two blocks lets the subproblem put the later one
    first: its plan then cannot take the dropped block back, and lift says so."""
    ops = tuple(
        Op(key=i, name=f"op{i}", latency=(1.0,), supported=(True,), size_bytes=0.0,
           transfer_cost=0.0, color=i)
        for i in range(3)
    )  # fmt: skip
    problem = Problem(name="path", ops=ops, edges=((0, 1), (1, 2)), samples_per_step=1,
                      kinds=(DeviceKind("gpu", DeviceClass.ACCELERATOR, 2),))  # fmt: skip
    blocks = contract(problem, absorb_free_leaves=False)
    middle = int(blocks.block_of_op[1])
    _, kept = without_blocks(problem, blocks, [middle])
    for devices in itertools.product(range(2), repeat=2):
        placement = lift(problem, blocks, [middle], kept, Placement(devices))
        if devices == (1, 0):
            assert placement is None
        else:
            assert placement is not None and evaluate(problem, placement).contiguous


def test_auto_keeps_the_milps_proof_after_the_relaxations_bound() -> None:
    """Past ``--max-ideals``, auto lets the MILP search from the relaxation's bound; where
    the MILP proves the DP's plan optimal (by its backend's tolerance), the answer says
    so (it read only the bounds' 1e-9 test and printed "not proven optimal", gap 0.00%,
    on BERT-L3 training, found by an audit)."""
    from placer.frontends.workload import read_workload
    from tests.conftest import EXPECTED, REFERENCE

    name = "operator-graphs/bert_l-3_training"
    problem = read_workload(REFERENCE / f"{name}.json")
    solved = solve_auto(problem, SolverOptions(max_ideals=1000, time_limit=20))
    assert solved.objective == pytest.approx(EXPECTED["optimal"][name], rel=1e-5)
    assert solved.optimal, solved.notes
    assert "without its widest blocks it proves a lower bound" in solved.notes[0]
