"""Atomic writes: Ctrl-C in the middle of writing leaves no partial file behind."""

from __future__ import annotations

import os

import pytest

from placer import fileio
from placer.fileio import write_atomic
from tests.conftest import REFERENCE


def _interrupt(*_args, **_kwargs):
    raise KeyboardInterrupt


def test_interrupt_while_writing_leaves_the_old_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "plan.json"
    target.write_text("old\n")
    monkeypatch.setattr(fileio.os, "fsync", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new, but never finished\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def test_interrupt_while_writing_leaves_no_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(fileio.os, "replace", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "model.onnx", b"\x08\x07")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_place_output_exits_130_without_a_file(
    run_placer, tmp_path, monkeypatch
) -> None:
    real_fsync = os.fsync
    monkeypatch.setattr(fileio.os, "fsync", _interrupt)
    result = run_placer(
        "place", REFERENCE / "layer-graphs/bert24_inference.json", "--solver", "dp",
        "-o", tmp_path / "plan.json",
    )  # fmt: skip
    monkeypatch.setattr(fileio.os, "fsync", real_fsync)
    assert result.exit_code == 130
    assert "interrupted" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_bytes_are_written_as_they_are(tmp_path) -> None:
    write_atomic(tmp_path / "blob", b"\x00\xff")
    assert (tmp_path / "blob").read_bytes() == b"\x00\xff"
