"""FLOP formulas checked against hand counts, one node at a time."""

from __future__ import annotations

import re

import pytest

from placer.errors import ModelLoadError
from placer.frontends.opcost import (
    FLOP_FORMULAS,
    AttrKind,
    OpClass,
    OpContext,
    ProductShape,
    TensorInfo,
    attribute,
    cost_of,
    has_formula,
    op_class,
    op_cost,
)
from tests.conftest import ROOT


def t(*shape: int, itemsize: float = 4) -> TensorInfo:
    return TensorInfo(shape, itemsize)


def test_conv_counts_two_flops_per_multiply_add_plus_bias():
    # N=1, Cin=3, Cout=8, 3x3 kernel, 5x5 output: 8·25 outputs, each 3·3·3 multiply-adds.
    x, w, b, y = t(1, 3, 7, 7), t(8, 3, 3, 3), t(8), t(1, 8, 5, 5)
    cost = cost_of("Conv", [x, w, b], [y], {"kernel_shape": [3, 3]})
    assert cost.flops == 2 * 8 * 25 * 27 + 8 * 25
    assert cost.bytes_read == x.nbytes + w.nbytes + b.nbytes
    assert cost.bytes_written == y.nbytes


def test_grouped_and_depthwise_conv_divide_input_channels_by_group():
    # Depthwise: group = Cin = Cout = 16; each output reads one channel's 3x3 window.
    x, w, y = t(2, 16, 10, 10), t(16, 1, 3, 3), t(2, 16, 8, 8)
    assert cost_of("Conv", [x, w], [y], {"group": 16}).flops == 2 * 2 * 16 * 64 * 9
    # Two groups of a 4->6 conv: each output reads 4/2 channels.
    x, w, y = t(1, 4, 5, 5), t(6, 2, 1, 1), t(1, 6, 5, 5)
    assert cost_of("Conv", [x, w], [y], {"group": 2}).flops == 2 * 6 * 25 * 2


def test_conv_transpose_scatters_each_input_element():
    x, w, y = t(1, 4, 3, 3), t(4, 2, 2, 2), t(1, 2, 6, 6)
    assert cost_of("ConvTranspose", [x, w], [y], {"strides": [2, 2]}).flops == 2 * 36 * 8


def test_matmul_batched_and_broadcast():
    a, b, y = t(2, 3, 4, 5), t(5, 6), t(2, 3, 4, 6)
    assert cost_of("MatMul", [a, b], [y]).flops == 2 * (2 * 3 * 4 * 6) * 5


def test_gemm_with_transposed_a_and_bias():
    a, b, c, y = t(7, 3), t(7, 5), t(5), t(3, 5)
    assert cost_of("Gemm", [a, b, c], [y], {"transA": 1}).flops == 2 * 3 * 5 * 7 + 15


def test_einsum_batched_matmul_matches_matmul():
    a, b, y = t(2, 3, 4), t(2, 4, 5), t(2, 3, 5)
    flops = cost_of("Einsum", [a, b], [y], {"equation": b"bij,bjk->bik"}).flops
    assert flops == cost_of("MatMul", [a, b], [y]).flops == 2 * 2 * 3 * 5 * 4


def test_einsum_with_ellipsis():
    a, b, y = t(2, 3, 4), t(2, 4, 5), t(2, 3, 5)
    assert cost_of("Einsum", [a, b], [y], {"equation": "...ij,...jk"}).flops == 240


def test_pooling_and_global_pooling():
    x, y = t(1, 2, 4, 4), t(1, 2, 2, 2)
    assert cost_of("MaxPool", [x], [y], {"kernel_shape": [2, 2]}).flops == 8 * 4
    assert cost_of("AveragePool", [x], [y], {"kernel_shape": [2, 2]}).flops == 8 * 5
    assert cost_of("GlobalAveragePool", [x], [t(1, 2, 1, 1)]).flops == 32 + 2


