"""Sizes the model's operators cannot run with are refused, naming the node (audit: a
4-channel image into MobileNetV2 and a Reshape of the wrong element count were placed).
Each refusal is checked against onnxruntime, which refuses the same model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from placer.errors import ModelLoadError
from placer.frontends.onnx_graph import load_onnx
from tests.conftest import ROOT, one_line_error
from tests.frontends.test_onnx_graph import value, weight
from tests.frontends.test_shape_inference import save

MOBILENET = ROOT / "sample_models" / "mobilenet_v2.onnx"


def _runs(path: Path, feeds: dict[str, tuple[int, ...]]) -> bool:
    """Whether onnxruntime creates a session for ``path`` and runs it on zeros."""
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        session.run(None, {name: np.zeros(shape, np.float32) for name, shape in feeds.items()})
    except Exception:
        return False
    return True


def test_an_image_of_other_channels_is_refused_naming_the_first_conv(run_placer):
    result = run_placer("place", MOBILENET, "--input-shape", "input=8,4,224,224")
    line = one_line_error(result, "mobilenet_v2.onnx: Conv node", "reads 4 channels from 'input'",
                          "takes 3", "see --input-shape")  # fmt: skip
    assert "8x4x224x224" in line
    # and the model's own channels still load, at another image size too
    load_onnx(MOBILENET, input_shapes={"input": (8, 3, 224, 224)})
    load_onnx(MOBILENET, input_shapes={"input": (2, 3, 320, 320)})


def _model(tmp_path: Path, nodes, inputs, initializers) -> Path:
    return save(tmp_path / "m.onnx", nodes, inputs, [value("y", None)], initializers)


CASES = {
    "conv": (
        [helper.make_node("Conv", ["x", "w"], ["y"], name="stem", group=2)],
        [value("x", [1, 6, 8, 8])], [weight("w", (4, 2, 3, 3))],
        "Conv node 'stem' reads 6 channels from 'x' (1x6x8x8) where its weight 'w' "
        "(4x2x3x3) takes 4 (2 per group, group 2)",
    ),
    "conv_transpose": (
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up")],
        [value("x", [1, 5, 8, 8])], [weight("w", (4, 2, 3, 3))],
        "ConvTranspose node 'up' reads 5 channels from 'x' (1x5x8x8) where its weight 'w' "
        "(4x2x3x3) takes 4",
    ),
    "matmul": (
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [value("x", [2, 3, 5])], [weight("w", (6, 4))],
        "MatMul node 'MatMul_0' multiplies 'x' (2x3x5) by 'w' (6x4): 5 and 6 must be equal",
    ),
    "matmul_batch": (
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [value("x", [2, 3, 5])], [weight("w", (3, 5, 4))],
        "MatMul node 'MatMul_0' multiplies 'x' (2x3x5) by 'w' (3x5x4): their batch sizes "
        "2 and 3 do not broadcast",
    ),
    "gemm": (
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)],
        [value("x", [2, 5])], [weight("w", (4, 6))],
        "Gemm node 'Gemm_0' multiplies 'x' (2x5) by 'w' (4x6): 5 and 6 must be equal",
    ),
    "reshape": (
        [helper.make_node("Reshape", ["x", "s"], ["y"], name="view")],
        [value("x", [2, 6])],
        [helper.make_tensor("s", TensorProto.INT64, [2], [3, 5])],
        "Reshape node 'view' makes 'y' (3x5) of 15 elements from 'x' (2x6) of 12 (the "
        "model fixes its target shape, 's': it runs at the sizes it was exported at)",
    ),
    "concat": (
        [helper.make_node("Concat", ["x", "w"], ["y"], axis=1)],
        [value("x", [2, 6])], [weight("w", (3, 2))],
        "Concat node 'Concat_0' joins 'x' (2x6) and 'w' (3x2) on axis 1: axis 0 differs",
    ),
    "add": (
        [helper.make_node("Add", ["x", "w"], ["y"], name="residual")],
        [value("x", [2, 6, 8])], [weight("w", (5, 8))],
        "Add node 'residual' combines 'x' (2x6x8) and 'w' (5x8): sizes 5 and 6 do not "
        "broadcast",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_rule_refuses_what_onnxruntime_refuses(case, tmp_path):
    nodes, inputs, initializers, message = CASES[case]
    path = _model(tmp_path, nodes, inputs, initializers)
    shapes = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim) for v in inputs}
    assert not _runs(path, shapes)
    with pytest.raises(ModelLoadError) as caught:
        load_onnx(path)
    assert str(caught.value) == f"{path}: {message}"


@pytest.mark.parametrize(("case", "fixed"), [
    ("conv", [value("x", [1, 4, 8, 8])]),
    ("conv_transpose", [value("x", [1, 4, 8, 8])]),
    ("matmul", [value("x", [2, 3, 6])]),
    ("matmul_batch", [value("x", [1, 3, 5])]),
    ("gemm", [value("x", [2, 6])]),
    ("reshape", [value("x", [3, 5])]),
    ("concat", [value("x", [3, 6])]),
    ("add", [value("x", [2, 5, 8])]),
])  # fmt: skip
def test_each_rule_accepts_what_onnxruntime_runs(case, fixed, tmp_path):
    """The other side of each rule: the sizes that fit load, and onnxruntime runs them."""
    nodes, _, initializers, _ = CASES[case]
    path = _model(tmp_path, nodes, fixed, initializers)
    shapes = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim) for v in fixed}
    assert _runs(path, shapes)
    assert not load_onnx(path).unknown_shapes


def test_broadcasting_to_size_one_and_vectors_in_matmul_are_accepted(tmp_path):
    nodes = [
        helper.make_node("Add", ["x", "b"], ["h"]),
        helper.make_node("MatMul", ["h", "v"], ["y"]),
    ]
    path = save(tmp_path / "m.onnx", nodes, [value("x", [2, 1, 8])], [value("y", None)],
                [weight("b", (3, 1)), weight("v", (8,))])  # fmt: skip
    assert _runs(path, {"x": (2, 1, 8)})
    assert not load_onnx(path).unknown_shapes


def test_a_batch_size_that_does_not_fit_a_reshape_names_the_flag(run_placer, tmp_path):
    """A Reshape to a fixed 2x6 fits batch 2 only: --batch-size 3 is refused."""
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"], name="flatten")]
    path = save(tmp_path / "m.onnx", nodes, [value("x", ["B", 6])], [value("y", None)],
                [helper.make_tensor("s", TensorProto.INT64, [2], [2, 6])])  # fmt: skip
    assert not load_onnx(path, batch_size=2).unknown_shapes
    one_line_error(run_placer("inspect", path, "--batch-size", "3"),
                   "Reshape node 'flatten' makes 'y' (2x6)", "see --batch-size")  # fmt: skip


def test_a_stale_recorded_shape_is_not_a_reason_to_refuse(tmp_path):
    """A model pruned after export (conv1 cut from 8 channels to 6, with conv2's weight)
    whose value_info still records 8 channels: onnxruntime runs it (with a warning), so
    placer loads it; the sizes are checked on what the inputs and weights give."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1] * 4),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["y"], name="conv2", pads=[1] * 4),
    ]
    path = save(tmp_path / "m.onnx", nodes, [value("x", [1, 3, 8, 8])], [value("y", None)],
                [weight("w1", (6, 3, 3, 3)), weight("w2", (4, 6, 3, 3))])  # fmt: skip
    import onnx

    model = onnx.load(path)
    model.graph.value_info.extend([value("c1", [1, 8, 8, 8]), value("r1", [1, 8, 8, 8])])
    onnx.save(model, path)
    assert _runs(path, {"x": (1, 3, 8, 8)})
    load_onnx(path)
    # and a real mismatch under a stale record is still refused
    model.graph.input[0].CopyFrom(value("x", [1, 5, 8, 8]))
    onnx.save(model, path)
    assert not _runs(path, {"x": (1, 5, 8, 8)})
    with pytest.raises(ModelLoadError, match="Conv node 'conv1' reads 5 channels"):
        load_onnx(path)


