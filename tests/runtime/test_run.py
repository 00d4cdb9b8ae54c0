"""``placer run``: the plan as a pipeline of stage processes, checked against the whole
model, and every way a stage can fail ending the run cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from placer import api as app
from placer.errors import StageFailed
from placer.runtime.runner import RunOptions
from tests.conftest import ROOT, one_line_error

MODELS = ROOT / "sample_models"
#: Two CPU devices of this machine, figures of its order (placer calibrate writes such).
CLUSTER = """\
name: two-cores
devices:
  - name: core
    class: cpu
    count: 2
    peak_flops: {fp32: 100 GFLOP/s}
    memory: 8 GiB
    memory_bandwidth: 20 GB/s
    efficiency: 0.5
    overhead: 1 us
links:
  pairs:
    - {between: [core, core], bandwidth: 10 GB/s, latency: 10 us}
"""
#: Small shapes keep each run a few seconds.
SHAPES = {
    "bert_base": ("--input-shape", "input_ids=1,16", "--input-shape", "attention_mask=1,16"),
    "gpt2_small": ("--input-shape", "input_ids=1,16"),
    "mobilenet_v2": ("--batch-size", "1"),
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cluster") / "two.yaml"
    path.write_text(CLUSTER)
    return path


def _plan(run_placer, model: str, cluster: Path, tmp_path: Path, *extra: str) -> Path:
    plan = tmp_path / f"{model}.json"
    result = run_placer("place", MODELS / f"{model}.onnx", *SHAPES[model], "--cluster", cluster,
                        *extra, "-o", plan)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(plan.read_text())["stages"]) == 2, "the test wants a 2-stage plan"
    return plan


def _stages_of(parent: int) -> set[int]:
    """Stage processes of ``parent`` still running (multiprocessing's resource tracker,
    which lives as long as its parent, is not one)."""
    found = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and fields[0] != "Z" and b"spawn_main" in command:
            found.add(int(entry.name))
    return found


def _children() -> set[int]:
    return _stages_of(os.getpid())


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(SHAPES))
def test_run_check_matches_the_whole_model(run_placer, cluster, tmp_path, model) -> None:
    plan = _plan(run_placer, model, cluster, tmp_path)
    result = run_placer("run", MODELS / f"{model}.onnx", plan, "--microbatches", "3",
                        "--warmup", "1", "--check", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["check"]["max_scaled_difference"] <= 1e-5
    predicted, measured = report["predicted"], report["measured"]
    plan_document = json.loads(plan.read_text())
    assert [s["device"] for s in predicted["stages"]] == [
        s["device"] for s in plan_document["stages"]]
    assert [s["seconds"] for s in predicted["stages"]] == pytest.approx(
        [s["load"] for s in plan_document["stages"]])
    assert predicted["bottleneck"] == plan_document["bottleneck"]
    assert predicted["throughput"] <= plan_document["throughput"] * (1 + 1e-9)
    assert measured["throughput"] > 0
    for stage in measured["stages"]:
        assert stage["seconds"] > 0 and stage["cpu_seconds"] > 0
    assert measured["bottleneck"] in {s["device"] for s in measured["stages"]}


@pytest.mark.slow
def test_run_prints_a_table_and_takes_inputs(run_placer, cluster, tmp_path) -> None:
    plan = _plan(run_placer, "gpt2_small", cluster, tmp_path)
    inputs = tmp_path / "in.npz"
    np.savez(inputs, input_ids=np.arange(16, dtype=np.int64).reshape(1, 16))
    result = run_placer("run", MODELS / "gpt2_small.onnx", plan, "--microbatches", "2",
                        "--warmup", "0", "--inputs", inputs, "--check")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "throughput: predicted" in result.stdout and "bottleneck: predicted" in result.stdout
    assert "--check: outputs within" in result.stdout
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, input_ids=np.zeros((1, 8), np.int64))
    bad = run_placer("run", MODELS / "gpt2_small.onnx", plan, "--inputs", wrong)
    assert bad.exit_code == 2
    assert "'input_ids' has shape (1, 8), and the plan was made for (1, 16)" in one_line_error(bad)
    assert _children() == set()


def test_run_refuses_what_it_cannot_run(run_placer, cluster, tmp_path) -> None:
    model = MODELS / "mobilenet_v2.onnx"
    training = _plan(run_placer, "mobilenet_v2", cluster, tmp_path, "--mode", "training")
    result = run_placer("run", model, training)
    assert result.exit_code == 2
    assert "placer run executes inference plans only" in one_line_error(result)
    # the default cluster's plan wants A100s this machine lacks (or a CPU only)
    gpu = tmp_path / "gpu.json"
    assert run_placer("place", model, "--exclude", "cpu", "-o", gpu).exit_code == 0
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        result = run_placer("run", model, gpu)
        assert result.exit_code == 2
        assert "has no CUDAExecutionProvider" in one_line_error(result)
    not_npz = tmp_path / "x.npz"
    not_npz.write_text("hello")
    result = run_placer("run", model, training, "--inputs", not_npz)
    assert result.exit_code == 2 and "not an .npz archive" in one_line_error(result)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["crash", "hang"])
def test_a_failing_stage_ends_the_run_naming_it(run_placer, cluster, tmp_path, how) -> None:
    model = MODELS / "mobilenet_v2.onnx"
    plan = _plan(run_placer, "mobilenet_v2", cluster, tmp_path)
    options = RunOptions(microbatches=4, warmup=0, timeout=3.0,
                         crash_stage=1 if how == "crash" else -1,
                         slow_stage=1 if how == "hang" else -1)  # fmt: skip
    begun = time.monotonic()
    with pytest.raises(StageFailed) as failed:
        app.run(model, plan, app.ModelOptions(), set(), options)
    message = str(failed.value)
    assert message.startswith("stage 2 (core:1) ")
    assert ("died (signal 9)" if how == "crash" else "made no progress for 3 s") in message
    assert time.monotonic() - begun < 60
    assert _children() == set()


def _run_cli(model: Path, plan: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "placer", "run", str(model), str(plan), "--microbatches", "100000",
         "--warmup", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def _stage_pids(pid: int, count: int, within: float = 60.0) -> list[int]:
    """The stage processes of ``placer run`` ``pid`` once ``count`` of them compute."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = _stages_of(pid)
        if len(found) >= count:
            time.sleep(3.0)  # let them load their sessions and start
            return sorted(found)
        time.sleep(0.1)
    raise AssertionError("the stage processes did not start")


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


