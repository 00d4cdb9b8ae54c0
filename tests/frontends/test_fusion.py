"""``--fusion runtime``: the kernels onnxruntime's CPU provider fuses, costed on the
nodes placer places (:mod:`placer.frontends.fusion`)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from placer.choices import Fusion
from placer.costs.cluster_file import parse_cluster
from placer.costs.roofline import CostOptions, build_problem
from placer.frontends.fusion import fuse
from placer.frontends.onnx_graph import load_onnx
from tests.conftest import ROOT

CLUSTER = parse_cluster(
    "devices: [{name: dev, class: cpu, peak_flops: 100GFLOPS, memory: 16GiB,"
    " memory_bandwidth: 10GB/s, efficiency: 1.0, overhead: 1us}]",
    "dev.yaml",
)


def model(tmp_path, nodes, inputs, outputs, constants) -> str:
    """A float model of ``nodes``; ``constants``: name -> array (initializers)."""
    def value(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))

    graph = helper.make_graph(
        nodes, "g", [value(*i) for i in inputs], [value(*o) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(a, np.float32), n)
                     for n, a in constants.items()],
    )  # fmt: skip
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def names_of(graph, fused) -> dict[str, tuple[float, float, bool]]:
    return {graph.nodes[i].name: (f.bytes_read, f.bytes_written, f.overhead)
            for i, f in fused.items()}  # fmt: skip


def test_a_gelu_with_its_bias_is_one_kernel(tmp_path) -> None:
    n = 4 * 1024 * 16  # bytes of the [16, 1024] activation
    path = model(tmp_path, [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "b"], ["hb"], name="bias"),
        helper.make_node("Div", ["hb", "sqrt2"], ["d"], name="div"),
        helper.make_node("Erf", ["d"], ["e"], name="erf"),
        helper.make_node("Add", ["e", "one"], ["e1"], name="plus1"),
        helper.make_node("Mul", ["hb", "e1"], ["m"], name="times_x"),
        helper.make_node("Mul", ["m", "half"], ["y"], name="half"),
    ], [("x", (16, 64))], [("y", (16, 1024))], {
        "w": np.ones((64, 1024)), "b": np.ones(1024), "sqrt2": [1.41421], "one": [1.0],
        "half": [0.5],
    })  # fmt: skip
    graph = load_onnx(path)
    fused = names_of(graph, fuse(graph))
    # the kernel reads the product once (and the bias), writes the GELU once, dispatched once
    assert fused["bias"] == (n + 4096, 0.0, True)
    assert fused["half"][1:] == (n, False)
    for inner in ("div", "erf", "plus1", "times_x"):
        assert fused[inner][1:] == (0.0, False), inner
    assert "mm" not in fused  # the product is its own kernel
    runtime = build_problem(graph, CLUSTER, CostOptions())
    alone = build_problem(graph, CLUSTER, CostOptions(fusion=Fusion.NONE))
    gelu = slice(1, None)
    saved = sum(op.latency[0] for op in alone.ops[gelu]) - sum(
        op.latency[0] for op in runtime.ops[gelu]
    )
    # alone, the six nodes move 13 activations (bias 2, div 2, erf 2, +1 2, ·x 3, ·½ 2);
    # fused, 2 (the product in, the GELU out): 11 fewer, and five dispatches fewer
    assert saved == pytest.approx((11 * n) / 10e9 + 5e-6, rel=0.05)
    assert runtime.ops[0].latency == alone.ops[0].latency


def test_conv_takes_its_batchnorm_residual_and_activation(tmp_path) -> None:
    c = 8
    path = model(tmp_path, [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], name="bn"),
        helper.make_node("Add", ["bn", "x"], ["sum"], name="residual"),
        helper.make_node("Relu", ["sum"], ["y"], name="relu"),
    ], [("x", (1, c, 8, 8))], [("y", (1, c, 8, 8))], {
        "w": np.ones((c, c, 1, 1)), "s": np.ones(c), "b": np.zeros(c), "m": np.zeros(c),
        "v": np.ones(c),
    })  # fmt: skip
    graph = load_onnx(path)
    fused = names_of(graph, fuse(graph))
    act = 4 * c * 64
    assert fused["conv"][1:] == (0.0, True)  # its output is the relu's
    assert fused["bn"][1:] == (0.0, False)
    assert not fuse(graph)[[n.name for n in graph.nodes].index("bn")].computes  # folded
    assert fused["residual"] == (act, 0.0, False)  # it reads the residual input only
    assert fused["relu"] == (0.0, act, False)


def test_a_matmul_takes_a_scale_but_not_a_bias(tmp_path) -> None:
    path = model(tmp_path, [
        helper.make_node("MatMul", ["q", "k"], ["s"], name="scores"),
        helper.make_node("Div", ["s", "scale"], ["y"], name="scale"),
        helper.make_node("MatMul", ["y", "w"], ["z"], name="proj"),
        helper.make_node("Add", ["z", "b"], ["out"], name="bias"),
    ], [("q", (8, 16)), ("k", (16, 8))], [("out", (8, 4))], {
        "scale": [8.0], "w": np.ones((8, 4)), "b": np.ones(4),
    })  # fmt: skip
    graph = load_onnx(path)
    fused = names_of(graph, fuse(graph))
    assert set(fused) == {"scores", "scale"}  # onnxruntime leaves a 3-D bias Add alone


def test_a_layer_norm_written_out_is_one_kernel_and_a_skip_add_joins_one(tmp_path) -> None:
    path = model(tmp_path, [
        helper.make_node("Add", ["x", "r"], ["s"], name="skip"),
        helper.make_node("LayerNormalization", ["s", "g", "b"], ["ln"], name="ln", axis=-1),
        helper.make_node("ReduceMean", ["ln"], ["mu"], name="mean", axes=[-1]),
        helper.make_node("Sub", ["ln", "mu"], ["d"], name="sub"),
        helper.make_node("Pow", ["d", "two"], ["d2"], name="pow"),
        helper.make_node("ReduceMean", ["d2"], ["var"], name="var", axes=[-1]),
        helper.make_node("Add", ["var", "eps"], ["ve"], name="eps"),
        helper.make_node("Sqrt", ["ve"], ["sd"], name="sqrt"),
        helper.make_node("Div", ["d", "sd"], ["n"], name="div"),
        helper.make_node("Mul", ["n", "gamma"], ["ng"], name="gamma"),
        helper.make_node("Add", ["ng", "beta"], ["y"], name="beta"),
    ], [("x", (4, 32)), ("r", (4, 32))], [("y", (4, 32))], {
        "g": np.ones(32), "b": np.zeros(32), "two": [2.0], "eps": [1e-5],
        "gamma": np.ones(32), "beta": np.zeros(32),
    })  # fmt: skip
    graph = load_onnx(path)
    fused = names_of(graph, fuse(graph))
    assert fused["skip"][1] == 0.0 and fused["ln"][1] > 0  # the sum is never written
    assert fused["skip"][2] + fused["ln"][2] == 1  # one dispatch for the two
    norm = ("mean", "sub", "pow", "var", "eps", "sqrt", "div", "gamma", "beta")
    assert set(norm) <= set(fused)
    assert [name for name in norm if fused[name][2]] == ["mean"]  # one dispatch
    assert [name for name in norm if fused[name][1]] == ["beta"]  # one output written


def test_scalars_shared_by_every_layer_fuse_in_each(tmp_path) -> None:
    # one initializer per constant, read by both layers' GELUs and scales: placer charges
    # a shared weight to its first reader, yet onnxruntime fuses every layer
    nodes, x = [], "x"
    for k in range(2):
        nodes += [
            helper.make_node("MatMul", [x, "w"], [f"h{k}"], name=f"mm{k}"),
            helper.make_node("Div", [f"h{k}", "scale"], [f"s{k}"], name=f"scale{k}"),
            helper.make_node("Div", [f"s{k}", "sqrt2"], [f"d{k}"], name=f"div{k}"),
            helper.make_node("Erf", [f"d{k}"], [f"e{k}"], name=f"erf{k}"),
            helper.make_node("Add", [f"e{k}", "one"], [f"e1{k}"], name=f"plus1{k}"),
            helper.make_node("Mul", [f"s{k}", f"e1{k}"], [f"m{k}"], name=f"times_x{k}"),
            helper.make_node("Mul", [f"m{k}", "half"], [f"y{k}"], name=f"half{k}"),
        ]
        x = f"y{k}"
    path = model(tmp_path, nodes, [("x", (16, 64))], [("y1", (16, 64))], {
        "w": np.ones((64, 64)), "scale": [8.0], "sqrt2": [1.41421], "one": [1.0],
        "half": [0.5],
    })  # fmt: skip
    graph = load_onnx(path)
    fused = names_of(graph, fuse(graph))
    for k in range(2):
        assert fused[f"scale{k}"][2] is False, k  # into the product
        assert {f"div{k}", f"erf{k}", f"plus1{k}", f"times_x{k}", f"half{k}"} <= set(fused)


def test_a_bias_before_a_skip_layer_norm_joins_its_kernel(tmp_path) -> None:
    n = 4 * 4 * 32  # bytes of the [4, 32] activation
    path = model(tmp_path, [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "w"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "b"], ["hb"], name="bias"),
        helper.make_node("Add", ["hb", "r"], ["s"], name="skip"),
        helper.make_node("LayerNormalization", ["s", "g", "beta"], ["y"], name="ln", axis=-1),
    ], [("x", (4, 32))], [("y", (4, 32))], {
        "w": np.ones((32, 32)), "b": np.ones(32), "g": np.ones(32), "beta": np.zeros(32),
    })  # fmt: skip
    graph = load_onnx(path)
    fused = names_of(graph, fuse(graph))
    # SkipLayerNormalization reads the product, the bias and the residual, writes once
    assert fused["bias"] == (n + 4 * 32, 0.0, True)
    assert fused["skip"] == (n, 0.0, False)
    assert fused["ln"][1:] == (n, False)
    assert "mm" not in fused


def test_a_sum_is_a_conv_residual_as_an_add_is(tmp_path) -> None:
    c = 8
    path = model(tmp_path, [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["x"], ["r"], name="shortcut"),
        helper.make_node("Sum", ["c", "r"], ["sum"], name="residual"),
        helper.make_node("Relu", ["sum"], ["y"], name="relu"),
    ], [("x", (1, c, 8, 8))], [("y", (1, c, 8, 8))], {"w": np.ones((c, c, 1, 1))})  # fmt: skip
    graph = load_onnx(path)
    fused = names_of(graph, fuse(graph))
    act = 4 * c * 64
    assert fused["residual"] == (act, 0.0, False)  # Caffe2 writes the residual as Sum
    assert fused["relu"] == (0.0, act, False)


def test_a_weight_the_graph_computes_is_not_prepacked_without_fusion(tmp_path) -> None:
    path = model(tmp_path, [
        helper.make_node("Transpose", ["wt"], ["w"], name="t", perm=[1, 0]),
        helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
    ], [("x", (256, 256))], [("y", (256, 256))], {"wt": np.ones((256, 256))})  # fmt: skip
    cluster = parse_cluster(
        "devices: [{name: dev, class: cpu, peak_flops: 100GFLOPS, memory: 16GiB, "
        "memory_bandwidth: 10GB/s, efficiency: {default: 1.0, matmul: 0.5}, overhead: 0}]",
        "dev.yaml",
    )
    graph = load_onnx(path)
    (mm,) = [n for n in graph.nodes if n.name == "mm"]
    assert mm.weights_computed  # the Transpose of the initializer is folded by placer
    flops = 2 * 256**3
    runtime = build_problem(graph, cluster, CostOptions()).ops[0].latency[0]
    alone = build_problem(graph, cluster, CostOptions(fusion=Fusion.NONE)).ops[0].latency[0]
    assert runtime == pytest.approx(flops / 100e9)  # folded and pre-packed by the runtime
    assert alone == pytest.approx(flops / 50e9)  # computed at every run


def test_fusion_is_recorded_in_plans_and_held_to_them(run_placer, tmp_path) -> None:

    bert = ROOT / "sample_models" / "bert_base.onnx"
    shape = ("--input-shape", "input_ids=2,32")
    runtime = tmp_path / "runtime.json"
    result = run_placer("place", bert, *shape, "-o", runtime)
    assert result.exit_code == 0, result.stderr
    import json

    document = json.loads(runtime.read_text())
    assert document["provenance"]["fusion"] == "runtime"
    alone = tmp_path / "none.json"
    assert run_placer("place", bert, *shape, "--fusion", "none", "-o", alone).exit_code == 0
    assert json.loads(alone.read_text())["max_load"] > document["max_load"]
    result = run_placer("evaluate", bert, runtime, "--fusion", "none")
    assert result.exit_code == 2 and "--fusion runtime" in result.stderr
    assert run_placer("check", runtime).exit_code == 0


def test_onnxruntime_removes_dropout_and_identity(tmp_path) -> None:
    path = model(tmp_path, [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Dropout", ["r"], ["d"], name="dropout"),
        helper.make_node("Identity", ["d"], ["y"], name="identity"),
    ], [("x", (4, 8))], [("y", (4, 8))], {})  # fmt: skip
    graph = load_onnx(path)
    runtime = build_problem(graph, CLUSTER, CostOptions())
    alone = build_problem(graph, CLUSTER, CostOptions(fusion=Fusion.NONE))
    times = {op.name: op.latency[0] for op in runtime.ops}
    assert times["dropout"] == times["identity"] == 0.0
    assert {op.name: op.latency[0] for op in alone.ops}["dropout"] == pytest.approx(1e-6)


def test_a_skip_layer_norm_runs_at_its_kernels_rate_where_the_device_gives_one(tmp_path) -> None:
    """onnxruntime's CPU SkipLayerNormalization runs far below the Add and the
    LayerNormalization it replaces: a calibrated device gives its FLOPs their own rate."""
    path = model(tmp_path, [
        helper.make_node("Relu", ["r"], ["rr"], name="residual"),
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "bias"], ["hb"], name="bias"),
        helper.make_node("Add", ["hb", "rr"], ["s"], name="skip"),
        helper.make_node("LayerNormalization", ["s", "g", "b"], ["y"], name="ln", axis=-1),
    ], [("x", (256, 64)), ("r", (256, 64))], [("y", (256, 64))], {
        "w": np.ones((64, 64)), "bias": np.ones(64), "g": np.ones(64), "b": np.zeros(64),
    })  # fmt: skip
    graph = load_onnx(path)
    fused = {graph.nodes[i].name: f for i, f in fuse(graph).items()}
    assert {name: f.kernel for name, f in fused.items()} == {
        "bias": "skip_norm", "skip": "skip_norm", "ln": "skip_norm"}
    spec = ("devices: [{name: dev, class: cpu, peak_flops: 100GFLOPS, memory: 16GiB,"
            " memory_bandwidth: 10GB/s, overhead: 1us, efficiency: {default: 1.0%s}}]")
    slow = parse_cluster(spec % ", kernels: {skip_norm: 0.001}", "slow.yaml")
    members = [i for i, node in enumerate(graph.nodes) if node.name in fused]
    flops = sum(graph.nodes[i].flops for i in members)
    problem = build_problem(graph, slow, CostOptions())
    # compute-bound at 0.1 GFLOP/s, one dispatch for the kernel
    kernel = sum(problem.ops[i].latency[0] for i in members)
    assert kernel == pytest.approx(flops / 0.1e9 + 1e-6, rel=1e-9)
    # without a figure of its own, each node runs at its class's rate, as before; and
    # --fusion none never asks for the kernel's
    plain = build_problem(graph, CLUSTER, CostOptions())
    assert sum(plain.ops[i].latency[0] for i in members) < kernel / 50
    alone = build_problem(graph, slow, CostOptions(fusion=Fusion.NONE))
    same = build_problem(graph, CLUSTER, CostOptions(fusion=Fusion.NONE))
    assert [alone.ops[i].latency for i in members] == [same.ops[i].latency for i in members]
    mm = [n.name for n in graph.nodes].index("mm")
    assert problem.ops[mm].latency == plain.ops[mm].latency
