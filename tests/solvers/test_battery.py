"""One battery, every solver that must agree: each exact solver's optimum is brute force's
on small random problems (uniform links and links of different speeds) and the reference
DP's on the shared workloads, and each claims only what the evaluator confirms.

The pattern of networkx's ``test_maxflow.py`` (``flow_funcs``): a list of solvers, every
test parametrised over it, so that a new solver joins every check by joining the list.
"""

from __future__ import annotations

from dataclasses import replace

import pulp
import pytest
from hypothesis import HealthCheck, given, settings

from placer.errors import InfeasiblePlacement
from placer.evaluator import evaluate
from placer.frontends.workload import read_workload
from placer.solvers import SolverOptions
from placer.solvers.auto import solve_auto
from placer.solvers.dp.search import solve_dp
from placer.solvers.milp import solve_milp
from tests.conftest import EXPECTED, REFERENCE
from tests.solvers.test_dp_links import cluster_problems
from tests.strategies import brute_force, describe, workloads

_HIGHS = pulp.HiGHS().available()


def dp(problem, options):
    return solve_dp(problem, options)


def auto(problem, options):
    return solve_auto(problem, options)


def auto_timed(problem, options):
    """auto given a time budget: where the DP brackets the optimum over links of
    different speeds, the MILP searches on from its plan and may prove it."""
    return solve_auto(problem, replace(options, time_limit=20.0))


def milp_highs(problem, options):
    if not _HIGHS:
        pytest.skip("highspy is not installed")
    return solve_milp(problem, replace(options, mip_solver="highs"))


def milp_cbc(problem, options):
    return solve_milp(problem, replace(options, mip_solver="cbc"))


#: Exact for the contiguous model (the DP's and the paper's [1]).
CONTIGUOUS = [dp, auto, milp_highs, milp_cbc]
#: Exact where links differ in speed (the DP brackets the optimum there: docs/model.md).
LINKS_EXACT = [milp_highs, milp_cbc]
#: Exact for the model where a device may hold any set of ops.
FREE = [milp_highs, milp_cbc]
_SETTINGS = settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


def _optimum_or_none(problem, contiguous: bool):
    try:
        return brute_force(problem, contiguous=contiguous)
    except InfeasiblePlacement:
        return None


def _agrees(solve, problem, contiguous: bool = True) -> None:
    """``solve``'s answer on ``problem`` is brute force's, and the evaluator's figure."""
    expected = _optimum_or_none(problem, contiguous)
    try:
        result = solve(problem, SolverOptions(contiguous=contiguous))
    except InfeasiblePlacement:
        assert expected is None, describe(problem)
        return
    assert expected is not None, describe(problem)
    evaluation = evaluate(problem, result.placement, require_contiguous=contiguous)
    assert evaluation.valid, evaluation.violations
    assert evaluation.max_load == pytest.approx(result.objective, rel=1e-9, abs=1e-9)
    assert result.optimal and (result.gap or 0.0) <= 1e-6
    assert result.objective == pytest.approx(expected, rel=1e-6, abs=1e-6), describe(problem)


@pytest.mark.parametrize("solve", CONTIGUOUS, ids=lambda f: f.__name__)
@_SETTINGS
@given(problem=workloads(max_forward=8))
def test_contiguous_optimum_is_brute_force(solve, problem) -> None:
    _agrees(solve, problem)


@pytest.mark.parametrize("solve", LINKS_EXACT, ids=lambda f: f.__name__)
@_SETTINGS
@given(problem=cluster_problems())
def test_links_of_different_speeds_are_charged_exactly(solve, problem) -> None:
    """Each transfer over the link it crosses, as the evaluator charges it."""
    _agrees(solve, problem)


@pytest.mark.parametrize("solve", [*CONTIGUOUS, auto_timed], ids=lambda f: f.__name__)
@_SETTINGS
@given(problem=cluster_problems())
def test_every_claim_over_links_of_different_speeds_is_honest(solve, problem) -> None:
    """Where a solver does not claim the optimum (the DP over links of different speeds
    brackets it), its plan is no better than the optimum and its bound no worse."""
    expected = _optimum_or_none(problem, contiguous=True)
    try:
        result = solve(problem, SolverOptions())
    except InfeasiblePlacement:
        assert expected is None, describe(problem)
        return
    assert expected is not None, describe(problem)
    assert evaluate(problem, result.placement).max_load == pytest.approx(result.objective)
    assert result.objective >= expected - 1e-9
    assert result.lower_bound <= expected + 1e-9
    if result.optimal:
        assert result.objective == pytest.approx(expected, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("solve", FREE, ids=lambda f: f.__name__)
@_SETTINGS
@given(problem=workloads(max_forward=7))
def test_free_optimum_is_brute_force(solve, problem) -> None:
    _agrees(solve, problem, contiguous=False)


@pytest.mark.parametrize("solve", FREE, ids=lambda f: f.__name__)
@_SETTINGS
@given(problem=cluster_problems())
def test_free_optimum_over_links_of_different_speeds(solve, problem) -> None:
    _agrees(solve, problem, contiguous=False)


_REFERENCE = [
    "layer-graphs/bert24_inference",
    "layer-graphs/bert24_training",
    "operator-graphs/bert_l-3_inference",
]


@pytest.mark.parametrize("name", _REFERENCE)
@pytest.mark.parametrize("solve", [dp, auto, milp_highs], ids=lambda f: f.__name__)
def test_reference_optimum(solve, name) -> None:
    """The optimum the paper's own DP found on its workloads."""
    problem = read_workload(REFERENCE / f"{name}.json")
    result = solve(problem, SolverOptions(time_limit=300))
    assert result.optimal, result.notes
    assert evaluate(problem, result.placement).max_load == pytest.approx(result.objective)
    assert result.objective == pytest.approx(EXPECTED["optimal"][name], rel=1e-5)
