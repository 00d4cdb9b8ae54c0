"""``placer compare``: every solver's plan in one table, failures as rows."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from placer.comparison import compare, default_solvers
from placer.errors import InputError
from placer.frontends.workload import read_workload
from placer.outputs.tables import render_comparison
from placer.problem import DeviceClass, DeviceKind, Op, Problem
from placer.solvers import BASELINES, SOLVERS
from tests.conftest import EXPECTED, REFERENCE, one_line_error

WORKLOAD = "layer-graphs/bert24_inference"


def test_rows_come_from_the_evaluator_and_the_dp_is_best() -> None:
    problem = read_workload(REFERENCE / f"{WORKLOAD}.json")
    comparison = compare(problem, ["dp", *BASELINES])
    rows = {row.solver: row for row in comparison.rows}
    assert list(rows) == ["dp", *BASELINES]
    assert rows["dp"].max_load == pytest.approx(EXPECTED["optimal"][WORKLOAD], rel=1e-5)
    assert rows["dp"].optimal and not any(rows[name].optimal for name in BASELINES)
    assert comparison.best is rows["dp"]
    assert rows["single"].speedup_vs_single == pytest.approx(1.0)
    for row in comparison.rows:
        assert row.valid and row.error is None
        assert row.max_load >= rows["dp"].max_load * (1 - 1e-9)
        assert row.throughput == pytest.approx(1 / row.max_load)
        assert row.speedup_vs_single == pytest.approx(rows["single"].max_load / row.max_load)
        assert row.peak_memory_bytes > 0


def test_a_solver_without_a_plan_is_a_row_with_its_error() -> None:
    # two ops of 2 bytes each, devices of 3 bytes: no single device holds both
    kind = DeviceKind("gpu", DeviceClass.ACCELERATOR, 2, 3.0)
    ops = tuple(Op(i, f"op{i}", (1.0,), (True,), 2.0, 0.5, i) for i in range(2))
    problem = Problem("tight", ops, ((0, 1),), (kind,))
    comparison = compare(problem, ["dp", "single"])
    dp, single = comparison.rows
    assert dp.valid and dp.speedup_vs_single is None
    assert single.error is not None and "single:" in single.error
    assert single.to_dict()["error"] == single.error
    assert "error" not in dp.to_dict()
    console = Console(record=True, width=120)
    render_comparison(comparison, console)
    assert "single: no one device can hold the whole model" in console.export_text()


def test_unknown_solver_is_rejected_before_anything_runs() -> None:
    problem = read_workload(REFERENCE / f"{WORKLOAD}.json")
    with pytest.raises(InputError, match="unknown solver 'fast'"):
        compare(problem, ["dp", "fast"])


def test_default_list_adds_the_milp_on_small_instances_only() -> None:
    small = read_workload(REFERENCE / f"{WORKLOAD}.json")
    large = read_workload(REFERENCE / "operator-graphs/bert_l-3_inference.json")
    assert default_solvers(large) == ["dp", *BASELINES]
    assert default_solvers(small)[-1] == ("milp" if "milp" in SOLVERS else "single")


def test_cli_table_highlights_the_best_and_json_has_every_row(run_placer) -> None:
    path = REFERENCE / f"{WORKLOAD}.json"
    solvers = "dp,pipedream,uniform,params,greedy,single"
    table = run_placer("compare", path, "--solvers", solvers)
    assert table.exit_code == 0, table.stderr
    assert "dp *" in table.stdout
    for name in solvers.split(","):
        assert name in table.stdout
    result = run_placer("compare", path, "--solvers", solvers, "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["results"]
    assert [row["solver"] for row in rows] == solvers.split(",")
    assert set(rows[0]) == {
        "solver", "max_load", "throughput", "optimal", "seconds", "speedup_vs_single",
        "peak_memory_bytes", "valid",
    }  # fmt: skip


def test_cli_unknown_solver_is_one_line_and_status_2(run_placer) -> None:
    result = run_placer("compare", REFERENCE / f"{WORKLOAD}.json", "--solvers", "dp,fast")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "unknown solver 'fast'" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("workload", sorted(EXPECTED["optimal"]))
def test_every_shared_workload_lists_five_solvers_and_the_dp_is_never_beaten(
    run_placer, workload
) -> None:
    """The default comparison: at least five solvers, and no contiguous baseline below
    the DP's proven optimum (the MILP joins on small instances, contiguous too)."""
    path = REFERENCE / f"{workload}.json"
    result = run_placer("compare", path, "--format", "json", "--time-limit", "5")
    assert result.exit_code == 0, result.stderr
    rows = {row["solver"]: row for row in json.loads(result.stdout)["results"]}
    assert len(rows) >= 5 and {"dp", *BASELINES} <= set(rows)
    dp = rows["dp"]
    assert dp["optimal"]
    assert dp["max_load"] == pytest.approx(EXPECTED["optimal"][workload], rel=1e-5)
    for row in rows.values():
        if row["max_load"] is not None:
            assert row["max_load"] >= dp["max_load"] * (1 - 1e-9), row["solver"]
    table = run_placer("compare", path, "--solvers", "dp,pipedream,uniform,params,greedy,single")
    assert table.exit_code == 0 and "dp *" in table.stdout


def test_compare_with_no_placement_at_all_exits_as_place_does(run_placer, tmp_path) -> None:
    """No device runs the op: not a table of errors and status 0, but place's status 3."""
    workload = tmp_path / "nofit.json"
    workload.write_text(json.dumps({
        "maxSizePerFPGA": 10, "maxFPGAs": 2, "maxCPUs": 0, "edges": [],
        "nodes": [{"id": 1, "supportedOnFpga": 0, "cpuLatency": 1.0, "fpgaLatency": 1.0,
                   "isBackwardNode": 0}],
    }))  # fmt: skip
    for command in ("place", "compare"):
        one_line_error(run_placer(command, workload), "not supported on accel", status=3)
