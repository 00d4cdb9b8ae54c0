"""Hand-picked cases the random ones rarely reach: a plan met with another model or other
options than it was made with, and a time limit on a graph too wide for the exact DP."""

from __future__ import annotations

import json

import pytest

from tests.fuzz.harness import (
    Outcome,
    check_case,
    child_promises,
    fails_with,
    run_child,
    strict_json,
)
from tests.fuzz.models import chain_model, workload_document


def _same_figures_or_refused(plan_text: str):
    """Scoring a plan must reproduce the figures it was made with, or refuse with one
    line: silently re-costing it under other options (a 5.7x error went into a PR
    comment) is the failure."""
    planned = json.loads(plan_text)

    def promise(outcome: Outcome) -> list[str]:
        if outcome.exit_code == 2:
            return []
        if outcome.exit_code != 0:
            return [f"exit {outcome.exit_code}"]
        scored = strict_json(outcome.stdout)
        if abs(scored["max_load"] - planned["max_load"]) > 1e-9 * planned["max_load"]:
            return [
                f"re-costed silently: the plan says max_load {planned['max_load']:.6g}, "
                f"evaluate says {scored['max_load']:.6g}"
            ]
        return []

    return promise


@pytest.mark.parametrize(
    "options",
    [("--dtype", "fp16"), ("--mode", "training"), ("--mode", "training", "--dtype", "bf16"),
     ("--batch-size", "8"), ("--coarsen",)],
    ids=lambda o: " ".join(o),
)  # fmt: skip
def test_evaluate_without_the_plans_options(run_placer, tmp_path, options):
    """A plan made with options, evaluated without them."""
    model = tmp_path / "mlp.onnx"
    from tests.fuzz.models import mlp_model

    model.write_bytes(mlp_model().SerializeToString())
    made = run_placer("place", model, "--solver", "dp", "--format", "json", *options)
    assert made.exit_code == 0, made.stderr
    plan = tmp_path / "plan.json"
    plan.write_text(made.stdout)
    check_case(
        run_placer, tmp_path, "evaluate", model, plan, "--format", "json",
        json_stdout=True, extra=_same_figures_or_refused(made.stdout),
    )  # fmt: skip


def test_plan_of_another_model(run_placer, tmp_path):
    """A plan of the 64-wide chain scored on a 65,536-wide chain with the same node names:
    another model, whose plan must be refused."""
    small, large = tmp_path / "small.onnx", tmp_path / "large.onnx"
    small.write_bytes(chain_model(width=64).SerializeToString())
    large.write_bytes(chain_model(width=65536).SerializeToString())
    made = run_placer("place", small, "--solver", "dp", "--format", "json")
    assert made.exit_code == 0, made.stderr
    plan = tmp_path / "plan.json"
    plan.write_text(made.stdout)
    for command in (("evaluate", large, plan, "--format", "json"),
                    ("report", large, plan, "--markdown", tmp_path / "r.md")):  # fmt: skip
        check_case(run_placer, tmp_path, *command, outputs=["r.md"], extra=fails_with(2))


def test_plan_of_another_workload(run_placer, tmp_path):
    """A plan of one workload scored on another with the same node ids (the expert split
    of one model scored for another)."""
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps(workload_document(4)))
    other = workload_document(4)
    for node in other["nodes"]:
        node["fpgaLatency"] *= 100
    second.write_text(json.dumps(other))
    made = run_placer("place", first, "--solver", "dp", "--format", "json")
    assert made.exit_code == 0, made.stderr
    plan = tmp_path / "plan.json"
    plan.write_text(made.stdout)
    check_case(run_placer, tmp_path, "evaluate", second, plan, "--format", "json",
               extra=fails_with(2))  # fmt: skip


def _wide_workload(nodes: int, width: int) -> dict:
    """``nodes`` ops in layers ``width`` wide, each op fed by the one ``width`` before."""
    return {
        "maxSizePerFPGA": 1e9, "maxFPGAs": 4, "maxCPUs": 1,
        "nodes": [{"id": i, "supportedOnFpga": 1, "cpuLatency": 1.0, "fpgaLatency": 0.1,
                   "isBackwardNode": 0} for i in range(nodes)],
        "edges": [{"sourceId": i - width, "destId": i, "cost": 0.01}
                  for i in range(width, nodes)],
    }  # fmt: skip


#: Seconds a command with ``--time-limit 1`` may take on a graph of a few thousand ops:
#: the limit, plus starting Python, reading and checking the input and writing the plan.
TIME_LIMIT_SLACK = 7


def test_time_limit_bounds_the_command(tmp_path):
    """``--time-limit 1`` on a 2,000-op graph 1,000 wide (too wide for the exact DP): the
    command ends within the limit plus start-up, reading and writing, with a plan or
    exit 5. A child process, killed when it overruns: the DP's compiled kernels do not
    return to Python for an alarm."""
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(_wide_workload(2000, 1000)))
    child = run_child("place", path, "--time-limit", "1", "--format", "json",
                      timeout=1 + TIME_LIMIT_SLACK)  # fmt: skip
    broken = child_promises(child, json_stdout=True)
    assert not broken, broken
    assert child.exit_code in (0, 5), (child.exit_code, child.stderr)


@pytest.mark.parametrize(
    "command",
    [("compare", "{mlp}", "--solvers", "dp,greedy,single"), ("place", "{mlp}", "--solver", "dp"),
     ("inspect", "{mlp}"), ("place", "{gnmt}", "--solver", "dp")],
    ids=lambda c: f"{c[0]} {c[1][1:-1]}",
)  # fmt: skip
def test_tables_in_a_pipe(run_placer, tmp_path, command):
    """Tables printed where stdout is not a terminal (a pipe, a CI log): the harness
    refuses any figure cut short to fit 80 columns."""
    from tests.fuzz.models import REPO, mlp_model

    mlp = tmp_path / "mlp.onnx"
    mlp.write_bytes(mlp_model().SerializeToString())
    gnmt = REPO / "examples" / "workloads" / "gnmt_training.json"
    args = tuple(a.format(mlp=mlp, gnmt=gnmt) for a in command)
    check_case(run_placer, tmp_path, *args)
