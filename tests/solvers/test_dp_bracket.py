"""The bracket of placer.solvers.dp.bracket against brute force: its lower bound never
exceeds the contiguous optimum, and its plan is a real placement no better than it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from placer.errors import InfeasiblePlacement
from placer.evaluator import evaluate
from placer.solvers import SolverOptions
from placer.solvers.blocks import contract
from placer.solvers.dp.bracket import bracket
from placer.solvers.dp.search import _ideal_lattice, _Stages, solve_dp
from tests.solvers.test_dp_links import cluster_problems
from tests.solvers.test_replicas import with_replicas
from tests.strategies import brute_force, describe, workloads


def check(problem) -> None:
    try:
        best = brute_force(problem)
    except InfeasiblePlacement:
        return
    blocks = contract(problem)
    lattice = _ideal_lattice(blocks, 10**6, SolverOptions())
    found = bracket(problem, blocks, _Stages(blocks, lattice), SolverOptions())
    assert found.lower <= best * (1 + 1e-9) + 1e-12, describe(problem)
    if found.placement is not None:
        evaluation = evaluate(problem, found.placement)
        if evaluation.valid:  # memory is not part of the bracket: the evaluator decides
            assert evaluation.max_load >= best - 1e-9


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
def test_bracket_holds_the_optimum(problem) -> None:
    check(problem)


@settings(max_examples=400, deadline=None)
@given(cluster_problems())
def test_bracket_holds_the_optimum_on_links(problem) -> None:
    check(problem)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(with_replicas(workloads(max_forward=8)))
def test_bracket_holds_the_optimum_with_side_computations(problem) -> None:
    check(problem)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
def test_dp_past_its_pair_limit_answers_with_the_bracket(problem) -> None:
    """With too few pairs allowed, the DP still answers: a valid plan and a bound that
    brackets the optimum."""
    try:
        best = brute_force(problem)
    except InfeasiblePlacement:
        return
    try:
        solved = solve_dp(problem, SolverOptions(max_pairs=1))
    except InfeasiblePlacement:
        return  # no linear order fits memory: the bracket's plan may not either
    evaluation = evaluate(problem, solved.placement)
    assert evaluation.valid
    assert evaluation.max_load == pytest.approx(solved.objective)
    assert solved.objective >= best - 1e-9
    if solved.lower_bound is not None:
        assert solved.lower_bound <= best * (1 + 1e-9) + 1e-12


def _wide_problem():
    """Four parallel two-op branches between a source and a sink, on three devices of
    two kinds: 3**4 + 2 ideals, more than four per block, so the DP brackets first."""
    from placer.problem import DeviceClass, DeviceKind, Op, Problem

    branches = 4
    sink = 2 * branches + 1
    ops = [Op(0, "source", (1.0, 3.0), (True, True), 0.0, 0.5, 0)]
    edges = []
    for branch in range(branches):
        a, b = 1 + 2 * branch, 2 + 2 * branch
        ops += [
            Op(a, f"a{branch}", (1.0 + branch, 2.0), (True, True), 0.0, 0.25, a),
            Op(b, f"b{branch}", (0.5, 1.5 + branch), (True, True), 0.0, 0.25, b),
        ]
        edges += [(0, a), (a, b), (b, sink)]
    ops.append(Op(sink, "sink", (2.0, 1.0), (True, True), 0.0, 0.0, sink))
    kinds = (
        DeviceKind("gpu", DeviceClass.ACCELERATOR, 2, float("inf")),
        DeviceKind("cpu", DeviceClass.CPU, 1, float("inf"), pays_communication=False),
    )
    return Problem("wide", tuple(ops), tuple(edges), kinds)


def test_a_close_bracket_answers_without_the_exact_run(monkeypatch) -> None:
    from placer.solvers.dp import search as dp_module
    problem = _wide_problem()
    best = brute_force(problem)
    exact = solve_dp(problem)
    assert exact.optimal and exact.objective == pytest.approx(best)
    monkeypatch.setattr(dp_module, "QUICK_PAIRS", 0)
    quick = solve_dp(problem, SolverOptions(accept_gap=1.0))
    assert quick.bracketed and not quick.optimal
    assert "pairs" not in quick.stats  # the exact DP never ran
    assert quick.lower_bound <= best + 1e-12 <= quick.objective + 2e-12
    # without an acceptable gap the exact DP runs and proves the optimum
    assert solve_dp(problem, SolverOptions(accept_gap=None)).optimal


def test_a_bracket_past_the_deadline_gives_up_before_its_charges() -> None:
    from placer.problem import DeviceClass, DeviceKind, Op, Problem

    ops = tuple(Op(i, f"op{i}", (1.0,), (True,), 0.0, 0.1, i) for i in range(6))
    problem = Problem("chain", ops, tuple((i, i + 1) for i in range(5)),
                      (DeviceKind("d", DeviceClass.ACCELERATOR, 2),))  # fmt: skip
    blocks = contract(problem)
    stages = _Stages(blocks, _ideal_lattice(blocks, 10**6, SolverOptions()))
    found = bracket(problem, blocks, stages, SolverOptions(deadline=0.0))  # long past
    assert (found.lower, found.placement) == (0.0, None)
    assert stages._cuts == {}  # no cut list was made
    assert bracket(problem, blocks, stages, SolverOptions()).lower > 0  # in time: a bound
