"""Mapping onnxruntime's optimised graph back to the model's ops
(placer.frontends.runtime_graph)."""

from __future__ import annotations

from onnx import helper

from placer.frontends.runtime_graph import attribute


def _graph(*nodes):
    return helper.make_graph(list(nodes), "g", [], [])


def _node(op_type, inputs, outputs, name, domain=""):
    return helper.make_node(op_type, inputs, outputs, name=name, domain=domain)


def test_a_fused_node_is_charged_to_its_dearest_member() -> None:
    original = _graph(
        _node("ConstantOfShape", ["shape"], ["w"], "weight"),
        _node("MatMul", ["x", "w"], ["m"], "mm"),
        _node("Add", ["m", "b"], ["a"], "bias"),
        _node("Relu", ["a"], ["y"], "relu"),
    )
    optimized = _graph(_node("FusedMatMul", ["x", "w", "b"], ["y"], "FusedMatMul_token_3",
                             "com.microsoft"))  # fmt: skip
    mapped = attribute(original, optimized, {"mm": 100.0, "bias": 1.0, "relu": 1.0}, ["weight"])
    assert mapped.owner == {"FusedMatMul_token_3": "mm"}
    assert mapped.absorbed == {"bias", "relu"}  # the folded weight is no op at all
    assert mapped.unmapped == ()


def test_kept_nodes_keep_their_time_and_a_pattern_stops_at_them() -> None:
    original = _graph(
        _node("MatMul", ["x", "w"], ["m"], "mm"),
        _node("Add", ["m", "b"], ["a"], "bias"),
        _node("Add", ["a", "x"], ["r"], "residual"),
        _node("LayerNormalization", ["r", "g"], ["y"], "norm"),
        _node("Identity", ["y"], ["z"], "copy"),
        _node("Relu", ["z"], ["out"], "relu"),
    )
    optimized = _graph(
        _node("MatMul", ["x", "w"], ["m"], "mm"),
        _node("SkipLayerNormalization", ["m", "x", "g", "b"], ["y"], "SkipLayerNormalization",
              "com.microsoft"),
        _node("Relu", ["y"], ["out"], "relu"),  # the Identity eliminated
    )  # fmt: skip
    mapped = attribute(original, optimized, {"mm": 100.0, "norm": 5.0, "bias": 1.0})
    assert mapped.owner == {"mm": "mm", "SkipLayerNormalization": "norm", "relu": "relu"}
    assert mapped.absorbed == {"bias", "residual", "copy"}


def test_nchwc_nodes_map_by_the_tensor_they_are_named_after() -> None:
    # Conv+Clip, then Conv+Add (the Add's output unnamed by the fused node), then a
    # reorder back to NCHW: the second pattern must not take the first's ops
    original = _graph(
        _node("Conv", ["x", "w1"], ["c1"], "conv1"),
        _node("Clip", ["c1"], ["t1"], "clip1"),
        _node("Conv", ["t1", "w2"], ["c2"], "conv2"),
        _node("Add", ["t1", "c2"], ["t2"], "add2"),
        _node("Conv", ["t2", "w3"], ["c3"], "conv3"),
        _node("Clip", ["c3"], ["y"], "clip3"),
    )
    nchwc = "com.microsoft.nchwc"
    optimized = _graph(
        _node("Conv", ["x", "w1"], ["reorder_token_0"], "t1_nchwc", nchwc),
        _node("Conv", ["reorder_token_0", "w2", "b", "reorder_token_0"], ["reorder_token_1"],
              "c2_nchwc", nchwc),
        _node("Conv", ["reorder_token_1", "w3"], ["reorder_token_2"], "y_nchwc", nchwc),
        _node("ReorderOutput", ["reorder_token_2"], ["y"], "ReorderOutput", nchwc),
    )  # fmt: skip
    flops = {"conv1": 10.0, "conv2": 10.0, "conv3": 10.0, "add2": 1.0}
    mapped = attribute(original, optimized, flops)
    assert mapped.owner == {"t1_nchwc": "conv1", "c2_nchwc": "conv2", "y_nchwc": "conv3",
                            "ReorderOutput": "conv3"}  # fmt: skip
    assert mapped.absorbed == {"clip1", "add2", "clip3"}


def test_copies_between_devices_and_orphans_go_to_no_op() -> None:
    original = _graph(_node("Relu", ["x"], ["y"], "relu"))
    optimized = _graph(
        _node("MemcpyFromHost", ["x"], ["x_gpu"], "Memcpy"),
        _node("Relu", ["x_gpu"], ["y_gpu"], "relu"),
        _node("MemcpyToHost", ["y_gpu"], ["y"], "Memcpy_token_1"),
        _node("Mystery", ["q"], ["r"], "lonely"),
    )
    mapped = attribute(original, optimized, {})
    assert mapped.owner == {"relu": "relu"}
    assert mapped.unmapped == ("Memcpy", "Memcpy_token_1", "lonely")
    assert mapped.absorbed == frozenset()


def test_an_inserted_node_takes_the_op_of_the_node_it_feeds() -> None:
    original = _graph(_node("Conv", ["x", "w"], ["y"], "conv"))
    optimized = _graph(
        _node("ReorderInput", ["x"], ["reorder"], "ReorderInput", "com.microsoft.nchwc"),
        _node("Conv", ["reorder", "w"], ["y"], "conv"),
    )
    assert attribute(original, optimized, {}).owner == {"conv": "conv", "ReorderInput": "conv"}
