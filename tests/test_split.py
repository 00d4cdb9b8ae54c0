"""``placer split``: one ONNX submodel per stage that, run in order, computes what the
whole model computes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from placer.split import run_split

ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent
LIGHT = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"
SEQUENCE = ["--input-shape", "input_ids=1,16"]
MODELS = [
    pytest.param(LIGHT / "light_squeezenet.onnx", [], id="squeezenet"),
    pytest.param(LIGHT / "light_resnet50.onnx", [], id="resnet50"),
    pytest.param(LIGHT / "light_inception_v1.onnx", [], id="inception_v1"),
    pytest.param(LIGHT / "light_densenet121.onnx", [], id="densenet121", marks=pytest.mark.slow),
    pytest.param(ROOT / "sample_models" / "mobilenet_v2.onnx", [], id="mobilenet_v2"),
    pytest.param(
        ROOT / "sample_models" / "bert_base.onnx",
        [*SEQUENCE, "--input-shape", "attention_mask=1,16"],
        id="bert_base",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        ROOT / "sample_models" / "gpt2_small.onnx",
        SEQUENCE,
        id="gpt2_small",
        marks=pytest.mark.slow,
    ),
]


def _feeds(model: Path) -> dict[str, np.ndarray]:
    """Random inputs at batch 1 and sequence 16 (token ids, an all-ones mask)."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for value in session.get_inputs():
        shape = [
            d if isinstance(d, int) else (1 if i == 0 else 16) for i, d in enumerate(value.shape)
        ]
        if value.name == "attention_mask":
            feeds[value.name] = np.ones(shape, np.int64)
        elif "int64" in value.type:
            feeds[value.name] = rng.integers(0, 1000, shape, dtype=np.int64)
        else:
            feeds[value.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


@pytest.mark.parametrize(("model", "flags"), MODELS)
def test_stages_in_order_reproduce_the_model(run_placer, tmp_path, model: Path, flags) -> None:
    plan = tmp_path / "plan.json"
    placed = run_placer("place", model, *flags, "--solver", "dp", "--format", "json", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    stages = json.loads(plan.read_text())["stages"]
    assert len(stages) >= 2

    out = tmp_path / "split"
    result = run_placer("split", model, plan, "-o", out, *flags)
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["device"] for s in manifest["stages"]] == [s["device"] for s in stages]
    for stage in manifest["stages"]:
        assert set(stage) >= {"file", "device", "inputs", "outputs", "bytes_in", "bytes_out"}
        onnx.checker.check_model(onnx.load(str(out / stage["file"])), full_check=True)
    for before, after in zip(manifest["stages"], manifest["stages"][1:], strict=False):
        assert before["bytes_out"] > 0
        assert set(after["inputs"]) - set(manifest["inputs"]) <= {
            name for s in manifest["stages"][: after["index"] - 1] for name in s["outputs"]
        }
    assert [c["bytes"] for c in manifest["cuts"]] == [
        s["bytes_out"] for s in manifest["stages"][:-1]
    ]

    feeds = _feeds(model)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    expected = dict(
        zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True)
    )
    got = run_split(out, feeds)
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].shape == value.shape
        assert float(np.max(np.abs(got[name] - value), initial=0.0)) <= 1e-4, name


