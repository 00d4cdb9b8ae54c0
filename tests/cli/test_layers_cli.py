"""Layer-aware plans end to end: layer ranges in the output, ``--granularity layer``,
``--cut-at``, ``--exclude`` and ``pipeline: false``, the CPU stage's explanation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from placer.api import ModelOptions, load_problem, place
from placer.frontends.layers import SCOPES_KEY, CutRule, Granularity, scope_from_name, split_group
from tests.conftest import ROOT, one_line_error

BERT = ROOT / "sample_models" / "bert_base.onnx"
BERT_SHAPE = ("--input-shape", "input_ids=8,128")
#: Four A100s at one efficiency for every op class and 5 µs per op, and the CPU: GPUs
#: slow enough that BERT's optimum gives the CPU a stage of its own (the embeddings and
#: part of layer 0, not whole layers), one that is not the bottleneck. The catalog's
#: A100 figures are fast enough that the CPU holds no stage.
CPU_STAGE_CLUSTER = """\
name: 4x a100-80gb at one efficiency + cpu
devices:
  - {type: a100-80gb, count: 4, efficiency: 0.45, overhead: 5us}
  - type: cpu
"""
#: BERT-base's layers in graph order (the sample model's node names spell its scopes);
#: ``extended_attention_mask`` is a side computation, recomputed by each stage, in none.
BERT_LAYERS = ["embeddings", *[f"encoder.layer.{i}" for i in range(12)], "pooler"]


def _bert_layer(node: str) -> str:
    """A BERT node's layer, read from its name here rather than by placer."""
    scope = scope_from_name(node)
    match = re.match(r"encoder\.layer\.\d+", scope)
    return match.group(0) if match else scope.split(".")[0]


@pytest.fixture(scope="module")
def bert_layer_plan(tmp_path_factory) -> tuple[Path, dict]:
    """``place BERT --granularity layer --exclude cpu``, written to a JSON plan."""
    from placer.cli import main

    path = tmp_path_factory.mktemp("bert") / "plan.json"
    with pytest.raises(SystemExit) as done:
        main(["place", str(BERT), *BERT_SHAPE, "--granularity", "layer", "--exclude", "cpu",
              "-o", str(path)])  # fmt: skip
    assert done.value.code == 0
    return path, json.loads(path.read_text())


def test_bert_by_layer_is_what_a_deepspeed_user_writes(bert_layer_plan) -> None:
    _, plan = bert_layer_plan
    stages = plan["stages"]
    assert [s["device"] for s in stages] == [f"a100-80gb:{i}" for i in range(4)]
    assert {s["kind"] for s in stages} == {"accelerator"}
    assert [s["layer_range"] for s in stages] == [
        "embeddings, layers 0-2",
        "layers 3-5",
        "layers 6-8",
        "layers 9-11, pooler",
    ]
    # the layers listed, stage after stage, are the model's, each once, in order
    assert [name for s in stages for name in s["layers"]] == BERT_LAYERS
    # and the nodes agree: every node of a layer sits on that layer's one stage
    home: dict[str, int] = {}
    for position, stage in enumerate(stages):
        for node in stage["nodes"]:
            assert home.setdefault(_bert_layer(node), position) == position, node
    assert plan["optimal"] and plan["valid"]
    assert plan["provenance"]["granularity"] == "layer"
    cpu = next(d for d in plan["provenance"]["cluster"]["devices"] if d["name"] == "cpu")
    assert cpu["pipeline"] is False


