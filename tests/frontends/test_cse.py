"""Common-subexpression elimination: ops that recompute an earlier op's value, which
onnxruntime computes once (:mod:`placer.frontends.cse`)."""

from __future__ import annotations

import collections
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from placer.choices import Fusion
from placer.costs.cluster_file import parse_cluster
from placer.costs.roofline import CostOptions, build_problem
from placer.frontends.cse import MAX_SHARED_ELEMENTS, recomputed
from placer.frontends.fusion import fuse
from placer.frontends.onnx_graph import load_onnx
from tests.conftest import ROOT

CLUSTER = parse_cluster(
    "devices: [{name: dev, class: cpu, peak_flops: 100GFLOPS, memory: 16GiB,"
    " memory_bandwidth: 10GB/s, efficiency: 1.0, overhead: 1us}]",
    "dev.yaml",
)
H = 32


def generated(name: str, value: float = 0.0, shape=(H, H)) -> list:
    """A weight the graph generates, as placer's sample models do."""
    return [
        helper.make_node("Constant", [], [f"{name}_shape"],
                         value=numpy_helper.from_array(np.array(shape, np.int64))),
        helper.make_node("ConstantOfShape", [f"{name}_shape"], [name],
                         value=numpy_helper.from_array(np.array([value], np.float32))),
    ]  # fmt: skip