def test_variadic_sum_and_layout_ops():
    x = t(3, 4)
    assert cost_of("Sum", [x, x, x], [x]).flops == 2 * 12
    for op in ("Reshape", "Transpose", "Concat", "Gather", "Cast", "Dropout", "Shape"):
        assert cost_of(op, [x], [x]).flops == 0
    assert cost_of("Shape", [x], [t(2, itemsize=8)]).bytes_read == 0


def test_normalisations_and_softmax_per_element():
    x = t(2, 8)
    assert cost_of("BatchNormalization", [x], [x]).flops == 32
    assert cost_of("LayerNormalization", [x, t(8), t(8)], [x]).flops == 7 * 16
    assert cost_of("Softmax", [x], [x]).flops == 5 * 16
    assert cost_of("LRN", [x], [x], {"size": 5}).flops == 16 * 13


def test_lstm_counts_four_gates():
    x, w, r = t(3, 2, 10), t(1, 32, 10), t(1, 32, 8)
    cost = cost_of("LSTM", [x, w, r], [t(3, 1, 2, 8)], {"hidden_size": 8})
    per_step = 2 * 4 * 8 * (10 + 8) + 2 * 4 * 8 + 9 * 8
    assert cost.flops == 3 * 2 * 1 * per_step


def test_unknown_op_is_costed_by_bytes_only():
    x = t(10)
    cost = cost_of("MyCustomOp", [x], [x, x])
    assert (cost.flops, cost.bytes_read, cost.bytes_written, cost.has_formula) == (
        0.0,
        40,
        80,
        False,
    )
    assert not has_formula("MyCustomOp")


def test_malformed_node_falls_back_to_bytes():
    # A Conv without its weight cannot be costed; it must not raise.
    cost = cost_of("Conv", [t(1, 3, 4, 4)], [t(1, 3, 4, 4)])
    assert not cost.has_formula and cost.flops == 0


@pytest.mark.parametrize(
    "op",
    [
        "MatMul", "Gemm", "Add", "Mul", "Div", "Sub", "Pow", "Sqrt", "Erf", "Tanh",
        "Softmax", "LayerNormalization", "ReduceMean", "Transpose", "Reshape", "Gather",
        "Concat", "Split", "Slice", "Unsqueeze", "Squeeze", "Where", "Cast", "Shape",
        "Expand", "Einsum", "Conv", "ConvTranspose", "MaxPool", "AveragePool",
        "GlobalAveragePool", "BatchNormalization", "Relu", "Sigmoid", "Clip", "HardSwish",
        "Gelu", "LRN", "Dropout", "Flatten", "Sum", "ConstantOfShape", "Constant", "Pad",
        "Resize", "InstanceNormalization", "LeakyRelu", "PRelu", "Identity", "Tile",
    ],
)  # fmt: skip
def test_transformer_and_cnn_ops_have_formulas(op):
    assert op in FLOP_FORMULAS


# -- attributes of the wrong type ------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "attrs", "fragment"),
    [
        ("Gemm", {"transA": "yes"}, "attribute 'transA' must be an int, got a string"),
        ("Gemm", {"alpha": [1.0]}, "attribute 'alpha' must be a float, got floats"),
        ("MaxPool", {"kernel_shape": 3.0}, "attribute 'kernel_shape' must be ints, got a float"),
        ("MaxPool", {"kernel_shape": [2, "2"]}, "must be ints, got a list of mixed values"),
        ("Einsum", {"equation": 7}, "attribute 'equation' must be a string, got an int"),
        ("Resize", {"mode": b"\xfflinear"}, "attribute 'mode' is not UTF-8 text"),
        ("LRN", {"size": True}, "attribute 'size' must be an int, got a bool"),
    ],
)
def test_an_attribute_of_the_wrong_type_is_one_line_naming_the_node(op, attrs, fragment):
    x = t(4, 4)
    with pytest.raises(ModelLoadError, match=re.escape(fragment)) as err:
        op_cost(OpContext(op, (x, x), (x,), attrs, node="n1"))
    assert str(err.value).startswith(f"node 'n1' ({op}): ")


