"""The model summary that ``placer inspect`` renders."""

from __future__ import annotations

import json

from placer.frontends.onnx_graph import load_onnx
from placer.outputs.summary import TOP_OPS, inspect_model
from tests.conftest import ROOT
from tests.frontends.test_onnx_graph import LIGHT_MODELS


def test_resnet50_summary():
    graph = load_onnx(next(p for p in LIGHT_MODELS if p.stem == "light_resnet50"))
    summary = inspect_model(graph)
    data = summary.to_dict()
    json.dumps(data)  # plain data only
    assert data["flops"] == graph.total_flops and data["params"] == graph.total_params
    assert data["op_histogram"]["Conv"] == 53
    assert len(data["dearest_ops"]) == TOP_OPS
    flops = [op["flops"] for op in data["dearest_ops"]]
    assert flops == sorted(flops, reverse=True)
    assert all(op["op_type"] == "Conv" for op in data["dearest_ops"])
    assert data["unknown_ops"] == [] and data["unknown_shapes"] == []


def test_costs_detail_gives_the_times_placer_places_with(run_placer, tmp_path) -> None:

    from placer.api import ModelOptions, load_problem

    gpt2 = ROOT / "sample_models" / "gpt2_small.onnx"
    shape = ("--input-shape", "input_ids=2,16")
    result = run_placer("inspect", gpt2, *shape, "--costs-detail", "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row["devices"] for row in json.loads(result.stdout)["costs"]}
    problem = load_problem(gpt2, ModelOptions(input_shapes={"input_ids": (2, 16)}))
    groups = [kind.name for kind in problem.kinds]
    for op in problem.ops:  # the very times the solvers see
        assert [rows[op.name][g]["seconds"] for g in groups] == list(op.latency), op.name
    regimes = {d["regime"] for devices in rows.values() for d in devices.values()}
    assert {"compute", "memory", "overhead"} <= regimes
    assert any(d["fused"] for devices in rows.values() for d in devices.values())
    table = run_placer("inspect", gpt2, *shape, "--costs-detail")
    assert "GFLOP/s" in table.stdout and "GB/s" in table.stdout


def test_inspect_checks_the_cluster_and_costs_it_is_given(run_placer, tmp_path) -> None:
    """Without --costs-detail the figures do not print, but a cluster or costs file
    given is read: a wrong one gets its one-line error, not a silent success."""
    from tests.conftest import one_line_error

    model = next(p for p in LIGHT_MODELS if p.stem == "light_squeezenet")
    missing = tmp_path / "missing.yaml"
    one_line_error(run_placer("inspect", model, "--cluster", missing), str(missing))
    typo = tmp_path / "typo.yaml"
    typo.write_text("devices: [{type: cpu, efficiency: {scaler: 0.01}}]\n")
    one_line_error(run_placer("inspect", model, "--cluster", typo), str(typo), "scaler")
    costs = tmp_path / "costs.csv"
    costs.write_text("op,device,seconds\nno_such_node,cpu,1e-3\n")
    one_line_error(run_placer("inspect", model, "--costs", costs), "no_such_node")
    example = ROOT / "examples" / "2xa100_4xt4.yaml"
    assert run_placer("inspect", model, "--cluster", example).exit_code == 0
