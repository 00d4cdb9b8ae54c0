"""Loading ONNX models: tiny graphs built here, and the real networks onnx ships."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from placer.errors import ModelLoadError
from placer.frontends.onnx_graph import constant_nodes, load_onnx
from placer.frontends.opcost import OpClass
from tests.conftest import ROOT

LIGHT = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"
LIGHT_MODELS = sorted(LIGHT.glob("*.onnx"))


def save(tmp_path: Path, nodes, inputs, outputs, initializers=(), name="m.onnx", opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def value(name, shape, elem_type=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem_type, shape)


def weight(name, shape):
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def conv_model(tmp_path, batch="N"):
    """x (batch,3,8,8) -> Conv 3x3 pad 1, 4 outputs, bias -> Relu -> y."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    return save(
        tmp_path,
        nodes,
        [value("x", [batch, 3, 8, 8])],
        [value("y", None)],
        [weight("w", (4, 3, 3, 3)), weight("b", (4,))],
    )


# -- costs of tiny graphs --------------------------------------------------------------


def test_conv_flops_params_and_edges_by_hand(tmp_path):
    graph = load_onnx(conv_model(tmp_path))
    conv, relu = graph.nodes
    assert conv.flops == 2 * 4 * 64 * (3 * 9) + 4 * 64
    assert conv.param_count == 4 * 27 + 4 and conv.param_bytes == 4 * (4 * 27 + 4)
    assert conv.output_bytes == 4 * 4 * 64
    assert conv.bytes_read == 4 * (3 * 64 + 4 * 27 + 4)
    assert relu.flops == 4 * 64
    assert [(e.src, e.dst, e.tensor, e.bytes) for e in graph.edges] == [(0, 1, "c", 1024)]
    assert graph.input_bytes == 4 * 3 * 64 and graph.dtype_bytes == 4
    assert graph.total_params == 112 and graph.unknown_ops == ()


def test_unnamed_nodes_get_op_type_and_index(tmp_path):
    graph = load_onnx(conv_model(tmp_path))
    assert [node.name for node in graph.nodes] == ["Conv_0", "Relu_1"]
    assert graph.nodes[0].members == ("Conv_0",)


def test_symbolic_batch_is_resolved_by_batch_size(tmp_path):
    path = conv_model(tmp_path)
    one, eight = load_onnx(path), load_onnx(path, batch_size=8)
    assert eight.total_flops == 8 * one.total_flops
    assert eight.total_params == one.total_params
    assert eight.edges[0].bytes == 8 * one.edges[0].bytes


def test_matmul_with_sequence_dim_from_input_shape(tmp_path):
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="proj"),
        helper.make_node("Softmax", ["h"], ["y"], name="soft", axis=-1),
    ]
    path = save(tmp_path, nodes, [value("x", ["batch", "seq", 16])], [value("y", None)],
                [weight("w", (16, 32))])  # fmt: skip
    graph = load_onnx(path, input_shapes={"x": (2, 10, 16)})
    assert graph.nodes[0].flops == 2 * (2 * 10 * 32) * 16
    assert graph.nodes[1].flops == 5 * 2 * 10 * 32


def test_unresolved_dim_names_tensor_and_flag(tmp_path):
    path = save(tmp_path, [helper.make_node("Relu", ["tokens"], ["y"])],
                [value("tokens", ["batch", "seq"])], [value("y", None)])  # fmt: skip
    with pytest.raises(ModelLoadError) as err:
        load_onnx(path)
    message = str(err.value)
    assert "\n" not in message
    assert "tokens" in message and "seq" in message and "--input-shape tokens=" in message


def test_input_shape_for_an_unknown_input_lists_the_inputs(tmp_path):
    with pytest.raises(ModelLoadError, match=r"--input-shape names no input.*inputs: x"):
        load_onnx(conv_model(tmp_path), input_shapes={"images": (1, 3, 8, 8)})


def test_input_shape_of_wrong_rank_is_rejected(tmp_path):
    with pytest.raises(ModelLoadError, match="has 2 dims, the input has 4"):
        load_onnx(conv_model(tmp_path), input_shapes={"x": (1, 3)})


