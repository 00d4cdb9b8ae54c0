"""One battery, every solver: valid placements whose objective is the evaluator's, and
the exact DP never worse than a baseline (all baselines are contiguous)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from placer.errors import InfeasiblePlacement
from placer.evaluator import evaluate
from placer.frontends.workload import read_workload
from placer.problem import DeviceClass, DeviceKind, Op, Problem
from placer.solvers import BASELINES, SOLVERS, SolverOptions
from tests.conftest import EXPECTED, REFERENCE
from tests.strategies import describe, workloads

OPTIONS = SolverOptions(time_limit=20)
#: Baselines that cut the same topological order as pipedream, which is optimal over it.
CHAIN_SPLITS = [name for name in BASELINES if name != "pipedream"]


def solve_or_none(name: str, problem: Problem):
    try:
        return SOLVERS[name](problem, OPTIONS)
    except InfeasiblePlacement:
        return None


def check_result(name: str, problem: Problem, solved) -> None:
    evaluation = evaluate(problem, solved.placement, require_contiguous=True)
    assert evaluation.valid, (name, evaluation.violations, describe(problem))
    assert solved.objective == pytest.approx(evaluation.max_load, rel=1e-9, abs=1e-12)
    if name in BASELINES:
        assert solved.optimal is False
        assert solved.solver == name


@pytest.mark.parametrize("name", sorted(SOLVERS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=workloads(max_forward=7))
def test_every_solver_is_valid_and_never_beats_the_dp(name: str, problem: Problem) -> None:
    solved = solve_or_none(name, problem)
    exact = solve_or_none("dp", problem)
    if solved is None:
        return
    check_result(name, problem, solved)
    assert exact is not None, (name, describe(problem))
    if name in BASELINES:
        assert exact.objective <= solved.objective * (1 + 1e-9) + 1e-12


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=workloads())
def test_pipedream_is_optimal_over_the_order_the_others_cut(problem: Problem) -> None:
    best = solve_or_none("pipedream", problem)
    for name in CHAIN_SPLITS:
        other = solve_or_none(name, problem)
        if other is None:
            continue
        check_result(name, problem, other)
        assert best is not None, (name, describe(problem))
        assert best.objective <= other.objective * (1 + 1e-9) + 1e-12, name


SHARED = sorted(EXPECTED["optimal"].items())


@pytest.mark.parametrize(("workload", "optimum"), SHARED, ids=[w for w, _ in SHARED])
def test_baselines_on_the_shared_workloads(workload: str, optimum: float) -> None:
    problem = read_workload(REFERENCE / f"{workload}.json")
    for name in BASELINES:
        solved = SOLVERS[name](problem, OPTIONS)
        check_result(name, problem, solved)
        assert solved.objective >= optimum * (1 - 1e-5), name
        assert len(evaluate(problem, solved.placement).stages) <= problem.total_devices


def _chain(n: int, kinds: tuple[DeviceKind, ...], size: float = 1.0) -> Problem:
    ops = tuple(
        Op(i, f"op{i}", (1.0,) * len(kinds), (True,) * len(kinds), size, 0.0, i) for i in range(n)
    )
    return Problem("chain", ops, tuple((i, i + 1) for i in range(n - 1)), kinds)


def test_uniform_gives_every_accelerator_as_many_ops() -> None:
    accel = DeviceKind("gpu", DeviceClass.ACCELERATOR, 4, 10.0)
    problem = _chain(8, (accel,))
    solved = SOLVERS["uniform"](problem, OPTIONS)
    stages = evaluate(problem, solved.placement).stages
    assert [len(stage.ops) for stage in stages] == [2, 2, 2, 2]


def test_single_names_why_no_device_holds_everything() -> None:
    accel = DeviceKind("gpu", DeviceClass.ACCELERATOR, 2, 3.0)
    with pytest.raises(InfeasiblePlacement, match=r"single: .*gpu offers 3 B, 8 B needed"):
        SOLVERS["single"](_chain(8, (accel,)), OPTIONS)


def test_uniform_says_which_stage_fits_nowhere() -> None:
    accel = DeviceKind("gpu", DeviceClass.ACCELERATOR, 2, 3.0)
    with pytest.raises(InfeasiblePlacement, match=r"uniform: no free device can take stage 1"):
        SOLVERS["uniform"](_chain(8, (accel,)), OPTIONS)
