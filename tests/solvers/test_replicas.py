"""Side computations recomputed by every stage that reads them (``Problem.replicas``).

Every solver must charge a replica exactly as the evaluator does: its latency and
memory once on each device that holds one of its readers.  Brute force (through the
evaluator) is the oracle, on random workloads, on per-link clusters and on chains.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placer.errors import InfeasiblePlacement, NoPlacementFound
from placer.evaluator import evaluate
from placer.problem import Placement, Problem, Replica
from placer.solvers import SolverOptions
from placer.solvers.blocks import contract
from placer.solvers.dp.search import solve_dp
from placer.solvers.milp.solve import solve_milp
from tests.solvers.test_dp_links import cluster_problems
from tests.strategies import brute_force, describe, workloads


@st.composite
def with_replicas(draw, problems) -> Problem:
    """A problem of ``problems`` with up to three side computations, each read by a
    random set of forward ops, costing time on each kind and (sometimes) memory."""
    problem = draw(problems)
    forward = [i for i, op in enumerate(problem.ops) if not op.backward]
    replicas = []
    for r in range(draw(st.integers(1, 3))):
        readers = draw(st.sets(st.sampled_from(forward), min_size=1, max_size=len(forward)))
        latency = tuple(
            draw(st.sampled_from([0.0, 0.5, 1.0, 2.5])) for _ in problem.kinds
        )
        size = draw(st.sampled_from([0.0, 0.0, 1.0]))
        replicas.append(Replica(f"side{r}", latency, size, tuple(sorted(readers))))
    return replace(problem, replicas=tuple(replicas))


def check_against_brute_force(problem: Problem, solve) -> None:
    try:
        solved = solve(problem)
    except (InfeasiblePlacement, NoPlacementFound):
        solved = None
    try:
        best = brute_force(problem)
    except InfeasiblePlacement:
        assert solved is None, describe(problem)
        return
    assert solved is not None, describe(problem)
    evaluation = evaluate(problem, solved.placement)
    assert evaluation.valid, evaluation.violations
    assert evaluation.max_load == pytest.approx(solved.objective, rel=1e-9, abs=1e-9)
    assert evaluation.max_load >= best - 1e-9
    if solved.optimal:
        assert evaluation.max_load == pytest.approx(best, rel=1e-9, abs=1e-9), describe(problem)
    low = solved.stats.get("contiguous_lower_bound", evaluation.max_load)
    assert low <= best + 1e-9


def test_free_leaf_is_not_absorbed_where_a_side_computation_fills_memory() -> None:
    """A free leaf (no latency) joins its neighbour's block only when memory can never
    bind: the side computation its neighbour needs counts too.  Here op 1 (1 byte) and
    the side computation of op 0 (1 byte) each fill a device of 1 byte: merged, no
    device holds them, though two devices do apart."""
    from placer.problem import DeviceClass, DeviceKind, Op

    ops = tuple(
        Op(key=i, name=str(i), latency=(0.0,), supported=(True,), size_bytes=float(i),
           transfer_cost=0.0, color=i)
        for i in range(2)
    )  # fmt: skip
    problem = Problem(
        name="leaf", ops=ops, edges=((0, 1),), time_unit="", samples_per_step=1,
        kinds=(DeviceKind("accel", DeviceClass.ACCELERATOR, 2, 1.0, True),),
        replicas=(Replica("side", (0.0,), 1.0, (0,)),),
    )  # fmt: skip
    assert contract(problem).n_blocks == 2
    check_against_brute_force(problem, solve_dp)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(with_replicas(workloads()))
def test_dp_with_side_computations_equals_brute_force(problem) -> None:
    check_against_brute_force(problem, solve_dp)
    try:
        solved = solve_dp(problem)
    except InfeasiblePlacement:
        return
    # without link differences the DP is exact: it must say so
    assert solved.optimal, describe(problem)


@settings(max_examples=80, deadline=None)
@given(with_replicas(cluster_problems()))
def test_dp_with_side_computations_on_links(problem) -> None:
    check_against_brute_force(problem, solve_dp)


@settings(max_examples=60, deadline=None)
@given(with_replicas(cluster_problems(chain=True)))
def test_dp_with_side_computations_on_a_chain(problem) -> None:
    """A path goes through the sweep first, which over-charges covers: it must not
    claim optimality from them."""
    check_against_brute_force(problem, solve_dp)


@settings(max_examples=40, deadline=None)
@given(with_replicas(workloads(max_forward=6)))
def test_milp_with_side_computations_equals_brute_force(problem) -> None:
    check_against_brute_force(problem, solve_milp)


@settings(max_examples=40, deadline=None)
@given(with_replicas(workloads(max_forward=5)))
def test_non_contiguous_milp_with_side_computations(problem) -> None:
    try:
        solved = solve_milp(problem, SolverOptions(contiguous=False))
    except (InfeasiblePlacement, NoPlacementFound):
        solved = None
    try:
        best = brute_force(problem, contiguous=False)
    except InfeasiblePlacement:
        assert solved is None
        return
    assert solved is not None
    value = evaluate(problem, solved.placement, require_contiguous=False).max_load
    assert value == pytest.approx(solved.objective, rel=1e-6, abs=1e-6)
    if solved.optimal:
        assert value == pytest.approx(best, rel=1e-6, abs=1e-6)


def _mask_problem(n_layers: int, mask_seconds: float, mask_bytes: float) -> Problem:
    """Layers in a chain on two identical devices, each layer reading one mask."""
    from placer.problem import DeviceClass, DeviceKind, Op

    ops = tuple(
        Op(i, f"layer{i}", (1.0,), (True,), 1.0, 0.0, i) for i in range(n_layers)
    )
    edges = tuple((i, i + 1) for i in range(n_layers - 1))
    kinds = (DeviceKind("gpu", DeviceClass.ACCELERATOR, 2, 4.0),)
    mask = Replica("mask", (mask_seconds,), mask_bytes, tuple(range(n_layers)))
    return Problem("masked", ops, edges, kinds, replicas=(mask,))


def test_every_stage_pays_the_side_computation_once() -> None:
    problem = _mask_problem(4, 0.5, 0.0)
    evaluation = evaluate(problem, Placement((0, 0, 1, 1)))
    assert [stage.compute for stage in evaluation.stages] == [2.5, 2.5]
    solved = solve_dp(problem)
    assert solved.optimal and solved.objective == pytest.approx(2.5)


def test_side_computation_memory_counts_on_each_stage() -> None:
    # 4 layers of 1 byte on devices of 4 bytes: a mask of 1 byte leaves room for 3
    # layers per device, so 2 + 2 is the only even split, and 4 + 0 does not fit
    problem = _mask_problem(4, 0.0, 1.0)
    assert not evaluate(problem, Placement((0, 0, 0, 0))).valid
    assert evaluate(problem, Placement((0, 0, 0, 1))).valid
    solved = solve_dp(problem)
    assert evaluate(problem, solved.placement).valid
    assert solved.objective == pytest.approx(2.0)
    tight = replace(problem, replicas=(replace(problem.replicas[0], size_bytes=2.5),))
    with pytest.raises((InfeasiblePlacement, NoPlacementFound)):
        solve_dp(tight)  # 1 layer + 2.5 bytes of mask fits, 2 layers do not: 4 devices needed


def test_covers_do_not_block_free_leaf_absorption_wrongly() -> None:
    """A free leaf that reads a side computation its neighbour does not need stays its
    own block: moving it would make the neighbour's device recompute it."""
    from placer.problem import DeviceClass, DeviceKind, Op

    ops = (
        Op(0, "a", (1.0,), (True,), 0.0, 0.0, 0),
        Op(1, "leaf", (0.0,), (True,), 0.0, 0.0, 1),
    )
    kinds = (DeviceKind("gpu", DeviceClass.ACCELERATOR, 2, math.inf),)
    problem = Problem("leaf", ops, ((0, 1),), kinds, replicas=(Replica("m", (3.0,), 0.0, (1,)),))
    assert contract(problem).n_blocks == 2
    plain = replace(problem, replicas=())
    assert contract(plain).n_blocks == 1


def test_the_table_says_what_was_searched(run_placer) -> None:
    from pathlib import Path

    bert = Path(__file__).resolve().parents[2] / "sample_models" / "bert_base.onnx"
    result = run_placer("place", bert, "--input-shape", "input_ids=8,128", "--format", "table")
    assert result.exit_code == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("searched:")]
    placed = run_placer("place", bert, "--input-shape", "input_ids=8,128", "--format", "json")
    import json

    plan = json.loads(placed.stdout)
    ops = sum(len(stage["nodes"]) for stage in plan["stages"])
    recomputed = {n for stage in plan["stages"] for n in stage["recomputed"]}
    assert line == (
        f"searched: {ops:,} ops, {len(recomputed)} side computations recomputed per stage, "
        f"{int(plan['stats']['blocks']):,} blocks, {int(plan['stats']['ideals']):,} ideals"
    )
    assert len(recomputed) == 8  # BERT's position ids and attention mask
