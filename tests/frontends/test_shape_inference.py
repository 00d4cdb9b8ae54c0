"""Shapes placer can trust: onnxruntime's symbolic shape inference where ONNX's gives up,
a warning and a qualified optimum where both do, and one size per symbolic dim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from placer.frontends import shapes
from placer.frontends.onnx_graph import load_onnx
from placer.frontends.onnx_nodes import shape_of
from placer.frontends.shapes import symbolic_shapes
from tests.conftest import ROOT, one_line_error
from tests.frontends.test_onnx_graph import value, weight


def save(path: Path, nodes, inputs, outputs, initializers=(), domains=()) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domains]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path




def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def microsoft_model(tmp_path: Path) -> Path:
    """x (batch,16) -> com.microsoft Gelu -> MatMul by (16,64) -> y.

    ONNX does not know the com.microsoft domain, so it leaves the Gelu's output and
    everything after it unknown; onnxruntime knows Gelu keeps its input's shape.
    """
    nodes = [
        helper.make_node("Gelu", ["x"], ["h"], domain="com.microsoft"),
        helper.make_node("MatMul", ["h", "w"], ["y"]),
    ]
    return save(
        tmp_path / "ms.onnx", nodes, [value("x", ["batch", 16])], [value("y", None)],
        [weight("w", (16, 64))], domains=["com.microsoft"],
    )  # fmt: skip


def arithmetic_model(tmp_path: Path) -> Path:
    """x (batch,16) reshaped to (batch, 16/4, 4) by a shape computed with Div, then
    MatMul by (4,32).

    ONNX's data propagation does not go through Div, so the Reshape's dims stay unknown;
    onnxruntime's sympy arithmetic computes them.
    """
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "zero", "one"], ["b"]),
        helper.make_node("Slice", ["s", "one", "two"], ["f"]),
        helper.make_node("Div", ["f", "four"], ["g"]),
        helper.make_node("Concat", ["b", "g", "four"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("MatMul", ["r", "w"], ["y"]),
    ]
    inits = [weight("w", (4, 32)), ints("zero", [0]), ints("one", [1]), ints("two", [2]),
             ints("four", [4])]  # fmt: skip
    return save(tmp_path / "div.onnx", nodes, [value("x", ["batch", 16])], [value("y", None)],
                inits)  # fmt: skip


def opaque_model(tmp_path: Path) -> Path:
    """x (batch,16) -> Relu -> a custom-domain op neither inference knows -> MatMul."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Mystery", ["a"], ["h"], domain="my.ops"),
        helper.make_node("MatMul", ["h", "w"], ["y"]),
    ]
    return save(
        tmp_path / "opaque.onnx", nodes, [value("x", ["batch", 16])], [value("y", ["batch", 64])],
        [weight("w", (16, 64))], domains=["my.ops"],
    )  # fmt: skip


def flops_of(graph, op_type: str) -> float:
    return sum(node.flops for node in graph.nodes if node.op_type == op_type)


@pytest.fixture
def onnx_only(monkeypatch):
    """Turn the second pass off, to show what ONNX's inference alone would give."""
    monkeypatch.setattr(shapes, "symbolic_shapes", lambda model, wanted: ([], ""))


# -- the second pass -------------------------------------------------------------------


def test_symbolic_inference_knows_a_com_microsoft_op(tmp_path, monkeypatch):
    path = microsoft_model(tmp_path)
    graph = load_onnx(path, batch_size=2)
    assert graph.unknown_shapes == ()
    assert graph.tensor_count == 2
    assert flops_of(graph, "MatMul") == 2 * (2 * 64) * 16  # 2·out·K
    assert any("onnxruntime's symbolic shape inference found 2" in n for n in graph.notes)

    monkeypatch.setattr(shapes, "symbolic_shapes", lambda model, wanted: ([], ""))
    guessed = load_onnx(path, batch_size=2)
    assert guessed.unknown_shapes == ("h", "y")
    # the MatMul's output guessed as its largest input, the (16,64) weight
    assert flops_of(guessed, "MatMul") == 2 * (16 * 64) * 16


