"""Renderers of a :class:`~placer.result.PlacementResult`: rich table, JSON, YAML."""

from __future__ import annotations

import json
import math
from enum import Enum
from pathlib import PurePath
from typing import Any

import numpy as np
import yaml
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from placer.result import PlacementResult
from placer.units import format_bytes


class OutputFormat(str, Enum):
    """Formats of ``--format``."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"

    @classmethod
    def from_path(cls, path: str) -> OutputFormat | None:
        """The format an output file's extension asks for, or None if unknown."""
        suffix = PurePath(path).suffix.lower()
        return {".json": cls.JSON, ".yaml": cls.YAML, ".yml": cls.YAML, ".txt": cls.TABLE}.get(
            suffix
        )


def plain(value: Any) -> Any:
    """``value`` as data every JSON and YAML reader takes.

    numpy scalars become Python numbers (``yaml.safe_dump`` cannot represent them),
    tuples become lists, and a float that is not finite becomes None (``null``):
    ``Infinity`` and ``NaN`` are not JSON, and placer's documents write an unbounded
    figure as null.

    Examples
    --------
    >>> import numpy as np
    >>> plain({"a": (np.float64(1.5), float("inf")), "b": np.int64(2)})
    {'a': [1.5, None], 'b': 2}
    """
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dump_json(data: Any) -> str:
    """Strict JSON (no ``Infinity``, no ``NaN``: :func:`plain`), indented, one newline."""
    return json.dumps(plain(data), indent=2, allow_nan=False) + "\n"


def dump_yaml(data: Any) -> str:
    """YAML of the same plain data as :func:`dump_json`."""
    return yaml.safe_dump(plain(data), sort_keys=False)


def to_json(result: PlacementResult) -> str:
    return dump_json(result.to_dict())


def to_yaml(result: PlacementResult) -> str:
    return dump_yaml(result.to_dict())


def _num(value: float) -> str:
    return f"{value:.6g}"


def _time_scale(unit: str) -> tuple[float, str]:
    """Seconds read best as milliseconds; other units stay as they are."""
    return (1e3, "ms") if unit == "s" else (1.0, unit)


