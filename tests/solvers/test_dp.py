"""The DP against brute force on random small workloads, and its fallback and limits."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from placer.errors import InfeasiblePlacement
from placer.evaluator import evaluate
from placer.frontends.workload import read_workload
from placer.solvers import SolverOptions
from placer.solvers.auto import solve_auto
from placer.solvers.base import BoundSource
from placer.solvers.blocks import contract
from placer.solvers.dp.search import _is_chain, solve_dp
from tests.conftest import EXPECTED, REFERENCE
from tests.strategies import brute_force, describe, workloads


def dp_or_infeasible(problem):
    try:
        return solve_dp(problem)
    except InfeasiblePlacement:
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
def test_dp_equals_brute_force(problem) -> None:
    solved = dp_or_infeasible(problem)
    try:
        expected = brute_force(problem)
    except InfeasiblePlacement:
        assert solved is None, describe(problem)
        return
    assert solved is not None, describe(problem)
    assert solved.optimal
    evaluation = evaluate(problem, solved.placement)
    assert evaluation.valid, evaluation.violations
    assert evaluation.max_load == pytest.approx(solved.objective, rel=1e-9, abs=1e-9)
    assert solved.objective == pytest.approx(expected, rel=1e-9, abs=1e-9), describe(problem)


@settings(max_examples=60, deadline=None)
@given(workloads(max_forward=7))
def test_linear_fallback_is_valid_and_no_better(problem) -> None:
    exact = dp_or_infeasible(problem)
    try:
        fallback = solve_dp(problem, SolverOptions(max_ideals=1))
    except InfeasiblePlacement:
        # the linear order may miss a feasible placement only when memory binds
        assert exact is None or problem.kinds[0].memory_bytes < float("inf")
        return
    if fallback.optimal:
        # a path's ideals are its prefixes: solved exactly by the sweep, never given up;
        # else the DP without the blocks that widen the graph proved the plan optimal
        relaxed = fallback.bound_source is BoundSource.DP_RELAXED
        assert (_is_chain(contract(problem)) or relaxed) and exact is not None
        assert fallback.objective == pytest.approx(exact.objective, rel=1e-9, abs=1e-12)
        return
    assert any("linear order" in note for note in fallback.notes)
    assert evaluate(problem, fallback.placement).valid
    if exact is not None:
        assert fallback.objective >= exact.objective - 1e-9


def test_fallback_on_a_real_workload_names_the_bound() -> None:
    problem = read_workload(REFERENCE / "layer-graphs/gnmt_inference.json")
    solved = solve_dp(problem, SolverOptions(max_ideals=1000))
    assert "1,000 ideals" in solved.notes[0]
    optimum = EXPECTED["optimal"]["layer-graphs/gnmt_inference"]  # to 4 decimals
    assert solved.objective >= optimum * (1 - 1e-5)
    assert evaluate(problem, solved.placement).valid
    # the DP with its 8 attention branches in a fixed order and 6 blocks (no work) left
    # out proves the fallback's plan optimal
    assert solved.optimal and solved.bound_source is BoundSource.DP_RELAXED
    assert solved.objective == pytest.approx(optimum, rel=1e-5)
    assert solved.lower_bound == solved.objective
    assert "with its 8 interchangeable side branches in a fixed order" in solved.notes[0]
    assert solved.stats["relaxed_branches"] == 8
    assert "proves the plan optimal" in solved.notes[0]
    # and auto says so
    auto = solve_auto(problem, SolverOptions(max_ideals=1000))
    assert auto.optimal and "proves its plan optimal" in auto.notes[0]


def test_pair_budget_falls_back() -> None:
    problem = read_workload(REFERENCE / "operator-graphs/bert_l-3_inference.json")
    solved = solve_dp(problem, SolverOptions(max_pairs=10))
    assert not solved.optimal
    assert "ideal pairs" in solved.notes[0]


def test_a_near_chain_past_the_pair_budget_still_gets_a_linear_plan() -> None:
    # few ideals per block: the DP skips the linear-order bound, then runs out of pairs
    name = "operator-graphs/resnet50_inference"
    problem = read_workload(REFERENCE / f"{name}.json")
    result = solve_dp(problem, SolverOptions(max_pairs=100))
    assert not result.optimal and "more than 100 ideal pairs" in result.notes[0]
    assert evaluate(problem, result.placement).valid
    assert result.objective >= EXPECTED["optimal"][name] * (1 - 1e-5)


def test_a_linear_order_is_split_exactly_only_where_that_fits_the_time(monkeypatch) -> None:
    """BERT-L3's transfers skip over blocks, so its sweep is not exact along an order and
    the ideal DP over the prefixes splits it, without a time limit; with the time left
    shorter than that DP is estimated to need (ten times its share), the sweep's split is
    the answer and that DP never runs (it took 16 of auto's 30 s on GPT-2-48)."""
    import time

    from placer.solvers.dp import search
    from placer.solvers.dp.chain import solve_order
    from placer.solvers.dp.costing import costings

    problem = read_workload(REFERENCE / "operator-graphs/bert_l-3_inference.json")
    blocks = contract(problem)
    runs = costings(problem, blocks)
    order = list(range(blocks.n_blocks))
    assert not any(solve_order(problem, blocks, run, order)[2] for run in runs)
    calls = []
    real_run = search._run
    monkeypatch.setattr(search, "_run", lambda *a, **k: calls.append(1) or real_run(*a, **k))
    exact = search.best_split(problem, blocks, runs, order)
    assert calls, "the ideal DP over the prefixes ran"
    states = sum(search.States.of(run.counts).n_states for run in runs)
    needed = search._prefix_work(blocks, order) * states / search.ORDER_WORK_PER_SECOND
    calls.clear()
    short = SolverOptions(deadline=time.monotonic() + needed / search.ORDER_SHARE / 10)
    swept = search.best_split(problem, blocks, runs, order, short)
    assert not calls
    assert evaluate(problem, swept).max_load >= evaluate(problem, exact).max_load - 1e-12
    # the MILP's seed takes the whole of its own (held) deadline
    long = SolverOptions(deadline=time.monotonic() + 60)
    search.best_split(problem, blocks, runs, order, long, share=1.0)
    assert calls


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads(max_forward=7))
def test_the_narrowed_split_is_a_real_placement_no_better_than_the_optimum(problem) -> None:
    """The narrowed DAG's arcs keep it acyclic, each of its ideals is one of the block
    DAG, and its split is a valid contiguous placement the evaluator scores at no
    less than the exact optimum."""
    import math
    from dataclasses import replace

    import numpy as np

    from placer.solvers.dp.costing import costings
    from placer.solvers.dp.search import _ideal_lattice, _narrowed_edges, narrowed_split

    blocks = contract(problem)
    edges = _narrowed_edges(blocks)
    m = blocks.n_blocks
    pred = [set() for _ in range(m)]
    for u, v in edges:
        pred[int(v)].add(int(u))
    order, done = [], set()
    while len(order) < m:  # a topological order exists: no cycle
        ready = [b for b in range(m) if b not in done and pred[b] <= done]
        assert ready, describe(problem)
        order += ready
        done.update(ready)
    assert {tuple(e) for e in blocks.edges} <= {tuple(e) for e in edges}
    try:
        optimum = solve_dp(problem).objective
    except InfeasiblePlacement:
        return
    placement = narrowed_split(problem, blocks, costings(problem, blocks), 10**6,
                               SolverOptions())  # fmt: skip
    if placement is None:
        return  # memory may bind where the narrowed cuts cannot avoid it
    evaluation = evaluate(problem, placement)
    assert evaluation.valid, evaluation.violations
    assert evaluation.max_load >= optimum * (1 - 1e-9) - 1e-12, describe(problem)
    narrowed = _ideal_lattice(replace(blocks, edges=edges), 10**6, SolverOptions())
    full = _ideal_lattice(blocks, 10**6, SolverOptions())
    rows = {row.tobytes() for row in full.bits}
    assert all(row.tobytes() in rows for row in narrowed.bits)
    assert len(narrowed.bits) <= len(full.bits) and math.isfinite(evaluation.max_load)
    assert np.array_equal(narrowed.bits[0], full.bits[0])
