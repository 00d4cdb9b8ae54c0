"""``placer split``: one ONNX submodel per stage that, run in order, computes what the
whole model computes."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import stat
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from placer.errors import InputError
from placer.outputs import split as split_module
from placer.outputs.split import run_split, split_model
from placer.util import fileio
from tests.conftest import ROOT, one_line_error

ort = pytest.importorskip("onnxruntime")

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


def test_a_plan_of_stages_alone_splits_as_evaluate_reads_it(run_placer, tmp_path,
                                                            squeezenet_plan) -> None:  # fmt: skip
    """A hand-written plan that gives each stage's device and nodes alone (what
    ``evaluate`` and ``report`` read) makes the submodels placer's own plan makes; its
    stages are checked field by field."""
    model, plan = squeezenet_plan
    full = run_placer("split", model, plan, "-o", tmp_path / "full")
    assert full.exit_code == 0, full.stderr
    stages = json.loads(plan.read_text())["stages"]
    plan.write_text(json.dumps({"stages": [{"device": stage["device"], "nodes": stage["nodes"]}
                                           for stage in stages]}))  # fmt: skip
    result = run_placer("split", model, plan, "-o", tmp_path / "minimal")
    assert result.exit_code == 0, result.stderr
    for stage in sorted((tmp_path / "full").glob("stage_*.onnx")):
        assert (tmp_path / "minimal" / stage.name).read_bytes() == stage.read_bytes()
    for change, message in [
        (lambda d: d["stages"][0].pop("device"), "stages[0].device must be a device name"),
        (lambda d: d["stages"][0].update(nodes="Conv_0"), "stages[0].nodes must be a list"),
        (lambda d: d.update(stages=[]), "stages is empty"),
    ]:
        (tmp_path / "bad.json").write_text(plan.read_text())
        _rewrite(tmp_path / "bad.json", change)
        bad = run_placer("split", model, tmp_path / "bad.json", "-o", tmp_path / "bad")
        assert bad.exit_code == 2 and message in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1


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


# -- split owns its output directory --------------------------------------------------


@pytest.fixture
def chain(run_placer, tmp_path):
    """A three-op model and a function writing a plan for it: ``plan({device: nodes})``."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("Neg", ["a"], ["b"], name="neg"),
        helper.make_node("Abs", ["b"], ["y"], name="abs"),
    ]
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )  # fmt: skip
    model = tmp_path / "chain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    placed = tmp_path / "placed.json"
    result = run_placer("place", model, "--solver", "single", "--format", "json", "-o", placed)
    assert result.exit_code == 0, result.stderr
    template = json.loads(placed.read_text())["stages"][0]

    def plan(stages: dict[str, list[str]]) -> Path:
        path = tmp_path / f"plan_{len(stages)}_{'_'.join(stages)}.json"
        document = json.loads(placed.read_text())
        document["stages"] = [
            {**template, "device": device, "nodes": names} for device, names in stages.items()
        ]
        path.write_text(json.dumps(document))
        return path

    return model, plan


TWO = {"one": ["relu"], "two": ["neg", "abs"]}
ONE = {"three": ["relu", "neg", "abs"]}


def _snapshot(directory: Path) -> dict[str, object]:
    """Every entry of ``directory`` with its contents, and the directory's own mode."""
    if not directory.exists():
        return {}
    entries: dict[str, object] = {".": stat.S_IMODE(directory.stat().st_mode)}
    for path in sorted(directory.rglob("*")):
        entries[str(path.relative_to(directory))] = (
            path.read_bytes() if path.is_file() else stat.S_IMODE(path.stat().st_mode)
        )
    return entries


def _temporaries(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".placer-")]


def test_the_manifest_records_its_maker_and_each_files_size_and_digest(run_placer, tmp_path, chain):
    model, plan = chain
    out = tmp_path / "out"
    assert run_placer("split", model, plan(TWO), "-o", out).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["generator"].startswith("placer ")
    for stage in manifest["stages"]:
        data = (out / stage["file"]).read_bytes()
        assert stage["file_size"] == len(data)
        assert stage["sha256"] == hashlib.sha256(data).hexdigest()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", *(s["file"] for s in manifest["stages"])]
    )