def test_attributes_read_as_their_type():
    where = "node 'g' (Gemm)"
    assert attribute({"alpha": 2}, "alpha", AttrKind.FLOAT, 1.0, where=where) == 2.0
    assert attribute({"pads": [1, 1]}, "pads", AttrKind.INTS, (), where=where) == (1, 1)
    assert attribute({}, "pads", AttrKind.INTS, None, where=where) is None
    assert attribute({"mode": b"cubic"}, "mode", AttrKind.STRING, "", where=where) == "cubic"


def test_flops_past_float_range_are_infinite_not_an_overflow_error():
    big = t(2**1000)
    cost = cost_of("Einsum", [big, big], [t()], {"equation": "i,j->"})
    assert cost.flops == float("inf") and cost.has_formula


@pytest.mark.parametrize(
    ("op_type", "attrs", "expected"),
    [
        ("MatMul", {}, "gemm"),
        ("Gemm", {}, "gemm"),
        ("Conv", {"group": 1}, "conv"),
        ("Conv", {"group": 32}, "grouped_conv"),
        ("Add", {}, "elementwise"),
        ("Relu", {}, "elementwise"),
        ("Erf", {}, "transcendental"),
        ("Softmax", {}, "reduction"),
        ("LayerNormalization", {}, "reduction"),
        ("MaxPool", {}, "reduction"),
        ("LRN", {"size": 5}, "scalar"),  # a scalar pow per element
        ("Transpose", {"perm": [0, 2, 1, 3]}, "movement"),  # whole rows move
        ("Transpose", {"perm": [0, 2, 3, 1]}, "transpose"),  # element by element
        ("Transpose", {}, "transpose"),  # the axes reversed
        ("Concat", {}, "movement"),
        ("Gather", {}, "movement"),
        ("Reshape", {}, "view"),
        ("Identity", {}, "view"),
        ("LSTM", {}, "other"),
        ("NoSuchOp", {}, "other"),
    ],
)
def test_every_op_type_has_the_class_its_limits_come_from(op_type, attrs, expected) -> None:
    assert op_class(op_type, attrs) is OpClass(expected)


def test_a_view_op_moves_no_bytes_and_a_gather_reads_only_its_rows() -> None:
    x = t(8, 128, 768)
    reshape = cost_of("Reshape", [x, t(3, itemsize=8)], [t(1024, 768)])
    assert (reshape.bytes_read, reshape.bytes_written) == (0, 0)
    assert reshape.op_class is OpClass.VIEW
    # an embedding lookup: 1,024 rows of a 30,522-row table, not the whole table
    table, ids, rows = t(30522, 768), t(8, 128, itemsize=8), t(8, 128, 768)
    gather = cost_of("Gather", [table, ids], [rows], {"axis": 0})
    assert gather.bytes_written == rows.nbytes
    assert gather.bytes_read == rows.nbytes + ids.nbytes
    assert gather.bytes_read < table.nbytes / 20


def test_a_grouped_convolution_is_depthwise_only_when_its_groups_are_narrow() -> None:
    # MobileNet: one channel per group; ShuffleNet: 60 channels per group of 3
    depthwise = cost_of("Conv", [t(1, 96, 56, 56), t(96, 1, 3, 3)], [t(1, 96, 56, 56)],
                        {"group": 96, "kernel_shape": [3, 3]})  # fmt: skip
    shuffle = cost_of("Conv", [t(1, 180, 28, 28), t(180, 60, 1, 1)], [t(1, 180, 28, 28)],
                      {"group": 3, "kernel_shape": [1, 1]})  # fmt: skip
    assert depthwise.op_class is OpClass.GROUPED_CONV
    assert shuffle.op_class is OpClass.CONV


def test_products_know_their_reduction_length() -> None:
    conv = cost_of("Conv", [t(1, 3, 224, 224), t(32, 3, 3, 3)], [t(1, 32, 112, 112)],
                   {"kernel_shape": [3, 3], "strides": [2, 2]})  # fmt: skip
    assert conv.inner == 27  # 3 channels x 3 x 3 multiply-adds per output
    product = cost_of("MatMul", [t(8, 128, 64), t(64, 128)], [t(8, 128, 128)])
    assert product.inner == 64
    assert cost_of("Relu", [t(4)], [t(4)]).inner == 0


