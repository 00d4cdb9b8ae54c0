"""placer profile: onnxruntime's per-op times of a model, as a costs file placer reads
back (--costs) and checks against the run that reads it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from placer.costs.measured import HEADER_PREFIX, read_measurement
from placer.costs.roofline import read_measured_costs
from placer.frontends.onnx_graph import load_onnx
from tests.conftest import ROOT, one_line_error

BERT = ROOT / "sample_models" / "bert_base.onnx"
GPT2 = ROOT / "sample_models" / "gpt2_small.onnx"
#: Small shapes and few runs: each profile takes about a second.
SHAPES = ("--input-shape", "input_ids=1,8", "--input-shape", "attention_mask=1,8")
QUICK = ("--repeat", "2", "--warmup", "1")


def _profile(tmp_path_factory, *extra: str) -> Path:
    from placer.cli import main

    out = tmp_path_factory.mktemp("profile") / "costs.csv"
    with pytest.raises(SystemExit) as exit_:
        main(["profile", str(BERT), *SHAPES, *QUICK, *extra, "-o", str(out)])
    assert exit_.value.code == 0
    return out


@pytest.fixture(scope="module")
def costs(tmp_path_factory) -> Path:
    """BERT-base at batch 1, 8 tokens, onnxruntime's optimisations off."""
    return _profile(tmp_path_factory, "--fusion", "none")


def _rows(path: Path) -> list[tuple[str, str, float]]:
    lines = path.read_text().splitlines()
    return [
        (op, device, float(seconds))
        for op, device, seconds in (line.rsplit(",", 2) for line in lines[2:])
    ]


def test_every_op_gets_a_positive_time_under_placers_name(costs, run_placer) -> None:
    rows = _rows(costs)
    graph = load_onnx(BERT, input_shapes={"input_ids": (1, 8), "attention_mask": (1, 8)})
    # every op placer places or recomputes, in graph order; the weights it folds left out
    assert [op for op, _, _ in rows] == [node.name for node in graph.nodes]
    assert all(device == "cpu" and seconds > 0 for _, device, seconds in rows)
    inspected = run_placer("inspect", BERT, *SHAPES, "--format", "json")
    summary = json.loads(inspected.stdout)
    assert summary["nodes"] == len(rows)
    assert {op["name"] for op in summary["dearest_ops"]} <= {op for op, _, _ in rows}
    assert not any("ConstantOfShape" in op for op, _, _ in rows)


def test_the_header_records_how_and_round_trips(costs) -> None:
    first = costs.read_text().splitlines()[0]
    assert first.startswith(HEADER_PREFIX)
    recorded = json.loads(first[len(HEADER_PREFIX) :])
    assert recorded["model"] == "bert_base.onnx"
    assert recorded["fingerprint"].startswith("sha256:")
    assert recorded["shapes"] == {"input_ids": [1, 8], "attention_mask": [1, 8]}
    assert (recorded["batch_size"], recorded["threads"], recorded["fusion"]) == (1, 1, "none")
    assert (recorded["repeat"], recorded["warmup"], recorded["dtype"]) == (2, 1, "fp32")
    assert recorded["onnxruntime"] == onnxruntime.__version__
    measurement = read_measurement(costs)
    assert measurement.to_dict() == recorded
    assert measurement.header_line() == first + "\n"
    table = read_measured_costs(costs)  # the comment line is skipped
    assert table == {(op, device): seconds for op, device, seconds in _rows(costs)}