def projections(weights: dict[str, float], *, random: bool = False) -> onnx.ModelProto:
    """Projections of one input, each by a generated weight of the given value, summed;
    with ``random``, each projection's input gets noise of its own first."""
    nodes = []
    source = "x"
    for name, value in weights.items():
        if random:
            nodes.append(helper.make_node("RandomNormalLike", ["x"], [f"{name}_noise"],
                                          name=f"{name}_draw"))  # fmt: skip
            nodes.append(helper.make_node("Add", ["x", f"{name}_noise"], [f"{name}_x"],
                                          name=f"{name}_noisy"))  # fmt: skip
            source = f"{name}_x"
        nodes += generated(f"w_{name}", value)
        nodes.append(helper.make_node("MatMul", [source, f"w_{name}"], [name], name=name))
        nodes.append(helper.make_node("Relu", [name], [f"{name}_r"], name=f"{name}_relu"))
    names = list(weights)
    nodes.append(helper.make_node("Sum", [f"{n}_r" for n in names], ["y"], name="sum"))
    value = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "g", [value("x", TensorProto.FLOAT, [64, H])],
                              [value("y", TensorProto.FLOAT, [64, H])])  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def runtime_ops(path, tmp_path) -> collections.Counter:
    """Op counts of the graph onnxruntime runs ``path`` as at its basic level, which
    eliminates common subexpressions."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(tmp_path / "opt.onnx").graph.node)


def by_name(model: onnx.ModelProto) -> set[str]:
    return {model.graph.node[i].name for i in recomputed(model.graph)}


def test_a_projection_by_an_equal_generated_weight_is_recomputed() -> None:
    model = projections({"q": 0.0, "k": 0.0, "v": 0.5})
    # k repeats q (same input, weights of equal value), and so does its Relu; v's
    # weight differs; the generated weights themselves are numbered, not placed
    assert by_name(model) >= {"k", "k_relu"}
    assert not by_name(model) & {"q", "q_relu", "v", "v_relu", "sum"}


def test_two_random_draws_are_two_values() -> None:
    # the draws read the same input and are alike, but each draws its own numbers
    assert not by_name(projections({"q": 0.0, "k": 0.0}, random=True)) & {
        "k_draw", "k_noisy", "k", "k_relu"}


def test_a_graph_output_is_never_recomputed() -> None:
    model = projections({"q": 0.0, "k": 0.0})
    model.graph.output.append(
        helper.make_tensor_value_info("k_r", TensorProto.FLOAT, [64, H]))
    assert "k" in by_name(model) and "k_relu" not in by_name(model)


def initializer_model(a: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    nodes = [helper.make_node("MatMul", ["x", "a"], ["p"], name="p"),
             helper.make_node("MatMul", ["x", "b"], ["q"], name="q"),
             helper.make_node("Add", ["p", "q"], ["y"], name="add")]  # fmt: skip
    value = helper.make_tensor_value_info
    n = a.shape[-1]
    graph = helper.make_graph(
        nodes, "g", [value("x", TensorProto.FLOAT, [4, a.shape[0]])],
        [value("y", TensorProto.FLOAT, [4, n])],
        initializer=[numpy_helper.from_array(a, "a"), numpy_helper.from_array(b, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(("shape", "merged"), [
    ((1, 1), True), ((2, 4), True), ((8, 1), True), ((3, 3), False), ((8, 8), False),
    ((64, 64), False)])  # fmt: skip
def test_initializers_are_compared_by_contents_up_to_eight_elements(tmp_path, shape,
                                                                     merged) -> None:  # fmt: skip
    """As onnxruntime compares them (the oracle: its optimised graph): readers of equal
    initializers of up to 8 elements are one computation, of 9 or more two."""
    small = np.arange(1, math.prod(shape) + 1, dtype=np.float32).reshape(shape)
    model = initializer_model(small, small.copy())
    assert by_name(model) == ({"q"} if merged else set())
    assert by_name(initializer_model(small, 2 * small)) == set()
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    ran = runtime_ops(path, tmp_path)  # the second product may run fused with the Add
    assert ran["MatMul"] + ran["Gemm"] == (1 if merged else 2)
    assert merged is (math.prod(shape) <= MAX_SHARED_ELEMENTS)


def test_equal_constant_nodes_are_compared_as_initializers_are(tmp_path) -> None:
    """onnxruntime loads a Constant as an initializer: equal ones of up to 8 elements
    are one value, larger ones two, as the oracle runs them."""
    for n, merged in ((8, True), (64, False)):
        values = np.arange(n, dtype=np.float32)
        nodes = [helper.make_node("Constant", [], [c], name=c,
                                  value=numpy_helper.from_array(values.copy()))
                 for c in ("c1", "c2")]  # fmt: skip
        nodes += [helper.make_node("Add", ["x", "c1"], ["p"], name="p"),
                  helper.make_node("Add", ["x", "c2"], ["q"], name="q"),
                  helper.make_node("Mul", ["p", "q"], ["y"], name="mul")]  # fmt: skip
        value = helper.make_tensor_value_info
        graph = helper.make_graph(nodes, "g", [value("x", TensorProto.FLOAT, [4, n])],
                                  [value("y", TensorProto.FLOAT, [4, n])])  # fmt: skip
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        assert ("q" in by_name(model)) is merged
        path = tmp_path / "c.onnx"
        onnx.save(model, path)
        assert runtime_ops(path, tmp_path)["Add"] == (1 if merged else 2)


def test_nothing_merges_into_a_node_that_makes_a_graph_output(tmp_path) -> None:
    """onnxruntime keeps a node that makes a graph output, and the equal node after it
    (which it numbers first): two Relus run, and a third merges into the second."""
    relu = [helper.make_node("Relu", ["x"], [o], name=f"r{i}")
            for i, o in enumerate(("a", "b", "c"), 1)]  # fmt: skip
    for nodes, outputs, ran in ((relu[:2], ["y", "a"], 2), (relu, ["y", "a"], 2)):
        last = "c" if len(nodes) == 3 else "a"
        add = helper.make_node("Add", ["b", last], ["y"], name="add")
        value = helper.make_tensor_value_info
        graph = helper.make_graph([*nodes, add], "g", [value("x", TensorProto.FLOAT, [4, 4])],
                                  [value(o, TensorProto.FLOAT, [4, 4]) for o in outputs])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        marked = by_name(model)
        assert len(nodes) - len(marked & {"r1", "r2", "r3"}) == ran
        assert not marked & {"r1", "r2"}
        path = tmp_path / "o.onnx"
        onnx.save(model, path)
        assert runtime_ops(path, tmp_path)["Relu"] == ran


def test_the_recomputations_are_those_onnxruntime_eliminates(tmp_path) -> None:
    """The oracle: onnxruntime's own optimised graph runs the ops placer does not mark."""
    model = projections({"q": 0.0, "k": 0.0, "v": 0.5, "o": 0.0})
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    ran = runtime_ops(path, tmp_path)
    graph = load_onnx(path)
    kept = collections.Counter(n.op_type for n in graph.nodes if not n.recomputes)
    assert kept["MatMul"] == ran["MatMul"] == 2
    assert kept["Relu"] == ran["Relu"] == 2