def _fail_on_call(number: int, error: BaseException):
    """A stand-in for fileio._write_all that raises ``error`` on its ``number``-th call."""
    real = fileio._write_all
    calls = []

    def write_all(fd, payload):
        calls.append(fd)
        if len(calls) == number:
            raise error
        real(fd, payload)

    return write_all


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), 2, "cannot write: no space left"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
    ids=["enospc", "ctrl-c"],
)
@pytest.mark.parametrize("earlier", [True, False], ids=["over-a-split", "new-dir"])
def test_a_split_failing_at_stage_2_leaves_the_directory_as_it_was(
    run_placer, tmp_path, chain, monkeypatch, error, status, message, earlier
) -> None:
    model, plan = chain
    out = tmp_path / "out"
    if earlier:
        assert run_placer("split", model, plan(ONE), "-o", out).exit_code == 0
        (out / "notes.txt").write_text("mine")
    before = _snapshot(out)
    monkeypatch.setattr(fileio, "_write_all", _fail_on_call(2, error))
    result = run_placer("split", model, plan(TWO), "-o", out)
    monkeypatch.undo()
    line = one_line_error(result, message, status=status)
    if status == 2:
        assert f"{out}/stage_2_two.onnx: cannot write" in line
    assert _snapshot(out) == before
    assert _temporaries(tmp_path) == []


def test_a_new_split_replaces_an_earlier_one_and_keeps_other_files(run_placer, tmp_path, chain):
    model, plan = chain
    out = tmp_path / "out"
    assert run_placer("split", model, plan(TWO), "-o", out).exit_code == 0
    out.chmod(0o750)
    (out / "notes.txt").write_text("mine")
    (out / "runs").mkdir()
    result = run_placer("split", model, plan(ONE), "-o", out)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json", "notes.txt", "runs", "stage_1_three.onnx"
    ]  # fmt: skip
    assert (out / "notes.txt").read_text() == "mine"
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    assert _temporaries(tmp_path) == []


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (
            lambda out: (
                (out / "stage_1_x.onnx").write_bytes(b"precious"),
                (out / "manifest.json").write_text(
                    json.dumps({"stages": [{"file": "stage_1_x.onnx"}]})
                ),
            ),
            ["manifest.json was not written by placer split", "new or empty directory"],
        ),
        (
            lambda out: (
                (out / "stage_1_x.onnx").write_bytes(b"precious"),
                (out / "manifest.json").write_text(json.dumps({
                    "generator": "placer 1.0",
                    "stages": [{"file": "stage_1_x.onnx", "file_size": 8, "sha256": "0" * 64}],
                })),
            ),
            ["manifest.json was not written by placer split"],
        ),
        (lambda out: (out / "photo.jpg").write_bytes(b"\xff\xd8"),
         ["is not empty and holds no earlier placer split", "new or empty directory"]),
        (lambda out: (out / "manifest.json").write_text("not json"),
         ["manifest.json was not written by placer split"]),
    ],
    ids=["foreign-manifest", "forged-digest", "other-files", "garbage-manifest"],
)  # fmt: skip
def test_a_directory_split_did_not_write_is_refused_and_left_alone(
    run_placer, tmp_path, chain, make, fragments
) -> None:
    model, plan = chain
    out = tmp_path / "out"
    out.mkdir()
    make(out)
    before = _snapshot(out)
    result = run_placer("split", model, plan(TWO), "-o", out)
    one_line_error(result, str(out), *fragments)
    assert _snapshot(out) == before
    assert _temporaries(tmp_path) == []


def test_an_earlier_split_changed_by_hand_is_refused(run_placer, tmp_path, chain) -> None:
    model, plan = chain
    out = tmp_path / "out"
    assert run_placer("split", model, plan(TWO), "-o", out).exit_code == 0
    (out / "stage_1_one.onnx").write_bytes(b"edited")
    before = _snapshot(out)
    result = run_placer("split", model, plan(ONE), "-o", out)
    one_line_error(result, "or the files it lists have changed since")
    assert _snapshot(out) == before


def test_a_file_placer_did_not_write_is_never_overwritten(run_placer, tmp_path, chain) -> None:
    model, plan = chain
    out = tmp_path / "out"
    assert run_placer("split", model, plan(ONE), "-o", out).exit_code == 0
    (out / "stage_2_two.onnx").write_bytes(b"mine")
    before = _snapshot(out)
    result = run_placer("split", model, plan(TWO), "-o", out)
    one_line_error(result, "stage_2_two.onnx is not a file of the earlier split", "move it away")
    assert _snapshot(out) == before