def test_the_second_pass_does_not_import_torch(tmp_path):
    """``onnxruntime.tools``'s ``__init__`` imports torch wherever torch is installed (2 s
    per command here); placer loads the symbolic inference module without it.  A stand-in
    ``torch`` on the path records any import of it, in a fresh interpreter."""
    fake = tmp_path / "site" / "torch"
    fake.mkdir(parents=True)
    marker = tmp_path / "torch-imported"
    (fake / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    model = microsoft_model(tmp_path)
    script = (
        "from placer.frontends.onnx_graph import load_onnx\n"
        f"graph = load_onnx({str(model)!r}, batch_size=2)\n"
        "assert graph.unknown_shapes == (), graph.unknown_shapes\n"
        "import sys; assert 'torch' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT)])}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path)
    assert not marker.exists()


def test_symbolic_inference_computes_shape_arithmetic(tmp_path, onnx_only):
    path = arithmetic_model(tmp_path)
    guessed = load_onnx(path, batch_size=2)
    assert set(guessed.unknown_shapes) == {"r", "y"}
    assert flops_of(guessed, "MatMul") != 2 * (2 * 4 * 32) * 4


def test_symbolic_inference_gives_the_reshape_its_dims(tmp_path):
    graph = load_onnx(arithmetic_model(tmp_path), batch_size=2)
    assert graph.unknown_shapes == ()
    assert graph.tensor_count == 7  # s, b, f, g, shape, r, y
    assert flops_of(graph, "MatMul") == 2 * (2 * 4 * 32) * 4  # r is (2,4,4)
    reshape = next(node for node in graph.nodes if node.op_type == "Reshape")
    assert reshape.output_bytes == 2 * 16 * 4


def test_symbolic_shapes_answers_only_for_the_tensors_asked(tmp_path):
    model = onnx.load(str(arithmetic_model(tmp_path)))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 3
    found, failure = symbolic_shapes(model, {"r"})
    assert failure == ""
    assert [(v.name, shape_of(v.type)) for v in found] == [("r", (3, 4, 4))]


def test_symbolic_inference_reads_constants_written_as_value_ints(tmp_path):
    """torch writes small constants as Constant(value_ints), which onnxruntime's
    inference cannot read: placer hands it tensors instead."""
    nodes = [
        helper.make_node("Constant", [], ["zero"], value_ints=[0]),
        helper.make_node("Constant", [], ["one"], value_ints=[1]),
        helper.make_node("Constant", [], ["four"], value_ints=[4]),
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "zero", "one"], ["b"]),
        helper.make_node("Div", ["b", "four"], ["g"]),  # batch/4 rows of 4·16
        helper.make_node("Constant", [], ["rest"], value_ints=[64]),
        helper.make_node("Concat", ["g", "rest"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("MatMul", ["r", "w"], ["y"]),
    ]
    path = save(tmp_path / "m.onnx", nodes, [value("x", ["batch", 16])], [value("y", None)],
                [weight("w", (64, 8))])  # fmt: skip
    graph = load_onnx(path, batch_size=8)
    assert graph.unknown_shapes == ()
    assert flops_of(graph, "MatMul") == 2 * (2 * 8) * 64  # r is (2, 64)


def test_symbolic_inference_splits_sequences(tmp_path, monkeypatch):
    """torch's dynamo exporter splits QKV with SplitToSequence and SequenceAt, which
    onnxruntime 1.32 infers as a Split with one output per piece."""
    nodes = [
        helper.make_node("Gelu", ["x"], ["h"], domain="com.microsoft"),  # ONNX stops here
        helper.make_node("Constant", [], ["size"], value=ints("size", 4)),
        helper.make_node("SplitToSequence", ["h", "size"], ["pieces"], axis=1),
        helper.make_node("Constant", [], ["second"], value=ints("second", 1)),
        helper.make_node("SequenceAt", ["pieces", "second"], ["k"]),
        helper.make_node("MatMul", ["k", "w"], ["y"]),
    ]
    path = save(
        tmp_path / "m.onnx", nodes, [value("x", ["batch", 12])], [value("y", None)],
        [weight("w", (4, 32))], domains=["com.microsoft"],
    )  # fmt: skip
    graph = load_onnx(path, batch_size=2)
    assert flops_of(graph, "MatMul") == 2 * (2 * 32) * 4  # k is (2, 4)
    # a sequence has no tensor shape: its size is estimated (as its input's, right)
    assert graph.unknown_shapes == ("pieces",)

    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    plain = lambda: SymbolicShapeInference(2**31 - 1, True, False, 0)  # noqa: E731
    monkeypatch.setattr(shapes, "_symbolic_engine", plain)
    assert "k" in load_onnx(path, batch_size=2).unknown_shapes


def test_symbolic_inference_does_without_external_weights(tmp_path):
    """onnxruntime reads the values of a Mul's weight: placer hands it the weight's
    shape only, so a model whose weight file is absent loads as well."""
    nodes = [
        helper.make_node("Gelu", ["x"], ["h"], domain="com.microsoft"),
        helper.make_node("Mul", ["h", "scale"], ["m"]),
        helper.make_node("MatMul", ["m", "w"], ["y"]),
    ]
    path = save(
        tmp_path / "m.onnx", nodes, [value("x", ["batch", 16])], [value("y", None)],
        [weight("scale", (16,)), weight("w", (16, 64))], domains=["com.microsoft"],
    )  # fmt: skip
    model = onnx.load(str(path))
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.data", size_threshold=0)  # fmt: skip
    (tmp_path / "m.data").unlink()
    graph = load_onnx(path, batch_size=2)
    assert graph.unknown_shapes == ()
    assert flops_of(graph, "MatMul") == 2 * (2 * 64) * 16


def test_onnx_shapes_are_kept_where_onnx_knows_them(tmp_path, monkeypatch):
    asked = []

    def fake(model, wanted):
        asked.append(set(wanted))
        # sizes the ops can run with (placer refuses those they cannot: test_size_checks)
        found = {"r": [2, 4, 4], "y": [2, 4, 32]}
        return [value(name, found[name]) for name in sorted(wanted)], ""

    monkeypatch.setattr(shapes, "symbolic_shapes", fake)
    graph = load_onnx(arithmetic_model(tmp_path), batch_size=2)
    assert asked == [{"r", "y"}]  # not s, b, f, g, shape: ONNX knew those
    # x's shape is known, so the shape arithmetic on it is folded (a constant, not an op)
    assert [node.op_type for node in graph.nodes] == ["Reshape", "MatMul"]
    matmul = graph.nodes[1]
    # where ONNX knew nothing, the second pass (an estimate would be the weight's 4x32)
    assert matmul.output_bytes == 2 * 4 * 32 * 4


def test_both_passes_failing_leaves_the_shapes_estimated(tmp_path):
    graph = load_onnx(opaque_model(tmp_path), batch_size=2)
    assert graph.unknown_shapes == ("h", "y")
    assert graph.tensor_count == 3


def test_the_second_pass_runs_only_when_shapes_are_missing(tmp_path, monkeypatch):
    def refuse(model, wanted):
        raise AssertionError("symbolic_shapes ran")

    monkeypatch.setattr(shapes, "symbolic_shapes", refuse)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    path = save(tmp_path / "m.onnx", nodes, [value("x", ["n", 16])], [value("y", None)],
                [weight("w", (16, 8))])  # fmt: skip
    assert load_onnx(path, batch_size=2).unknown_shapes == ()


def test_a_failing_second_pass_prints_nothing_and_keeps_its_partial_shapes(
    tmp_path, monkeypatch, capfd
):
    from onnxruntime.tools import symbolic_shape_infer

    real = symbolic_shape_infer.SymbolicShapeInference._infer_impl

    def noisy(self, *args, **kwargs):
        import logging
        import os

        real(self, *args, **kwargs)
        print("to stdout")
        sys.stderr.write("to stderr\n")
        os.write(1, b"to fd 1\n")
        os.write(2, b"to fd 2\n")
        logging.getLogger("onnxruntime").warning("a logged warning")
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(symbolic_shape_infer.SymbolicShapeInference, "_infer_impl", noisy)
    capfd.readouterr()
    graph = load_onnx(microsoft_model(tmp_path), batch_size=2)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert graph.unknown_shapes == ()  # found before it raised
    assert flops_of(graph, "MatMul") == 2 * (2 * 64) * 16
    assert "onnxruntime's symbolic shape inference failed: boom" in graph.notes


def test_a_second_pass_that_hangs_is_stopped(tmp_path, monkeypatch):
    from onnxruntime.tools import symbolic_shape_infer

    def hang(self, *args, **kwargs):
        time.sleep(60)

    monkeypatch.setattr(symbolic_shape_infer.SymbolicShapeInference, "_infer_impl", hang)
    monkeypatch.setattr(shapes, "SYMBOLIC_INFERENCE_SECONDS", 1.0)
    start = time.monotonic()
    graph = load_onnx(microsoft_model(tmp_path), batch_size=2)
    assert time.monotonic() - start < 30
    assert graph.unknown_shapes == ("h", "y")
    assert any("did not finish within 1 s" in note for note in graph.notes)


def test_help_and_loading_do_not_import_onnxruntime(tmp_path):
    path = microsoft_model(tmp_path)
    script = f"""
import sys
from placer.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
assert "onnxruntime" not in sys.modules, "placer --help imported onnxruntime"
from placer.frontends.onnx_graph import load_onnx
graph = load_onnx({str(path)!r}, batch_size=2)
assert graph.unknown_shapes == (), graph.unknown_shapes
assert "onnxruntime" not in sys.modules, "loading imported onnxruntime"
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")


# -- the warning and the qualified optimum ---------------------------------------------


def shape_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "tensor shapes unknown" in line]


def test_place_says_its_optimum_rests_on_estimated_shapes(run_placer, tmp_path):
    path = opaque_model(tmp_path)
    table = run_placer("place", path, "--batch-size", "2")
    assert table.exit_code == 0, table.stderr
    assert "(optimal for estimated shapes)" in table.stdout
    assert "(optimal)" not in table.stdout
    assert shape_warnings(table.stderr) == [
        "placer: warning: 2 of 3 tensor shapes unknown after shape inference; their sizes "
        "are estimated (see placer inspect)"
    ]

    plan = tmp_path / "plan.json"
    written = run_placer("place", path, "--batch-size", "2", "-o", plan)
    assert written.exit_code == 0, written.stderr
    document = json.loads(plan.read_text())
    assert document["optimal"] is True and document["shapes_estimated"] == 2
    assert len(shape_warnings(written.stderr)) == 1

    evaluated = run_placer("evaluate", path, plan, "--format", "json")
    assert evaluated.exit_code == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["shapes_estimated"] == 2
    assert len(shape_warnings(evaluated.stderr)) == 1

    checked = run_placer("check", plan)
    assert checked.exit_code == 0, checked.stderr
    assert checked.stderr.strip().splitlines() == [
        f"placer: warning: {plan} was costed with 2 tensor shapes unknown after shape "
        "inference; their sizes were estimated"
    ]

    report = run_placer("report", path, plan, "--markdown", tmp_path / "r.md")
    assert report.exit_code == 0, report.stderr
    assert len(shape_warnings(report.stderr)) == 1

    compared = run_placer("compare", path, "--batch-size", "2", "--format", "json")
    assert compared.exit_code == 0, compared.stderr
    assert len(shape_warnings(compared.stderr)) == 1

    split = run_placer("split", path, plan, "-o", tmp_path / "stages")
    assert split.exit_code == 0, split.stderr
    assert len(shape_warnings(split.stderr)) == 1


def test_inspect_counts_the_estimated_shapes(run_placer, tmp_path):
    path = opaque_model(tmp_path)
    table = run_placer("inspect", path, "--batch-size", "2")
    assert table.exit_code == 0, table.stderr
    assert "shapes estimated for 2 of 3 tensors: h, y" in table.stdout
    assert len(shape_warnings(table.stderr)) == 1
    data = json.loads(run_placer("inspect", path, "--format", "json").stdout)
    assert data["unknown_shapes"] == ["h", "y"] and data["tensor_count"] == 3


def test_known_shapes_leave_the_optimum_plain_and_warn_of_nothing(run_placer, tmp_path):
    path = microsoft_model(tmp_path)
    result = run_placer("place", path, "--batch-size", "2", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["shapes_estimated"] == 0
    assert shape_warnings(result.stderr) == []
    table = run_placer("place", path, "--batch-size", "2")
    assert "(optimal)" in table.stdout


# -- one size per symbolic dim ---------------------------------------------------------


def two_input_model(tmp_path: Path) -> Path:
    """input_ids and attention_mask, both (batch, sequence), added after a Cast."""
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["ids", "attention_mask"], ["y"]),
    ]
    inputs = [value("input_ids", ["batch", "sequence"], TensorProto.INT64),
              value("attention_mask", ["batch", "sequence"])]  # fmt: skip
    return save(tmp_path / "model.onnx", nodes, inputs, [value("y", None)])


def test_two_sizes_for_one_dim_are_refused_naming_both_inputs(run_placer, tmp_path):
    path = two_input_model(tmp_path)
    for command in ("inspect", "place"):
        result = run_placer(
            command, path, "--input-shape", "input_ids=8,128",
            "--input-shape", "attention_mask=8,64",
        )  # fmt: skip
        line = one_line_error(
            result, str(path), "--input-shape gives dim 'sequence' two sizes",
            "128 (input_ids axis 1)", "64 (attention_mask axis 1)",
        )  # fmt: skip
        assert result.stdout == ""
        assert line.count("\n") == 0


def test_a_batch_size_contradicting_an_input_shape_is_refused(run_placer, tmp_path):
    path = two_input_model(tmp_path)
    result = run_placer("inspect", path, "--batch-size", "4", "--input-shape",
                        "attention_mask=8,64")  # fmt: skip
    one_line_error(result, "--batch-size 4", "attention_mask=8,64")


def fixed_batch_model(tmp_path: Path, batch: int) -> Path:
    """x fixed at (batch, 4), doubled: the onnx package's test models fix their batch."""
    nodes = [helper.make_node("Add", ["x", "x"], ["y"])]
    return save(tmp_path / f"fixed{batch}.onnx", nodes, [value("x", [batch, 4])],
                [value("y", None)])  # fmt: skip


def test_a_batch_size_a_fixed_batch_leaves_no_room_for_is_refused(run_placer, tmp_path):
    """Costs stay those of the fixed batch: counting 64 samples a step would overstate
    the throughput 64 times."""
    path = fixed_batch_model(tmp_path, 1)
    for command in (["inspect"], ["place"], ["profile", "-o", str(tmp_path / "c.csv")]):
        result = run_placer(*command, path, "--batch-size", "64")
        one_line_error(result, str(path), "--batch-size 64 changes nothing",
                       "input x has a fixed batch of 1 (1,4)", "--input-shape x=64,4")  # fmt: skip
        assert result.stdout == ""
    # the batch it fixes, or a shape given in full, are what they say
    assert run_placer("place", path, "--batch-size", "1").exit_code == 0
    given = run_placer("place", path, "--input-shape", "x=64,4", "--format", "json")
    assert given.exit_code == 0, given.stderr
    assert json.loads(given.stdout)["samples_per_step"] == 64


def test_a_model_that_fixes_its_batch_steps_that_many_samples(run_placer, tmp_path):
    path = fixed_batch_model(tmp_path, 8)
    result = run_placer("place", path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["samples_per_step"] == 8
    assert plan["throughput"] == pytest.approx(8 / plan["max_load"])
    # --batch-size 1, given, is no default to keep quiet about: it would count one
    # sample a step of the eight the costs are for
    one = run_placer("place", path, "--batch-size", "1")
    one_line_error(one, str(path), "--batch-size 1 changes nothing",
                   "input x has a fixed batch of 8 (8,4)", "--input-shape x=1,4")  # fmt: skip
    assert run_placer("place", path, "--batch-size", "8").exit_code == 0


def test_a_batch_size_for_a_model_of_scalar_inputs_is_refused(run_placer, tmp_path):
    """No input has an axis for the batch: its costs are one sample's whatever is given."""
    nodes = [helper.make_node("Add", ["x", "x"], ["y"])]
    path = save(tmp_path / "scalar.onnx", nodes, [value("x", [])], [value("y", None)])
    result = run_placer("place", path, "--batch-size", "7")
    one_line_error(result, str(path), "--batch-size 7 changes nothing", "scalars")
    assert result.stdout == ""
    for given in ([], ["--batch-size", "1"]):
        plan = run_placer("place", path, *given, "--format", "json")
        assert plan.exit_code == 0, plan.stderr
        assert json.loads(plan.stdout)["samples_per_step"] == 1


def test_the_batch_symbol_given_another_size_elsewhere_is_refused(run_placer, tmp_path):
    """pair's second axis is the batch symbol x's first axis takes from --batch-size."""
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["pair"], ["z"])]
    inputs = [value("x", ["batch", 16]), value("pair", ["n", "batch"])]
    path = save(tmp_path / "model.onnx", nodes, inputs, [value("y", None), value("z", None)])
    result = run_placer("inspect", path, "--batch-size", "4", "--input-shape", "pair=4,8")
    one_line_error(
        result, str(path), "dim 'batch'", "8 from --input-shape (pair axis 1)",
        "the batch size 4 (x axis 0)", "--batch-size 8",
    )  # fmt: skip
    agreed = run_placer("inspect", path, "--batch-size", "8", "--input-shape", "pair=8,8")
    assert agreed.exit_code == 0, agreed.stderr


def test_one_size_per_dim_loads(tmp_path):
    path = two_input_model(tmp_path)
    graph = load_onnx(path, input_shapes={"input_ids": (8, 128), "attention_mask": (8, 128)})
    assert graph.input_bytes == 8 * 128 * (8 + 4)
    # an input left out takes the symbols the others give
    graph = load_onnx(path, input_shapes={"input_ids": (8, 128)})
    assert graph.input_bytes == 8 * 128 * (8 + 4)


def _gated_residual(tmp_path: Path) -> Path:
    """x (B, S, 512) -> MatMul by a 512x512 weight -> + x -> * gate (B, S, 1)."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
             helper.make_node("Add", ["m", "x"], ["a"], name="add"),
             helper.make_node("Mul", ["a", "gate"], ["y"], name="gate_it")]  # fmt: skip
    inputs = [value("x", ["B", "S", 512]), value("gate", ["B", "S", 1])]
    return save(tmp_path / "gated.onnx", nodes, inputs, [value("y", ["B", "S", 512])],
                [weight("w", (512, 512))])  # fmt: skip


@pytest.mark.parametrize(("shapes", "named"), [
    (("x=2,16,256",), "x axis 2 the size 256, where the model fixes 512"),
    (("x=2,16,512", "gate=2,16,2"), "gate axis 2 the size 2, where the model fixes 1"),
    # and the first op whose output shape inference lost, where onnxruntime fails too
    (("x=2,16,256",), "tensor shapes unknown, from MatMul node 'mm' on"),
])  # fmt: skip
def test_a_size_that_contradicts_a_fixed_dim_is_refused(run_placer, tmp_path, shapes, named):
    """A 256-wide input to a 512-by-512 weight leaves every shape to guess: refused,
    naming the input, the axis and both sizes, where it used to be placed on guesses."""
    path = _gated_residual(tmp_path)
    flags = [flag for shape in shapes for flag in ("--input-shape", shape)]
    for command in ("place", "inspect"):
        one_line_error(run_placer(command, path, *flags), named, "pass --input-shape")
    assert not load_onnx(path, input_shapes={"x": (2, 16, 512)}).unknown_shapes


def test_another_size_for_a_fixed_dim_that_shapes_follow_stands(tmp_path):
    """MobileNetV2 exported at 224 pixels, costed at 320: every shape follows."""
    path = ROOT / "sample_models" / "mobilenet_v2.onnx"
    graph = load_onnx(path, input_shapes={"input": (1, 3, 320, 320)})
    small = load_onnx(path, input_shapes={"input": (1, 3, 224, 224)})
    assert not graph.unknown_shapes
    assert graph.total_flops == pytest.approx(small.total_flops * (320 / 224) ** 2, rel=0.05)