def test_a_recomputation_costs_nothing_with_the_runtimes_optimisations(tmp_path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(projections({"q": 0.0, "k": 0.0}), path)
    graph = load_onnx(path)
    runtime = build_problem(graph, CLUSTER, CostOptions())
    alone = build_problem(graph, CLUSTER, CostOptions(fusion=Fusion.NONE))
    names = [n.name for n in graph.nodes]
    k, q = names.index("k"), names.index("q")
    assert graph.nodes[k].recomputes and not graph.nodes[q].recomputes
    assert runtime.ops[k].latency[0] == 0.0
    assert alone.ops[k].latency[0] == pytest.approx(alone.ops[q].latency[0])
    assert runtime.ops[q].latency[0] > 0.0


def test_the_sample_models_recompute_nothing(tmp_path) -> None:
    """Their generated weights all differ, as a trained model's do: onnxruntime runs
    every projection (with equal weights it had computed one of each BERT layer's
    query, key and value projections)."""
    path = ROOT / "sample_models" / "bert_base.onnx"
    ran = runtime_ops(path, tmp_path)
    assert ran["MatMul"] == 96  # 8 per layer: 6 projections and attention's 2
    shapes = {"input_ids": (8, 128)}
    for name, given in (("bert_base", shapes), ("gpt2_small", shapes), ("mobilenet_v2", {})):
        graph = load_onnx(ROOT / "sample_models" / f"{name}.onnx", input_shapes=given)
        assert not any(n.recomputes for n in graph.nodes), name


def twins(tmp_path, pair: list, *, domains=()) -> tuple[set[str], dict]:
    """Two copies of ``pair`` (nodes reading ``x``, the last making ``a``/``b``), their
    outputs added: the names placer marks, and onnxruntime's op counts at its basic
    level."""
    nodes = []
    for copy in ("a", "b"):
        for node in pair:
            clone = onnx.NodeProto()
            clone.CopyFrom(node)
            clone.name = f"{node.name}_{copy}"
            clone.input[:] = [i if i in ("x", "w", "g", "s", "m", "v", "c") else f"{i}_{copy}"
                              for i in node.input]  # fmt: skip
            clone.output[:] = [f"{o}_{copy}" for o in node.output]
            nodes.append(clone)
    last = pair[-1].output[0]
    nodes.append(helper.make_node("Add", [f"{last}_a", f"{last}_b"], ["y"], name="sum"))
    value = helper.make_tensor_value_info
    c = 4
    inits = [numpy_helper.from_array(np.full((c, c, 3, 3), 0.1, np.float32), "w"),
             *(numpy_helper.from_array(np.full(c, v, np.float32), n)
               for n, v in (("g", 1.0), ("s", 0.0), ("m", 0.0), ("v", 1.0))),
             numpy_helper.from_array(np.full((c, 1, 1), 2.0, np.float32), "c")]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [value("x", TensorProto.FLOAT, [1, c, 8, 8])],
                              [value("y", TensorProto.FLOAT, None)], initializer=inits)  # fmt: skip
    opsets = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, 1) for d in domains)]
    model = helper.make_model(graph, opset_imports=opsets)
    path = tmp_path / "twins.onnx"
    onnx.save(model, path)
    ran = runtime_ops(path, tmp_path)
    return by_name(model), ran


