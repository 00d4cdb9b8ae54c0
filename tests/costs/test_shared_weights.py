"""A weight several ops read (a tied embedding and LM head, a layer applied twice): every
device holding one of them holds it, once (placer.frontends.onnx_graph.SharedWeight, a
memory-only Replica)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from placer.choices import Mode
from placer.costs.cluster_file import parse_cluster
from placer.costs.roofline import CostOptions, build_problem, bytes_per_param
from placer.errors import InfeasiblePlacement
from placer.evaluator import evaluate
from placer.frontends.coarsen import coarsen
from placer.frontends.onnx_graph import SHARED_MIN_ELEMENTS, load_onnx
from placer.frontends.opcost import OpClass
from placer.problem import Placement
from placer.solvers.blocks import contract
from placer.solvers.dp.search import solve_dp
from tests.strategies import brute_force

N = 512  # a 512x512 fp32 weight: 1 MiB, over SHARED_MIN_BYTES
MIB = float(N * N * 4)
CLUSTER = parse_cluster(
    "devices: [{name: dev, class: accelerator, count: 2, peak_flops: 10TFLOPS,"
    " memory: 16GiB, memory_bandwidth: 1TB/s, efficiency: 0.5, overhead: 1us}]",
    "two.yaml",
)


def _model(tmp_path, *, side: bool = False, n: int = N, rows: int = 64) -> str:
    """x -> mm1 (W) -> relu -> mm2 (W) -> y; with ``side``, the mask input m plus W is
    a side computation (it reads no activation) that ``y`` adds."""
    nodes = [helper.make_node("MatMul", ["x", "W"], ["a"], name="mm1"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "W"], ["b"], name="mm2")]  # fmt: skip
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, n])]
    if side:
        inputs.append(helper.make_tensor_value_info("m", TensorProto.FLOAT, [n, n]))
        nodes += [helper.make_node("Add", ["m", "W"], ["s"], name="mask"),
                  helper.make_node("ReduceSum", ["s"], ["t"], name="fold", keepdims=1,
                                   axes=None),
                  helper.make_node("Add", ["b", "t"], ["y"], name="plus")]  # fmt: skip
    else:
        nodes.append(helper.make_node("Identity", ["b"], ["y"], name="out"))
    w = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    graph = helper.make_graph(nodes, "tied", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(w, "W")])  # fmt: skip
    path = tmp_path / "tied.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def _memory(problem, placement) -> list[float]:
    evaluation = evaluate(problem, Placement(tuple(placement)))
    return [stage.memory_bytes for stage in sorted(evaluation.stages, key=lambda s: s.device)]


def test_each_reader_holds_the_weight_and_the_model_counts_it_once(tmp_path) -> None:
    graph = load_onnx(_model(tmp_path))
    (shared,) = graph.shared_weights
    names = [node.name for node in graph.nodes]
    assert shared.name == "W" and shared.param_bytes == MIB and shared.param_count == N * N
    assert [names[i] for i in shared.readers] == ["mm1", "mm2"]
    mm1, mm2 = (graph.nodes[names.index(n)] for n in ("mm1", "mm2"))
    for node in (mm1, mm2):
        assert (node.param_bytes, node.param_count) == (MIB, N * N)
        assert (node.shared_param_bytes, node.shared_param_count) == (MIB, N * N)
        assert node.op_class is OpClass.GEMM
    assert graph.total_param_bytes == MIB and graph.total_params == N * N


@pytest.mark.parametrize("mode", [Mode.INFERENCE, Mode.TRAINING])
def test_a_device_holds_a_shared_weight_once_if_it_holds_a_reader(tmp_path, mode) -> None:
    """Split between two devices, each holds the weight (the second held nothing of it
    before); on one device, once."""
    graph = load_onnx(_model(tmp_path))
    options = CostOptions(mode=mode)
    problem = build_problem(graph, CLUSTER, options)
    (replica,) = problem.replicas
    size = MIB if mode is Mode.INFERENCE else N * N * bytes_per_param(options.dtype,
                                                                      options.optimizer)
    assert replica.weight and replica.size_bytes == pytest.approx(size)
    assert replica.latency == (0.0,)
    names = [op.name for op in problem.ops]
    assert sorted(names[i] for i in replica.readers) == ["mm1", "mm2"]
    other = {op.name: op.size_bytes for op in problem.ops}

    def on(second: set[str]) -> list[int]:
        return [1 if op.name.removesuffix("/grad") in second else 0 for op in problem.ops]

    split = _memory(problem, on({"mm2", "out"}))
    assert split[1] == pytest.approx(size + other["mm2"] + other["out"] + problem.reserved_bytes)
    assert split[0] == pytest.approx(size + other["mm1"] + other["relu"]
                                     + problem.reserved_bytes)  # fmt: skip
    together = _memory(problem, on(set()))
    assert together[0] == pytest.approx(size + sum(other.values()) + problem.reserved_bytes)


def test_a_side_computation_reading_it_makes_the_ops_it_serves_readers(tmp_path) -> None:
    # 64 KiB of weight (few parameters enough for a side computation to read), and
    # products large enough that the side computation's FLOPs are negligible
    graph = load_onnx(_model(tmp_path, side=True, n=128, rows=4096))
    names = [node.name for node in graph.nodes]
    assert names.index("mask") in graph.replicated
    problem = build_problem(graph, CLUSTER, CostOptions())
    (weight,) = [r for r in problem.replicas if r.weight]
    ops = [op.name for op in problem.ops]
    # mask (and fold after it) are computed where plus is: plus needs the weight too
    assert sorted(ops[i] for i in weight.readers) == ["mm1", "mm2", "plus"]


def test_coarsening_keeps_the_readers_of_a_shared_weight(tmp_path) -> None:
    graph = coarsen(load_onnx(_model(tmp_path)), max_flops_fraction=0.9)
    (shared,) = graph.shared_weights
    assert len(graph.nodes) < 4
    members = {m for i in shared.readers for m in graph.nodes[i].members}
    assert {"mm1", "mm2"} <= members
    assert graph.total_param_bytes == MIB
    problem = build_problem(graph, CLUSTER, CostOptions())
    assert [r.size_bytes for r in problem.replicas] == [MIB]


@pytest.mark.parametrize(("n", "shared"), [(2, False), (3, True), (127, True)])
def test_a_weight_of_at_most_8_elements_stays_with_its_first_reader(tmp_path, n,
                                                                   shared) -> None:  # fmt: skip
    """2x2 (4 elements): first reader; 3x3 (9) and 127x127 (an audit's 64,516 bytes,
    twenty of which, read twice each, let a plan fit a device 1.3 MB short): shared."""
    assert (n * n >= SHARED_MIN_ELEMENTS) is shared
    graph = load_onnx(_model(tmp_path, n=n))
    assert len(graph.shared_weights) == shared
    names = [node.name for node in graph.nodes]
    mm1, mm2 = (graph.nodes[names.index(m)] for m in ("mm1", "mm2"))
    size = n * n * 4
    assert (mm1.param_bytes, mm2.param_bytes) == ((size, size) if shared else (size, 0))
    assert mm2.op_class is OpClass.GEMM
    assert len(build_problem(graph, CLUSTER, CostOptions()).replicas) == shared


def _chain(tmp_path) -> str:
    """x -> mm1 (W) -> mm2 (W) -> mm3 (V) -> mm4 (U): W shared, 1 MiB each."""
    rng = np.random.default_rng(1)
    weights = [numpy_helper.from_array(rng.standard_normal((N, N)).astype(np.float32), w)
               for w in ("W", "V", "U")]  # fmt: skip
    nodes = [helper.make_node("MatMul", [a, w], [b], name=name)
             for name, a, w, b in (("mm1", "x", "W", "a"), ("mm2", "a", "W", "b"),
                                   ("mm3", "b", "V", "c"), ("mm4", "c", "U", "y"))]  # fmt: skip
    graph = helper.make_graph(nodes, "chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, N])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=weights)  # fmt: skip
    path = tmp_path / "chain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


@pytest.mark.parametrize("room_mib", [2.5, 100.0])
def test_the_dp_holds_a_shared_weight_where_memory_binds(tmp_path, room_mib) -> None:
    """With 2.5 MiB a device, the readers of W may not be split with V and U beside the
    second (3 MiB): the DP's optimum is brute force's, and its plan fits as evaluated.
    Where memory cannot bind, the weight leaves the solvers' covers."""
    cluster = parse_cluster(
        "devices: [{name: dev, class: accelerator, count: 3, peak_flops: 10TFLOPS,"
        f" memory: {room_mib}MiB, memory_bandwidth: 1TB/s, efficiency: 0.5,"
        " overhead: 1us}]",
        "tight.yaml",
    )
    graph = load_onnx(_chain(tmp_path))
    problem = build_problem(graph, cluster, CostOptions())
    result = solve_dp(problem)
    evaluation = evaluate(problem, result.placement)
    assert evaluation.valid, evaluation.violations
    assert result.objective == pytest.approx(evaluation.max_load, rel=1e-12)
    assert result.objective == pytest.approx(brute_force(problem), rel=1e-12)
    assert len(contract(problem).covers) == (1 if room_mib < 3 else 0)


