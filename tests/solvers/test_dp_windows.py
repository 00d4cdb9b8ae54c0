"""The DP's work windows (placer.solvers.dp.windows) against brute force: pruned to a
bound, the exact DP still finds every optimum within the bound, through the lattice walk
and through the band scan alike, and the probe of placer.solvers.dp.search proves the
gap it claims."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placer.errors import InfeasiblePlacement
from placer.evaluator import evaluate
from placer.solvers import SolverOptions
from placer.solvers.blocks import contract
from placer.solvers.dp import neighbours as neighbours_module
from placer.solvers.dp import search
from placer.solvers.dp.costing import Role
from placer.solvers.dp.neighbours import neighbour_run, solve_neighbours
from placer.solvers.dp.windows import Pruning, absorb, pruning, work_windows
from tests.solvers.test_dp_links import cluster_problems
from tests.strategies import brute_force, describe

#: the band fixture patches the module once for every example: nothing to reset
_FIXTURE = [HealthCheck.function_scoped_fixture]


def _optimum(problem):
    try:
        return brute_force(problem, contiguous=True)
    except InfeasiblePlacement:
        return None


def _lattice(problem):
    blocks = contract(problem)
    options = SolverOptions()
    return blocks, search._Stages(blocks, search._ideal_lattice(blocks, 10**6, options)), options


def _forced(latency, lat, counts, strides, bound) -> Pruning:
    """The pruning of a run, with the walk's length inflated in its band so that every
    ideal's sub-ideals come from the band scan."""
    found = pruning(latency, lat, counts, strides, bound)
    if not found.band.use:
        return found
    return found._replace(band=found.band._replace(all_lat=np.repeat(found.band.all_lat, 10_000)))


@pytest.fixture(params=["walk", "band"])
def path(request, monkeypatch):
    """Run each test through the lattice walk as the DP chooses it, and again with the
    band scan forced for every ideal."""
    if request.param == "band":
        monkeypatch.setattr(search, "pruning", _forced)
        monkeypatch.setattr(neighbours_module, "pruning", _forced)
    return request.param


@settings(max_examples=120, deadline=None, suppress_health_check=_FIXTURE)
@given(cluster_problems(uniform_links=True), st.sampled_from([0.6, 0.9, 1.0, 1.2, 2.0]))
def test_the_exact_run_within_a_bound_finds_every_optimum_under_it(path, problem, share):
    """Every run's value is the optimum when the optimum is within the bound, and
    otherwise above the bound: the windows never cut a split within it."""
    expected = _optimum(problem)
    if expected is None:
        return
    blocks, stages, options = _lattice(problem)
    bound = expected * share + 1e-12
    found = math.inf
    for run in search.costings(problem, blocks):
        assert run.role is Role.EXACT
        placement, value, _ = search._run(problem, blocks, run, stages, bound, options)
        if placement is not None:
            assert evaluate(problem, placement).max_load == pytest.approx(value, abs=1e-9)
            found = min(found, value)
    if expected <= bound:
        assert found == pytest.approx(expected, abs=1e-9), describe(problem)
    else:
        assert found > bound or found == math.inf, describe(problem)


@settings(max_examples=120, deadline=None, suppress_health_check=_FIXTURE)
@given(cluster_problems(), st.sampled_from([0.6, 0.9, 1.0, 1.5]))
def test_the_neighbour_dp_within_a_bound_still_bounds_the_optimum(path, problem, share):
    """Pruned to a bound, the neighbour DP's least charge or the bound, whichever is less,
    is still at most the optimum."""
    expected = _optimum(problem)
    if expected is None:
        return
    blocks, stages, options = _lattice(problem)
    run = neighbour_run(problem, blocks)
    assert run is not None
    bound = expected * share + 1e-12
    _, value, _ = solve_neighbours(problem, blocks, run, stages, bound, options)
    assert min(value, bound) <= expected + 1e-9, describe(problem)


@settings(max_examples=120, deadline=None, suppress_health_check=_FIXTURE)
@given(cluster_problems(), st.sampled_from([0.05, 0.2, 0.5]))
def test_the_probe_proves_the_gap_it_reports(path, problem, target):
    """From the linear orders' plan, the probe's answer is a real plan no better than the
    optimum, with a bound no higher than it, and within the target gap unless the
    neighbour DP's bound (links of different speeds) stopped short of it."""
    expected = _optimum(problem)
    if expected is None:
        return
    found = search._Search(problem, SolverOptions(accept_gap=target))
    stages = search._Stages(found.blocks, search._ideal_lattice(found.blocks, 10**6, found.options))
    found.linear_orders()
    if found.best.placement is None:  # memory caps no linear order fits: nothing to probe
        return
    result = found.probe(stages, False, None)
    if result is None:  # the plan was within the target already
        assert found.best.value <= expected / (1 - target) + 1e-9, describe(problem)
        return
    assert result.objective >= expected - 1e-9, describe(problem)
    assert evaluate(problem, result.placement).max_load == pytest.approx(result.objective)
    assert result.lower_bound <= expected + 1e-9, describe(problem)
    if result.optimal:
        assert result.objective == pytest.approx(expected, abs=1e-9), describe(problem)
    elif found.neighbour is None:
        assert result.gap <= target + 1e-9, describe(problem)


def test_the_windows_of_two_devices_and_a_slow_one():
    """Four blocks of latency 1 on a fast kind, 4 on a slow one: within a bound of 2.5,
    one fast device holds at most 2.5 of work and the slow one at most 2.5 / 4 of the
    fast kind's, so the ideal after one fast stage lies between 4 - 2.5 - 0.625 and 2.5."""
    latency = np.array([[1.0] * 4, [4.0] * 4])
    counts = np.array([2, 1])
    strides = np.array([1, 3])
    windows = work_windows(latency, counts, strides, 2.5)
    one_fast = 1  # one device of kind 0, none of kind 1
    assert windows.lo[0, one_fast] == pytest.approx(4 - 2.5 - 0.625)
    assert windows.hi[0, one_fast] == pytest.approx(2.5)
    assert windows.lo[1, one_fast] == pytest.approx(16 - 4 * 2.5 - 2.5)  # in the slow kind's time
    everything = 2 + 1 * 3
    assert windows.lo[0, everything] == pytest.approx(4.0)
    assert windows.hi[0, everything] == pytest.approx(5.0 + 0.625)


def test_absorb_takes_the_best_value_per_weight_first():
    value = np.array([1.0, 6.0, 2.0, 5.0])
    weight = np.array([1.0, 2.0, 0.0, np.inf])  # free; never fits
    assert absorb(value, weight, np.array([0.0, 1.0, 2.0, 3.0, 9.0])) == pytest.approx(
        [2.0, 5.0, 8.0, 9.0, 9.0]
    )
