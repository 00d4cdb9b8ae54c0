"""Module scopes, layers and cut rules (placer.frontends.layers), the coarsening that respects them,
and device groups kept out of the pipeline."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from placer.costs.cluster_file import default_cluster, parse_cluster
from placer.errors import ClusterSpecError, InputError
from placer.evaluator import evaluate
from placer.frontends.coarsen import coarsen
from placer.frontends.layers import (
    SCOPES_KEY,
    CutRule,
    Granularity,
    layer_map,
    layer_ranges,
    node_scope,
    restrict_cuts,
    scope_from_metadata,
    scope_from_name,
    split_group,
)
from placer.frontends.onnx_graph import GraphEdge, GraphNode, OpGraph
from placer.problem import DeviceClass, DeviceKind, Op, Placement, Problem

LAYER = CutRule(Granularity.LAYER)


@pytest.mark.parametrize(
    ("value", "scope"),
    [
        # the dynamo exporter's format: cumulative module paths, the node's name last
        ("['', 'model', 'model.layers.0', 'model.layers.0.self_attn', "
         "'model.layers.0.self_attn.q_proj', 'linear']", "model.layers.0.self_attn.q_proj"),
        ("['', 'network', 'network.0', 'linear']", "network.0"),
        ("['', 'blocks.2', 'blocks.2.mlp', 'blocks.2.mlp.fc1', 'linear_8']", "blocks.2.mlp.fc1"),
        ("['', 'add_3']", ""),  # an op of the root module
        ("['', 'model', 'model.layers.0']", "model.layers.0"),  # without the node's name
        # torch 2.13's shape computations outside any module (seen in real exports)
        ("['_empty_nn_module_stack_from_metadata_hook', 'sym_size_int_63']", ""),
        ("[]", ""),
    ],
)  # fmt: skip
def test_scope_from_metadata(value: str, scope: str) -> None:
    assert scope_from_metadata(value) == scope


@pytest.mark.parametrize(
    "value",
    ["not a list", "__import__('os').system('true')", "[1, 2]", "{'a': 1}", "[" * 5000,
     "['x'" + ", 'y'" * 10_000 + "]"],
    ids=["text", "call", "ints", "dict", "deep", "huge"],
)  # fmt: skip
def test_malformed_metadata_is_no_scope(value: str) -> None:
    assert scope_from_metadata(value) is None


@pytest.mark.parametrize(
    ("name", "scope"),
    [
        ("/model/layers.3/self_attn/q_proj/MatMul", "model.layers.3.self_attn.q_proj"),
        ("/bert/encoder/layer.5/attention/self/Softmax", "bert.encoder.layer.5.attention.self"),
        ("encoder.layer.0.attention.self.query/MatMul", "encoder.layer.0.attention.self.query"),
        ("/Constant_3", ""),
        ("MatMul_12", ""),
        ("", ""),
    ],
)
def test_scope_from_name(name: str, scope: str) -> None:
    assert scope_from_name(name) == scope


def test_metadata_wins_over_the_name_and_bad_metadata_falls_back_to_it() -> None:
    node = helper.make_node("MatMul", ["a", "b"], ["c"], name="/wrong/place/MatMul")
    node.metadata_props.add(key=SCOPES_KEY, value="['', 'h.7', 'h.7.mlp', 'matmul']")
    assert node_scope(node) == "h.7.mlp"
    node.metadata_props[0].value = "garbage("
    assert node_scope(node) == "wrong.place"


@pytest.mark.parametrize(
    ("scopes", "layers"),
    [
        (["model.embed_tokens", "model.layers.3.self_attn.q_proj", "model.layers.11",
          "model.norm", "lm_head", "model", ""],
         ["model.embed_tokens", "model.layers.3", "model.layers.11", "model.norm", "lm_head",
          None, None]),
        (["transformer.wte", "transformer.h.7.attn", "transformer.ln_f", "lm_head"],
         ["transformer.wte", "transformer.h.7", "transformer.ln_f", "lm_head"]),
        (["bert.embeddings.word", "bert.encoder.layer.5.output.dense", "bert.pooler.dense",
          "classifier", "bert.encoder"],
         ["bert.embeddings", "bert.encoder.layer.5", "bert.pooler", "classifier", None]),
        # T5: two stacks; the first index decides (block.3, not layer.0)
        (["shared", "encoder.block.3.layer.0.SelfAttention.q", "encoder.final_layer_norm",
          "decoder.block.0.layer.1", "lm_head"],
         ["shared", "encoder.block.3", "encoder.final_layer_norm", "decoder.block.0",
          "lm_head"]),
        (["vit.embeddings.patch", "vit.encoder.layer.11.attention", "vit.layernorm",
          "classifier"],
         ["vit.embeddings", "vit.encoder.layer.11", "vit.layernorm", "classifier"]),
        (["features.conv", "head.fc"], ["features", "head"]),  # no stacks: top-level modules
    ],
    ids=["llama", "gpt2", "bert", "t5", "vit", "no stacks"],
)  # fmt: skip
def test_layer_map(scopes: list[str], layers: list[str | None]) -> None:
    found = layer_map(scopes)
    assert [None if found[s] is None else found[s].name for s in scopes] == layers


def _ranges(stages: list[list[str]]) -> list[str]:
    layers = layer_map(scope for stage in stages for scope in stage)
    return [text for _, text in layer_ranges(stages, layers)]


def test_layer_ranges_compress_whole_blocks_and_mark_split_ones() -> None:
    block = [f"model.layers.{i}.mlp" for i in range(6)]
    stages = [
        ["model.embed_tokens", *block[:3], "model.layers.3.attn"],
        ["model.layers.3.mlp", *block[4:], "model.norm", "lm_head"],
    ]
    assert _ranges(stages) == [
        "embed_tokens, layers 0-2, part of layer 3",
        "part of layer 3, layers 4-5, norm, lm_head",
    ]


def test_layer_ranges_name_each_stack_when_there_are_several() -> None:
    stages = [
        ["shared", "encoder.block.0.x", "encoder.block.1.x", "encoder.final_layer_norm"],
        ["decoder.block.0.x", "decoder.block.1.x", "decoder.block.2.x", "lm_head"],
    ]
    assert _ranges(stages) == [
        "shared, encoder.block 0-1, encoder.final_layer_norm",
        "decoder.block 0-2, lm_head",
    ]


def test_a_gap_in_the_indices_breaks_a_range() -> None:
    stages = [["h.0.a", "h.2.a"], ["h.1.a"]]
    assert _ranges(stages) == ["layer 0, layer 2", "layer 1"]


# -- cut rules --------------------------------------------------------------------------


def _problem(scopes: list[str], *, backward: bool = False) -> Problem:
    """A chain of one op per scope on two devices (a backward op per op if asked)."""
    n = len(scopes)
    ops = [Op(f"n{i}", f"n{i}", (1.0,), (True,), 1.0, 0.1, i, scopes=(s,))
           for i, s in enumerate(scopes)]  # fmt: skip
    edges = [(i, i + 1) for i in range(n - 1)]
    if backward:
        ops += [Op(f"n{i}/grad", f"n{i}/grad", (2.0,), (True,), 0.0, 0.1, i, backward=True,
                   scopes=(s,)) for i, s in enumerate(scopes)]  # fmt: skip
        edges += [(n + i + 1, n + i) for i in range(n - 1)]
    kinds = (DeviceKind("gpu", DeviceClass.ACCELERATOR, 2),)
    return Problem("chain", tuple(ops), tuple(edges), kinds)


SCOPES = ["emb", "h.0.a", "h.0.b", "h.1.a", "h.1.b", "h", "ln_f"]


@pytest.mark.parametrize("backward", [False, True], ids=["inference", "training"])
def test_layer_granularity_gives_each_layer_one_colour(backward: bool) -> None:
    problem = restrict_cuts(_problem(SCOPES, backward=backward), LAYER, "m.onnx")
    colours = [op.color for op in problem.ops]
    forward = colours[: len(SCOPES)]
    assert forward[1] == forward[2] != forward[3] == forward[4]
    assert len(set(forward)) == len(SCOPES) - 2  # 'h' (the stack itself) stays free
    if backward:
        assert colours[len(SCOPES):] == forward  # each backward op follows its forward op
    assert problem.notes[-1] == "--granularity layer: each layer stays on one device (4 in all)"


def test_cut_at_groups_by_the_matched_prefix_at_a_part_boundary() -> None:
    scopes = ["m.layers.1.a", "m.layers.1.b", "m.layers.12.a", "m.layers.12.b", "m.norm"]
    rule = CutRule(cut_at=r"layers\.1")
    label = rule.labeller(scopes, "m.onnx")
    assert [label(s) for s in scopes] == ["m.layers.1", "m.layers.1", None, None, None]
    label = CutRule(cut_at=r"(?i)LAYERS\.\d+").labeller(scopes, "m.onnx")
    assert label("m.layers.12.b") == "m.layers.12"
    label = CutRule(cut_at=r"layers\.\d+\.(a|b)").labeller(scopes, "m.onnx")
    assert label("m.layers.12.b") == "m.layers.12.b"


@pytest.mark.parametrize(
    ("rule", "scopes", "fragments"),
    [
        (CutRule(cut_at="("), SCOPES, ["--cut-at '('", "not a regular expression"]),
        (CutRule(cut_at="x*"), SCOPES, ["--cut-at 'x*'", "matches the empty string"]),
        (CutRule(cut_at="blocks"), SCOPES, ["--cut-at 'blocks'", "matches no node's scope",
                                             "m.onnx"]),
        (LAYER, ["", ""], ["--granularity layer", "m.onnx names no module scopes"]),
    ],
    ids=["invalid", "empty match", "no match", "no scopes"],
)  # fmt: skip
def test_bad_rules_are_one_line_errors(rule, scopes, fragments) -> None:
    with pytest.raises(InputError) as err:
        restrict_cuts(_problem(scopes), rule, "m.onnx")
    for fragment in fragments:
        assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_both_rules_at_once_are_refused() -> None:
    with pytest.raises(InputError, match="give one of them"):
        CutRule(Granularity.LAYER, cut_at="x")


def test_split_group_names_the_group_and_its_devices() -> None:
    problem = _problem(SCOPES)
    assert split_group(problem, Placement((0, 0, 0, 1, 1, 1, 1)), LAYER, "m") is None
    assert split_group(problem, Placement((0, 0, 1, 1, 1, 1, 1)), LAYER, "m") == (
        "h.0", "gpu:0", "gpu:1"
    )
    # the evaluator sees a split layer as a split colour class
    restricted = restrict_cuts(problem, LAYER, "m")
    assert not evaluate(restricted, Placement((0, 0, 1, 1, 1, 1, 1))).valid


# -- coarsening -------------------------------------------------------------------------


def test_coarsening_keeps_scopes_and_never_merges_across_groups() -> None:
    # a heavy op per layer, each followed by a cheap one that would join its producer
    names = ["l0", "l0r", "l1", "l1r"]
    scopes = ["h.0.mm", "h.0.act", "h.1.mm", "h.1.act"]
    flops = [100.0, 0.01, 100.0, 0.01]
    nodes = tuple(GraphNode(n, "Op", f, 0, 0, 0, 0, 1.0, True, scopes=(s,))
                  for n, s, f in zip(names, scopes, flops, strict=True))  # fmt: skip
    edges = tuple(GraphEdge(i, i + 1, f"t{i}", 4.0) for i in range(3))
    graph = OpGraph("g", nodes, edges, 0.0, 4, ())
    merged = coarsen(graph)
    assert [node.members for node in merged.nodes] == [("l0", "l0r"), ("l1", "l1r")]
    assert [node.scopes for node in merged.nodes] == [("h.0.mm", "h.0.act"), ("h.1.mm", "h.1.act")]
    # the cheap op of layer 0 reads layer 0 and feeds layer 1: labelled, it cannot join
    # layer 1 (its consumer) when its producer is another group
    labels = ["a", "b", "b", "b"]
    apart = coarsen(graph, labels=labels)
    assert [node.members for node in apart.nodes] == [("l0",), ("l0r", "l1", "l1r")]


# -- device groups kept out of the pipeline ---------------------------------------------


def test_pipeline_false_in_a_cluster_file() -> None:
    cluster = parse_cluster("devices: [{type: t4, count: 2}, {type: cpu, pipeline: false}]")
    assert [(g.name, g.pipeline) for g in cluster.groups] == [("t4", True), ("cpu", False)]
    assert [g.name for g in cluster.pipeline_groups] == ["t4"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("devices: [{type: t4, pipeline: 1}]", "devices[0].pipeline: expected true or false"),
        ("devices: [{type: t4, pipeline: false}]", "every group has 'pipeline: false'"),
    ],
)
def test_pipeline_field_errors(text: str, fragment: str) -> None:
    with pytest.raises(ClusterSpecError, match=r"^<cluster>:1: ") as err:
        parse_cluster(text)
    assert fragment in str(err.value)


def test_exclude_by_group_or_type_and_its_errors() -> None:
    cluster = default_cluster()
    assert [g.pipeline for g in cluster.excluding(["cpu"]).groups] == [True, False]
    assert [g.pipeline for g in cluster.excluding(["a100-80gb"]).groups] == [False, True]
    with pytest.raises(InputError, match=r"--exclude 'tpu': .*\(groups: a100-80gb, cpu\)"):
        cluster.excluding(["tpu"])
    with pytest.raises(InputError, match="keeps every device group"):
        cluster.excluding(["cpu", "a100-80gb"])


def test_an_excluded_group_is_no_device_kind(tmp_path) -> None:
    from placer.api import ModelOptions, load_problem

    path = tmp_path / "tiny.onnx"
    weight = numpy_helper.from_array(np.ones((8, 8), dtype=np.float32), name="w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], [weight],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    problem = load_problem(path, ModelOptions(exclude=("cpu",)))
    assert [kind.name for kind in problem.kinds] == ["a100-80gb"]
    assert problem.links is not None and len(problem.links) == 1
    assert "kept out of the pipeline: cpu" in problem.notes