def test_place_with_the_file_uses_the_measured_times(costs, run_placer) -> None:
    # on the CPU alone, the one stage computes every op: the sum of the file's times
    result = run_placer("place", BERT, *SHAPES, "--costs", costs, "--exclude", "a100-80gb",
                        "--fusion", "none", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    plan = json.loads(result.stdout)
    total = sum(seconds for _, _, seconds in _rows(costs))
    assert plan["stages"][0]["compute"] == pytest.approx(total)
    assert plan["provenance"]["costs"].startswith("sha256:")
    on_gpus = run_placer("place", BERT, *SHAPES, "--costs", costs)
    assert on_gpus.exit_code == 0, on_gpus.stderr


@pytest.mark.parametrize(
    ("model", "shapes", "fragment"),
    [
        (BERT, ("--input-shape", "input_ids=2,8", "--input-shape", "attention_mask=2,8"),
         "measured at batch 1, this run uses batch 2"),
        (BERT, ("--input-shape", "input_ids=1,16", "--input-shape", "attention_mask=1,16"),
         "measured with input input_ids of shape 1,8, this run uses 1,16"),
        (GPT2, ("--input-shape", "input_ids=1,8"), "measured on another model (bert_base.onnx,"),
    ],
    ids=["batch", "shape", "model"],
)  # fmt: skip
def test_a_file_measured_for_another_run_is_refused(
    costs, run_placer, model, shapes, fragment
) -> None:
    line = one_line_error(run_placer("place", model, *shapes, "--costs", costs), fragment)
    assert line.startswith(f"placer: error: {costs}: ")


def test_ops_the_file_does_not_cover_are_named_in_a_warning(costs, run_placer, tmp_path) -> None:
    lines = costs.read_text().splitlines(keepends=True)
    partial = tmp_path / "partial.csv"
    partial.write_text("".join(lines[:-5]))  # the last five ops (the pooler) missing
    result = run_placer("place", BERT, *SHAPES, "--costs", partial, "--fusion", "none")
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    missing = [row.split(",")[0] for row in lines[-5:]]
    assert len(warnings) == 1, result.stderr
    assert f"no measured time for 5 of {len(lines) - 2} ops on cpu ({missing[0]}" in warnings[0]
    assert "the cost model estimates them" in warnings[0]


def test_by_default_it_measures_the_fusion_place_costs(tmp_path_factory, run_placer) -> None:
    fused = _profile(tmp_path_factory)
    recorded = json.loads(fused.read_text().splitlines()[0][len(HEADER_PREFIX) :])
    assert recorded["fusion"] == "runtime"
    result = run_placer("place", BERT, *SHAPES, "--costs", fused)
    assert result.exit_code == 0 and "--fusion" not in result.stderr, result.stderr
    # costed otherwise than measured: said, and the times used as they are
    result = run_placer("place", BERT, *SHAPES, "--costs", fused, "--fusion", "none")
    assert result.exit_code == 0, result.stderr
    assert "measured with --fusion runtime, this run costs --fusion none" in result.stderr


def test_runtime_fusion_gives_a_fused_nodes_time_to_one_member(tmp_path_factory) -> None:
    rows = {op: seconds for op, _, seconds in _rows(_profile(tmp_path_factory, "--fusion",
                                                              "runtime"))}  # fmt: skip
    graph = load_onnx(BERT, input_shapes={"input_ids": (1, 8), "attention_mask": (1, 8)})
    assert list(rows) == [node.name for node in graph.nodes]
    assert rows["encoder.layer.0.intermediate.dense/MatMul"] > 0
    # BiasGelu is the bias Add and the five ops of the exact GELU: one of them is charged
    fused = [op for op in rows if op.startswith("encoder.layer.0.intermediate.")]
    assert len(fused) == 7 and sum(rows[op] > 0 for op in fused) == 2
    assert all(seconds >= 0 for seconds in rows.values())


def test_cuda_without_a_cuda_provider_is_one_line(run_placer, tmp_path) -> None:
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider")
    result = run_placer("profile", BERT, *SHAPES, "--device", "cuda", "-o", tmp_path / "c.csv")
    one_line_error(result, "--device cuda: no CUDA provider in this onnxruntime build")
    assert not (tmp_path / "c.csv").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--device", "gpu"), "--device: expected cpu, cuda or cuda:N, got 'gpu'"),
        (("--device", "cpu:1"), "--device: expected cpu, cuda or cuda:N"),
        (("--repeat", "0"), "--repeat"),
        (("--threads", "0"), "--threads"),
        (("--fusion", "all"), "--fusion"),
        (("--device-name", ""), "--device-name"),
    ],
)
def test_bad_options_are_one_line(run_placer, tmp_path, args, fragment) -> None:
    one_line_error(run_placer("profile", BERT, *args, "-o", tmp_path / "c.csv"), fragment)


def test_outputs_it_cannot_write_are_refused_before_any_work(run_placer, tmp_path) -> None:
    one_line_error(run_placer("profile", BERT, "-o", tmp_path / "c.json"), "writes CSV")
    one_line_error(run_placer("profile", BERT, "-o", BERT), "--output")
    one_line_error(run_placer("profile", tmp_path / "none.onnx", "-o", tmp_path / "c.csv"),
                   "none.onnx")  # fmt: skip


def _tiny(tmp_path: Path) -> Path:
    """Unnamed and repeated node names, a weight made by ConstantOfShape (folded), and
    token ids that index a table of 2 rows (a token-type embedding)."""
    shape = numpy_helper.from_array(np.array([2, 4], np.int64), "shape")
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["table"],
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
        helper.make_node("Gather", ["table", "ids"], ["emb"]),
        helper.make_node("Relu", ["emb"], ["a"], name="dup"),
        helper.make_node("Neg", ["a"], ["b"], name="dup"),
        helper.make_node("Abs", ["b"], ["y"]),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16, 4])],
        [shape],
    )  # fmt: skip
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_model_whose_names_are_not_placers_runs_under_placers(run_placer, tmp_path) -> None:
    # onnxruntime refuses two nodes of one name: placer hands it the model renamed
    model = _tiny(tmp_path)
    out = tmp_path / "costs.csv"
    result = run_placer("profile", model, "--batch-size", "3", *QUICK, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert [op for op, _, _ in _rows(out)] == ["Gather_1", "dup", "dup_3", "Abs_4"]
    assert read_measurement(out).shapes == {"ids": (3, 16)}
    placed = run_placer("place", model, "--batch-size", "3", "--costs", out)
    assert placed.exit_code == 0, placed.stderr