def render_table(result: PlacementResult, console: Console) -> None:
    """Print the plan: a row per device used, the bottleneck highlighted, then the
    predicted throughput and how close it is to the lower bound."""
    problem, evaluation = result.problem, result.evaluation
    scale, unit = _time_scale(problem.time_unit)
    title = f"placer: {problem.name} — solver {result.solver}"
    table = Table(title=title, title_justify="left")
    table.add_column("device", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("ops", justify="right", no_wrap=True)
    for label in ("compute", "comm", "load"):
        table.add_column(label, justify="right", no_wrap=True)
    table.add_column("memory", justify="right", no_wrap=True)
    table.add_column("cap", justify="right", no_wrap=True)
    bottleneck = evaluation.bottleneck
    for stage in evaluation.stages:
        device = problem.devices[stage.device]
        kind = problem.kinds[device.kind]
        cap = "∞" if math.isinf(kind.memory_bytes) else format_bytes(kind.memory_bytes)
        is_bottleneck = bottleneck is not None and stage.device == bottleneck.device
        table.add_row(
            device.name + (" *" if is_bottleneck else ""),
            "cpu" if kind.device_class.value == "cpu" else "accel",
            str(len(stage.ops)),
            f"{stage.compute * scale:.4g}",
            f"{stage.communication * scale:.4g}",
            f"{stage.load * scale:.4g}",
            format_bytes(stage.memory_bytes),
            cap,
            style="bold red" if is_bottleneck else None,
        )
    console.print(table)
    per = f"samples/{problem.time_unit}" if problem.time_unit else "samples per time unit"
    status = "optimal" if result.optimal else "not proven optimal"
    where = f"times in {unit}" if unit else "times in the input's unit"
    console.print(f"stages in pipeline order; * marks the bottleneck; {where}")
    unit = f" {unit}" if unit else ""
    console.print(
        f"max-load {_num(result.max_load * scale)}{unit} ({status}); "
        f"predicted throughput {_num(result.throughput)} {per}"
    )
    scope = "contiguous placement" if result.contiguous_bound else "placement"
    console.print(
        f"lower bound {_num(result.lower_bound * scale)}{unit}: no {scope} beats it; "
        f"gap at most {100 * result.gap:.2f}%"
    )
    for note in result.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    if not evaluation.valid:
        for violation in evaluation.violations:
            console.print(Text(f"invalid: {violation}", style="bold red"))


def _count(value: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g}"


def render_summary(summary, console: Console) -> None:
    """Print ``placer inspect``'s figures of a model (a :class:`ModelSummary`)."""
    head = Table(title=f"placer inspect: {summary.name}", title_justify="left", show_header=False)
    head.add_column("figure")
    head.add_column("value", justify="right")
    head.add_row("nodes / edges", f"{summary.nodes} / {summary.edges}")
    head.add_row("parameters", f"{_count(summary.params)} ({format_bytes(summary.param_bytes)})")
    head.add_row("forward FLOPs", _count(summary.flops))
    head.add_row("activation memory", format_bytes(summary.activation_bytes))
    head.add_row("input size", format_bytes(summary.input_bytes))
    console.print(head)
    ops = Table(title="op types", title_justify="left")
    ops.add_column("op type")
    ops.add_column("count", justify="right")
    for op_type, count in summary.op_histogram:
        ops.add_row(op_type, str(count))
    console.print(ops)
    dear = Table(title="dearest ops", title_justify="left")
    dear.add_column("node")
    dear.add_column("op type")
    dear.add_column("FLOPs", justify="right")
    dear.add_column("params", justify="right")
    for op in summary.dearest:
        dear.add_row(op.name, op.op_type, _count(op.flops), _count(op.param_count))
    console.print(dear)
    if summary.unknown_ops:
        console.print(Text("no FLOP formula (bytes only): " + ", ".join(summary.unknown_ops),
                           style="yellow"))
    if summary.unknown_shapes:
        console.print(Text("shapes estimated for: " + ", ".join(summary.unknown_shapes),
                           style="yellow"))
    for note in summary.notes:
        console.print(Text(f"note: {note}", style="yellow"))


def render_comparison(comparison, console: Console) -> None:
    """Print ``placer compare``'s rows (a :class:`~placer.compare.Comparison`), the
    best plan highlighted and failed solvers with their reason."""
    scale, unit = _time_scale(comparison.time_unit)
    best = comparison.best
    table = Table(
        title=f"placer compare: {comparison.problem}", title_justify="left", box=box.SIMPLE_HEAD
    )
    table.add_column("solver", no_wrap=True)
    table.add_column(f"max-load{f' ({unit})' if unit else ''}", justify="right", no_wrap=True)
    table.add_column("throughput", justify="right", no_wrap=True)
    table.add_column("vs single", justify="right", no_wrap=True)
    table.add_column("memory", justify="right", no_wrap=True)
    table.add_column("optimal", justify="center", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    for row in comparison.rows:
        if row.error is not None:
            table.add_row(row.solver, "—", "—", "—", "—", "—", f"{row.seconds:.2g}", style="dim")
            continue
        is_best = best is not None and row is best
        table.add_row(
            row.solver + (" *" if is_best else ""),
            f"{row.max_load * scale:.6g}",
            "∞" if row.throughput is None else f"{row.throughput:.4g}",
            "—" if row.speedup_vs_single is None else f"{row.speedup_vs_single:.2f}×",
            format_bytes(row.peak_memory_bytes),
            "yes" if row.optimal else "no",
            f"{row.seconds:.2g}",
            style="bold green" if is_best else (None if row.valid else "red"),
        )
    console.print(table)
    per = f"samples/{comparison.time_unit}" if comparison.time_unit else "samples per time unit"
    console.print(
        f"* marks the least max-load; throughput in {per}; vs single: speed-up over "
        "everything on the best single device; memory: the fullest device's; time: solve seconds"
    )
    for row in comparison.rows:
        if row.error is not None:
            console.print(Text(f"{row.solver}: {row.error}", style="yellow"))
