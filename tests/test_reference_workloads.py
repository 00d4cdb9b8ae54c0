"""The DP against the optima of [1]_'s reference DP, and the evaluator against the
published human-expert splits (values in tests/data/dnn-partitioning/expected.json).

.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import json

import pytest

from placer.evaluator import evaluate
from placer.frontends.plans import read_plan
from placer.frontends.workload import read_workload
from placer.solvers.dp.search import solve_dp
from tests.conftest import EXPECTED, REFERENCE

OPTIMA = sorted(EXPECTED["optimal"].items())
EXPERTS = sorted(EXPECTED["expert"].items())


@pytest.mark.parametrize(("workload", "optimum"), OPTIMA, ids=[w for w, _ in OPTIMA])
def test_dp_matches_reference_optimum(workload: str, optimum: float) -> None:
    problem = read_workload(REFERENCE / f"{workload}.json")
    solved = solve_dp(problem)
    assert solved.optimal
    assert solved.objective == pytest.approx(optimum, rel=1e-5)
    evaluation = evaluate(problem, solved.placement)
    assert evaluation.valid, evaluation.violations
    assert evaluation.contiguous
    assert evaluation.max_load == pytest.approx(solved.objective, rel=1e-12)
    assert len(evaluation.stages) <= problem.total_devices


@pytest.mark.parametrize(("workload", "expert"), EXPERTS, ids=[w for w, _ in EXPERTS])
def test_expert_split_value(workload: str, expert: list) -> None:
    plan, value = expert
    problem = read_workload(REFERENCE / f"{workload}.json")
    evaluation = evaluate(problem, read_plan(REFERENCE / plan, problem))
    assert evaluation.valid, evaluation.violations
    assert evaluation.max_load == pytest.approx(value, rel=1e-5)


@pytest.mark.parametrize(
    "workload", ["layer-graphs/bert24_training", "operator-graphs/bert_l-3_inference"]
)
def test_cli_json_contract(run_placer, workload: str, tmp_path) -> None:
    path = REFERENCE / f"{workload}.json"
    result = run_placer("place", path, "--solver", "dp", "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["max_load"] == pytest.approx(EXPECTED["optimal"][workload], rel=1e-5)
    assert document["throughput"] == pytest.approx(1 / document["max_load"])
    assert document["solver"] == "dp"
    assert document["optimal"] is True
    problem = read_workload(path)
    placed = []
    for stage in document["stages"]:
        assert set(stage) >= {"device", "kind", "nodes", "load", "memory_bytes"}
        assert stage["kind"] in ("accelerator", "cpu")
        assert isinstance(stage["load"], float)
        placed += stage["nodes"]
    assert sorted(placed) == sorted(op.key for op in problem.ops)
    assert max(s["load"] for s in document["stages"]) == pytest.approx(document["max_load"])

    # placer's own output is a plan that `placer evaluate` reads back to the same value
    plan = tmp_path / "plan.json"
    assert run_placer("place", path, "--output", plan).exit_code == 0
    again = run_placer("evaluate", path, plan, "--format", "json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["max_load"] == pytest.approx(document["max_load"])