def test_a_unit_that_fits_nowhere_is_named_with_the_shared_weight_it_reads(tmp_path) -> None:
    """mm1 owns no weight but needs W's 1 MiB wherever it goes: refused, naming it and
    that size (it used to read 0 B, and the error named another op)."""
    cluster = parse_cluster(
        "devices: [{name: dev, class: accelerator, count: 2, peak_flops: 10TFLOPS,"
        " memory: 1.25MiB, memory_bandwidth: 1TB/s, efficiency: 0.5, overhead: 1us}]",
        "small.yaml",
    )
    problem = build_problem(load_onnx(_model(tmp_path)), cluster, CostOptions())
    with pytest.raises(InfeasiblePlacement) as err:
        solve_dp(problem)
    message = str(err.value)
    assert "op mm1" in message and "1 MiB" in message, message


def test_an_op_reading_a_shared_weight_twice_holds_it_once(tmp_path) -> None:
    w = np.random.default_rng(3).standard_normal((N, N)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["a"], name="mm"),
             helper.make_node("Sum", ["a", "W", "W"], ["y"], name="sum")]  # fmt: skip
    graph = helper.make_graph(nodes, "twice",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [N, N])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [N, N])],
                              initializer=[numpy_helper.from_array(w, "W")])  # fmt: skip
    path = tmp_path / "twice.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    loaded = load_onnx(str(path))
    summed = loaded.nodes[[node.name for node in loaded.nodes].index("sum")]
    assert (summed.param_bytes, summed.shared_param_bytes) == (MIB, MIB)
    assert (summed.param_count, summed.shared_param_count) == (N * N, N * N)
    assert loaded.total_param_bytes == MIB