def test_external_data_absent_or_present_gives_the_same_graph(tmp_path):
    path = conv_model(tmp_path)
    model = onnx.load(str(path))
    external = tmp_path / "ext.onnx"
    onnx.save_model(model, str(external), save_as_external_data=True,
                    location="ext.bin", size_threshold=0)  # fmt: skip
    with_data = load_onnx(external)
    (tmp_path / "ext.bin").unlink()
    without_data = load_onnx(external)
    assert with_data == without_data == load_onnx(path)
    # running it (split, run) needs the weights: one line naming the missing file
    from placer.frontends.onnx_graph import read_model_with_weights

    with pytest.raises(ModelLoadError, match=r"its weights file .*ext\.bin is missing"):
        read_model_with_weights(external)


def test_constant_of_shape_weight_folds_into_its_consumer(tmp_path):
    shape = numpy_helper.from_array(np.array([16, 8], dtype=np.int64), "w_shape")
    nodes = [
        helper.make_node("ConstantOfShape", ["w_shape"], ["w"], name="gen",
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])),
        helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
    ]  # fmt: skip
    graph = load_onnx(save(tmp_path, nodes, [value("x", [1, 16])], [value("y", None)], [shape]))
    assert [node.name for node in graph.nodes] == ["mm"]
    assert graph.nodes[0].param_count == 128 and graph.nodes[0].flops == 2 * 8 * 16
    assert graph.edges == ()


