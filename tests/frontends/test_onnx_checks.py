"""Hostile ONNX graphs: each is refused in one line naming the node and what is wrong.

The graphs are built here with onnx.helper; strings that are not UTF-8 are made by
editing the serialized bytes (a same-length marker, so protobuf's lengths stay right).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from placer.errors import ModelLoadError
from placer.frontends.onnx_checks import MAX_ELEMENTS, check_model, einsum_problem
from placer.frontends.onnx_graph import load_onnx
from tests.conftest import one_line_error
from tests.frontends.test_onnx_graph import conv_model, save, value, weight


def refused(path: Path, *fragments: str, **options) -> str:
    """Assert load_onnx refuses ``path`` with one line naming it and every fragment."""
    with pytest.raises(ModelLoadError) as err:
        load_onnx(path, **options)
    message = str(err.value)
    assert "\n" not in message and str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def relu_model(tmp_path: Path, **node_options) -> Path:
    node = helper.make_node("Relu", ["x"], ["y"], name="r", **node_options)
    return save(tmp_path, [node], [value("x", [1, 4])], [value("y", [1, 4])])


def edit_bytes(path: Path, marker: bytes, replacement: bytes) -> Path:
    data = path.read_bytes()
    assert data.count(marker) == 1 and len(marker) == len(replacement)
    path.write_bytes(data.replace(marker, replacement))
    return path


def scan_body():
    """A Scan body: a running sum s over the rows e of the scanned input."""
    nodes = [
        helper.make_node("Add", ["s", "e"], ["s_next"], name="acc"),
        helper.make_node("Identity", ["s_next"], ["row"], name="copy"),
    ]
    return helper.make_graph(
        nodes, "body", [value("s", [4]), value("e", [4])], [value("s_next", [4]), value("row", [4])]
    )


def scan_model(tmp_path: Path, body=None, **attrs) -> Path:
    attrs.setdefault("num_scan_inputs", 1)
    node = helper.make_node(
        "Scan", ["s0", "xs"], ["total", "rows"], name="sc", body=body or scan_body(), **attrs
    )
    return save(
        tmp_path,
        [node],
        [value("s0", [4]), value("xs", [3, 4])],
        [value("total", [4]), value("rows", [3, 4])],
    )


# -- single static assignment ----------------------------------------------------------


def test_a_tensor_made_by_two_nodes_is_refused(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["y"], name="a"),
        helper.make_node("Neg", ["x"], ["y"], name="b"),
    ]
    path = save(tmp_path, nodes, [value("x", [1, 4])], [value("y", [1, 4])])
    refused(path, "node 'b' (Neg)", "tensor 'y' is produced twice", "node 'a'")


def test_two_outputs_of_one_name_on_one_node_are_refused(tmp_path):
    node = helper.make_node("Split", ["x"], ["y", "y"], name="s", axis=1, num_outputs=2)
    path = save(tmp_path, [node], [value("x", [1, 4])], [value("y", None)], opset=18)
    refused(path, "node 's' (Split)", "tensor 'y' is produced twice")


def test_a_node_overwriting_a_graph_input_is_refused(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["x"], name="a")]
    path = save(tmp_path, nodes, [value("x", [1, 4])], [value("x", [1, 4])])
    refused(path, "node 'a' (Relu)", "tensor 'x' is produced twice", "graph input")


def test_a_node_overwriting_an_initializer_is_refused(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["w"], name="a"),
        helper.make_node("Add", ["x", "w"], ["y"], name="b"),
    ]
    path = save(tmp_path, nodes, [value("x", [4])], [value("y", [4])], [weight("w", (4,))])
    refused(path, "node 'a' (Relu)", "tensor 'w' is produced twice", "initializer")


def test_an_initializer_listed_as_input_is_fine(tmp_path):
    # before IR 4 every initializer was also a graph input: not a second definition
    nodes = [helper.make_node("Add", ["x", "w"], ["y"], name="b")]
    inputs = [value("x", [4]), value("w", [4])]
    path = save(tmp_path, nodes, inputs, [value("y", [4])], [weight("w", (4,))])
    assert load_onnx(path).nodes[0].param_count == 4


def test_an_empty_graph_output_name_is_refused(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="a")]
    path = save(tmp_path, nodes, [value("x", [1, 4])], [value("", [1, 4])])
    refused(path, "graph output 0 has an empty name")


def test_a_graph_output_nothing_makes_is_refused(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="a")]
    path = save(tmp_path, nodes, [value("x", [1, 4])], [value("z", [1, 4])])
    refused(path, "graph output 'z' is made by no node")


def test_reading_a_tensor_nothing_makes_is_refused(tmp_path):
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="a")]
    path = save(tmp_path, nodes, [value("x", [1, 4])], [value("y", [1, 4])])
    refused(path, "node 'a' (Add)", "reads tensor 'ghost'")


def test_reading_a_tensor_made_later_is_refused(tmp_path):
    nodes = [
        helper.make_node("Relu", ["z"], ["y"], name="first"),
        helper.make_node("Neg", ["x"], ["z"], name="second"),
    ]
    path = save(tmp_path, nodes, [value("x", [4])], [value("y", [4])])
    refused(path, "node 'first' (Relu)", "reads tensor 'z'")


def test_a_body_may_read_the_enclosing_scope(tmp_path):
    body = scan_body()
    body.node[0].input[1] = "bias"  # s_next = s + bias, bias from the main graph
    nodes = [
        helper.make_node("Relu", ["x"], ["bias"], name="make_bias"),
        helper.make_node(
            "Scan", ["s0", "xs"], ["total", "rows"], name="sc", body=body, num_scan_inputs=1
        ),
    ]
    inputs = [value("x", [4]), value("s0", [4]), value("xs", [3, 4])]
    path = save(tmp_path, nodes, inputs, [value("total", [4]), value("rows", [3, 4])])
    graph = load_onnx(path)
    assert [(e.src, e.dst, e.tensor) for e in graph.edges] == [(0, 1, "bias")]


def test_a_body_reading_an_unknown_tensor_is_refused(tmp_path):
    body = scan_body()
    body.node[0].input[1] = "ghost"
    message = refused(scan_model(tmp_path, body), "node 'sc' (Scan)", "reads tensor 'ghost'")
    assert "attribute 'body'" in message and "node 'acc' (Add)" in message


def test_a_body_redefining_an_outer_tensor_is_refused(tmp_path):
    body = scan_body()
    body.node[1].output[0] = "xs"  # the main graph's input
    body.output[1].name = "xs"
    refused(scan_model(tmp_path, body), "node 'copy' (Identity)", "tensor 'xs' is produced twice")


def test_a_node_without_outputs_is_refused(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], [], name="lost"),
        helper.make_node("Neg", ["x"], ["y"], name="kept"),
    ]
    path = save(tmp_path, nodes, [value("x", [4])], [value("y", [4])])
    refused(path, "node 'lost' (Relu)", "no outputs")


def test_constant_of_shape_without_output_is_refused(tmp_path):
    shape = numpy_helper.from_array(np.array([2, 2], np.int64), "shape")
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], [], name="fill"),
        helper.make_node("Relu", ["x"], ["y"], name="r"),
    ]
    path = save(tmp_path, nodes, [value("x", [4])], [value("y", [4])], [shape])
    refused(path, "node 'fill' (ConstantOfShape)", "no outputs")


# -- text that is not UTF-8 ------------------------------------------------------------


def test_a_node_name_that_is_not_utf8_is_named_by_position(tmp_path):
    nodes = [
        helper.make_node("Neg", ["x"], ["h"], name="first"),
        helper.make_node("Relu", ["h"], ["y"], name="MARKR"),
    ]
    path = save(tmp_path, nodes, [value("x", [4])], [value("y", [4])])
    edit_bytes(path, b"MARKR", b"MA\xffKR")
    refused(path, "node 1 (Relu, in graph order)", "name is not UTF-8", r"\xff")


def test_an_op_type_that_is_not_utf8_is_refused(tmp_path):
    path = edit_bytes(relu_model(tmp_path), b"Relu", b"Re\xfeu")
    refused(path, "node 0", "op type is not UTF-8")


@pytest.mark.parametrize(
    ("where", "fragment"),
    [("input", "an input name is not UTF-8"), ("output", "an output name is not UTF-8")],
)
def test_a_tensor_name_that_is_not_utf8_is_refused(tmp_path, where, fragment):
    nodes = [
        helper.make_node("Neg", ["x"], ["TNSR"], name="a"),
        helper.make_node("Relu", ["TNSR"], ["y"], name="b"),
    ]
    path = save(tmp_path, nodes, [value("x", [4])], [value("y", [4])])
    data = path.read_bytes()
    # the first occurrence is node a's output, the second node b's input
    first = data.index(b"TNSR")
    at = first if where == "output" else data.index(b"TNSR", first + 1)
    path.write_bytes(data[:at] + b"TN\xc3R" + data[at + 4 :])
    node = "'a' (Neg)" if where == "output" else "'b' (Relu)"
    refused(path, f"node {node}", fragment)


def test_a_domain_that_is_not_utf8_is_refused(tmp_path):
    node = helper.make_node("Mystery", ["x"], ["y"], name="m", domain="DOMX")
    graph = helper.make_graph([node], "g", [value("x", [4])], [value("y", [4])])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("DOMX", 1)]
    path = tmp_path / "m.onnx"
    data = helper.make_model(graph, opset_imports=opsets).SerializeToString()
    path.write_bytes(data.replace(b"DOMX", b"DO\xffX"))
    refused(path, "node 'm' (Mystery)", "domain is not UTF-8")


def test_a_string_attribute_that_is_not_utf8_is_refused(tmp_path):
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="QQQQ")
    path = save(tmp_path, [node], [value("x", [1, 1, 4, 4])], [value("y", None)], [scales])
    edit_bytes(path, b"QQQQ", b"Q\xffQQ")
    refused(path, "node 'up' (Resize)", "attribute 'mode' is not UTF-8")


def test_a_strings_attribute_that_is_not_utf8_is_refused(tmp_path):
    node = helper.make_node("Mystery", ["x"], ["y"], name="m", domain="custom", tags=["ok", "QQQ"])
    graph = helper.make_graph([node], "g", [value("x", [4])], [value("y", [4])])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)]
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    edit_bytes(path, b"QQQ", b"Q\x80Q")
    refused(path, "node 'm' (Mystery)", "attribute 'tags' holds a string that is not UTF-8")


def test_a_graph_name_that_is_not_utf8_is_refused(tmp_path):
    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    graph = helper.make_graph([node], "GRAPHNAME", [value("x", [4])], [value("y", [4])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    edit_bytes(path, b"GRAPHNAME", b"GRAPH\xffAME")
    refused(path, "the graph's name is not UTF-8")


# -- attributes ------------------------------------------------------------------------


def test_ref_attr_name_outside_a_function_is_refused(tmp_path):
    node = helper.make_node("LeakyRelu", ["x"], ["y"], name="lr")
    node.attribute.append(
        AttributeProto(name="alpha", type=AttributeProto.FLOAT, ref_attr_name="slope")
    )
    path = save(tmp_path, [node], [value("x", [4])], [value("y", [4])])
    refused(path, "node 'lr' (LeakyRelu)", "attribute 'alpha' refers to a function's attribute")


def test_an_attribute_without_type_is_refused(tmp_path):
    node = helper.make_node("LeakyRelu", ["x"], ["y"], name="lr")
    node.attribute.append(AttributeProto(name="alpha", f=0.1))  # type UNDEFINED
    path = save(tmp_path, [node], [value("x", [4])], [value("y", [4])])
    refused(path, "node 'lr' (LeakyRelu)", "attribute 'alpha' has no valid type")


@pytest.mark.parametrize(
    ("attrs", "fragment"),
    [
        ({"num_scan_inputs": "one"}, "attribute 'num_scan_inputs' must be an int, got a string"),
        ({"num_scan_inputs": 1.0}, "attribute 'num_scan_inputs' must be an int, got a float"),
        ({"scan_input_axes": [0.5]}, "attribute 'scan_input_axes' must be ints, got floats"),
        ({"scan_input_axes": 0}, "attribute 'scan_input_axes' must be ints, got an int"),
    ],
)
def test_scan_attributes_of_the_wrong_type_are_refused(tmp_path, attrs, fragment):
    refused(scan_model(tmp_path, **attrs), "node 'sc' (Scan)", fragment)


@pytest.mark.parametrize(("n_scan", "axes"), [(0, None), (3, None), (1, [2]), (1, [-3])], ids=str)
def test_scan_attributes_out_of_range_are_refused(tmp_path, n_scan, axes):
    attrs = {"num_scan_inputs": n_scan}
    if axes is not None:
        attrs["scan_input_axes"] = axes
    message = refused(scan_model(tmp_path, **attrs), "node 'sc' (Scan)")
    assert "num_scan_inputs" in message or "scan_input_axes" in message


def test_a_good_scan_is_costed_by_its_length(tmp_path):
    graph = load_onnx(scan_model(tmp_path))
    assert graph.nodes[0].flops == 3 * 4  # three rows of a 4-wide Add


@pytest.mark.parametrize(
    ("op", "attrs", "fragment"),
    [
        ("Conv", {"kernel_shape": 3.0}, "attribute 'kernel_shape' must be ints, got a float"),
        ("Conv", {"group": "two"}, "attribute 'group' must be an int, got a string"),
        ("Conv", {"strides": [1.0, 1.0]}, "attribute 'strides' must be ints, got floats"),
        ("Conv", {"pads": 1}, "attribute 'pads' must be ints, got an int"),
        ("Gemm", {"transA": "yes"}, "attribute 'transA' must be an int, got a string"),
        ("Gemm", {"alpha": [1.0]}, "attribute 'alpha' must be a float, got floats"),
    ],
)
def test_attributes_of_the_wrong_type_are_refused(tmp_path, op, attrs, fragment):
    if op == "Conv":
        node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", **attrs)
        inputs, init = [value("x", [1, 3, 8, 8])], [weight("w", (4, 3, 3, 3))]
    else:
        node = helper.make_node("Gemm", ["x", "w"], ["y"], name="c", **attrs)
        inputs, init = [value("x", [2, 3])], [weight("w", (3, 4))]
    path = save(tmp_path, [node], inputs, [value("y", None)], init)
    refused(path, f"node 'c' ({op})", fragment)


def test_split_sizes_of_the_wrong_type_are_refused(tmp_path):
    node = helper.make_node("Split", ["x"], ["a", "b"], name="s", axis=1, split=[1.0, 3.0])
    path = save(tmp_path, [node], [value("x", [1, 4])], [value("a", None)], opset=11)
    refused(path, "node 's' (Split)", "attribute 'split' must be ints, got floats")


def test_a_missing_required_attribute_is_refused(tmp_path):
    node = helper.make_node("Einsum", ["x"], ["y"], name="e")
    path = save(tmp_path, [node], [value("x", [2, 2])], [value("y", None)], opset=12)
    refused(path, "node 'e' (Einsum)", "required attribute 'equation' is missing")


def test_an_attribute_given_twice_is_refused(tmp_path):
    node = helper.make_node("LeakyRelu", ["x"], ["y"], name="lr", alpha=0.1)
    node.attribute.append(helper.make_attribute("alpha", 0.2))
    path = save(tmp_path, [node], [value("x", [4])], [value("y", [4])])
    refused(path, "node 'lr' (LeakyRelu)", "attribute 'alpha' is given twice")


def test_custom_ops_keep_any_attributes(tmp_path):
    node = helper.make_node("Mystery", ["x"], ["y"], name="m", domain="custom", kernel_shape=3.0)
    graph = helper.make_graph([node], "g", [value("x", [4])], [value("y", [4])])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)]
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    assert load_onnx(path).unknown_ops == ("Mystery",)


# -- Einsum ----------------------------------------------------------------------------

BAD_EQUATIONS = [
    ("....->", 1),
    ("....", 1),
    ("a....->", 1),
    (".....->", 1),
    ("a...b...->", 1),
    ("a.b->", 1),
    ("....,...->", 2),
    ("ij,jk", 1),
    ("ij->kk", 1),
    ("ij->k", 1),
    ("ij->...", 1),
    ("i->j->k", 1),
    ("i1->i", 1),
]


@pytest.mark.parametrize(("equation", "operands"), BAD_EQUATIONS)
def test_malformed_einsum_equations_are_found(equation, operands):
    assert einsum_problem(equation, operands) is not None


@pytest.mark.parametrize(
    ("equation", "operands"),
    [("ij,jk->ik", 2), ("bij, bjk -> bik", 2), ("...ij->...ji", 1), ("ii->i", 1), ("ij", 1),
     ("i,i", 2), ("...,...->...", 2), ("ab->", 1)],
)  # fmt: skip
def test_well_formed_einsum_equations_pass(equation, operands):
    assert einsum_problem(equation, operands) is None


@pytest.mark.parametrize(("equation", "operands"), BAD_EQUATIONS)
def test_malformed_einsum_is_refused_before_shape_inference(tmp_path, equation, operands):
    names = [f"x{i}" for i in range(operands)]
    node = helper.make_node("Einsum", names, ["y"], name="e", equation=equation)
    inputs = [value(name, [2, 2]) for name in names]
    path = save(tmp_path, [node], inputs, [value("y", None)], opset=12)
    refused(path, "node 'e' (Einsum)", "equation")


def test_the_einsum_that_hung_shape_inference_ends_at_once(tmp_path):
    # ONNX shape inference never returns on this equation (and ignores Ctrl-C): run
    # placer in a child process so that a regression fails instead of hanging the suite
    node = helper.make_node("Einsum", ["x"], ["y"], name="e", equation="....->")
    path = save(tmp_path, [node], [value("x", [2, 2])], [value("y", None)], opset=12)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "placer", "inspect", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert time.monotonic() - started < 120
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "equation '....->'" in done.stderr


# -- sizes -----------------------------------------------------------------------------


def test_an_input_past_the_element_cap_is_refused(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    inputs = [value("x", [2**62, 4]), value("w", [4, 2**62])]
    path = save(tmp_path, nodes, inputs, [value("y", None)])
    refused(path, "graph input 'x'", "4611686018427387904x4", "more than placer handles")


@pytest.mark.parametrize("batch", [2**62, 2**63, 2**70])
def test_a_batch_size_past_the_element_cap_is_refused(tmp_path, batch):
    refused(conv_model(tmp_path), "graph input 'x'", f"--batch-size {batch}", batch_size=batch)


def test_an_input_shape_past_the_element_cap_is_refused(tmp_path):
    shapes = {"x": (1, 3, 2**40, 2**40)}
    refused(conv_model(tmp_path), "graph input 'x'", "--input-shape x", input_shapes=shapes)


def test_the_cap_itself_is_allowed(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    path = save(tmp_path, nodes, [value("x", [2**26, 2**27])], [value("y", None)])
    assert load_onnx(path).nodes[0].output_bytes == 4 * MAX_ELEMENTS


def test_an_inferred_tensor_past_the_cap_is_refused(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    inputs = [value("x", [2**26, 1]), value("w", [1, 2**28])]
    path = save(tmp_path, nodes, inputs, [value("y", None)])
    refused(path, "tensor 'y'", "67108864x268435456", "more than placer handles")


@pytest.mark.parametrize("dims", [(-1, 4), (2**40, 2**40)], ids=["negative", "huge"])
def test_an_initializer_of_absurd_dims_is_refused(tmp_path, dims):
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=dims)
    nodes = [helper.make_node("Add", ["x", "w"], ["y"], name="a")]
    path = save(tmp_path, nodes, [value("x", [4])], [value("y", None)], [w])
    refused(path, "initializer 'w'")


def test_flops_past_the_figure_cap_are_refused(tmp_path):
    # each operand fits, but the product of every index's size is past 1e40
    names = ["a", "b", "c", "d"]
    node = helper.make_node("Einsum", names, ["y"], name="e", equation="p,q,r,s->")
    inputs = [value(name, [2**50]) for name in names]
    path = save(tmp_path, [node], inputs, [value("y", None)], opset=12)
    refused(path, "node 'e' (Einsum)", "FLOPs", "more than placer handles")


def test_a_huge_loop_trip_count_is_refused_not_overflowed(tmp_path):
    body = helper.make_graph(
        [helper.make_node("MatMul", ["h", "h"], ["h_next"], name="mm"),
         helper.make_node("Identity", ["cond"], ["cond_next"], name="keep")],
        "body",
        [value("i", [], TensorProto.INT64), value("cond", [], TensorProto.BOOL),
         value("h", [2**25, 2**25])],
        [value("cond_next", [], TensorProto.BOOL), value("h_next", [2**25, 2**25])],
    )  # fmt: skip
    trip = numpy_helper.from_array(np.array(2**62, np.int64), "trip")
    nodes = [helper.make_node("Loop", ["trip", "", "h0"], ["h"], name="loop", body=body)]
    path = save(tmp_path, nodes, [value("h0", [2**25, 2**25])], [value("h", None)], [trip])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning either
        refused(path, "node 'loop' (Loop)", "FLOPs")


# -- the file itself -------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    refused(fifo, "FIFO")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_dev_zero_is_refused_at_once():
    refused(Path("/dev/zero"), "character device")


def test_a_model_over_the_size_cap_is_refused_unread(tmp_path, monkeypatch):
    import placer.frontends.onnx_graph

    monkeypatch.setattr(placer.frontends.onnx_graph, "MAX_MODEL_BYTES", 100)
    refused(conv_model(tmp_path), "larger than placer reads for an ONNX model")


def test_check_model_passes_every_light_model():
    from tests.frontends.test_onnx_graph import LIGHT_MODELS

    for path in LIGHT_MODELS:
        check_model(onnx.load(str(path), load_external_data=False), path)


# -- through the command line ----------------------------------------------------------


def duplicate_producer(tmp_path: Path) -> Path:
    nodes = [
        helper.make_node("Relu", ["x"], ["h"], name="a"),
        helper.make_node("Neg", ["x"], ["h"], name="b"),
        helper.make_node("Abs", ["h"], ["y"], name="c"),
    ]
    return save(tmp_path, nodes, [value("x", [1, 4])], [value("y", [1, 4])], name="dup.onnx")


@pytest.mark.parametrize("command", ["place", "inspect", "evaluate"])
def test_hostile_models_through_the_cli(run_placer, tmp_path, command):
    path = duplicate_producer(tmp_path)
    plan = tmp_path / "plan.json"
    plan.write_text('{"stages": []}')
    args = [command, path] + ([plan] if command == "evaluate" else [])
    one_line_error(run_placer(*args), str(path), "tensor 'h' is produced twice")


def test_split_refuses_a_hostile_model(run_placer, tmp_path):
    good = [
        helper.make_node("Relu", ["x"], ["h"], name="a"),
        helper.make_node("Neg", ["h"], ["y"], name="b"),
    ]
    path = save(tmp_path, good, [value("x", [1, 4])], [value("y", [1, 4])])
    plan = tmp_path / "plan.json"
    assert run_placer("place", path, "-o", plan).exit_code == 0
    # the same node names, but node b now also overwrites tensor h
    bad = [good[0], helper.make_node("Neg", ["h"], ["h"], name="b")]
    save(tmp_path, bad, [value("x", [1, 4])], [value("h", [1, 4])])
    result = run_placer("split", path, plan, "-o", tmp_path / "stages")
    one_line_error(result, str(path), "tensor 'h' is produced twice")
    assert not (tmp_path / "stages").exists()


def test_a_huge_batch_size_is_one_line_without_warnings(run_placer, tmp_path):
    model = conv_model(tmp_path)
    # past int64: the option's own range refuses it
    one_line_error(run_placer("place", model, "--batch-size", str(2**63)), "--batch-size")
    # every dim in range, but a tensor of 2**70 elements: the element cap refuses it
    big = f"x={2**31 - 1},3,{2**31 - 1},8"
    result = run_placer("place", model, "--input-shape", big)
    one_line_error(result, "graph input 'x'", "more than placer handles")
    assert "RuntimeWarning" not in result.stderr


def test_non_utf8_names_through_the_cli(run_placer, tmp_path):
    path = edit_bytes(relu_model(tmp_path), b"Relu", b"Re\xfeu")
    for command in ("place", "inspect"):
        one_line_error(run_placer(command, path), "op type is not UTF-8")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("command", ["place", "inspect"])
def test_a_fifo_or_a_device_as_the_model_is_one_line_at_once(run_placer, tmp_path, command):
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    one_line_error(run_placer(command, fifo), str(fifo), "FIFO")
    if Path("/dev/zero").exists():  # named .onnx, so that placer reads it as a model
        zero = tmp_path / "zero.onnx"
        zero.symlink_to("/dev/zero")
        one_line_error(run_placer(command, zero), str(zero), "character device")
