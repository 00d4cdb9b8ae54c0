"""ONNX models through the command line: inspect and place on every cluster, both modes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import pytest

from placer.frontends.onnx_graph import load_onnx
from tests.conftest import ROOT

LIGHT = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"
SAMPLES = {
    "bert_base": ["--input-shape", "input_ids=2,64"],
    "gpt2_small": ["--input-shape", "input_ids=2,64"],
    "mobilenet_v2": ["--batch-size", "2"],
}
MODELS = [(ROOT / "sample_models" / f"{name}.onnx", flags) for name, flags in SAMPLES.items()]
MODELS += [(path, []) for path in sorted(LIGHT.glob("*.onnx"))]
CLUSTERS = [None, *sorted((ROOT / "examples").glob("*.yaml"))]


def _id(value) -> str:
    return "default" if value is None else Path(value).stem


@pytest.mark.slow
@pytest.mark.parametrize(("model", "flags"), MODELS, ids=[m.stem for m, _ in MODELS])
def test_inspect_and_place_everywhere(run_placer, model: Path, flags: list[str]) -> None:
    inspected = run_placer("inspect", model, *flags, "--format", "json")
    assert inspected.exit_code == 0, inspected.stderr
    summary = json.loads(inspected.stdout)
    assert summary["flops"] > 0 and summary["params"] > 0

    proto = onnx.load(str(model), load_external_data=False)
    graph = load_onnx(model, input_shapes=_shapes(flags), batch_size=_batch(flags))
    side = {graph.nodes[i].name for i in graph.replicated}
    names = {node.name for node in graph.nodes} - side
    # every ONNX node that is not folded (it computes on constants only) is placed, or
    # recomputed by the stages that read it
    constant = _constant_nodes(proto.graph)
    for index, node in enumerate(proto.graph.node):
        name = node.name or f"{node.op_type}_{index}"
        if index not in constant:
            assert name in names | side, name

    for cluster in CLUSTERS:
        for mode in ("inference", "training"):
            # validity and coverage are the point here, not the MILP's last digits
            args = ["place", model, *flags, "--mode", mode, "--format", "json",
                    "--time-limit", "1"]  # fmt: skip
            if cluster is not None:
                args += ["--cluster", cluster]
            placed = run_placer(*args)
            assert placed.exit_code == 0, (_id(cluster), mode, placed.stderr)
            plan = json.loads(placed.stdout)
            nodes = [n for stage in plan["stages"] for n in stage["nodes"]]
            forward = [n for n in nodes if not n.endswith("/grad")]
            assert sorted(forward) == sorted(names), (_id(cluster), mode)
            recomputed = {n for stage in plan["stages"] for n in stage["recomputed"]}
            assert recomputed == side, (_id(cluster), mode)
            assert len(nodes) == len(set(nodes))
            if mode == "training":
                assert sorted(n for n in nodes if n.endswith("/grad")) == sorted(
                    f"{n}/grad" for n in names
                )
            assert plan["valid"] and plan["throughput"] > 0
            assert plan["max_load"] >= plan["lower_bound"]


def _constant_nodes(graph: onnx.GraphProto) -> set[int]:
    """Our own oracle, not placer's: deterministic default-domain nodes without subgraphs
    that read only initializers and constant nodes' outputs and make no graph output."""
    never = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
             "Multinomial", "Bernoulli", "Dropout", "If", "Loop", "Scan"}  # fmt: skip
    known = {init.name for init in graph.initializer}
    outputs = {value.name for value in graph.output}
    found = set()
    for index, node in enumerate(graph.node):
        reads = {name for name in node.input if name}
        if (node.domain in ("", "ai.onnx") and node.op_type not in never
                and (reads or node.op_type == "Constant") and reads <= known
                and not outputs & set(node.output)):  # fmt: skip
            found.add(index)
            known.update(node.output)
    return found


def _shapes(flags: list[str]) -> dict[str, tuple[int, ...]]:
    if "--input-shape" not in flags:
        return {}
    name, dims = flags[flags.index("--input-shape") + 1].split("=")
    return {name: tuple(int(d) for d in dims.split(","))}


def _batch(flags: list[str]) -> int:
    if "--batch-size" in flags:
        return int(flags[flags.index("--batch-size") + 1])
    shapes = _shapes(flags)
    return next(iter(shapes.values()))[0] if shapes else 1


def test_resnet50_figures(run_placer) -> None:
    result = run_placer("inspect", LIGHT / "light_resnet50.onnx", "--format", "json")
    summary = json.loads(result.stdout)
    assert summary["flops"] == pytest.approx(8.2e9, rel=0.05)
    assert 25.5e6 <= summary["params"] <= 25.6e6


def test_bert_base_has_110m_parameters(run_placer) -> None:
    result = run_placer(
        "inspect", ROOT / "sample_models" / "bert_base.onnx", "--input-shape", "input_ids=1,128",
        "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["params"] == pytest.approx(110e6, rel=0.01)


def test_throughput_counts_the_batch(run_placer) -> None:
    model = ROOT / "sample_models" / "mobilenet_v2.onnx"
    one = json.loads(run_placer("place", model, "--format", "json").stdout)
    eight = json.loads(run_placer("place", model, "--batch-size", "8", "--format", "json").stdout)
    assert one["samples_per_step"] == 1 and eight["samples_per_step"] == 8
    assert eight["throughput"] == pytest.approx(8 / eight["max_load"])
    assert eight["throughput"] > one["throughput"]  # per-op overheads amortise


def test_heterogeneous_cluster_beats_its_a100s_alone(run_placer, tmp_path) -> None:
    """2x A100 + 4x T4 + CPU: the DP uses the slower devices to beat the A100s alone."""
    model = ROOT / "sample_models" / "bert_base.onnx"
    flags = ["--input-shape", "input_ids=8,128", "--format", "json"]
    mixed = run_placer("place", model, "--cluster", ROOT / "examples" / "2xa100_4xt4.yaml", *flags)
    assert mixed.exit_code == 0, mixed.stderr
    a100s = tmp_path / "a100s.yaml"
    a100s.write_text("devices:\n  - type: a100-40gb\n    name: a100\n    count: 2\n")
    alone = run_placer("place", model, "--cluster", a100s, *flags)
    assert alone.exit_code == 0, alone.stderr
    alone_plan, mixed_plan = json.loads(alone.stdout), json.loads(mixed.stdout)
    assert alone_plan["optimal"]  # one kind, one link: the DP is exact there
    # by 17% with the catalog's figures: the T4s' share is bound by their PCIe 3 links
    assert mixed_plan["max_load"] < 0.85 * alone_plan["max_load"]
    kinds = {stage["device_type"] for stage in mixed_plan["stages"]}
    assert "t4" in kinds