def test_constant_node_weight_folds_and_a_shared_weight_counts_once(tmp_path):
    tensor = numpy_helper.from_array(np.zeros((4, 4), dtype=np.float32), "c")
    nodes = [
        helper.make_node("Constant", [], ["w"], value=tensor),
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("MatMul", ["h", "w"], ["y"]),
    ]
    graph = load_onnx(save(tmp_path, nodes, [value("x", [2, 4])], [value("y", None)]))
    assert [node.name for node in graph.nodes] == ["MatMul_1", "MatMul_2"]
    # each reader holds it (a device holding either keeps it), the model counts it once
    assert [node.param_count for node in graph.nodes] == [16, 16]
    assert [node.shared_param_count for node in graph.nodes] == [16, 16]
    assert graph.total_params == 16 and graph.total_param_bytes == 64
    assert [(w.name, w.readers) for w in graph.shared_weights] == [("w", (0, 1))]
    assert graph.nodes[1].bytes_read == 4 * (8 + 16)  # it still reads the shared weight
    # both multiply by a weight, which the runtime pre-packs, whichever holds its bytes
    assert [node.op_class for node in graph.nodes] == [OpClass.GEMM, OpClass.GEMM]


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def test_a_chain_of_layout_ops_on_a_weight_folds_into_its_consumer(tmp_path):
    """Unsqueeze -> Reshape -> Transpose -> Cast of an fp16 weight: one MatMul remains."""
    w = numpy_helper.from_array(np.zeros((8, 4), dtype=np.float16), "w")
    nodes = [
        helper.make_node("Unsqueeze", ["w", "axes"], ["u"], name="unsq"),
        helper.make_node("Reshape", ["u", "shape"], ["r"], name="reshape"),
        helper.make_node("Transpose", ["r"], ["t"], name="transpose", perm=[1, 0]),
        helper.make_node("Cast", ["t"], ["wf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["x", "wf"], ["y"], name="mm"),
    ]
    inits = [w, ints("axes", [0]), ints("shape", [4, 8])]
    graph = load_onnx(save(tmp_path, nodes, [value("x", [2, 8])], [value("y", None)], inits))
    assert [node.name for node in graph.nodes] == ["mm"] and graph.edges == ()
    (mm,) = graph.nodes
    # The 32 learned elements of w, once; the axes and the shape steer, they are no weights.
    assert mm.param_count == graph.total_params == 32
    # The runtime keeps the folded fp32 tensor the MatMul reads, not the fp16 source.
    assert mm.param_bytes == 4 * 32
    assert mm.flops == 2 * (2 * 4) * 8 and mm.bytes_read == 4 * (16 + 32)


def test_a_node_reading_a_graph_input_is_not_folded(tmp_path):
    nodes = [
        helper.make_node("Unsqueeze", ["b", "axes"], ["bu"], name="unsq"),
        helper.make_node("Add", ["x", "bu"], ["h"], name="add"),
        helper.make_node("Transpose", ["h"], ["y"], name="transpose"),
    ]
    inits = [weight("b", (3,)), ints("axes", [0])]
    graph = load_onnx(save(tmp_path, nodes, [value("x", [2, 3])], [value("y", None)], inits))
    assert [node.name for node in graph.nodes] == ["add", "transpose"]
    assert graph.nodes[0].param_count == 3 and graph.nodes[0].param_bytes == 4 * 3


def test_random_ops_are_not_folded(tmp_path):
    nodes = [
        helper.make_node("RandomNormal", [], ["r"], name="normal", shape=[2, 3]),
        helper.make_node("RandomUniformLike", ["w"], ["ru"], name="uniform"),
        helper.make_node("Add", ["r", "ru"], ["noise"], name="noise"),
        helper.make_node("Add", ["x", "noise"], ["y"], name="add"),
    ]
    path = save(tmp_path, nodes, [value("x", [2, 3])], [value("y", None)], [weight("w", (2, 3))])
    graph = load_onnx(path)
    assert [node.name for node in graph.nodes] == ["normal", "uniform", "noise", "add"]
    assert graph.total_params == 6


def test_a_constant_node_making_a_graph_output_is_kept(tmp_path):
    nodes = [
        helper.make_node("Transpose", ["w"], ["wt"], name="transpose"),
        helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
    ]
    outputs = [value("y", None), value("wt", None)]
    graph = load_onnx(save(tmp_path, nodes, [value("x", [2, 4])], outputs, [weight("w", (4, 4))]))
    assert [node.name for node in graph.nodes] == ["transpose", "mm"]
    assert graph.total_params == 16 and graph.nodes[0].output_bytes == 4 * 16


def test_a_folded_weight_read_twice_counts_once(tmp_path):
    """One derived tensor, two readers; and one source behind two derived tensors."""
    nodes = [
        helper.make_node("Unsqueeze", ["s", "axes"], ["su"], name="unsq"),
        helper.make_node("Mul", ["x", "su"], ["h"], name="mul"),
        helper.make_node("Add", ["h", "su"], ["g"], name="add"),
        helper.make_node("Reshape", ["s", "shape"], ["sr"], name="reshape"),
        helper.make_node("Sub", ["g", "sr"], ["y"], name="sub"),
    ]
    inits = [weight("s", (4,)), ints("axes", [0]), ints("shape", [1, 4])]
    graph = load_onnx(save(tmp_path, nodes, [value("x", [2, 4])], [value("y", None)], inits))
    mul, add, sub = graph.nodes
    assert [n.name for n in graph.nodes] == ["mul", "add", "sub"]
    assert (mul.param_count, add.param_count, sub.param_count) == (4, 0, 0)
    # su is charged once; sr is another tensor the runtime keeps, charged to sub.
    assert (mul.param_bytes, add.param_bytes, sub.param_bytes) == (16, 0, 16)
    assert add.bytes_read == 4 * (8 + 4)  # it still reads the shared tensor


def test_a_shape_computed_from_constants_is_no_parameter(tmp_path):
    nodes = [
        helper.make_node("Concat", ["rows", "cols"], ["shape"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape"),
    ]
    inits = [ints("rows", [-1]), ints("cols", [6])]
    graph = load_onnx(save(tmp_path, nodes, [value("x", [2, 3, 2])], [value("y", None)], inits))
    assert [node.name for node in graph.nodes] == ["reshape"]
    assert graph.total_params == 0 and graph.total_param_bytes == 0


def test_constant_nodes_of_an_unread_or_custom_computation(tmp_path):
    """A dead constant node folds away; a custom-domain op on a weight stays an op."""
    nodes = [
        helper.make_node("Transpose", ["w"], ["unused"], name="dead"),
        helper.make_node("Pack", ["w"], ["wp"], name="pack", domain="custom.ops"),
        helper.make_node("MatMul", ["x", "wp"], ["y"], name="mm"),
    ]
    graph = helper.make_graph(nodes, "g", [value("x", [2, 4])], [value("y", [2, 4])],
                              [weight("w", (4, 4))])  # fmt: skip
    assert constant_nodes(graph) == {0}
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("custom.ops", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(tmp_path / "m.onnx"))
    loaded = load_onnx(tmp_path / "m.onnx")
    assert [node.name for node in loaded.nodes] == ["pack", "mm"]
    assert loaded.total_params == 16


def test_a_graph_of_constants_only_is_an_error(tmp_path):
    nodes = [helper.make_node("Transpose", ["w"], ["wt"])]
    path = save(tmp_path, nodes, [], [value("w", [2, 2])], [weight("w", (2, 2))])
    _one_line_error(path, "constants only")


def test_reshape_shape_is_no_parameter_and_bn_statistics_are_state(tmp_path):
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["n"]),
        helper.make_node("Reshape", ["n", "shape"], ["y"]),
    ]
    inits = [weight(name, (3,)) for name in "sbmv"]
    inits.append(numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape"))
    graph = load_onnx(save(tmp_path, nodes, [value("x", [1, 3, 2, 2])], [value("y", None)], inits))
    bn, reshape = graph.nodes
    assert (bn.param_count, bn.param_bytes) == (6, 4 * 12)
    assert reshape.param_count == 0 and reshape.param_bytes == 0


def test_if_costs_the_dearer_branch(tmp_path):
    then_branch = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["t"]), helper.make_node("Relu", ["t"], ["a"])],
        "then", [], [value("a", None)],
    )  # fmt: skip
    else_branch = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["e"])], "else", [], [value("e", None)]
    )
    nodes = [
        helper.make_node("Relu", ["x0"], ["x"], name="pre"),
        helper.make_node("If", ["cond"], ["y"], name="branch",
                         then_branch=then_branch, else_branch=else_branch),
    ]  # fmt: skip
    path = save(tmp_path, nodes, [value("cond", [], TensorProto.BOOL), value("x0", [2, 4])],
                [value("y", None)], [weight("w", (4, 4))])  # fmt: skip
    graph = load_onnx(path)
    branch = graph.nodes[1]
    assert branch.op_type == "If" and branch.has_formula
    assert branch.flops == 2 * 8 * 4 + 8
    assert branch.param_count == 16
    # The outer tensor the branches read is an edge into the If node.
    assert [(e.src, e.dst, e.tensor) for e in graph.edges] == [(0, 1, "x")]