def test_an_empty_directory_is_used_and_keeps_its_mode(run_placer, tmp_path, chain) -> None:
    model, plan = chain
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    out.chmod(0o700)
    assert run_placer("split", model, plan(TWO), "-o", out).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert (out / "manifest.json").exists()


def test_a_new_directory_gets_the_usual_mode(run_placer, tmp_path, chain) -> None:
    model, plan = chain
    old = os.umask(0o027)
    try:
        result = run_placer("split", model, plan(TWO), "-o", tmp_path / "a" / "b")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o750


def test_a_file_as_the_output_directory_is_refused(run_placer, tmp_path, chain) -> None:
    model, plan = chain
    (tmp_path / "out").write_text("a file")
    one_line_error(run_placer("split", model, plan(TWO), "-o", tmp_path / "out"), "out")
    with pytest.raises(InputError, match="out: is not a directory"):
        split_model(model, plan(TWO), tmp_path / "out")
    assert (tmp_path / "out").read_text() == "a file"


def test_a_linked_output_directory_stays_a_link(run_placer, tmp_path, chain) -> None:
    model, plan = chain
    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to("real")
    for stages in (TWO, ONE):
        result = run_placer("split", model, plan(stages), "-o", tmp_path / "out")
        assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out").is_symlink()
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == [
        "manifest.json", "stage_1_three.onnx"
    ]  # fmt: skip


def test_the_current_directory_is_refused(run_placer, tmp_path, chain, monkeypatch) -> None:
    model, plan = chain
    out = tmp_path / "out"
    assert run_placer("split", model, plan(TWO), "-o", out).exit_code == 0
    (out / "sub").mkdir()
    before = _snapshot(out)
    monkeypatch.chdir(out / "sub")
    result = run_placer("split", model, plan(ONE), "-o", "..")
    one_line_error(result, "holds the current directory")
    assert _snapshot(out) == before


def _sigint_after_first(real):
    """``os.rename`` that sends this process a real SIGINT after its first rename."""
    calls = []

    def rename(source, destination):
        real(source, destination)
        calls.append(source)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # Python runs the handler here, mid-swap

    return rename


def test_ctrl_c_during_the_swap_waits_for_it_to_finish(run_placer, tmp_path, chain, monkeypatch):
    model, plan = chain
    out = tmp_path / "out"
    assert run_placer("split", model, plan(TWO), "-o", out).exit_code == 0
    monkeypatch.setattr(split_module.os, "rename", _sigint_after_first(os.rename))
    result = run_placer("split", model, plan(ONE), "-o", out)
    monkeypatch.undo()
    assert result.exit_code == 130, result.stderr
    # the old directory went aside, then the new one came in and the old one went
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "stage_1_three.onnx"]
    assert _temporaries(tmp_path) == []


def test_a_failed_swap_puts_the_old_directory_back(run_placer, tmp_path, chain, monkeypatch):
    model, plan = chain
    out = tmp_path / "out"
    assert run_placer("split", model, plan(TWO), "-o", out).exit_code == 0
    before = _snapshot(out)
    real = os.rename

    def rename(source, destination):
        # the old directory goes aside; bringing the new one in fails
        if Path(destination) == out and (Path(source) / "stage_1_three.onnx").exists():
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        real(source, destination)

    monkeypatch.setattr(split_module.os, "rename", rename)
    result = run_placer("split", model, plan(ONE), "-o", out)
    monkeypatch.undo()
    one_line_error(result, "cannot write the split", "invalid cross-device link")
    assert _snapshot(out) == before
    assert _temporaries(tmp_path) == []


