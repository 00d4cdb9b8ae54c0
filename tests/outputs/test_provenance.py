"""What a plan records it was made for: fingerprints of models, workloads and measured
costs, and the cluster, written so that it reads back unchanged."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from placer.costs.cluster_file import default_cluster, load_cluster, parse_cluster
from placer.errors import PlanFormatError
from placer.frontends.workload import parse_workload
from placer.provenance import (
    Provenance,
    cluster_difference,
    cluster_document,
    costs_fingerprint,
    is_fingerprint,
    onnx_fingerprint,
    read_cluster_document,
    workload_fingerprint,
)
from tests.conftest import REFERENCE, ROOT

EXAMPLES = ROOT / "examples"


def _model(
    hidden: int = 8,
    *,
    seed: int = 0,
    graph_name: str = "tiny",
    target: tuple[int, ...] = (-1, 4),
    alpha: float = 0.1,
    extra: bool = False,
) -> onnx.ModelProto:
    """x[N,8] -> MatMul(W[8,hidden]) -> LeakyRelu(alpha) -> Reshape(target) [-> Relu]."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((8, hidden)).astype(np.float32), "W")
    shape = numpy_helper.from_array(np.array(target, np.int64), "shape")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
        helper.make_node("LeakyRelu", ["h"], ["a"], name="act", alpha=alpha),
        helper.make_node("Reshape", ["a", "shape"], ["r"], name="reshape"),
    ]
    if extra:
        nodes.append(helper.make_node("Relu", ["r"], ["y"], name="relu"))
    graph = helper.make_graph(
        nodes,
        graph_name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y" if extra else "r", TensorProto.FLOAT, None)],
        initializer=[weight, shape],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_fingerprint_is_sha256_hex() -> None:
    fingerprint = onnx_fingerprint(_model())
    assert is_fingerprint(fingerprint), fingerprint
    assert not is_fingerprint(fingerprint.upper())
    assert not is_fingerprint(fingerprint[:-1])
    assert not is_fingerprint(["sha256:"])


def test_the_onnx_fingerprint_ignores_weights_and_names() -> None:
    base = onnx_fingerprint(_model())
    assert onnx_fingerprint(_model(seed=1)) == base  # retrained: other weight values
    assert onnx_fingerprint(_model(graph_name="renamed")) == base
    documented = _model()
    documented.doc_string = "exported on a Tuesday"
    documented.graph.value_info.append(
        helper.make_tensor_value_info("h", TensorProto.FLOAT, ["N", 8])
    )
    assert onnx_fingerprint(documented) == base


@pytest.mark.parametrize(
    "changed",
    [
        {"hidden": 16},  # a weight's shape
        {"target": (-1, 2)},  # a small integer tensor: a shape the graph computes with
        {"alpha": 0.2},  # an attribute
        {"extra": True},  # one more node
    ],
    ids=["weight shape", "reshape target", "attribute", "node"],
)
def test_the_onnx_fingerprint_sees_structure_and_shapes(changed) -> None:
    assert onnx_fingerprint(_model(**changed)) != onnx_fingerprint(_model())


def test_the_onnx_fingerprint_sees_declared_input_shapes() -> None:
    model = _model()
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 9
    assert onnx_fingerprint(model) != onnx_fingerprint(_model())


def _workload() -> dict:
    return json.loads((REFERENCE / "layer-graphs/bert24_inference.json").read_text())


def test_the_workload_fingerprint_sees_nodes_edges_and_costs() -> None:
    base = workload_fingerprint(parse_workload(_workload()))
    assert workload_fingerprint(parse_workload(_workload(), name="other")) == base
    for change in (
        lambda d: d["nodes"][3].update(fpgaLatency=d["nodes"][3]["fpgaLatency"] * 2),
        lambda d: d["edges"].pop(),
        lambda d: d["nodes"][0].update(id=1000)
        or [e.update(sourceId=1000) for e in d["edges"] if e["sourceId"] == 1],
        lambda d: d.update(maxFPGAs=d["maxFPGAs"] - 1),
    ):
        document = _workload()
        change(document)
        assert workload_fingerprint(parse_workload(document)) != base


def test_the_costs_fingerprint_is_of_the_table() -> None:
    table = {("mm", "a100"): 1e-3, ("act", "a100"): 2e-4}
    assert costs_fingerprint(table) == costs_fingerprint(dict(reversed(table.items())))
    assert costs_fingerprint(table) != costs_fingerprint({**table, ("mm", "a100"): 2e-3})


@pytest.mark.parametrize(
    "cluster",
    [default_cluster(), *(load_cluster(path) for path in sorted(EXAMPLES.glob("*.yaml")))],
    ids=["default", *(path.stem for path in sorted(EXAMPLES.glob("*.yaml")))],
)
def test_a_recorded_cluster_reads_back_unchanged(cluster) -> None:
    document = json.loads(json.dumps(cluster_document(cluster)))  # as a plan file holds it
    back = read_cluster_document(document, "plan.json: provenance.cluster")
    assert back == cluster
    assert cluster_difference(cluster, back) == ""


def test_a_cluster_with_other_figures_differs() -> None:
    cluster = parse_cluster("devices: [{type: t4, count: 2}, {type: cpu}]")
    slower = parse_cluster(
        "devices: [{type: t4, count: 2}, {type: cpu}]\n"
        "links: {pairs: [{between: [t4, cpu], bandwidth: 1GB/s}]}"
    )
    assert "the link between 'cpu' and 't4'" in cluster_difference(cluster, slower)
    assert "groups t4, not t4, cpu" in cluster_difference(
        cluster, parse_cluster("devices: [{type: t4, count: 2}]")
    )
    # one number replaces the type's figures per op class
    assert f"efficiency 0.4, not {cluster.group('t4').efficiency_spec}" in cluster_difference(
        cluster, parse_cluster("devices: [{type: t4, count: 2, efficiency: 0.4}, {type: cpu}]")
    )
    # a figure of one class: that class named, not both mappings in full
    assert "group 't4' has efficiency.gemm 0.5, not 0.8" in cluster_difference(
        cluster, parse_cluster("devices: [{type: t4, count: 2, efficiency: {gemm: 0.5}}, "
                               "{type: cpu}]"),
    )  # fmt: skip
    assert "efficiency 0.3, not 0.4" in cluster_difference(
        parse_cluster("devices: [{type: t4, efficiency: 0.4}]"),
        parse_cluster("devices: [{type: t4, efficiency: 0.3}]"),
    )


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d["devices"][0].update(memory=-1), "provenance.cluster: devices[0].memory"),
        (lambda d: d["devices"][0].update(colour="red"), "devices[0].colour: unknown field"),
        (lambda d: d["links"]["pairs"][0].update(between=["a100-80gb", "tpu"]), "unknown group"),
        (lambda d: d["devices"][0].update(memory=float("nan")), "not a cluster description"),
        (lambda d: d.pop("devices"), "missing field 'devices'"),
    ],
    ids=["negative memory", "unknown field", "unknown group", "nan", "no devices"],
)
def test_a_recorded_cluster_is_validated_as_a_cluster_file(change, fragment) -> None:
    document = cluster_document(default_cluster())
    change(document)
    with pytest.raises(PlanFormatError) as caught:
        read_cluster_document(document, "plan.json: provenance.cluster")
    message = str(caught.value)
    assert message.startswith("plan.json: provenance.cluster: "), message
    assert fragment in message and "\n" not in message and "<plan>" not in message