@pytest.mark.parametrize("after", ["BatchNormalization", "Mul"])
def test_a_conv_the_runtime_folds_its_reader_into_is_computed_twice(tmp_path, after) -> None:
    """onnxruntime folds a BatchNormalization (or a product with a constant) into the
    Conv before it numbers values: equal Convs get different weights."""
    inputs = ["y0", "g", "s", "m", "v"] if after == "BatchNormalization" else ["y0", "c"]
    marked, ran = twins(tmp_path, [
        helper.make_node("Conv", ["x", "w"], ["y0"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node(after, inputs, ["y1"], name="after"),
    ])  # fmt: skip
    assert ran["Conv"] == 2 and not marked & {"conv_b", "after_b"}
    # a Conv read by a ReLU, or by a sum with a constant (folded after), is no such
    # case: one is computed
    for op, inputs in (("Relu", ["y0"]), ("Add", ["y0", "c"])):
        marked, ran = twins(tmp_path, [
            helper.make_node("Conv", ["x", "w"], ["y0"], name="conv", pads=[1, 1, 1, 1]),
            helper.make_node(op, inputs, ["y1"], name="after"),
        ])  # fmt: skip
        assert ran["Conv"] == 1 and marked == {"conv_b", "after_b"}, op


def test_other_domains_and_nan_attributes_are_never_merged(tmp_path) -> None:
    marked, ran = twins(tmp_path, [
        helper.make_node("Gelu", ["x"], ["y1"], name="gelu", domain="com.microsoft"),
    ], domains=("com.microsoft",))  # fmt: skip
    assert ran["Gelu"] == 2 and not marked
    marked, ran = twins(tmp_path, [
        helper.make_node("LeakyRelu", ["x"], ["y1"], name="leaky", alpha=float("nan")),
    ])  # fmt: skip
    assert ran["LeakyRelu"] == 2 and not marked


def test_costs_detail_says_which_op_repeats_an_earlier_one(run_placer, tmp_path) -> None:
    import json

    path = tmp_path / "m.onnx"
    onnx.save(projections({"q": 0.0, "k": 0.0}), path)
    result = run_placer("inspect", path, "--costs-detail", "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["costs"]}
    assert rows["k"]["recomputes"] and not rows["q"]["recomputes"]
    assert all(t["seconds"] == 0.0 for t in rows["k"]["devices"].values())
    table = run_placer("inspect", path, "--costs-detail")
    line = next(line for line in table.stdout.splitlines() if line.split()[:1] == ["k"])
    assert "repeats an earlier op" in line


def test_the_readers_of_a_repeat_read_the_original_which_then_fuses_with_none(tmp_path) -> None:
    """Two equal Convs, then a Relu and a Sigmoid: onnxruntime runs one Conv and both
    activations alone (the oracle, at its default level), so the Relu is no epilogue of
    the first Conv, as it was when the two Convs were seen apart."""
    import onnxruntime as ort

    w = numpy_helper.from_array(np.ones((16, 8, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["x", "w"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["c2"], ["s2"], name="sig2"),
             helper.make_node("Add", ["r1", "s2"], ["y"], name="add")]  # fmt: skip
    value = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "g", [value("x", TensorProto.FLOAT, [1, 8, 32, 32])],
                              [value("y", TensorProto.FLOAT, [1, 16, 32, 32])],
                              initializer=[w])  # fmt: skip
    path = tmp_path / "convs.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ran = collections.Counter(n.op_type for n in onnx.load(tmp_path / "opt.onnx").graph.node)
    assert ran["Relu"] == ran["Sigmoid"] == 1 and ran["Conv"] + ran["FusedConv"] == 1
    loaded = load_onnx(path)
    names = [node.name for node in loaded.nodes]
    assert loaded.repeats == ((names.index("conv2"), names.index("conv1")),)
    fused = {names[i] for i in fuse(loaded)}
    assert "conv2" in fused and "relu1" not in fused


@pytest.mark.parametrize(("op", "first", "second", "merged"), [
    ("LeakyRelu", {}, {"alpha": 0.01}, True),  # the schema's default, written out
    ("LeakyRelu", {}, {"alpha": 0.02}, False),
    ("Softmax", {"axis": -1}, {}, True),
    ("Elu", {"alpha": 1.0}, {"alpha": 0.5}, False),
])  # fmt: skip
def test_an_attribute_left_to_its_default_equals_it_written_out(tmp_path, op, first, second,
                                                                 merged) -> None:  # fmt: skip
    """onnxruntime fills in default attributes before it compares nodes (the oracle)."""
    nodes = [helper.make_node(op, ["x"], ["a"], name="one", **first),
             helper.make_node(op, ["x"], ["b"], name="two", **second),
             helper.make_node("Add", ["a", "b"], ["y"], name="add")]  # fmt: skip
    value = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "g", [value("x", TensorProto.FLOAT, [4, 4])],
                              [value("y", TensorProto.FLOAT, [4, 4])])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert by_name(model) == ({"two"} if merged else set())
    path = tmp_path / "d.onnx"
    onnx.save(model, path)
    assert runtime_ops(path, tmp_path)[op] == (1 if merged else 2)
    names = [node.name for node in load_onnx(path).nodes if node.recomputes]
    assert names == (["two"] if merged else [])


@pytest.mark.parametrize("how", ["named apart", "same name", "initializer", "value_floats"])
def test_small_constants_are_one_value_whatever_holds_them(tmp_path, how) -> None:
    """Two Constant nodes of 8 equal values (their tensors named apart or alike), a
    Constant and an initializer, or value_floats: onnxruntime loads each as an
    initializer and merges their readers (the oracle)."""
    values = np.arange(8, dtype=np.float32)
    tensor = "t2" if how == "named apart" else "t"
    make = {
        "value_floats": lambda out: helper.make_node("Constant", [], [out], name=out,
                                                     value_floats=values.tolist()),
    }.get(how, lambda out: helper.make_node("Constant", [], [out], name=out,
                                            value=numpy_helper.from_array(values, tensor)))
    nodes = [helper.make_node("Constant", [], ["c1"], name="c1",
                              value=numpy_helper.from_array(values, "t"))]  # fmt: skip
    initializers = []
    if how == "initializer":
        initializers.append(numpy_helper.from_array(values, "c2"))
    else:
        nodes.append(make("c2"))
    nodes += [helper.make_node("Add", ["x", "c1"], ["p"], name="p"),
              helper.make_node("Add", ["x", "c2"], ["q"], name="q"),
              helper.make_node("Mul", ["p", "q"], ["y"], name="mul")]  # fmt: skip
    value = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "g", [value("x", TensorProto.FLOAT, [4, 8])],
                              [value("y", TensorProto.FLOAT, [4, 8])],
                              initializer=initializers)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert by_name(model) - {"c2"} == {"q"}  # (placer folds the Constants themselves)
    path = tmp_path / "c.onnx"
    onnx.save(model, path)
    assert runtime_ops(path, tmp_path)["Add"] == 1


@pytest.mark.parametrize(("output", "relus", "sigmoids"), [("r1", 2, 1), ("r2", 2, 1)])
def test_what_reads_a_kept_graph_output_still_merges(tmp_path, output, relus, sigmoids) -> None:
    """r1 and r2 are equal Relus, one a graph output, each read by a Sigmoid: the
    output's node is kept, but the Sigmoids are one value.  onnxruntime (the oracle) runs
    one Sigmoid, and 2 Relus where the output comes first, 1 where it comes second
    (it numbers the output's node first): placer charges 2, never less."""
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r1"),
             helper.make_node("Relu", ["x"], ["b"], name="r2"),
             helper.make_node("Sigmoid", ["a"], ["sa"], name="s1"),
             helper.make_node("Sigmoid", ["b"], ["sb"], name="s2"),
             helper.make_node("Add", ["sa", "sb"], ["y"], name="add")]  # fmt: skip
    value = helper.make_tensor_value_info
    kept = "a" if output == "r1" else "b"
    graph = helper.make_graph(nodes, "g", [value("x", TensorProto.FLOAT, [4, 4])],
                              [value("y", TensorProto.FLOAT, [4, 4]),
                               value(kept, TensorProto.FLOAT, [4, 4])])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    marked = by_name(model)
    assert marked == {"s2"}
    assert 2 - len(marked & {"r1", "r2"}) == relus
    path = tmp_path / "o.onnx"
    onnx.save(model, path)
    ran = runtime_ops(path, tmp_path)
    assert ran["Sigmoid"] == sigmoids and ran["Relu"] <= relus