def test_the_wrote_line_escapes_the_directory_name(run_placer, tmp_path, chain) -> None:
    model, plan = chain
    out = tmp_path / "out\x1b[31m"
    result = run_placer("split", model, plan(TWO), "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stderr
    assert "out\\x1b[31m" in result.stderr


def test_one_stage_is_one_stage(run_placer, tmp_path, chain) -> None:
    model, plan = chain
    result = run_placer("split", model, plan(ONE), "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == f"wrote 1 stage and manifest.json to {tmp_path / 'out'}"
    result = run_placer("split", model, plan(TWO), "-o", tmp_path / "out")
    assert result.stderr.strip() == f"wrote 2 stages and manifest.json to {tmp_path / 'out'}"


def test_a_split_never_replaces_the_model_it_reads(run_placer, tmp_path, chain) -> None:
    """The stage file of an earlier split, split again into its own directory, would be
    replaced or deleted with the rest of that split."""
    model, plan = chain
    out = tmp_path / "out"
    assert run_placer("split", model, plan(ONE), "-o", out).exit_code == 0
    before = _snapshot(out)
    stage = out / "stage_1_three.onnx"
    result = run_placer("split", stage, plan(TWO), "-o", out)
    one_line_error(result, f"{out}: holds the model ({stage})")
    assert _snapshot(out) == before
    with pytest.raises(InputError, match="holds the model"):
        split_model(stage, plan(TWO), out)
    assert _snapshot(out) == before


def test_a_split_into_the_directory_of_its_plan_is_refused(run_placer, tmp_path, chain) -> None:
    model, plan = chain
    out = tmp_path / "out"
    assert run_placer("split", model, plan(ONE), "-o", out).exit_code == 0
    kept = out / "plan.json"
    kept.write_bytes(plan(TWO).read_bytes())
    before = _snapshot(out)
    one_line_error(run_placer("split", model, kept, "-o", out), "holds the plan (")
    assert _snapshot(out) == before


def test_the_model_as_the_output_directory_is_refused(run_placer, tmp_path, chain) -> None:
    model, plan = chain
    before = model.read_bytes()
    one_line_error(run_placer("split", model, plan(TWO), "-o", model), "is a file")
    assert model.read_bytes() == before


def _layered_model(path: Path, layers: int = 4, width: int = 512) -> Path:
    """Layers that each read a side computation (an expanded mask) and reshape their
    activation to its own ``Shape``: what torch's exporter writes.  Wide enough that the
    mask costs under a thousandth of the model."""
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Cast", ["mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["one", "mask_f"], ["inverted"]),
        helper.make_node("Mul", ["inverted", "minus"], ["bias"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(-100.0, np.float32), "minus"),
    ]
    h = "x"
    for i in range(layers):
        weight = rng.standard_normal((width, width)).astype(np.float32) / width**0.5
        inits.append(numpy_helper.from_array(weight, f"w{i}"))
        nodes += [
            helper.make_node("MatMul", [h, f"w{i}"], [f"m{i}"], name=f"layers.{i}/MatMul"),
            helper.make_node("Shape", [f"m{i}"], [f"s{i}"], name=f"layers.{i}/Shape"),
            helper.make_node("Reshape", [f"m{i}", f"s{i}"], [f"r{i}"], name=f"layers.{i}/Reshape"),
            helper.make_node("Add", [f"r{i}", "bias"], [f"a{i}"], name=f"layers.{i}/Add"),
            helper.make_node("Tanh", [f"a{i}"], [f"h{i}"], name=f"layers.{i}/Tanh"),
        ]
        h = f"h{i}"
    graph = helper.make_graph(
        nodes, "layered",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width]),
         helper.make_tensor_value_info("mask", TensorProto.INT64, ["batch", width])],
        [helper.make_tensor_value_info(h, TensorProto.FLOAT, ["batch", width])],
        inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_split_recomputes_side_computations_and_writes_known_shapes(run_placer, tmp_path) -> None:
    model = _layered_model(tmp_path / "layered.onnx")
    plan = tmp_path / "plan.json"
    placed = run_placer("place", model, "--batch-size", "2", "--solver", "uniform", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    stages = json.loads(plan.read_text())["stages"]
    assert len(stages) >= 2
    placed_nodes = {n for stage in stages for n in stage["nodes"]}
    # the mask's nodes are recomputed by every stage, the Shapes folded: neither is placed
    assert not any("Shape" in n for n in placed_nodes)
    assert all(stage["recomputed"] for stage in stages)
    out = tmp_path / "split"
    result = run_placer("split", model, plan, "-o", out, "--batch-size", "2")
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    for stage in manifest["stages"]:
        sub = onnx.load(str(out / stage["file"]))
        ops = [node.op_type for node in sub.graph.node]
        assert "Shape" not in ops and "Constant" in ops and "Cast" in ops, ops
        # a stage receives the activation it starts from, never the mask's products
        assert not set(stage["inputs"]) & {"mask_f", "inverted", "bias"}
    rng = np.random.default_rng(2)
    feeds = {"x": rng.standard_normal((2, 512)).astype(np.float32),
             "mask": np.array([[1] * 512, [1] * 300 + [0] * 212], np.int64)}  # fmt: skip
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, feeds)
    got = run_split(out, feeds)
    np.testing.assert_allclose(got["h3"], expected, rtol=1e-5, atol=1e-6)
