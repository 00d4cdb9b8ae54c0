"""Bad ONNX files and bad cluster files through the command line: exit 2, one line."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from tests.conftest import ROOT, one_line_error

LIGHT = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"


def symbolic_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", "seq", 16])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Relu", ["tokens"], ["out"])], "g", [x], [y])
    onnx.save(helper.make_model(graph), str(path))
    return path


@pytest.mark.parametrize(
    "content",
    [
        lambda: (LIGHT / "light_squeezenet.onnx").read_bytes()[:2000],  # truncated
        lambda: os.urandom(4096),  # random bytes
        lambda: b"this is a text file, not a model\n",
    ],
    ids=["truncated", "random bytes", "text"],
)
def test_unreadable_model(run_placer, tmp_path, content) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(content())
    for command in ("inspect", "place"):
        one_line_error(run_placer(command, path), str(path))


def test_missing_model(run_placer, tmp_path) -> None:
    one_line_error(run_placer("place", tmp_path / "absent.onnx"), "absent.onnx")


def test_unresolved_dims_name_the_tensor_and_flag(run_placer, tmp_path) -> None:
    path = symbolic_model(tmp_path / "m.onnx")
    one_line_error(run_placer("place", path), "tokens", "--input-shape")
    ok = run_placer("place", path, "--input-shape", "tokens=2,8,16", "--format", "json")
    assert ok.exit_code == 0, ok.stderr


@pytest.mark.parametrize("value", ["tokens", "tokens=", "tokens=2,x", "tokens=0,3"])
def test_bad_input_shape_flag(run_placer, tmp_path, value) -> None:
    path = symbolic_model(tmp_path / "m.onnx")
    result = run_placer("place", path, "--input-shape", value)
    assert result.exit_code == 2
    assert "--input-shape" in result.stderr


CLUSTER_ERRORS = [
    ("devices:\n  - type: a100-80gb\n    count: [\n", ["c.yaml:"]),
    ("devices:\n  - type: tpu-v9\n", ["c.yaml:2", "devices[0].type", "a100-80gb"]),
    ("devices:\n  - type: t4\n    memory: -16GiB\n", ["c.yaml:3", "devices[0].memory"]),
    ("devices:\n  - type: t4\n    memory: lots\n", ["c.yaml:3", "devices[0].memory"]),
    ("links: {}\n", ["c.yaml", "devices"]),
]


@pytest.mark.parametrize(("text", "fragments"), CLUSTER_ERRORS, ids=lambda v: str(v)[:20])
def test_bad_cluster(run_placer, tmp_path, text, fragments) -> None:
    cluster = tmp_path / "c.yaml"
    cluster.write_text(text)
    model = ROOT / "sample_models" / "mobilenet_v2.onnx"
    one_line_error(run_placer("place", model, "--cluster", cluster), *fragments)


def test_python_tag_in_cluster_never_runs(run_placer, tmp_path) -> None:
    marker = tmp_path / "pwned"
    cluster = tmp_path / "c.yaml"
    cluster.write_text(
        f"devices: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    model = ROOT / "sample_models" / "mobilenet_v2.onnx"
    one_line_error(run_placer("place", model, "--cluster", cluster), "c.yaml")
    assert not marker.exists()


def test_model_flags_rejected_for_workloads(run_placer) -> None:
    workload = ROOT / "tests" / "data" / "dnn-partitioning" / "layer-graphs"
    workload /= "bert24_inference.json"
    one_line_error(
        run_placer("place", workload, "--cluster", ROOT / "examples" / "4xa100.yaml"), "--cluster"
    )


def test_op_without_formula_warns_once(run_placer, tmp_path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 16])
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="first"),
        helper.make_node("Mystery", ["a"], ["b"], domain="com.example", name="odd"),
        helper.make_node("Mystery", ["b"], ["c"], domain="com.example", name="odder"),
        helper.make_node("Relu", ["c"], ["y"], name="last"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    result = run_placer("place", path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    # neither shape inference knows Mystery: b and c are estimated, which is said once too
    assert len(warnings) == 2 and "Mystery" in warnings[0]
    assert "2 of 4 tensor shapes unknown" in warnings[1]


def test_measured_costs_must_name_real_ops(run_placer, tmp_path) -> None:
    costs = tmp_path / "costs.csv"
    costs.write_text("op,device,seconds\nno_such_node,a100-80gb,0.001\n")
    model = ROOT / "sample_models" / "mobilenet_v2.onnx"
    one_line_error(run_placer("place", model, "--costs", costs), "no_such_node")