def test_evaluate_reproduces_the_plan_and_keeps_its_rule(run_placer, bert_layer_plan,
                                                         tmp_path) -> None:  # fmt: skip
    path, plan = bert_layer_plan
    result = run_placer("evaluate", BERT, path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    again = json.loads(result.stdout)
    assert again["max_load"] == pytest.approx(plan["max_load"], rel=1e-12)
    assert again["valid"] and [s["layer_range"] for s in again["stages"]] == [
        s["layer_range"] for s in plan["stages"]
    ]
    assert run_placer("check", path).exit_code == 0
    # move one node of layer 4 to the next stage: the plan's own rule refuses it
    moved = dict(plan)
    stages = [dict(stage, nodes=list(stage["nodes"])) for stage in plan["stages"]]
    node = next(n for n in stages[1]["nodes"] if _bert_layer(n) == "encoder.layer.4")
    stages[1]["nodes"].remove(node)
    stages[2]["nodes"].append(node)
    moved["stages"] = stages
    edited = tmp_path / "moved.json"
    edited.write_text(json.dumps(moved))
    one_line_error(
        run_placer("evaluate", BERT, edited),
        "moved.json: the plan cuts inside 'encoder.layer.4' (on a100-80gb:1 and a100-80gb:2)",
        "--granularity layer keeps on one device",
    )
    # --granularity op lifts the rule: the same plan is then scored as it stands
    result = run_placer("evaluate", BERT, edited, "--granularity", "op", "--format", "json")
    assert result.exit_code == 0, result.stderr


def cpu_stage_cluster(tmp_path: Path) -> tuple[str, Path]:
    """``--cluster`` and :data:`CPU_STAGE_CLUSTER` written under ``tmp_path``."""
    path = tmp_path / "cpu-stage.yaml"
    path.write_text(CPU_STAGE_CLUSTER)
    return "--cluster", path


def test_a_free_plan_splits_a_layer_that_the_rule_refuses(run_placer, tmp_path) -> None:
    path = tmp_path / "free.json"
    result = run_placer("place", BERT, *BERT_SHAPE, *cpu_stage_cluster(tmp_path), "-o", path)
    assert result.exit_code == 0, result.stderr
    plan = json.loads(path.read_text())
    # the optimum cuts BERT's layer 0 between the CPU and a GPU
    assert plan["stages"][0]["device"] == "cpu:0"
    assert plan["stages"][0]["layer_range"].endswith("part of layer 0")
    assert plan["stages"][1]["layer_range"].startswith("part of layer 0")
    one_line_error(
        run_placer("evaluate", BERT, path, "--granularity", "layer"),
        "the plan cuts inside 'encoder.layer.0' (on a100-80gb:0 and cpu:0)",
    )
    # the attention blocks the plan splits, read from its node names here
    devices_of: dict[str, set[str]] = {}
    for stage in plan["stages"]:
        for node in stage["nodes"]:
            match = re.match(r"encoder\.layer\.\d+\.attention", scope_from_name(node))
            if match:
                devices_of.setdefault(match.group(0), set()).add(stage["device"])
    split = {scope for scope, devices in devices_of.items() if len(devices) > 1}
    assert split  # the GPUs' cuts fall inside attention blocks
    line = one_line_error(
        run_placer("evaluate", BERT, path, "--cut-at", r"layer\.\d+\.attention"),
        "the plan cuts inside 'encoder.layer.",
    )
    named = re.search(r"cuts inside '([^']+)'", line).group(1)
    assert named in split, (named, split)


def test_the_table_explains_the_cpu_stage(run_placer, tmp_path) -> None:
    cluster = cpu_stage_cluster(tmp_path)
    result = run_placer("place", BERT, *BERT_SHAPE, *cluster)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    (line,) = [line for line in lines if line.startswith("cpu:0 holds")]
    match = re.fullmatch(
        r"cpu:0 holds embeddings, part of layer 0 \(([\d.]+) ms\): "
        r"moved onto a100-80gb:0's stage they would raise the max-load from ([\d.]+) ms "
        r"to ([\d.]+) ms",
        line,
    )
    assert match, line
    load, now, moved = map(float, match.groups())
    max_load = float(re.search(r"^max-load ([\d.]+) ms", result.stdout, re.M).group(1))
    assert now == pytest.approx(max_load, rel=1e-3)
    assert moved > now > load > 0
    assert "layers" in lines[2]  # the table's header has the layers column
    # a script reads the same line in the JSON plan
    result = run_placer("place", BERT, *BERT_SHAPE, *cluster, "--format", "json")
    assert json.loads(result.stdout)["explanations"] == [line]
    # no CPU stage, no explanation
    result = run_placer("place", BERT, *BERT_SHAPE, *cluster, "--exclude", "cpu")
    assert result.exit_code == 0, result.stderr
    assert "holds" not in result.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--cut-at", "layer.(\\d+"), ["--cut-at 'layer.(\\d+': not a regular expression"]),
        (("--cut-at", "decoder"), ["--cut-at 'decoder': matches no node's scope in",
                                   "bert_base.onnx"]),
        # 'laye' is in every layer's scope, but ends in the middle of a part of it
        (("--cut-at", "laye"), ["matches no node's scope", "a match must end where a part "
                                "of the scope ends"]),
        (("--cut-at", "layer", "--granularity", "layer"), ["give one of them"]),
        (("--exclude", "tpu"), ["--exclude 'tpu'", "(groups: a100-80gb, cpu)"]),
        (("--exclude", "cpu", "--exclude", "a100-80gb"), ["keeps every device group"]),
    ],
    ids=["bad regex", "no match", "mid-part", "both", "unknown kind", "every kind"],
)  # fmt: skip
def test_option_errors_are_one_line(run_placer, args, fragments) -> None:
    for command in ("place", "compare"):
        one_line_error(run_placer(command, BERT, *BERT_SHAPE, *args), *fragments)


