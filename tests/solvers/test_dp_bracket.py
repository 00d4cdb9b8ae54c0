"""The bracket of placer.solvers.dp_bracket against brute force: its lower bound never
exceeds the contiguous optimum, and its plan is a real placement no better than it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from placer.blocks import contract
from placer.errors import InfeasiblePlacement
from placer.evaluate import evaluate
from placer.solvers import SolverOptions
from placer.solvers.dp import _ideal_lattice, _Stages, solve_dp
from placer.solvers.dp_bracket import bracket
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
    found = bracket(problem, blocks, lattice, _Stages(blocks, lattice).lat, SolverOptions())
    assert found.lower <= best * (1 + 1e-9) + 1e-12, describe(problem)
    if found.placement is not None:
        evaluation = evaluate(problem, found.placement)
        if evaluation.valid:  # memory is not part of the bracket: the evaluator decides
            assert evaluation.max_load >= best - 1e-9


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
def test_bracket_holds_the_optimum(problem) -> None:
    check(problem)


@settings(max_examples=80, deadline=None)
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
