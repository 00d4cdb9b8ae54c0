"""CI use: the plan schema, ``placer check`` and ``place --fail-below``, both ways."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from placer.outputs.check import Limits
from placer.outputs.schema import load_schema, schema_errors
from tests.conftest import EXPECTED, REFERENCE, ROOT, one_line_error

WORKLOAD = REFERENCE / "layer-graphs/bert24_training.json"
OPTIMUM = EXPECTED["optimal"]["layer-graphs/bert24_training"]
MOBILENET = ROOT / "sample_models" / "mobilenet_v2.onnx"


@pytest.fixture
def plan(run_placer, tmp_path):
    path = tmp_path / "plan.json"
    result = run_placer("place", WORKLOAD, "--solver", "dp", "--output", path)
    assert result.exit_code == 0, result.stderr
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("place", WORKLOAD, "--solver", "dp"),
        ("place", REFERENCE / "operator-graphs/bert_l-3_inference.json", "--solver", "greedy"),
        ("evaluate", WORKLOAD, REFERENCE / "human-experts/bert24_training_expert.json"),
    ],
    ids=["place", "baseline", "evaluate"],
)
def test_placer_json_output_matches_the_schema(run_placer, args) -> None:
    result = run_placer(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert schema_errors(json.loads(result.stdout), load_schema("plan")) == []


def test_onnx_plan_matches_the_schema(run_placer) -> None:
    result = run_placer("place", MOBILENET, "--solver", "greedy", "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert schema_errors(document, load_schema("plan")) == []
    assert all(isinstance(n, str) for stage in document["stages"] for n in stage["nodes"])


def test_schema_catches_what_check_relies_on() -> None:
    schema = load_schema("plan")
    errors = schema_errors({"max_load": "fast", "stages": [{"device": 3}]}, schema)
    assert "$.max_load: expected number, got string" in errors
    assert "$.stages[0].device: expected string, got integer" in errors
    assert "$: missing required key 'throughput'" in errors
    assert schema_errors({"max_load": True}, {"properties": {"max_load": {"type": "number"}}})
    assert schema_errors(5, {"maximum": 4}) == ["$: 5 is above the maximum 4"]
    assert schema_errors(4, {"maximum": 4}) == []


def test_check_passes_within_the_limits(run_placer, plan) -> None:
    result = run_placer("check", plan, "--max-load", OPTIMUM * 1.01, "--min-throughput", 0.02)
    assert result.exit_code == 0, result.stderr
    assert "ok: max-load 41.7458" in result.stdout


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--max-load", "40"), "max-load 41.7458 is above the limit 40"),
        (("--min-throughput", "1"), "predicted throughput 0.0239545 is below the minimum 1"),
    ],
)
def test_check_fails_outside_the_limits(run_placer, plan, flags, message) -> None:
    result = run_placer("check", plan, *flags)
    assert result.exit_code == 4
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_fails_an_invalid_plan(run_placer, plan) -> None:
    document = json.loads(plan.read_text())
    document["valid"] = False
    document["violations"] = ["accel:0 holds 3 bytes, over its 2"]
    plan.write_text(json.dumps(document))
    result = run_placer("check", plan)
    assert result.exit_code == 4
    assert "the plan is invalid: accel:0 holds 3 bytes" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"stages": []}', "not a placer plan: $: missing required key"),
        (None, "no such file"),
    ],
)
def test_check_rejects_malformed_plans(run_placer, tmp_path, text, message) -> None:
    path = tmp_path / "plan.json"
    if text is not None:
        path.write_text(text)
    result = run_placer("check", path, "--max-load", "1")
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_fail_below_passes_when_throughput_is_high_enough(run_placer, tmp_path) -> None:
    result = run_placer(
        "place", WORKLOAD, "--solver", "dp", "--format", "json", "--fail-below", 0.02
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["max_load"] == pytest.approx(OPTIMUM, rel=1e-5)


def test_fail_below_exits_4_after_writing_the_plan(run_placer, tmp_path) -> None:
    path = tmp_path / "plan.json"
    result = run_placer("place", WORKLOAD, "--solver", "dp", "-o", path, "--fail-below", 1)
    assert result.exit_code == 4
    assert result.stderr.strip().splitlines()[-1] == (
        "placer: error: predicted throughput 0.0239545 is below the minimum 1"
    )
    assert json.loads(path.read_text())["max_load"] == pytest.approx(OPTIMUM, rel=1e-5)


def test_check_reads_yaml_plans(run_placer, tmp_path) -> None:
    path = tmp_path / "plan.yaml"
    assert run_placer("place", WORKLOAD, "--solver", "dp", "-o", path).exit_code == 0
    result = run_placer("check", path, "--max-load", OPTIMUM * 1.01)
    assert result.exit_code == 0, result.stderr
    assert "ok: max-load 41.7458" in result.stdout
    path.write_text(path.read_text().replace("max_load:", "max_load: [", 1))
    result = run_placer("check", path)
    assert result.exit_code == 2
    assert "plan.yaml:" in result.stderr and "not valid YAML" in result.stderr


@pytest.mark.parametrize(
    ("forge", "fragments"),
    [
        (
            lambda d: d.update(max_load=0.001, throughput=0.4),
            ["field 'max_load' is 0.001 but the largest stage load is 41.7458 (stages[",
             "field 'throughput' is 0.4 but samples_per_step / max_load is 1000"],
        ),
        (
            lambda d: d["stages"][0].update(load=99.0),
            ["field 'max_load' is 41.7458 but the largest stage load is 99 (stages[0].load)"],
        ),
        (
            lambda d: d.update(throughput=None),
            ["field 'throughput' is null (unbounded) but samples_per_step / max_load is"],
        ),
        (
            lambda d: d.update(samples_per_step=8),
            ["field 'throughput' is 0.0239545 but samples_per_step / max_load is 0.191636"],
        ),
        (
            lambda d: d["stages"][1].update(compute=0.5),
            ["stages[1].load is", "but its compute plus communication is"],
        ),
        (
            lambda d: d["stages"][0].update(memory_bytes=5.0, memory_cap_bytes=1.0),
            ["stages[0] (", "holds 5 B, over its memory_cap_bytes of 1 B"],
        ),
    ],
    ids=["max_load and throughput", "a stage's load", "null throughput", "samples",
         "load parts", "memory over the cap"],
)  # fmt: skip
def test_check_fails_a_plan_whose_figures_disagree(run_placer, plan, forge, fragments) -> None:
    document = json.loads(plan.read_text())
    forge(document)
    plan.write_text(json.dumps(document))
    result = run_placer("check", plan, "--min-throughput", "0.01")
    assert result.exit_code == 4, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "the plan is invalid" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_onnx_plan_names_its_cluster(run_placer, tmp_path) -> None:
    default = run_placer("place", MOBILENET, "--solver", "greedy", "--format", "json")
    assert json.loads(default.stdout)["cluster"] == "default: 4x a100-80gb + cpu"
    cluster = tmp_path / "lab.yaml"
    cluster.write_text("devices:\n  - {type: t4, count: 2}\n")
    path = tmp_path / "plan.yaml"
    placed = run_placer("place", MOBILENET, "--cluster", cluster, "--solver", "greedy", "-o", path)
    assert placed.exit_code == 0, placed.stderr
    document = yaml.safe_load(path.read_text())
    assert document["cluster"] == "lab"
    assert schema_errors(document, load_schema("plan")) == []
    workload = run_placer("place", WORKLOAD, "--solver", "greedy", "--format", "json")
    assert json.loads(workload.stdout)["cluster"] is None


@pytest.fixture
def onnx_plan(run_placer, tmp_path) -> Path:
    path = tmp_path / "onnx_plan.json"
    result = run_placer("place", MOBILENET, "--solver", "greedy", "--output", path)
    assert result.exit_code == 0, result.stderr
    return path


def test_check_passes_a_plan_with_its_provenance(run_placer, onnx_plan, plan) -> None:
    for path in (onnx_plan, plan):
        document = json.loads(path.read_text())
        assert document["provenance"]["fingerprint"].startswith("sha256:")
        assert schema_errors(document, load_schema("plan")) == []
        result = run_placer("check", path)
        assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("forge", "fragment"),
    [
        (lambda p: p.update(fingerprint="sha256:abc"), "$.provenance.fingerprint: 'sha256:abc' "
         "does not match"),
        (lambda p: p.update(dtype="fp8"), '$.provenance.dtype: "fp8" is not one of'),
        (lambda p: p.update(batch_size=0), "$.provenance.batch_size: 0 is below the minimum 1"),
        # the options' ranges (README, "Ranges of numbers"): evaluate refuses these too
        (lambda p: p.update(batch_size=2**62), "$.provenance.batch_size: 4611686018427387904 "
         "is above the maximum 2147483647"),
        (lambda p: p.update(input_shapes={"input": [1, 3, 2**31, 224]}),
         "$.provenance.input_shapes.input[2]: 2147483648 is above the maximum 2147483647"),
        (lambda p: p.update(input_shapes={"input": []}), "$.provenance.input_shapes.input: "
         "expected at least 1 items"),
        (lambda p: p.update(input_shapes={"input": [1, -3]}), "input_shapes.input[1]: -3 is "
         "below"),
        (lambda p: p.update(seed=1), "$.provenance: unexpected key 'seed'"),
        (lambda p: p.pop("mode"), "provenance.mode: missing (a plan of an ONNX model records "
         "all of"),
        (lambda p: p["cluster"]["devices"][0].update(count=1.5), "devices[0].count: expected "
         "integer"),
        (lambda p: p["cluster"]["devices"][0].pop("memory"), "missing required key 'memory'"),
        (lambda p: p["cluster"]["links"]["pairs"][0].update(between=["cpu"]), "between: expected "
         "at least 2 items"),
        (lambda p: p["cluster"]["links"]["default"].update(latency=-1), "latency: -1 is below"),
        (lambda p: p["cluster"]["devices"][0].update(efficiency=2), "provenance.cluster: "
         "devices[0].efficiency: expected a fraction"),
        (lambda p: p["cluster"]["links"]["pairs"][0].update(between=["cpu", "tpu"]),
         "provenance.cluster: links.pairs[0].between[1]: unknown group 'tpu'"),
    ],
    ids=["fingerprint", "dtype", "batch", "batch-past-the-option", "dim-past-the-option",
         "empty shape", "negative dim", "unknown key",
         "options in part", "count", "memory", "link ends", "latency", "efficiency",
         "unknown group"],
)  # fmt: skip
def test_check_catches_a_hand_edited_provenance(run_placer, onnx_plan, forge, fragment) -> None:
    document = json.loads(onnx_plan.read_text())
    forge(document["provenance"])
    onnx_plan.write_text(json.dumps(document))
    result = run_placer("check", onnx_plan)
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0], lines[0]


@pytest.fixture
def training_plan(run_placer, tmp_path) -> Path:
    path = tmp_path / "training_plan.json"
    result = run_placer(
        "place", MOBILENET, "--mode", "training", "--solver", "greedy", "--output", path
    )
    assert result.exit_code == 0, result.stderr
    return path


def test_check_refuses_backward_ops_in_a_plan_costed_for_inference(
    run_placer, training_plan
) -> None:
    assert run_placer("check", training_plan).exit_code == 0
    document = json.loads(training_plan.read_text())
    document["provenance"]["mode"] = "inference"
    training_plan.write_text(json.dumps(document))
    # evaluate refuses it (the /grad ops are not in the inference problem): check too
    line = one_line_error(run_placer("check", training_plan), "/grad' is the backward op of '",
                          "but provenance.mode is inference")  # fmt: skip
    assert "training_plan.json: stages[" in line
    assert run_placer("evaluate", MOBILENET, training_plan).exit_code == 2


def test_a_forward_op_named_like_a_backward_one_is_not_refused(run_placer, onnx_plan) -> None:
    # only 'X/grad' beside its forward op 'X' is a backward op
    document = json.loads(onnx_plan.read_text())
    document["stages"][0]["nodes"].append("no such forward op/grad")
    onnx_plan.write_text(json.dumps(document))
    assert run_placer("check", onnx_plan).exit_code == 0


def test_check_refuses_a_batch_size_other_than_samples_per_step(run_placer, onnx_plan) -> None:
    document = json.loads(onnx_plan.read_text())
    document["provenance"]["batch_size"] = 8
    onnx_plan.write_text(json.dumps(document))
    one_line_error(
        run_placer("check", onnx_plan),
        "field 'samples_per_step' is 1 but provenance.batch_size is 8",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_load", ".inf"), ("max_load", ".nan"), ("throughput", ".inf"),
     ("throughput", "-.inf"), ("lower_bound", ".nan")],
)  # fmt: skip
def test_check_refuses_a_yaml_plan_with_a_figure_that_is_not_finite(
    run_placer, tmp_path, field, value
) -> None:
    path = tmp_path / "plan.yaml"
    assert run_placer("place", WORKLOAD, "--solver", "dp", "-o", path).exit_code == 0
    lines = path.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith(f"{field}:"))
    lines[row] = f"{field}: {value}"
    path.write_text("\n".join(lines) + "\n")
    # a limit compared with NaN or infinity could never fail: the plan is refused instead
    one_line_error(
        run_placer("check", path, "--max-load", 1e9, "--min-throughput", 0),
        f"plan.yaml:{row + 1}: {field}: '{value}' is not a finite number",
    )


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("max_load", "Infinity", "Infinity is not a number JSON allows"),
        ("throughput", "NaN", "NaN is not a number JSON allows"),
        ("max_load", "1e999", "the number 1e999 is out of range"),
        ("samples_per_step", "1" + "0" * 400, "is out of range (largest: about 1.8e308)"),
        ("max_load", "9" * 5000, "an integer with too many digits"),
    ],
)
def test_check_refuses_a_json_plan_with_a_number_json_cannot_hold(
    run_placer, plan, field, value, fragment
) -> None:
    text = plan.read_text()
    start = text.index(f'"{field}": ') + len(f'"{field}": ')
    end = min(text.index(",", start), text.index("\n", start))
    plan.write_text(text[:start] + value + text[end:])
    one_line_error(run_placer("check", plan), "plan.json:", fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--max-load", "nan"), "'--max-load': 'nan' is not a finite number"),
        (("--min-throughput", "nan"), "'--min-throughput': 'nan' is not a finite number"),
        (("--max-load", "inf"), "'inf' is not a finite number"),
        (("--max-load", "-1"), "-1 is out of range (from 0 to 1e+30)"),
        (("--min-throughput", "1e31"), "1e31 is out of range"),
    ],
)
def test_check_limits_must_be_finite(run_placer, plan, args, fragment) -> None:
    one_line_error(run_placer("check", plan, *args), fragment)


def test_fail_below_must_be_finite(run_placer) -> None:
    for value in ("nan", "inf", "-inf", "1e400"):
        result = run_placer("place", WORKLOAD, "--solver", "dp", "--fail-below", value)
        one_line_error(result, "'--fail-below'", "is not a finite number")


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_limits_refuse_what_could_never_fail(value) -> None:
    with pytest.raises(ValueError, match="finite non-negative"):
        Limits(max_load=value)
    with pytest.raises(ValueError, match="finite non-negative"):
        Limits(min_throughput=value)
