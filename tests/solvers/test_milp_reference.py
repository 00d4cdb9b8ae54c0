"""The MILP finds and proves the reference optima of the paper's workloads (a file of
its own: the two ResNet-50 graphs take a minute and a half, and the test workers take
whole files)."""

from __future__ import annotations

import pytest

from placer.frontends.workload import read_workload
from placer.solvers import SolverOptions
from placer.solvers.milp.solve import solve_milp
from tests.conftest import EXPECTED, REFERENCE
from tests.solvers.test_milp import check_claim

SMALL_WORKLOADS = [
    "layer-graphs/bert24_inference",
    "layer-graphs/bert24_training",
    "operator-graphs/bert_l-3_inference",
    pytest.param("layer-graphs/resnet50_inference", marks=pytest.mark.slow),
    pytest.param("layer-graphs/resnet50_training", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name", SMALL_WORKLOADS)
def test_reference_optimum(name) -> None:
    problem = read_workload(REFERENCE / f"{name}.json")
    result = solve_milp(problem, SolverOptions(time_limit=300))
    assert result.optimal, result.notes
    check_claim(problem, result)
    assert result.objective == pytest.approx(EXPECTED["optimal"][name], rel=1e-5)
    assert result.gap is not None and result.gap <= 1e-6
    assert result.lower_bound == pytest.approx(result.objective, rel=1e-6)