def test_workloads_refuse_the_model_options(run_placer) -> None:
    workload = ROOT / "tests" / "data" / "dnn-partitioning" / "layer-graphs"
    workload = next(workload.glob("*.json"))
    one_line_error(run_placer("place", workload, "--granularity", "layer"),
                   "--granularity layer applies to ONNX models")  # fmt: skip
    one_line_error(run_placer("place", workload, "--exclude", "cpu"),
                   "--exclude applies to ONNX models")  # fmt: skip


def test_pipeline_false_group(run_placer, tmp_path) -> None:
    cluster = tmp_path / "c.yaml"
    cluster.write_text("devices:\n  - {type: a100-80gb, count: 2}\n"
                       "  - {type: cpu, pipeline: false}\n")  # fmt: skip
    path = tmp_path / "plan.json"
    result = run_placer("place", BERT, *BERT_SHAPE, "--cluster", cluster, "-o", path)
    assert result.exit_code == 0, result.stderr
    plan = json.loads(path.read_text())
    assert [s["device"] for s in plan["stages"]] == ["a100-80gb:0", "a100-80gb:1"]
    assert run_placer("evaluate", BERT, path, "--cluster", cluster).exit_code == 0
    # the same cluster with the CPU in the pipeline is another problem
    other = tmp_path / "other.yaml"
    other.write_text("devices:\n  - {type: a100-80gb, count: 2}\n  - {type: cpu}\n")
    one_line_error(
        run_placer("evaluate", BERT, path, "--cluster", other),
        "group 'cpu' is in the pipeline, not out of it",
    )
    # ... unless told to keep it out again
    result = run_placer("evaluate", BERT, path, "--cluster", other, "--exclude", "cpu")
    assert result.exit_code == 0, result.stderr
    # a plan with a stage on a group kept out: the message says that is why
    with_cpu = tmp_path / "with_cpu.json"
    document = json.loads(path.read_text())
    document["stages"][1]["device"] = "cpu:0"
    with_cpu.write_text(json.dumps(document))
    one_line_error(run_placer("evaluate", BERT, with_cpu, "--cluster", other, "--exclude", "cpu"),
                   "'cpu:0' is not a device of this problem",
                   "its group cpu is kept out of the pipeline (--exclude")  # fmt: skip


# -- a torch-style export: scopes in node metadata, not in node names ----------------------