@pytest.fixture
def squeezenet_plan(run_placer, tmp_path) -> tuple[Path, Path]:
    model = LIGHT / "light_squeezenet.onnx"
    plan = tmp_path / "plan.json"
    placed = run_placer("place", model, "--solver", "greedy", "--format", "json", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    return model, plan


def _rewrite(plan: Path, change) -> None:
    document = json.loads(plan.read_text())
    change(document)
    plan.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["stages"][0]["nodes"].append("Conv_0/grad"), "only inference plans"),
        (lambda d: d["stages"][0]["nodes"].append("nope"), "node 'nope' is not in the model"),
        (lambda d: d["stages"][-1]["nodes"].pop(), "is in no stage"),
        (lambda d: d["stages"].reverse(), "not in pipeline order"),
        (lambda d: d.pop("stages"), "not a placer plan"),
    ],
    ids=["training", "unknown-node", "missing-node", "reversed", "malformed"],
)
def test_bad_plans_are_one_line_errors(run_placer, tmp_path, squeezenet_plan, change, message):
    model, plan = squeezenet_plan
    _rewrite(plan, change)
    result = run_placer("split", model, plan, "-o", tmp_path / "out")
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_a_folded_weight_goes_with_every_stage_that_reads_it(run_placer, tmp_path) -> None:
    """su = Unsqueeze(s) is read in both stages: each makes it from its own copy of s.

    A constant node nobody reads goes nowhere.
    """
    nodes = [
        helper.make_node("Transpose", ["s"], ["unread"], name="dead"),
        helper.make_node("Unsqueeze", ["s", "axes"], ["su"], name="unsq"),
        helper.make_node("Mul", ["x", "su"], ["h"], name="mul"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Add", ["r", "su"], ["y"], name="add"),
    ]
    inits = [
        numpy_helper.from_array(np.arange(-2, 2, dtype=np.float32), "s"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axes"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])], inits,
    )  # fmt: skip
    model = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    plan = tmp_path / "plan.json"
    placed = run_placer("place", model, "--solver", "greedy", "--format", "json", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    first = json.loads(plan.read_text())["stages"][0]
    _rewrite(plan, lambda d: d.update(stages=[
        {**first, "device": "one", "nodes": ["mul"]},
        {**first, "device": "two", "nodes": ["relu", "add"]},
    ]))  # fmt: skip

    out = tmp_path / "split"
    result = run_placer("split", model, plan, "-o", out)
    assert result.exit_code == 0, result.stderr
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    assert [(s["inputs"], s["outputs"]) for s in stages] == [(["x"], ["h"]), (["h"], ["y"])]
    subs = [onnx.load(str(out / stage["file"])).graph for stage in stages]
    assert [[node.name for node in sub.node] for sub in subs] == [
        ["unsq", "mul"], ["unsq", "relu", "add"]
    ]  # fmt: skip
    assert all({init.name for init in sub.initializer} == {"s", "axes"} for sub in subs)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    got = run_split(out, {"x": x})["y"]
    s_row = np.arange(-2, 2, dtype=np.float32)
    np.testing.assert_allclose(got, np.maximum(x * s_row, 0) + s_row, rtol=1e-6)


def test_split_needs_an_onnx_model(run_placer, tmp_path, squeezenet_plan) -> None:
    _, plan = squeezenet_plan
    result = run_placer("split", plan, plan, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "placer split reads .onnx models" in result.stderr


def test_an_output_directory_that_cannot_be_made_is_one_line(run_placer, tmp_path, squeezenet_plan):
    model, plan = squeezenet_plan
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_placer("split", model, plan, "-o", blocker / "out")
    assert result.exit_code == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot create the output directory" in result.stderr


def test_a_new_split_replaces_the_stage_files_of_the_last(run_placer, tmp_path, squeezenet_plan):
    model, plan = squeezenet_plan
    out = tmp_path / "out"
    assert run_placer("split", model, plan, "-o", out).exit_code == 0
    before = set(json.loads((out / "manifest.json").read_text())["stages"][i]["file"]
                 for i in range(len(json.loads(plan.read_text())["stages"])))  # fmt: skip
    assert len(before) > 1
    (out / "notes.txt").write_text("mine")
    # everything on one stage: the other stage files of the last split must go
    document = json.loads(plan.read_text())
    document["stages"] = [{**document["stages"][0],
                           "nodes": [n for s in document["stages"] for n in s["nodes"]]}]
    plan.write_text(json.dumps(document))
    result = run_placer("split", model, plan, "-o", out)
    assert result.exit_code == 0, result.stderr
    after = {stage["file"] for stage in json.loads((out / "manifest.json").read_text())["stages"]}
    assert len(after) == 1
    assert {p.name for p in out.glob("stage_*.onnx")} == after
    assert (out / "notes.txt").read_text() == "mine"  # files the split did not write stay


def test_split_counts_the_cuts_at_the_plans_batch_size(run_placer, tmp_path) -> None:
    model = ROOT / "sample_models" / "mobilenet_v2.onnx"
    plan = tmp_path / "plan.json"
    placed = run_placer("place", model, "--batch-size", "4", "--solver", "greedy", "-o", plan)
    assert placed.exit_code == 0, placed.stderr

    def cuts(out: Path, *flags: str) -> list[float]:
        result = run_placer("split", model, plan, "-o", out, *flags)
        assert result.exit_code == 0, result.stderr
        return [cut["bytes"] for cut in json.loads((out / "manifest.json").read_text())["cuts"]]

    at_four = cuts(tmp_path / "reused")
    assert at_four and cuts(tmp_path / "repeated", "--batch-size", "4") == at_four
    refused = run_placer("split", model, plan, "-o", tmp_path / "other", "--batch-size", "2")
    assert refused.exit_code == 2, refused.stderr
    assert "costed with --batch-size 4, and --batch-size 2 contradicts it" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "other").exists()
    # a plan that does not record its batch size is split at the options given, as before
    _rewrite(plan, lambda d: d.pop("provenance"))
    assert cuts(tmp_path / "unrecorded") == [size / 4 for size in at_four]
