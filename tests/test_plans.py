"""Reading plan files: placer's JSON or YAML output, one line per mistake."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import REFERENCE, one_line_error

MOBILENET = Path(__file__).resolve().parent.parent / "sample_models" / "mobilenet_v2.onnx"
WORKLOAD = REFERENCE / "layer-graphs/bert24_inference.json"


def test_yaml_plan_round_trips(run_placer, tmp_path) -> None:
    plan = tmp_path / "plan.yaml"
    assert run_placer("place", WORKLOAD, "--solver", "dp", "-o", plan).exit_code == 0
    result = run_placer("evaluate", WORKLOAD, plan, "--format", "json")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("stages:\n  - device: accel:0\n    nodes: [1, 2\n", ["plan.yaml:4: not valid YAML"]),
        ("stages: [\n", ["plan.yaml:2: not valid YAML"]),
        ("stages:\n  - {device: accel:0, nodes: [1]}\n  - : : x\n", ["plan.yaml:3"]),
        ("", ["plan.yaml:1: the file is empty"]),
    ],
    ids=["unclosed list", "unclosed flow", "bad mapping", "empty"],
)
def test_yaml_syntax_errors_give_the_line(run_placer, tmp_path, text, fragments) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    one_line_error(run_placer("evaluate", WORKLOAD, plan), *fragments)


def test_python_tag_in_a_plan_never_runs(run_placer, tmp_path) -> None:
    marker = tmp_path / "pwned"
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"stages: !!python/object/apply:os.system ['touch {marker}']\n")
    line = one_line_error(run_placer("evaluate", WORKLOAD, plan), "plan.yaml:1: stages:")
    assert "refused" in line and "nothing was executed" in line
    assert not marker.exists()


def test_json_syntax_errors_give_line_and_column(run_placer, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"stages": [\n  {"device": "accel:0",}\n]}\n')
    one_line_error(run_placer("evaluate", WORKLOAD, plan), "plan.json:2:", "not valid JSON")


def test_training_plan_on_an_inference_model_says_which_mode(run_placer, tmp_path) -> None:
    plan = tmp_path / "plan.json"
    placed = run_placer("place", MOBILENET, "--mode", "training", "--solver", "greedy", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    for command in ("evaluate", "report"):
        extra = ("--markdown", tmp_path / "r.md") if command == "report" else ()
        line = one_line_error(run_placer(command, MOBILENET, plan, *extra), "/grad' is not in")
        assert line.endswith("(a training plan: pass --mode training)"), line
    ok = run_placer("evaluate", MOBILENET, plan, "--mode", "training", "--format", "json")
    assert ok.exit_code == 0, ok.stderr


def test_memory_violations_read_in_binary_units(run_placer, tmp_path) -> None:
    document = json.loads(WORKLOAD.read_text())
    document["maxSizePerFPGA"] = 2**28  # 256 MiB, less than any stage of the plan holds
    workload = tmp_path / "small.json"
    workload.write_text(json.dumps(document))
    plan = REFERENCE / "human-experts/bert24_inference_expert.json"
    result = run_placer("evaluate", workload, plan, "--format", "json")
    assert result.exit_code == 0, result.stderr
    (violation, *_) = json.loads(result.stdout)["violations"]
    pattern = r"accel:\d holds [\d.]+ [GM]iB, over its 256 MiB \([\d.e+]+ > 2\.68435e\+08 bytes\)"
    assert re.fullmatch(pattern, violation), violation


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("plan.json", b'{"stages": [{"device": "accel:0", "nodes": [NaN]}]}',
         "plan.json:1:45: not valid JSON: NaN is not a number JSON allows"),
        ("plan.json", b"[" * 200 + b"]" * 200, "plan.json: not valid JSON: nested 200 levels"),
        ("plan.json", b'{"stages": "caf\xe9"}', "plan.json:1: not UTF-8 text (byte 0xe9"),
        ("plan.yaml", b"stages:\n  - device: accel:0\n    nodes: [.nan]\n",
         "plan.yaml:3: stages[0].nodes[0]: '.nan' is not a finite number"),
        ("plan.yaml", b"stages: 2001-02-30\n",
         "plan.yaml:1: stages: '2001-02-30' cannot be read as a date or time"),
        ("plan.yaml", b"stages: " + b"[" * 200 + b"]" * 200,
         "plan.yaml:1: nested more than 64 levels deep"),
    ],
    ids=["json-nan", "json-deep", "not-utf8", "yaml-nan", "yaml-date", "yaml-deep"],
)  # fmt: skip
def test_plans_are_read_strictly(run_placer, tmp_path, name, data, fragment) -> None:
    plan = tmp_path / name
    plan.write_bytes(data)
    one_line_error(run_placer("evaluate", WORKLOAD, plan), fragment)


def test_a_plan_that_is_no_regular_file_is_refused_at_once(run_placer, tmp_path) -> None:
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)  # reading it would block until a writer comes
    one_line_error(run_placer("evaluate", WORKLOAD, fifo), "is a FIFO (named pipe), not a plan")
    one_line_error(run_placer("check", "/dev/zero"), "is a character device, not a plan file")