def _flop_section() -> str:
    doc = (ROOT / "docs" / "costs.md").read_text(encoding="utf-8")
    return doc.split("\n## FLOPs", 1)[1].split("\n## ", 1)[0]


def test_the_flop_table_names_every_formula():
    section = _flop_section()
    assert [op for op in sorted(FLOP_FORMULAS) if f"`{op}`" not in section] == []


@pytest.mark.parametrize("per", ["out", "in"])
def test_the_flop_tables_per_element_counts_are_the_codes(per):
    """Each op a ``k·out`` (``k·in``) row names with its count ``k`` costs ``k`` FLOPs
    per output (input) element."""
    row = next(
        line for line in _flop_section().splitlines() if f"| k·{per} |" in line
    )
    ops = re.findall(r"((?:`\w+`(?:, |/)?)+) (\d+)", row.split("|")[1])
    checked = 0
    x, y = t(2, 3, 4), t(2, 3, 4)
    for names, count in ops:
        for op in re.findall(r"`(\w+)`", names):
            inputs = (x, t(4), t(4)) if op in ("SkipLayerNormalization",) else (x,)
            flops = op_cost(OpContext(op, inputs, (y,), {})).flops
            assert flops == int(count) * 24, op
            checked += 1
    assert checked >= 4


def test_convolutions_know_their_gemm_shape() -> None:
    stem = cost_of("Conv", [t(8, 3, 224, 224), t(32, 3, 3, 3)], [t(8, 32, 112, 112)],
                   {"kernel_shape": [3, 3], "strides": [2, 2]})  # fmt: skip
    assert stem.product_shape == ProductShape(27, 32, 112 * 112, 2)  # per image, not batch
    depthwise = cost_of("Conv", [t(1, 96, 14, 14), t(96, 1, 3, 3)], [t(1, 96, 7, 7)],
                        {"group": 96, "kernel_shape": [3, 3], "strides": [1, 2]})  # fmt: skip
    assert depthwise.product_shape == ProductShape(9, 1, 49, 2)  # one channel per group
    # a product that is no Conv, or a Conv whose output shape is not known: no M, N
    assert cost_of("MatMul", [t(8, 64), t(64, 16)], [t(8, 16)]).product_shape == ProductShape(64)
    unknown = cost_of("Conv", [t(1, 3, 8, 8), t(4, 3, 1, 1)], [None], {"kernel_shape": [1, 1]})
    assert unknown.product_shape.channels == unknown.product_shape.positions == 0


def test_a_pointwise_convolution_with_a_bias_records_the_output_it_sweeps_again() -> None:
    """onnxruntime's plain kernel for a 1x1 convolution of stride 1 without padding is a
    GEMM per image and group, after which it adds the bias in a pass of its own: the
    op records its output's bytes and one image's per group.  Other convolutions add the
    bias to each slice while it is in cache; without a bias there is no pass."""
    x, w, b, y = t(8, 16, 112, 112), t(96, 16, 1, 1), t(96), t(8, 96, 112, 112)
    pointwise = cost_of("Conv", [x, w, b], [y], {"kernel_shape": [1, 1]}).product_shape
    assert pointwise.bias_bytes == y.nbytes
    assert pointwise.bias_block == y.nbytes / 8  # one image's output
    grouped = cost_of("Conv", [t(8, 64, 7, 7), t(64, 16, 1, 1), t(64)], [t(8, 64, 7, 7)],
                      {"group": 4}).product_shape  # fmt: skip
    assert grouped.bias_block == grouped.bias_bytes / 32  # per image and group
    others = [
        cost_of("Conv", [x, w], [y], {}),  # no bias
        cost_of("Conv", [x, t(96, 16, 3, 3), b], [y], {"pads": [1, 1, 1, 1]}),  # 3x3
        cost_of("Conv", [x, w, b], [t(8, 96, 56, 56)], {"strides": [2, 2]}),  # strided
        cost_of("Conv", [x, w, b], [t(8, 96, 114, 114)], {"pads": [1, 1, 1, 1]}),  # padded
    ]
    assert [c.product_shape.bias_bytes for c in others] == [0.0] * 4
