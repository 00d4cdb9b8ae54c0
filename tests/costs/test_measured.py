"""The header of a costs file (how its times were measured) and its checks."""

from __future__ import annotations

import json

import pytest

from placer.costs.measured import (
    HEADER_PREFIX,
    Measurement,
    check_measurement,
    costs_notes,
    read_measurement,
)
from placer.costs.roofline import read_measured_costs
from placer.errors import InputError

FINGERPRINT = "sha256:" + "ab" * 32
MEASURED = Measurement(
    model="m.onnx", fingerprint=FINGERPRINT, device="cpu", threads=1,
    shapes={"ids": (8, 128)}, batch_size=8, dtype="fp32", fusion="none",
    onnxruntime="1.0", repeat=10, warmup=3,
)  # fmt: skip


def _check(**run) -> None:
    given = {"model": "m.onnx", "fingerprint": FINGERPRINT, "batch_size": 8,
             "shapes": {"ids": (8, 128)}} | run  # fmt: skip
    check_measurement(MEASURED, "c.csv", **given)


def test_a_run_like_the_measured_one_passes() -> None:
    _check()


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ({"fingerprint": "sha256:" + "cd" * 32},
         "c.csv: measured on another model (m.onnx, fingerprint sha256:abababababab), not "
         "on m.onnx (sha256:cdcdcdcdcdcd); measure m.onnx with placer profile"),
        ({"batch_size": 4, "shapes": {"ids": (4, 128)}},
         "c.csv: measured at batch 8, this run uses batch 4"),
        ({"shapes": {"ids": (8, 64)}},
         "c.csv: measured with input ids of shape 8,128, this run uses 8,64"),
        ({"shapes": {"ids": (8, 128), "mask": (8, 128)}},
         "c.csv: measured without input mask, which this run has"),
        ({"shapes": {}}, "c.csv: measured with input ids, which this run lacks"),
    ],
    ids=["model", "batch", "shape", "extra input", "missing input"],
)  # fmt: skip
def test_a_run_unlike_the_measured_one_is_refused(run, message) -> None:
    with pytest.raises(InputError) as err:
        _check(**run)
    assert str(err.value).startswith(message), str(err.value)


def test_the_header_is_read_back_and_a_file_without_one_has_none(tmp_path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(MEASURED.header_line() + "op,device,seconds\na,cpu,1e-3\n")
    assert read_measurement(path) == MEASURED
    assert read_measured_costs(path) == {("a", "cpu"): 1e-3}
    path.write_text("# by hand\nop,device,seconds\na,cpu,1e-3\n")
    assert read_measurement(path) is None
    assert read_measured_costs(path) == {("a", "cpu"): 1e-3}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("{", "c.csv:1:20: not valid JSON"),
        ("[1]", "c.csv:1: the placer-profile header must be a JSON object"),
        (json.dumps({"fingerprint": FINGERPRINT, "shapes": {}}),
         "c.csv:1: the placer-profile header has no field 'batch_size'"),
        ('{"fingerprint": "x", "shapes": {}, "batch_size": 1}',
         "c.csv:1: header field 'fingerprint' must be a fingerprint"),
        (json.dumps({"fingerprint": FINGERPRINT, "shapes": {"a": [0]}, "batch_size": 1}),
         "c.csv:1: header field 'shapes' must be an object mapping input names"),
        (json.dumps({"fingerprint": FINGERPRINT, "shapes": {}, "batch_size": True}),
         "c.csv:1: header field 'batch_size' must be a whole number"),
    ],
    ids=["json", "array", "missing", "fingerprint", "shape", "bool"],
)  # fmt: skip
def test_a_malformed_header_is_one_line_naming_the_field(tmp_path, header, message) -> None:
    path = tmp_path / "c.csv"
    path.write_text(f"{HEADER_PREFIX}{header}\nop,device,seconds\n")
    with pytest.raises(InputError) as err:
        read_measurement(path)
    assert str(err.value).startswith(f"{tmp_path}/{message}"), str(err.value)


def test_later_fields_are_kept() -> None:
    document = {**MEASURED.to_dict(), "gpu": "H100"}
    line = HEADER_PREFIX + json.dumps(document)
    assert json.loads(line[len(HEADER_PREFIX) :])["gpu"] == "H100"


def test_notes_name_the_ops_left_out_and_another_precision() -> None:
    measured = {("a", "cpu"): 1.0, ("a", "t4"): 1.0, ("b", "t4"): 1.0}
    notes = costs_notes("c.csv", measured, ["a", "b", "c", "d", "e"], MEASURED, "fp16")
    assert notes == (
        "--costs c.csv: no measured time for 4 of 5 ops on cpu (b, c, d, ...); 3 of 5 ops on "
        "t4 (c, d, e); the cost model estimates them",
        "--costs c.csv: measured in fp32, this run costs fp16; the measured times are used "
        "as they are",
    )
    assert costs_notes("c.csv", measured, ["a", "b"], MEASURED, "fp32") == (
        "--costs c.csv: no measured time for 1 of 2 ops on cpu (b); the cost model "
        "estimates them",
    )


def test_a_note_says_the_times_were_measured_with_other_fusion() -> None:
    measured = {("a", "cpu"): 1.0}
    recorded = MEASURED.fusion
    other = "runtime" if recorded == "none" else "none"
    (note,) = costs_notes("c.csv", measured, ["a"], MEASURED, MEASURED.dtype, other)
    assert note == (
        f"--costs c.csv: measured with --fusion {recorded}, this run costs --fusion {other}; "
        "the measured times are used as they are"
    )
    assert costs_notes("c.csv", measured, ["a"], MEASURED, MEASURED.dtype, recorded) == ()