def _provenance() -> dict:
    from placer.provenance import Costing

    costing = Costing("training", "fp16", "adam", 8, {"x": (8, 128)}, False, None,
                      default_cluster())  # fmt: skip
    return Provenance(onnx_fingerprint(_model()), costing).to_dict()


def test_provenance_reads_back() -> None:
    document = json.loads(json.dumps(_provenance()))
    back = Provenance.from_dict(document, "plan.json")
    assert back.to_dict() == document
    workload = Provenance.from_dict({"fingerprint": document["fingerprint"]}, "plan.json")
    assert workload.costing is None


def test_the_cut_rule_reads_back_and_older_plans_have_none() -> None:
    document = _provenance()
    document.update(granularity="layer")
    assert Provenance.from_dict(document, "p").costing.granularity == "layer"
    document.update(granularity="op", cut_at=r"layers\.\d+")
    assert Provenance.from_dict(document, "p").costing.cut_at == r"layers\.\d+"
    for key in ("granularity", "cut_at"):  # a plan written before the options
        del document[key]
    costing = Provenance.from_dict(document, "p").costing
    assert (costing.granularity, costing.cut_at) == ("op", None)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d.update(fingerprint="md5:00"), "provenance.fingerprint: expected 'sha256:'"),
        (lambda d: d.pop("dtype"), "provenance.dtype: missing"),
        (
            lambda d: d.update(dtype="fp8"),
            "provenance.dtype: expected one of fp32, tf32, fp16, bf16",
        ),
        (
            lambda d: d.update(batch_size=0),
            "provenance.batch_size: expected an integer from 1 to 2,147,483,647",
        ),
        (lambda d: d.update(batch_size=True), "provenance.batch_size"),
        (lambda d: d.update(input_shapes={"x": [8, "a"]}), "provenance.input_shapes.x"),
        (lambda d: d.update(input_shapes=[["x", 8]]), "provenance.input_shapes: expected"),
        (lambda d: d.update(coarsen="yes"), "provenance.coarsen: expected true or false"),
        (lambda d: d.update(costs="sha256:xyz"), "provenance.costs"),
        (lambda d: d.update(cluster=[]), "provenance.cluster: "),
        (lambda d: d.update(granularity="block"), "provenance.granularity: expected one of"),
        (lambda d: d.update(cut_at=3), "provenance.cut_at: expected null or a regular"),
        (lambda d: d.update(cut_at="("), "provenance.cut_at: not a regular expression"),
        (lambda d: d.update(granularity="layer", cut_at="x"), "provenance.cut_at: expected null"),
    ],
)
def test_malformed_provenance_is_one_line(change, fragment) -> None:
    document = _provenance()
    change(document)
    with pytest.raises(PlanFormatError) as caught:
        Provenance.from_dict(document, "plan.json")
    assert fragment in str(caught.value), str(caught.value)
    assert "\n" not in str(caught.value)
