"""Lower bounds never exceed the optimum, and the LP relaxation tightens the trivial ones."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from placer.errors import InfeasiblePlacement
from placer.frontends.workload import parse_workload, read_workload
from placer.solvers import SolverOptions
from placer.solvers.blocks import colour_blocks, contract
from placer.solvers.bounds import trivial_bound, volume_bound
from placer.solvers.dp.search import solve_dp
from placer.solvers.milp.relaxation import lower_bound
from placer.solvers.milp.solve import solve_milp
from tests.conftest import EXPECTED, REFERENCE
from tests.strategies import describe, workloads


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads(max_forward=8))
def test_bounds_never_exceed_the_optimum(problem) -> None:
    try:
        contiguous = solve_dp(problem).objective
    except InfeasiblePlacement:
        return
    assert lower_bound(problem) <= contiguous * (1 + 1e-9) + 1e-9, describe(problem)
    free = solve_milp(problem, SolverOptions(contiguous=False)).objective
    assert lower_bound(problem, contiguous=False) <= free * (1 + 1e-9) + 1e-9, describe(problem)
    assert trivial_bound(problem, contract(problem)) <= lower_bound(problem) + 1e-12


@pytest.mark.parametrize(
    "name", ["layer-graphs/bert24_training", "operator-graphs/bert_l-3_inference"]
)
def test_reference_bounds_are_valid(name) -> None:
    problem = read_workload(REFERENCE / f"{name}.json")
    bound = lower_bound(problem)
    assert bound <= EXPECTED["optimal"][name] * (1 + 1e-5)
    assert bound >= trivial_bound(problem, contract(problem))
    assert bound > 0


def test_trivial_bounds() -> None:
    document = {
        "maxSizePerFPGA": 10, "maxFPGAs": 2, "maxCPUs": 1,
        "nodes": [{"id": i, "supportedOnFpga": 1, "cpuLatency": 6.0, "fpgaLatency": lat,
                   "isBackwardNode": 0} for i, lat in enumerate([1.0, 2.0, 5.0])],
        "edges": [],
    }  # fmt: skip
    problem = parse_workload(document)
    # the slowest block costs 5 anywhere; 8 units of work over 3 devices is less
    assert trivial_bound(problem, contract(problem)) == 5.0
    assert lower_bound(problem) == pytest.approx(5.0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads(max_forward=8))
def test_the_volume_bound_never_exceeds_any_placement(problem) -> None:
    """The fractional split of the contracted blocks bounds every contiguous placement,
    and that of the colour classes every placement."""
    try:
        contiguous = solve_dp(problem).objective
        free = solve_milp(problem, SolverOptions(contiguous=False)).objective
    except InfeasiblePlacement:
        return
    bound = volume_bound(problem, contract(problem))
    assert bound <= contiguous * (1 + 1e-6) + 1e-9, describe(problem)
    bound = volume_bound(problem, colour_blocks(problem))
    assert bound <= free * (1 + 1e-6) + 1e-9, describe(problem)


def test_the_volume_bound_knows_a_slow_device_is_worth_less() -> None:
    """Two blocks of 1 s on a fast device, 10 s on a slow one; one of each device:
    the average counts the slow one as a whole device (1 s), the fractional split
    (the slow one takes 10/11 of a block while the fast one takes the rest) 20/11 s."""
    doc = {"maxSizePerFPGA": 10, "maxFPGAs": 1, "maxCPUs": 1, "edges": [], "nodes": [
        {"id": i, "supportedOnFpga": 1, "cpuLatency": 10.0, "fpgaLatency": 1.0,
         "isBackwardNode": 0} for i in (1, 2)]}  # fmt: skip
    problem = parse_workload(doc)
    blocks = contract(problem)
    assert trivial_bound(problem, blocks) == pytest.approx(1.0)
    assert volume_bound(problem, blocks) == pytest.approx(20 / 11, rel=1e-6)
    assert volume_bound(problem, blocks) <= solve_dp(problem).objective