def test_loop_multiplies_its_body_by_a_constant_trip_count(tmp_path):
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["acc_in", "acc_in"], ["acc_out"])],
        "body",
        [value("i", [], TensorProto.INT64), value("cond_in", [], TensorProto.BOOL),
         value("acc_in", [3])],
        [value("cond_out", [], TensorProto.BOOL), value("acc_out", [3])],
    )  # fmt: skip
    trip = numpy_helper.from_array(np.array(5, dtype=np.int64), "trip")
    cond = numpy_helper.from_array(np.array(True), "cond")
    nodes = [helper.make_node("Loop", ["trip", "cond", "x"], ["y"], body=body)]
    graph = load_onnx(save(tmp_path, nodes, [value("x", [3])], [value("y", [3])], [trip, cond]))
    assert graph.nodes[0].flops == 5 * 3 and graph.notes == ()


def test_loop_with_a_runtime_trip_count_counts_the_body_once_and_says_so(tmp_path):
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Mul", ["acc_in", "w"], ["acc_out"])],
        "body",
        [value("i", [], TensorProto.INT64), value("cond_in", [], TensorProto.BOOL),
         value("acc_in", [3])],
        [value("cond_out", [], TensorProto.BOOL), value("acc_out", [3])],
        [weight("w", (3,))],
    )  # fmt: skip
    cond = numpy_helper.from_array(np.array(True), "cond")
    nodes = [helper.make_node("Loop", ["n", "cond", "x"], ["y"], name="steps", body=body)]
    inputs = [value("n", [], TensorProto.INT64), value("x", [3])]
    graph = load_onnx(save(tmp_path, nodes, inputs, [value("y", [3])], [cond]))
    assert graph.nodes[0].flops == 3 and graph.nodes[0].param_count == 3
    assert any("steps" in note and "trip count unknown" in note for note in graph.notes)


