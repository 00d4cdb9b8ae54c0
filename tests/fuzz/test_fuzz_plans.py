"""Fuzz the plan readers: placer's own plans (JSON and YAML) and expert splits, edited
at random paths, through ``check``, ``evaluate``, ``report`` and ``split``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import Outcome, case_dir, check_case, fuzz_settings
from tests.fuzz.models import plan_for, tiny_bytes, workload_document
from tests.fuzz.strategies import plan_files


def _numbers(value: Any):
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield value
    elif isinstance(value, dict):
        for child in value.values():
            yield from _numbers(child)
    elif isinstance(value, list):
        for child in value:
            yield from _numbers(child)


def _lenient(path: Path) -> Any:
    """The plan as Python's lenient readers see it (NaN and Infinity allowed), or None."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except Exception:  # whatever the lenient readers choke on, placer must refuse too
        return None


def _passes_only_finite(plan: Path):
    """``check`` may pass a plan only when every figure in it is a finite number: a gate
    that passes ``max_load: .inf`` or ``NaN`` cannot fail."""

    def promise(outcome: Outcome) -> list[str]:
        if outcome.exit_code != 0:
            return []
        document = _lenient(plan)
        bad = [n for n in _numbers(document) if isinstance(n, float) and not math.isfinite(n)]
        return [f"check passed a plan holding {bad[0]!r}"] if bad else []

    return promise


@fuzz_settings(100)
@given(data=st.data(), model=st.sampled_from(["chain.onnx", "mlp.onnx"]))
def test_plans_of_a_model(run_placer, tmp_path, data, model):
    """A plan of a tiny ONNX model, edited, through every command that reads plans."""
    suffix, plan_bytes = data.draw(plan_files(plan_for(model)))
    with case_dir(tmp_path) as root:
        model_path, plan = root / model, root / f"plan{suffix}"
        model_path.write_bytes(tiny_bytes(model))
        plan.write_bytes(plan_bytes)
        options = ("--batch-size", "1")
        check_case(
            run_placer, root, "check", plan, "--max-load", "1", inputs=[plan],
            extra=_passes_only_finite(plan),
        )  # fmt: skip
        check_case(
            run_placer, root, "evaluate", model_path, plan, "--format", "json", *options,
            json_stdout=True, inputs=[plan],
        )  # fmt: skip
        check_case(
            run_placer, root, "report", model_path, plan, "--markdown", root / "r.md",
            "--html", root / "r.html", *options, outputs=["r.md", "r.html"], inputs=[plan],
        )  # fmt: skip
        check_case(
            run_placer, root, "split", model_path, plan, "-o", root / "stages", *options,
            outputs=["stages"], inputs=[plan],
        )  # fmt: skip


@fuzz_settings(60)
@given(data=st.data())
def test_plans_of_a_workload(run_placer, tmp_path, data):
    """A plan of a workload, edited, through ``check``, ``evaluate`` and ``report``."""
    suffix, plan_bytes = data.draw(plan_files(plan_for("workload.json")))
    with case_dir(tmp_path) as root:
        workload, plan = root / "workload.json", root / f"plan{suffix}"
        workload.write_text(json.dumps(workload_document()))
        plan.write_bytes(plan_bytes)
        check_case(
            run_placer, root, "check", plan, inputs=[plan], extra=_passes_only_finite(plan)
        )  # fmt: skip
        check_case(
            run_placer, root, "evaluate", workload, plan, "--format", "json",
            json_stdout=True, inputs=[plan],
        )  # fmt: skip
        check_case(
            run_placer, root, "report", workload, plan, "--markdown", root / "r.md",
            outputs=["r.md"], inputs=[plan],
        )  # fmt: skip