def _torch_style_model(path: Path) -> None:
    """embed_tokens, four blocks ``model.layers.i`` (MatMul + Relu), norm and lm_head;
    node names say nothing (``node_MatMul_3``): only the dynamo exporter's metadata does."""
    dim, rows = 256, 512
    rng = np.random.default_rng(0)
    nodes, weights = [], []

    def node(op: str, inputs: list[str], scopes: list[str]) -> str:
        out = f"t{len(nodes)}"
        made = helper.make_node(op, inputs, [out], name=f"node_{op}_{len(nodes)}")
        made.metadata_props.add(key=SCOPES_KEY, value=repr(scopes))
        nodes.append(made)
        return out

    def weight(name: str) -> str:
        weights.append(numpy_helper.from_array(
            rng.standard_normal((dim, dim)).astype(np.float32), name=name))  # fmt: skip
        return name

    x = node("MatMul", ["x", weight("embed")], ["", "model", "model.embed_tokens", "linear"])
    for i in range(4):
        block = f"model.layers.{i}"
        x = node("MatMul", [x, weight(f"w{i}")],
                 ["", "model", block, f"{block}.mlp", f"{block}.mlp.fc", "linear_1"])
        x = node("Relu", [x], ["", "model", block, f"{block}.act", "relu"])  # fmt: skip
    x = node("Mul", [x, x], ["", "model", "model.norm", "mul"])
    x = node("MatMul", [x, weight("head")], ["", "lm_head", "linear_9"])
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(
        nodes, "torchstyle",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, dim])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, dim])], weights,
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.fixture(scope="module")
def torch_style(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("torch") / "torchstyle.onnx"
    _torch_style_model(path)
    return path


def test_torch_style_scopes_name_the_stages(run_placer, torch_style, tmp_path) -> None:
    # a hand-written plan that splits layer 1 between the two stages
    names = [f"node_{op}_{i}" for i, op in enumerate(
        ["MatMul", "MatMul", "Relu", "MatMul", "Relu", "MatMul", "Relu", "MatMul", "Relu",
         "Mul", "MatMul"])]  # fmt: skip
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"stages": [
        {"device": "a100-80gb:0", "nodes": names[:4]},
        {"device": "a100-80gb:1", "nodes": names[4:]},
    ]}))  # fmt: skip
    result = run_placer("evaluate", torch_style, plan, "--format", "json")
    assert result.exit_code == 0, result.stderr
    stages = json.loads(result.stdout)["stages"]
    assert [s["layer_range"] for s in stages] == [
        "embed_tokens, layer 0, part of layer 1",
        "part of layer 1, layers 2-3, norm, lm_head",
    ]
    assert stages[0]["layers"] == ["model.embed_tokens", "model.layers.0", "model.layers.1"]
    table = run_placer("evaluate", torch_style, plan)
    assert "embed_tokens, layer 0, part of layer 1" in table.stdout
    one_line_error(run_placer("evaluate", torch_style, plan, "--granularity", "layer"),
                   "the plan cuts inside 'model.layers.1'")  # fmt: skip


def test_torch_style_by_layer(run_placer, torch_style) -> None:
    result = run_placer("place", torch_style, "--granularity", "layer", "--exclude", "cpu",
                        "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    stages = json.loads(result.stdout)["stages"]
    layers = [name for stage in stages for name in stage["layers"]]
    assert layers == ["model.embed_tokens", *[f"model.layers.{i}" for i in range(4)],
                      "model.norm", "lm_head"]  # fmt: skip
    assert len(stages) > 1 and all(s["device"].startswith("a100-80gb:") for s in stages)
    for stage in stages:
        assert "part of" not in stage["layer_range"]
    # --cut-at on the blocks only: the blocks stay whole, norm and lm_head are free
    result = run_placer("place", torch_style, "--cut-at", r"layers\.\d+", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "part of layer" not in result.stdout


@pytest.mark.parametrize("solver", ["dp", "milp", "pipedream", "uniform", "params", "greedy",
                                    "single"])  # fmt: skip
@pytest.mark.parametrize("mode", ["inference", "training"])
def test_every_solver_keeps_layers_whole(torch_style, solver: str, mode: str) -> None:
    rule = CutRule(Granularity.LAYER)
    problem = load_problem(torch_style, ModelOptions(cut=rule, mode=mode, exclude=("cpu",)))
    result = place(problem, solver)
    assert result.evaluation.valid
    assert split_group(problem, result.placement, rule, "m") is None
    assert all("part of" not in text for _, text in result.stage_layers)


def test_coarsened_by_layer(run_placer) -> None:
    result = run_placer("place", BERT, *BERT_SHAPE, "--coarsen", "--granularity", "layer",
                        "--exclude", "cpu", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    stages = json.loads(result.stdout)["stages"]
    assert [name for s in stages for name in s["layers"]] == BERT_LAYERS
    assert all("part of" not in s["layer_range"] for s in stages)


def test_a_coarsened_plan_keeps_the_rule_it_was_coarsened_under(run_placer, tmp_path) -> None:
    mobilenet = ROOT / "sample_models" / "mobilenet_v2.onnx"
    plan = tmp_path / "plan.json"
    placed = run_placer("place", mobilenet, "--coarsen", "--granularity", "layer", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    assert run_placer("evaluate", mobilenet, plan, "--granularity", "layer").exit_code == 0
    one_line_error(
        run_placer("evaluate", mobilenet, plan, "--granularity", "op"),
        "the plan was coarsened under --granularity layer, and --granularity op would merge",
        "drop --granularity to use the plan's",
    )