def test_a_size_only_the_symbolic_inference_guessed_is_not_a_reason_to_refuse(tmp_path):
    """k, the count of x's non-zeros, is known at run time only; onnxruntime's symbolic
    inference merges it with the 7 an Add meets, and the MatMul of (1, k) by (1, 3) then
    looks impossible. onnxruntime runs it where k is 1 (audit's case)."""
    nodes = [
        helper.make_node("NonZero", ["x"], ["nz"]),
        helper.make_node("Reshape", ["nz", "m1"], ["idx"]),
        helper.make_node("Gather", ["x", "idx"], ["g"]),
        helper.make_node("Add", ["g", "w7"], ["a"], name="add"),
        helper.make_node("Reshape", ["g", "r"], ["g2"]),
        helper.make_node("MatMul", ["g2", "w13"], ["y"], name="proj"),
    ]
    ints = [helper.make_tensor("m1", TensorProto.INT64, [1], [-1]),
            helper.make_tensor("r", TensorProto.INT64, [2], [1, -1])]  # fmt: skip
    path = save(tmp_path / "m.onnx", nodes, [value("x", [4])],
                [value("a", None), value("y", None)],
                [*ints, weight("w7", (7,)), weight("w13", (1, 3))])  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    session.run(None, {"x": np.array([0, 0, 5, 0], np.float32)})
    load_onnx(path)


def test_concat_of_opset_3_joins_on_axis_1_by_default(tmp_path):
    """Concat-1's axis defaults to 1 (it is required from opset 4)."""
    nodes = [helper.make_node("Concat", ["x", "w"], ["y"])]
    path = save(tmp_path / "m.onnx", nodes, [value("x", [2, 3])], [value("y", None)],
                [weight("w", (2, 5))])  # fmt: skip
    import onnx

    model = onnx.load(path)
    model.opset_import[0].version = 3
    onnx.save(model, path)
    load_onnx(path)
