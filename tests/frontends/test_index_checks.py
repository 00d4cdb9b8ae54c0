"""Positions past a model's last are refused, naming the Gather (audit: BART at 200
tokens, 128 positions, was placed; onnxruntime fails at its first run). Each case is
held against onnxruntime, at the last size it runs and the first it does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from placer.errors import ModelLoadError
from placer.frontends.onnx_graph import load_onnx
from tests.conftest import one_line_error
from tests.frontends.test_onnx_graph import value, weight
from tests.frontends.test_shape_inference import save

ROWS = 10  # positions the table holds: BART's, offset by 2


def _scalar(name: str, number: int):
    return helper.make_tensor(name, TensorProto.INT64, [], [number])


def _positions_model(tmp_path: Path, offset: int, *, sliced_shape: bool,
                     constant_nodes: bool = False) -> Path:  # fmt: skip
    """ids (B, S): embed(ids) + table[arange(S) + offset], as torch's exporter writes
    BART's learned positions; the sequence length comes from Shape -> Gather, or from a
    Shape of start 1 and end 2 (opset 15)."""
    if sliced_shape:
        length = [helper.make_node("Shape", ["ids"], ["s"], start=1, end=2),
                  helper.make_node("Squeeze", ["s"], ["n"])]  # fmt: skip
    else:
        length = [helper.make_node("Shape", ["ids"], ["s"]),
                  helper.make_node("Gather", ["s", "one"], ["n"], axis=0)]  # fmt: skip
    nodes = [
        *length,
        helper.make_node("Range", ["zero", "n", "step"], ["r"]),
        helper.make_node("Add", ["r", "offset"], ["pos"]),
        helper.make_node("Gather", ["table", "pos"], ["p"], name="embed_positions"),
        helper.make_node("Gather", ["vocab", "ids"], ["t"], name="embed_tokens"),
        helper.make_node("Add", ["t", "p"], ["y"]),
    ]
    scalars = [_scalar("one", 1), _scalar("zero", 0), _scalar("step", 1),
               _scalar("offset", offset)]  # fmt: skip
    inits = [weight("table", (ROWS, 4)), weight("vocab", (50, 4))]
    if constant_nodes:  # as torch's legacy exporter writes them
        nodes[:0] = [helper.make_node("Constant", [], [t.name], value=t) for t in scalars]
    else:
        inits += scalars
    return save(tmp_path / "m.onnx", nodes, [value("ids", ["B", "S"], TensorProto.INT64)],
                [value("y", None)], inits)  # fmt: skip


def _runs(path: Path, tokens: int) -> bool:
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    try:
        session.run(None, {"ids": np.ones((2, tokens), np.int64)})
    except Exception:
        return False
    return True


@pytest.mark.parametrize(("sliced_shape", "constant_nodes"), [
    (False, False), (True, False), (False, True),
], ids=["gather", "shape-start-end", "constant-nodes"])  # fmt: skip
@pytest.mark.parametrize("offset", [0, 2])
def test_positions_past_the_table_are_refused_where_onnxruntime_fails(
    tmp_path, offset, sliced_shape, constant_nodes
):
    path = _positions_model(tmp_path, offset, sliced_shape=sliced_shape,
                            constant_nodes=constant_nodes)  # fmt: skip
    last = ROWS - offset  # the longest sequence the table serves
    assert _runs(path, last) and not _runs(path, last + 1)
    load_onnx(path, input_shapes={"ids": (2, last)})
    with pytest.raises(ModelLoadError) as caught:
        load_onnx(path, input_shapes={"ids": (2, last + 1)})
    assert str(caught.value) == (
        f"{path}: Gather node 'embed_positions' reads row {ROWS} of 'table', which has "
        f"{ROWS}: the input sizes ask for more positions than the model has; see "
        "--input-shape"
    )


def test_the_command_refuses_in_one_line(run_placer, tmp_path):
    path = _positions_model(tmp_path, 2, sliced_shape=False)
    one_line_error(run_placer("place", path, "--input-shape", "ids=2,40"),
                   "Gather node 'embed_positions' reads row 41 of 'table'")  # fmt: skip


def test_indices_that_depend_on_the_inputs_values_are_not_computed(tmp_path):
    """Token ids are data: the Gather of the vocabulary is never checked, whatever the
    sizes (and the positions here are within the table)."""
    path = _positions_model(tmp_path, 0, sliced_shape=False)
    graph = load_onnx(path, input_shapes={"ids": (64, ROWS)})
    assert not graph.unknown_shapes
