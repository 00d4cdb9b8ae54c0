"""Atomic writes: Ctrl-C leaves no partial file behind, and the file gets the usual mode."""

from __future__ import annotations

import os
import stat

import pytest

from placer import fileio
from placer.errors import InputError
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


def test_new_files_get_the_mode_open_would_give(tmp_path) -> None:
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "plan.json", "{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "plan.json").stat().st_mode) == 0o640


def test_a_replaced_file_keeps_its_mode(tmp_path) -> None:
    target = tmp_path / "plan.json"
    target.write_text("old\n")
    target.chmod(0o604)
    write_atomic(target, "new\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o604
    assert target.read_text() == "new\n"


def test_an_empty_path_is_refused(tmp_path) -> None:
    with pytest.raises(InputError, match="the output path is empty"):
        write_atomic("", "x")
