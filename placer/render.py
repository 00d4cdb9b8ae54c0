"""Renderers of a :class:`~placer.result.PlacementResult`: rich table, JSON, YAML."""

from __future__ import annotations

import json
import math
from enum import Enum

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from placer.result import PlacementResult


class OutputFormat(str, Enum):
    """Formats of ``--format``."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"

    @classmethod
    def from_path(cls, path: str) -> OutputFormat | None:
        """The format an output file's extension asks for, or None if unknown."""
        suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
        return {"json": cls.JSON, "yaml": cls.YAML, "yml": cls.YAML, "txt": cls.TABLE}.get(suffix)


def to_json(result: PlacementResult) -> str:
    return json.dumps(result.to_dict(), indent=2) + "\n"


def to_yaml(result: PlacementResult) -> str:
    return yaml.safe_dump(result.to_dict(), sort_keys=False)


def _bytes(value: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f} B"


def _num(value: float) -> str:
    return f"{value:.6g}"


def render_table(result: PlacementResult, console: Console) -> None:
    """Print the plan: a row per device used, the bottleneck highlighted, then the
    predicted throughput and how close it is to the lower bound."""
    problem, evaluation = result.problem, result.evaluation
    unit = f" ({problem.time_unit})" if problem.time_unit else ""
    title = f"placer: {problem.name} — solver {result.solver}"
    table = Table(title=title, title_justify="left")
    table.add_column("device", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("nodes", justify="right")
    table.add_column("compute", justify="right", no_wrap=True)
    table.add_column("comm", justify="right", no_wrap=True)
    table.add_column("load", justify="right", no_wrap=True)
    table.add_column("memory", justify="right", no_wrap=True)
    table.add_column("cap", justify="right", no_wrap=True)
    bottleneck = evaluation.bottleneck
    for stage in evaluation.stages:
        device = problem.devices[stage.device]
        kind = problem.kinds[device.kind]
        cap = "∞" if math.isinf(kind.memory_bytes) else _bytes(kind.memory_bytes)
        is_bottleneck = bottleneck is not None and stage.device == bottleneck.device
        table.add_row(
            device.name + (" *" if is_bottleneck else ""),
            "cpu" if kind.device_class.value == "cpu" else "accel",
            str(len(stage.ops)),
            f"{stage.compute:.5g}",
            f"{stage.communication:.4g}",
            f"{stage.load:.5g}",
            _bytes(stage.memory_bytes),
            cap,
            style="bold red" if is_bottleneck else None,
        )
    console.print(table)
    per = f"samples per {problem.time_unit}" if problem.time_unit else "samples per time unit"
    status = "optimal" if result.optimal else "not proven optimal"
    console.print(f"stages in pipeline order; * marks the bottleneck; times in {unit[2:-1] or 'the input unit'}")
    console.print(
        f"max-load {_num(result.max_load)} ({status}); "
        f"predicted throughput {_num(result.throughput)} {per}"
    )
    console.print(
        f"lower bound {_num(result.lower_bound)}: no placement beats it; "
        f"gap at most {100 * result.gap:.1f}%"
    )
    for note in result.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    if not evaluation.valid:
        for violation in evaluation.violations:
            console.print(Text(f"invalid: {violation}", style="bold red"))
