"""The model summary that ``placer inspect`` renders."""

from __future__ import annotations

import json

from placer.inspect import TOP_OPS, inspect_model
from placer.onnx_graph import load_onnx
from tests.test_onnx_graph import LIGHT_MODELS


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