@pytest.mark.slow
def test_killed_stage_and_ctrl_c_from_outside(run_placer, cluster, tmp_path) -> None:
    """kill -9 of a stage: exit 1 with one line naming it; Ctrl-C: exit 130 within a
    second of the signal; no stage process left either way."""
    model = MODELS / "mobilenet_v2.onnx"
    plan = _plan(run_placer, "mobilenet_v2", cluster, tmp_path)

    process = _run_cli(model, plan)
    stages = _stage_pids(process.pid, 2)
    os.kill(sorted(stages)[1], signal.SIGKILL)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "died (signal 9)" in lines[0] and lines[0].startswith(
        "placer: error: stage ")
    time.sleep(0.5)
    assert _alive(stages) == []

    process = _run_cli(model, plan)
    stages = _stage_pids(process.pid, 2)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: the whole group
    sent = time.monotonic()
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert time.monotonic() - sent < 1.0  # README: within a second
    time.sleep(0.3)
    assert _alive(stages) == []


def test_run_says_when_the_stages_waited_outside_their_work() -> None:
    """A pipeline whose microbatches leave further apart than its slowest stage's
    receiving, computing and sending take (processes sharing cores, a slow coordinator)
    gets a line saying how much, and the cores it had; a run at its stages' pace none."""
    from rich.console import Console

    from placer.outputs.tables import render_run
    from placer.runtime.runner import RunReport, StageRun

    stages = (StageRun("cpu:0", 0.137, 0.001, 0.136, 0.0, 0.136),
              StageRun("cpu:1", 0.138, 0.001, 0.137, 0.0, 0.137))  # fmt: skip

    def shown(throughput: float) -> str:
        report = RunReport("m.onnx", 2, 32, 4, 14.5, 14.5, "cpu:1", throughput, stages, 3.0,
                           cores=2)  # fmt: skip
        console = Console(record=True, width=1000)
        render_run(report, console)
        assert report.to_dict()["seconds_per_microbatch"] == pytest.approx(2 / throughput)
        return console.export_text()

    slow = shown(2 / 0.159)  # a microbatch every 159 ms, against 138 ms of work
    assert "every 159 ms, 15% more than its slowest stage's 138 ms" in slow
    assert "2 cores here for 3 processes" in slow
    assert "waited outside" not in shown(2 / 0.139)