def test_scan_multiplies_its_body_by_the_scanned_length(tmp_path):
    # state s and element x_t of 4 floats: Add and Mul are 4 FLOPs each, 10 steps
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["s_out"]),
         helper.make_node("Mul", ["s_out", "w"], ["y_t"])],
        "body",
        [value("s_in", [4]), value("x_t", [4])],
        [value("s_out", [4]), value("y_t", [4])],
        [weight("w", (4,))],
    )  # fmt: skip
    nodes = [helper.make_node("Scan", ["s0", "xs"], ["s_last", "ys"], name="scan",
                              body=body, num_scan_inputs=1)]  # fmt: skip
    inputs = [value("s0", [4]), value("xs", [10, 4])]
    outputs = [value("s_last", [4]), value("ys", [10, 4])]
    graph = load_onnx(save(tmp_path, nodes, inputs, outputs, []))
    scan = graph.nodes[0]
    assert scan.op_type == "Scan" and scan.has_formula
    assert scan.flops == 10 * (4 + 4)
    assert scan.param_count == 4


def test_unknown_op_is_listed_and_costed_by_bytes(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["h"]),
             helper.make_node("Mystery", ["h"], ["y"], domain="custom.ops")]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [value("x", [2, 2])], [value("y", [2, 2])])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("custom.ops", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    onnx.save(model, str(tmp_path / "m.onnx"))
    loaded = load_onnx(tmp_path / "m.onnx")
    assert loaded.unknown_ops == ("Mystery",)
    assert not loaded.nodes[1].has_formula and loaded.nodes[1].bytes_written == 16


# -- bad input -------------------------------------------------------------------------


def _one_line_error(path: Path, match: str) -> None:
    with pytest.raises(ModelLoadError, match=match) as err:
        load_onnx(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_file(tmp_path):
    _one_line_error(tmp_path / "nope.onnx", "no such file")


def test_directory(tmp_path):
    _one_line_error(tmp_path, "directory")


def test_truncated_model(tmp_path):
    data = conv_model(tmp_path).read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    _one_line_error(tmp_path / "cut.onnx", "not")


def test_random_bytes(tmp_path):
    (tmp_path / "noise.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    _one_line_error(tmp_path / "noise.onnx", "not")


def test_text_file(tmp_path):
    (tmp_path / "notes.onnx").write_text("this is not a model\nat all\n")
    _one_line_error(tmp_path / "notes.onnx", "not")


def test_model_without_nodes(tmp_path):
    path = save(tmp_path, [], [value("x", [1])], [value("x", [1])])
    _one_line_error(path, "no nodes")


def test_non_positive_batch_size(tmp_path):
    with pytest.raises(ModelLoadError, match="--batch-size"):
        load_onnx(conv_model(tmp_path), batch_size=0)


# -- the real networks onnx ships ------------------------------------------------------


def test_light_models_are_shipped():
    assert len(LIGHT_MODELS) >= 9


@pytest.mark.parametrize("path", LIGHT_MODELS, ids=lambda p: p.stem)
def test_every_light_model_loads_with_formulas_for_every_op(path):
    graph = load_onnx(path)
    assert graph.unknown_ops == ()
    assert all(node.has_formula for node in graph.nodes)
    assert graph.total_flops > 0 and graph.total_params > 0
    assert all(edge.src < edge.dst for edge in graph.edges)
    assert not any(node.op_type in ("Constant", "ConstantOfShape") for node in graph.nodes)


@pytest.mark.parametrize(
    ("stem", "params", "nodes"),
    [("light_densenet121", 8_062_504, 668), ("light_inception_v2", 11_214_888, 371)],
)
def test_batchnorm_unsqueezes_fold_into_their_consumers(stem, params, nodes):
    """Caffe2 exports apply every BatchNorm scale and shift as Unsqueeze -> Mul/Add.

    Unfolded, the 242 Unsqueezes of DenseNet-121 (138 of Inception v2) were sources of
    the graph beside the input, and its ideals outnumbered the exact DP's limit.
    """
    graph = load_onnx(LIGHT / f"{stem}.onnx")
    reached = {edge.dst for edge in graph.edges}
    sources = [node.name for i, node in enumerate(graph.nodes) if i not in reached]
    assert len(sources) == 1  # the first convolution, reading the image
    assert "Unsqueeze" not in {node.op_type for node in graph.nodes}
    # the parameters are those counted before folding, each weight once
    assert graph.total_params == params and len(graph.nodes) == nodes


def test_resnet50_figures():
    graph = load_onnx(next(p for p in LIGHT_MODELS if p.stem == "light_resnet50"))
    # About 4.1 G multiply-adds at batch 1, two FLOPs each; 25.56 M learned parameters.
    assert graph.total_flops == pytest.approx(8.2e9, rel=0.05)
    assert 25.5e6 <= graph.total_params <= 25.6e6


def transformer_block(tmp_path: Path) -> Path:
    """Layer norm, one attention head and a GELU MLP, with a runtime-computed reshape."""
    d = 8
    make = helper.make_node

    def i64(name, values):
        return numpy_helper.from_array(np.array(values, dtype=np.int64), name)

    def f32(name, values):
        return numpy_helper.from_array(np.array(values, dtype=np.float32), name)

    nodes = [
        make("Gather", ["emb", "ids"], ["x"], name="embed"),
        make("ReduceMean", ["x", "axes"], ["mu"], keepdims=1),
        make("Sub", ["x", "mu"], ["xc"]),
        make("Pow", ["xc", "two"], ["sq"]),
        make("ReduceMean", ["sq", "axes"], ["var"], keepdims=1),
        make("Add", ["var", "eps"], ["ve"]),
        make("Sqrt", ["ve"], ["sd"]),
        make("Div", ["xc", "sd"], ["xn"]),
        make("MatMul", ["xn", "wqkv"], ["qkv"], name="qkv"),
        make("Split", ["qkv", "split"], ["q", "k", "v"], axis=-1),
        make("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        make("MatMul", ["q", "kt"], ["scores"], name="scores"),
        make("Cast", ["mask"], ["maskb"], to=TensorProto.BOOL),
        make("Unsqueeze", ["maskb", "one"], ["mask3"]),
        make("Where", ["mask3", "scores", "neg"], ["masked"]),
        make("Softmax", ["masked"], ["p"], axis=-1),
        make("MatMul", ["p", "v"], ["att"], name="attend"),
        make("Shape", ["att"], ["shp"]),
        make("Slice", ["shp", "zero", "two1"], ["bs"]),
        make("Concat", ["bs", "minus1"], ["target"], axis=0),
        make("Reshape", ["att", "target"], ["flat"]),
        make("LayerNormalization", ["flat", "gamma", "beta"], ["ln"], axis=-1),
        make("Reshape", ["ln", "to2d"], ["ln2d"]),  # Gemm wants (batch·seq, d)
        make("Gemm", ["ln2d", "w1", "b1"], ["h"], name="fc1"),
        make("Erf", ["h"], ["e"]),
        make("Mul", ["h", "e"], ["g"]),
        make("Expand", ["g", "gshape"], ["y"]),
    ]
    inits = [
        f32("emb", np.zeros((50, d))), i64("axes", [-1]), f32("two", 2.0), f32("eps", 1e-5),
        f32("wqkv", np.zeros((d, 3 * d))), i64("split", [d, d, d]), i64("one", [1]),
        f32("neg", -1e9), i64("zero", [0]), i64("two1", [2]), i64("minus1", [-1]),
        f32("gamma", np.ones(d)), f32("beta", np.zeros(d)), i64("to2d", [-1, d]),
        f32("w1", np.zeros((d, 4 * d))), f32("b1", np.zeros(4 * d)), i64("gshape", [1, 4 * d]),
    ]  # fmt: skip
    inputs = [value("ids", ["batch", "seq"], TensorProto.INT64),
              value("mask", ["batch", "seq"], TensorProto.INT64)]  # fmt: skip
    return save(tmp_path, nodes, inputs, [value("y", None)], inits)


def test_transformer_block_has_concrete_shapes_and_formulas(tmp_path):
    graph = load_onnx(transformer_block(tmp_path), input_shapes={"ids": (2, 5)})
    assert graph.unknown_ops == () and graph.unknown_shapes == ()
    by_name = {node.name: node for node in graph.nodes}
    assert by_name["qkv"].flops == 2 * (2 * 5 * 24) * 8
    assert by_name["scores"].flops == 2 * (2 * 5 * 5) * 8
    assert by_name["fc1"].flops == 2 * 10 * 32 * 8 + 10 * 32
    assert by_name["embed"].param_count == 50 * 8
    # The mask shares the ids' "seq" symbol, so --input-shape ids=... resolved it too.
    assert graph.input_bytes == 2 * (8 * 2 * 5)


_SAMPLES = ROOT / "sample_models"


def test_side_computations_of_the_sample_models() -> None:
    """BERT's position ids and mask expansion are recomputed per stage; its embedding
    lookups (millions of parameters) start the main path; a CNN's first convolution (a
    percent of its FLOPs) is no side computation, nor is anything after it."""
    shapes = {"input_ids": (8, 128)}
    bert = load_onnx(_SAMPLES / "bert_base.onnx", batch_size=8, input_shapes=shapes)
    side = [bert.nodes[i].name for i in bert.replicated]
    assert sorted(side) == sorted(
        [f"embeddings.position_ids/{op}" for op in ("Mul", "Add", "CumSum", "Sub")]
        + [f"extended_attention_mask/{op}" for op in ("Unsqueeze", "Cast", "Sub", "Mul")]
    )
    assert not any("Gather" in name for name in side)
    assert load_onnx(_SAMPLES / "mobilenet_v2.onnx", batch_size=8).replicated == ()


def test_a_side_computation_over_its_flop_share_is_placed(tmp_path) -> None:
    """The same mask chain is a side computation beside wide layers and an ordinary op
    beside narrow ones, where recomputing it in every stage would not be negligible."""

    def model(width: int) -> Path:
        nodes = [
            helper.make_node("Cast", ["mask"], ["c"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["c", "big"], ["m"]),
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("Add", ["h", "m"], ["y"]),
        ]
        big = numpy_helper.from_array(np.array(-1e4, np.float32), "big")
        weight = numpy_helper.from_array(np.zeros((width, width), np.float32), "w")
        graph = helper.make_graph(
            nodes, "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, width]),
             helper.make_tensor_value_info("mask", TensorProto.INT64, [2, width])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, width])],
            [weight, big],
        )  # fmt: skip
        path = tmp_path / f"w{width}.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        return path

    wide = load_onnx(model(4096), batch_size=2)
    assert [wide.nodes[i].op_type for i in wide.replicated] == ["Cast", "Mul"]
    # the Mul is 6% of the narrow model's FLOPs: placed; the Cast (no FLOPs) feeding it
    # is still recomputed wherever the Mul goes
    narrow = load_onnx(model(8), batch_size=2)
    assert [narrow.nodes[i].op_type for i in narrow.replicated] == ["Cast"]


def test_an_activation_run_in_place_moves_three_quarters_of_its_bytes(tmp_path):
    from placer.costs.cluster_file import default_cluster
    from placer.costs.roofline import CostOptions, PassCost, op_time

    # x -> Add -> a -> Relu (a read by nothing else: in place) -> y
    # Relu on the graph input itself: a fresh buffer (the caller's input is kept)
    n = 1 << 20
    nodes = [helper.make_node("Add", ["x", "x"], ["a"], name="add"),
             helper.make_node("Relu", ["a"], ["y"], name="relu"),
             helper.make_node("Relu", ["x"], ["z"], name="relu_input")]  # fmt: skip
    path = save(tmp_path, nodes, [value("x", [n])], [value("y", [n]), value("z", [n])])
    graph = {node.name: node for node in load_onnx(path).nodes}
    assert [graph[k].in_place for k in ("relu", "relu_input", "add")] == [True, False, False]
    cpu = default_cluster().group("cpu")
    moved = {k: op_time(graph[k], cpu, CostOptions(), PassCost(1.0)).bytes for k in graph}
    assert moved["relu"] == 0.75 * moved["relu_input"] == 0.75 * 2 * 4 * n
    # on a GPU it moves what it counts: the write-allocate rule is the CPU sweep's
    gpu = default_cluster().group("a100-80gb")
    assert op_time(graph["relu"], gpu, CostOptions(), PassCost(1.0)).bytes == 2 * 4 * n
    # a backward pass, or a Relu inside a fused kernel, is not in place
    assert op_time(graph["relu"], cpu, CostOptions(), PassCost.backward_of(1.0, 1.0)).bytes \
        == 2 * 4 * n
    # a second reader of a: Relu writes a fresh buffer
    nodes.append(helper.make_node("Mul", ["a", "x"], ["w"], name="mul"))
    outputs = [value("y", [n]), value("z", [n]), value("w", [n])]
    path = save(tmp_path, nodes, [value("x", [n])], outputs, name="shared.onnx")
    assert not {node.name: node for node in load_onnx(path).nodes}["relu"].in_place
