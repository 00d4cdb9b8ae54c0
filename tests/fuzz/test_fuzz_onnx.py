"""Fuzz the ONNX loader and every command that reads a model: grammar-built graphs,
models with fields edited, and bytes mutated, of tiny graphs and the shipped models."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import (
    case_dir,
    check_case,
    child_promises,
    fails_with,
    fuzz_settings,
    run_child,
)
from tests.fuzz.models import SAMPLES, TINY_MODELS
from tests.fuzz.onnx_strategies import (
    edited_models,
    mutated_bytes,
    onnx_graphs,
    sample_base,
    tiny_base,
)


def _refused(problems: list[str]):
    """The promise for a model that breaks single assignment: refused with status 2."""
    if not problems:
        return None
    promise = fails_with(2)

    def refused(outcome):
        return [f"{line} ({problems[0]})" for line in promise(outcome)]

    return refused


def _place_then_act(
    run_placer, root: Path, model: Path, *options: str, problems: list[str] = ()
) -> None:
    """``place`` the model; when it succeeds, feed its plan to ``split``, ``report`` and
    ``evaluate``, which read the model again beside a plan. A model with ``problems``
    (:func:`ssa_problems`) must be refused."""
    placed = check_case(
        run_placer, root, "place", model, "--solver", "dp", "--format", "json", *options,
        json_stdout=True, inputs=[model], extra=_refused(list(problems)),
    )  # fmt: skip
    if placed.exit_code != 0:
        return
    plan = root / "plan.json"
    plan.write_text(placed.stdout)
    check_case(
        run_placer, root, "evaluate", model, plan, "--format", "json", *options,
        json_stdout=True, inputs=[model],
    )  # fmt: skip
    check_case(
        run_placer, root, "report", model, plan, "--markdown", root / "report.md", *options,
        outputs=["report.md"], inputs=[model],
    )  # fmt: skip
    check_case(
        run_placer, root, "split", model, plan, "-o", root / "stages",
        *[o for o in options if o != "--coarsen"],
        outputs=["stages"], inputs=[model], json_files=[],
    )  # fmt: skip


@fuzz_settings(60)
@given(model=onnx_graphs(), batch=st.sampled_from([(), ("--batch-size", "2")]))
def test_grammar_built_graphs(run_placer, tmp_path, model, batch):
    """Small graphs with odd names, attributes, types and shapes, some broken on purpose
    (a tensor made twice, a cycle, a read of nothing): ``inspect``, then ``place`` and,
    when a plan comes out, ``evaluate``, ``report`` and ``split``."""
    model, problems = model
    with case_dir(tmp_path) as root:
        path = root / "model.onnx"
        path.write_bytes(model)
        check_case(
            run_placer, root, "inspect", path, "--format", "json", *batch,
            json_stdout=True, inputs=[path], extra=_refused(problems),
        )  # fmt: skip
        _place_then_act(run_placer, root, path, *batch, problems=problems)


@fuzz_settings(40)
@given(data=st.data(), name=st.sampled_from(sorted(TINY_MODELS)))
def test_edited_tiny_models(run_placer, tmp_path, data, name):
    """The tiny models with one to three fields edited (names, op types, domains, inputs,
    outputs, attributes, dims, opsets)."""
    model, problems = data.draw(edited_models(tiny_base(name)))
    with case_dir(tmp_path) as root:
        path = root / name
        path.write_bytes(model)
        _place_then_act(run_placer, root, path, "--batch-size", "1", problems=problems)


@fuzz_settings(40)
@given(data=st.data(), name=st.sampled_from(sorted(TINY_MODELS)))
def test_mutated_tiny_models(run_placer, tmp_path, data, name):
    """The tiny models' bytes flipped, cut, inserted, repeated or zeroed."""
    model = data.draw(mutated_bytes(tiny_base(name)))
    with case_dir(tmp_path) as root:
        path = root / name
        path.write_bytes(model)
        check_case(
            run_placer, root, "inspect", path, "--format", "json", "--batch-size", "1",
            json_stdout=True, inputs=[path],
        )  # fmt: skip
        check_case(
            run_placer, root, "place", path, "--solver", "dp", "--format", "json",
            "--batch-size", "1", json_stdout=True, inputs=[path],
        )  # fmt: skip


@fuzz_settings(16)
@given(data=st.data(), name=st.sampled_from(sorted(SAMPLES)), mutate=st.booleans())
def test_shipped_models_edited_or_mutated(run_placer, tmp_path, data, name, mutate):
    """The shipped models (BERT-base, GPT-2 small, MobileNetV2) with fields edited or
    bytes mutated, through ``inspect`` (the cheapest full load)."""
    base = sample_base(name)
    if mutate:
        model, problems = data.draw(mutated_bytes(base)), []
    else:
        model, problems = data.draw(edited_models(base))
    with case_dir(tmp_path) as root:
        path = root / name
        path.write_bytes(model)
        check_case(
            run_placer, root, "inspect", path, "--format", "json", *SAMPLES[name],
            json_stdout=True, inputs=[path], extra=_refused(problems),
        )  # fmt: skip


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
@pytest.mark.parametrize("fmt", ["yaml", "table"])
def test_other_formats_of_tiny_models(run_placer, tmp_path, name, fmt):
    """``place --format yaml`` and the table of each tiny model, to stdout and to a file."""
    path = tmp_path / name
    path.write_bytes(tiny_base(name))
    check_case(run_placer, tmp_path, "place", path, "--format", fmt, "--batch-size", "1")
    suffix = {"yaml": "yaml", "table": "txt"}[fmt]
    check_case(
        run_placer, tmp_path, "place", path, "--batch-size", "1", "-o", tmp_path / f"plan.{suffix}",
        outputs=[f"plan.{suffix}"],
    )  # fmt: skip


#: Einsum equations that have hung ONNX shape inference in C++, where no alarm reaches:
#: these run in a child process that is killed when it overruns.
HANGING_EQUATIONS = ["....->"]
#: Seconds a child process may take: startup, then a load under a time budget.
CHILD_SECONDS = 15


def _einsum_model(equation: str) -> bytes:
    from onnx import TensorProto, helper

    node = helper.make_node("Einsum", ["x"], ["y"], equation=equation, name="einsum")
    graph = helper.make_graph(
        [node], "einsum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("equation", HANGING_EQUATIONS)
def test_shape_inference_that_hangs_is_bounded(tmp_path, equation):
    """An Einsum whose shape inference never ends: ``inspect`` ends anyway, in time, with
    a documented status and one line."""
    path = tmp_path / "einsum.onnx"
    path.write_bytes(_einsum_model(equation))
    child = run_child("inspect", path, "--format", "json", timeout=CHILD_SECONDS)
    broken = child_promises(child, json_stdout=True)
    assert not broken, (f"placer inspect (Einsum {equation!r})", broken)
