"""Small valid inputs the fuzz cases start from: tiny ONNX graphs, a workload, plans.

Everything is built here with ``onnx.helper`` or the library, nothing is read from disk
but the shipped sample models.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[2]
SAMPLE_MODELS = REPO / "sample_models"
#: The shipped models and the options that fix their symbolic dims (small, to cost fast).
SAMPLES = {
    "mobilenet_v2.onnx": ("--batch-size", "1"),
    "bert_base.onnx": ("--input-shape", "input_ids=1,8", "--input-shape", "attention_mask=1,8"),
    "gpt2_small.onnx": ("--input-shape", "input_ids=1,8"),
}
OPSET = 17


def chain_model(length: int = 4, width: int = 64) -> onnx.ModelProto:
    """``x -> Relu -> Relu -> ... -> y``, nodes named ``n0``, ``n1``, ..."""
    nodes, previous = [], "x"
    for i in range(length):
        nodes.append(helper.make_node("Relu", [previous], [f"t{i}"], name=f"n{i}"))
        previous = f"t{i}"
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, [1, width])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def mlp_model() -> onnx.ModelProto:
    """Two MatMul layers with weights, a residual Add and a branch: parameters, memory and
    a graph that is not a chain."""
    import numpy as np

    w1 = numpy_helper.from_array(np.full((16, 32), 0.5, dtype=np.float32), "w1")
    w2 = numpy_helper.from_array(np.full((32, 16), 0.5, dtype=np.float32), "w2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h1"], name="fc1"),
        helper.make_node("Relu", ["h1"], ["a1"], name="act1"),
        helper.make_node("MatMul", ["a1", "w2"], ["h2"], name="fc2"),
        helper.make_node("Sigmoid", ["x"], ["gate"], name="gate"),
        helper.make_node("Add", ["h2", "gate"], ["s"], name="residual"),
        helper.make_node("Softmax", ["s"], ["y"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])],
        initializer=[w1, w2],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def control_flow_model() -> onnx.ModelProto:
    """An ``If`` whose branches read an outer tensor: subgraphs to mutate."""
    then_graph = helper.make_graph(
        [helper.make_node("Relu", ["a"], ["r"], name="then_relu")],
        "then",
        [],
        [helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 8])],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Neg", ["a"], ["r2"], name="else_neg")],
        "else",
        [],
        [helper.make_tensor_value_info("r2", TensorProto.FLOAT, [1, 8])],
    )
    nodes = [
        helper.make_node("Abs", ["x"], ["a"], name="abs"),
        helper.make_node("ReduceSum", ["a"], ["s"], name="sum", keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["c"], name="cond"),
        helper.make_node(
            "If", ["c"], ["y"], name="branch", then_branch=then_graph, else_branch=else_graph
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "control",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        initializer=[helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


#: The tiny models by file name, for mutation.
TINY_MODELS = {
    "chain.onnx": chain_model,
    "mlp.onnx": mlp_model,
    "control.onnx": control_flow_model,
}


@functools.cache
def tiny_bytes(name: str) -> bytes:
    return TINY_MODELS[name]().SerializeToString()


@functools.cache
def sample_bytes(name: str) -> bytes:
    return (SAMPLE_MODELS / name).read_bytes()


def workload_document(nodes: int = 4, training: bool = False) -> dict:
    """A valid workload in the reference format: a chain of ``nodes`` ops, two
    accelerators and a CPU (``training``: with a backward op per forward op)."""
    doc_nodes, edges = [], []
    for i in range(nodes):
        doc_nodes.append(
            {
                "name": f"op{i}",
                "id": i,
                "supportedOnFpga": 1,
                "cpuLatency": 2.0 + i,
                "fpgaLatency": 0.5 + i / 10,
                "isBackwardNode": 0,
                "colorClass": i,
                "size": 10.0,
            }
        )
        if i:
            edges.append({"sourceId": i - 1, "destId": i, "cost": 0.25})
    if training:
        for i in range(nodes):
            doc_nodes.append(
                {
                    "name": f"op{i}grad",
                    "id": 100 + i,
                    "supportedOnFpga": 1,
                    "cpuLatency": 4.0,
                    "fpgaLatency": 1.0,
                    "isBackwardNode": 1,
                    "colorClass": i,
                    "size": 0.0,
                }
            )
        for i in range(nodes - 1, 0, -1):
            edges.append({"sourceId": 100 + i, "destId": 100 + i - 1, "cost": 0.5})
        edges.append({"sourceId": nodes - 1, "destId": 100 + nodes - 1, "cost": 0.25})
    return {
        "maxSizePerFPGA": 1000.0,
        "maxFPGAs": 2,
        "maxCPUs": 1,
        "nodes": doc_nodes,
        "edges": edges,
    }


@functools.cache
def plan_for(model: str, solver: str = "dp") -> str:
    """placer's JSON plan for a tiny model (by file name) or ``workload.json``, made by
    the library as ``placer place MODEL --format json`` would."""
    import tempfile

    from placer import api as app
    from placer.outputs.tables import to_json

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / model
        if model == "workload.json":
            path.write_text(json.dumps(workload_document()))
        else:
            path.write_bytes(tiny_bytes(model))
        result = app.place(app.load_problem(path), solver)
        return to_json(result)
