"""Shared fixtures: paths to the reference workloads and a CLI runner factory."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

# A shell that starts the suite in the background (``make test &``) leaves SIGINT
# ignored, which Python then never turns into KeyboardInterrupt, and which the placer
# processes the Ctrl-C tests start would inherit: restore Python's own handler, as an
# interactive run has it (a handled signal is reset to the default in a child).
signal.signal(signal.SIGINT, signal.default_int_handler)

#: The repository (tests live in subfolders mirroring ``placer/``'s).
ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "dnn-partitioning"
EXPECTED = json.loads((REFERENCE / "expected.json").read_text())


@pytest.fixture(scope="session")
def resnet50_any_batch(tmp_path_factory) -> Path:
    """The onnx package's ResNet-50 (Caffe2's export) with the shape its one Reshape
    takes, ``[1, 2048]`` as exported at batch 1, made ``[-1, 2048]``, as an export with a
    dynamic batch writes it: as shipped it runs at batch 1 only, and placer refuses it at
    any other, as onnxruntime does."""
    import onnx
    from onnx import numpy_helper

    shipped = Path(onnx.__file__).parent / "backend/test/data/light/light_resnet50.onnx"
    if not shipped.is_file():
        pytest.skip("this onnx build ships no backend test data")
    model = onnx.load(str(shipped))
    (shape,) = (t for t in model.graph.initializer if t.name == "OC2_DUMMY_1")
    assert list(numpy_helper.to_array(shape)) == [1, 2048]
    shape.CopyFrom(numpy_helper.from_array(np.array([-1, 2048], np.int64), shape.name))
    path = tmp_path_factory.mktemp("resnet50") / "resnet50_any_batch.onnx"
    onnx.save(model, str(path))
    return path


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_placer() -> Callable[..., CliResult]:
    """Run ``placer ARGS...`` in-process; returns exit code, stdout and stderr."""
    from placer.cli import main

    def run(*args: str) -> CliResult:
        runner = CliRunner()
        with runner.isolation() as streams:
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as exit_:
                code = int(exit_.code or 0)
            out, err = streams[0].getvalue(), streams[1].getvalue()
        return CliResult(code, out.decode(), err.decode())

    return run


def one_line_error(result: CliResult, *fragments: str, status: int = 2) -> str:
    """Assert that ``result`` failed with ``status`` and one stderr line, no traceback,
    holding every fragment; returns that line."""
    assert result.exit_code == status, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
