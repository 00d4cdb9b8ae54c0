"""Renderers of a :class:`~placer.outputs.result.PlacementResult`: rich table, JSON, YAML.

Names in the tables (model, node, device, solver) come from users' files and options:
each goes through :func:`~placer.util.text.markup_safe`, or :func:`~placer.util.text.printable`
where it is no markup, so that ``[/]`` or an escape sequence in a name shows as text.
Cells fold instead of being cut short, and :func:`output_console` gives a pipe, a file
or a CI log room for the widest table: a figure is never shown as ``1e+…``.
"""

from __future__ import annotations

import json
import math
import sys
from enum import Enum
from pathlib import PurePath
from typing import IO, Any

import numpy as np
import yaml
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from placer.outputs.explain import explanations, time_scale
from placer.outputs.result import PlacementResult
from placer.util.text import markup_safe, printable
from placer.util.units import format_bytes

#: Width of a console that is not a terminal: more than any table needs, so that
#: nothing is wrapped or cut where no reader can widen the window.
UNBOUNDED_WIDTH = 100_000


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


def output_console(
    file: IO[str] | None = None, *, stderr: bool = False, record: bool = False
) -> Console:
    """A console for placer's tables on ``file`` (default: stdout, or stderr).

    On a terminal, rich's own (the terminal's width). Anywhere else, a pipe, a file or
    a CI log, the console is :data:`UNBOUNDED_WIDTH` wide, so that every table takes the
    width it needs: rich would otherwise assume 80 columns and cut figures short. A
    stream that is no terminal counts as none even where ``FORCE_COLOR`` makes rich
    colour it.

    Examples
    --------
    >>> import io
    >>> output_console(io.StringIO()).width
    100000
    """
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        terminal = False
    width = None if terminal else UNBOUNDED_WIDTH
    return _Console(file=file, stderr=stderr, record=record, width=width)


class _Console(Console):
    """rich's console, but a reader that went away (``placer ... | head``) raises
    BrokenPipeError, which the command line ends quietly, instead of rich's exit 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def _title(console: Console, title: str) -> None:
    """A table's title on a line of its own: rich would fold a title longer than the
    table to the table's width, cutting a long model name in pieces."""
    console.print(Text(title, style="table.title"))


def _column(table: Table, header: str, justify: str = "left") -> None:
    """A column whose cells fold onto another line instead of being cut with '…' when
    the terminal is too narrow."""
    table.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]


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


def _fig(value: float) -> str:
    """Four significant digits, trailing zeros kept, so that a load of 1.9997 reads
    2.000 among its column's 1.348 and 20.59, not as a whole 2.

    >>> _fig(1.9997), _fig(20.59), _fig(0.0), _fig(1234.56)
    ('2.000', '20.59', '0.000', '1235')
    """
    text = f"{value:#.4g}"
    return text if "e" in text else text.rstrip(".")




def _searched(result: PlacementResult) -> str:
    """What the solver searched: ops placed, side computations recomputed, weights
    several ops share, and the blocks and ideals left after the exact contractions (""
    when it did not say)."""
    stats = result.stats or {}
    parts = [f"{len(result.problem.ops):,} ops"]
    replicas = result.problem.replicas
    side = sum(not replica.weight for replica in replicas)
    if side:
        parts.append(f"{side:,} side computation{'s' * (side != 1)} recomputed per stage")
    if shared := len(replicas) - side:
        parts.append(f"{shared:,} shared weight{'s' * (shared != 1)} held by each stage "
                     "reading them")  # fmt: skip
    if "blocks" in stats:
        parts.append(f"{int(stats['blocks']):,} blocks")
    if "ideals" in stats:
        parts.append(f"{int(stats['ideals']):,} ideals")
    return "searched: " + ", ".join(parts) if len(parts) > 1 else ""


def _status(result: PlacementResult) -> str:
    """What the max-load is: optimal, not proven so, or a plan evaluated as given."""
    status = "optimal" if result.optimal else "not proven optimal"
    if result.solver == "plan":
        status = "as evaluated; no search"  # placer evaluate proves nothing of the plan
    if result.problem.shapes_estimated:  # optimal for costs that rest on guessed shapes
        status += " for estimated shapes" if result.optimal else "; shapes estimated"
    return status


def result_line(result: PlacementResult) -> str:
    """The plan's figures in one line, for a terminal where the plan went to a file:
    its max-load and status (with the gap where not proven optimal) and throughput.

    >>> from placer.problem import DeviceClass, DeviceKind, Op, Placement, Problem
    >>> from placer.outputs.result import from_plan
    >>> op = Op(key=0, name="a", latency=(0.002,), supported=(True,), size_bytes=0.0,
    ...         transfer_cost=0.0, color=0)
    >>> problem = Problem(name="p", ops=(op,), edges=(), time_unit="s", samples_per_step=8,
    ...     kinds=(DeviceKind("gpu", DeviceClass.ACCELERATOR, 1, 1e9, True),))
    >>> result_line(from_plan(problem, Placement((0,)), 0.001))
    'max-load 2 ms (as evaluated; no search), predicted throughput 4000 samples/s'
    """
    problem = result.problem
    scale, unit = time_scale(problem.time_unit)
    unit = f" {unit}" if unit else ""
    status = _status(result)
    if not result.optimal and result.solver != "plan" and result.lower_bound > 0:
        status += f", within {100 * result.gap:.2f}%"
    per = f"samples/{problem.time_unit}" if problem.time_unit else "samples per time unit"
    return (f"max-load {_num(result.max_load * scale)}{unit} ({status}), "
            f"predicted throughput {_num(result.throughput)} {per}")  # fmt: skip


def render_table(result: PlacementResult, console: Console) -> None:
    """Print the plan: a row per device used, the bottleneck highlighted, then the
    predicted throughput and how close it is to the lower bound."""
    problem, evaluation = result.problem, result.evaluation
    scale, unit = time_scale(problem.time_unit)
    _title(console, f"placer: {printable(problem.name)} — solver {printable(result.solver)}")
    console.print(_stage_table(result, scale))
    time_unit = markup_safe(problem.time_unit)
    per = f"samples/{time_unit}" if time_unit else "samples per time unit"
    status = _status(result)
    unit = markup_safe(unit)
    where = f"times in {unit}" if unit else "times in the input's unit"
    console.print(f"stages in pipeline order; * marks the bottleneck; {where}")
    unit = f" {unit}" if unit else ""
    console.print(
        f"max-load {_num(result.max_load * scale)}{unit} ({status}); "
        f"predicted throughput {_num(result.throughput)} {per}"
    )
    scope = "contiguous placement" if result.contiguous_bound else "placement"
    if result.solver == "plan" and not result.contiguous_bound:
        scope = "placement, contiguous or not,"
    console.print(
        f"lower bound {_num(result.lower_bound * scale)}{unit}: no {scope} beats it; "
        f"gap at most {100 * result.gap:.2f}%"
    )
    if searched := _searched(result):
        console.print(searched)
    for line in _simulation_lines(result, scale, unit, per):
        console.print(line)
    for line in explanations(result):
        console.print(Text(printable(line)))
    for note in result.notes:
        console.print(Text(f"note: {printable(note)}", style="yellow"))
    if not evaluation.valid:
        for violation in evaluation.violations:
            console.print(Text(f"invalid: {printable(violation)}", style="bold red"))


def _stage_table(result: PlacementResult, scale: float) -> Table:
    """The plan's table: a row per device used in pipeline order, the bottleneck
    marked, with its layers when the model names them."""
    problem, evaluation = result.problem, result.evaluation
    table = Table()
    _column(table, "device")
    _column(table, "kind")
    _column(table, "ops", "right")
    for label in ("compute", "comm", "load"):
        _column(table, label, "right")
    _column(table, "memory", "right")
    _column(table, "cap", "right")
    layers = result.stage_layers
    if layers is not None and not any(text for _, text in layers):
        layers = None  # scopes, but none in a layer: nothing to show
    if layers is not None:
        _column(table, "layers")
    bottleneck = evaluation.bottleneck
    for position, stage in enumerate(evaluation.stages):
        device = problem.devices[stage.device]
        kind = problem.kinds[device.kind]
        whole = problem.capacity(device.kind)
        cap = "∞" if math.isinf(whole) else format_bytes(whole)
        is_bottleneck = bottleneck is not None and stage.device == bottleneck.device
        table.add_row(
            markup_safe(device.name) + (" *" if is_bottleneck else ""),
            "cpu" if kind.device_class.value == "cpu" else "accel",
            str(len(stage.ops)),
            _fig(stage.compute * scale),
            _fig(stage.communication * scale),
            _fig(stage.load * scale),
            format_bytes(stage.memory_bytes),
            cap,
            *([markup_safe(layers[position][1])] if layers is not None else []),
            style="bold red" if is_bottleneck else None,
        )
    return table


def _simulation_lines(result: PlacementResult, scale: float, unit: str, per: str) -> list[str]:
    """What the simulated run of ``--microbatches N`` adds (``unit`` with its space)."""
    sim = result.simulation
    if sim is None:
        return []
    lines = [
        f"simulated {sim.microbatches} microbatches ({sim.schedule.value}): makespan "
        f"{_num(sim.makespan * scale)}{unit}, {_num(sim.throughput)} {per}, "
        f"bubbles {100 * sim.bubble_fraction:.1f}% of stage time; steady state "
        f"{_num(sim.steady_throughput)} {per}"
    ]
    slower = 1 + 1e-9
    if sim.period > result.max_load * slower:
        busiest = max(sim.links, key=lambda link: link.per_microbatch, default=None)
        if busiest is not None and busiest.per_microbatch > result.max_load * slower:
            why = (f"link {markup_safe(busiest.name)} is busy "
                   f"{_num(busiest.per_microbatch * scale)}{unit} per microbatch")  # fmt: skip
        else:
            why = f"{sim.schedule.value} leaves stages idle even with the pipeline full"
        lines.append(f"the steady state is slower than the max-load's: {why}")
    return lines


def _count(value: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g}"


def render_summary(summary, console: Console) -> None:
    """Print ``placer inspect``'s figures of a model (a :class:`ModelSummary`)."""
    _title(console, f"placer inspect: {printable(summary.name)}")
    head = Table(show_header=False)
    _column(head, "figure")
    _column(head, "value", "right")
    head.add_row("nodes / edges", f"{summary.nodes} / {summary.edges}")
    head.add_row("parameters", f"{_count(summary.params)} ({format_bytes(summary.param_bytes)})")
    head.add_row("forward FLOPs", _count(summary.flops))
    head.add_row("activations (all / live at once)",
                 f"{format_bytes(summary.activation_bytes)} / "
                 f"{format_bytes(summary.peak_activation_bytes)}")  # fmt: skip
    head.add_row("input size", format_bytes(summary.input_bytes))
    console.print(head)
    _title(console, "op types")
    ops = Table()
    _column(ops, "op type")
    _column(ops, "count", "right")
    for op_type, count in summary.op_histogram:
        ops.add_row(markup_safe(op_type), str(count))
    console.print(ops)
    _title(console, "ops with the most FLOPs")
    dear = Table()
    _column(dear, "node")
    _column(dear, "op type")
    _column(dear, "FLOPs", "right")
    _column(dear, "params", "right")
    for op in summary.dearest:
        dear.add_row(
            markup_safe(op.name), markup_safe(op.op_type), _count(op.flops),
            _count(op.param_count),
        )  # fmt: skip
    console.print(dear)
    if summary.unknown_ops:
        unknown = ", ".join(printable(op) for op in summary.unknown_ops)
        console.print(Text(f"no FLOP formula (bytes only): {unknown}", style="yellow"))
    if summary.unknown_shapes:
        estimated = ", ".join(printable(name) for name in summary.unknown_shapes)
        count = f"{len(summary.unknown_shapes):,} of {summary.tensor_count:,} tensors"
        console.print(Text(f"shapes estimated for {count}: {estimated}", style="yellow"))
    for note in summary.notes:
        console.print(Text(f"note: {printable(note)}", style="yellow"))
    if summary.costs:
        _render_costs(summary, console)


def _render_costs(summary, console: Console) -> None:
    """Each op's predicted time per device group, what bounds it and the rate used."""
    _title(console, "predicted time per op (ms), what bounds it, and the rate used")
    table = Table(box=box.SIMPLE_HEAD)
    _column(table, "node")
    _column(table, "op type")
    _column(table, "class")
    for group in summary.groups:
        _column(table, markup_safe(group), "right")
    for row in summary.costs:
        cells = []
        for t in row.times:
            if t.regime.value == "compute":
                why = f"compute, {t.rate / 1e9:.3g} GFLOP/s"
            elif t.regime.value == "memory":
                why = f"memory, {t.rate / 1e9:.3g} GB/s"
            else:
                why = t.regime.value
            fused = ", fused" if t.fused else ""
            if row.recomputes and t.fused:
                fused = ", repeats an earlier op"
            passes = f", {t.passes * 1e3:.3g} in extra passes" if t.passes else ""
            cells.append(f"{t.seconds * 1e3:.4g} ({why}{fused}{passes})")
        kind = row.times[0].op_class if row.times else ""
        table.add_row(markup_safe(row.name), markup_safe(row.op_type), kind, *cells)
    console.print(table)


def render_comparison(comparison, console: Console) -> None:
    """Print ``placer compare``'s rows (a :class:`~placer.comparison.Comparison`), the
    best plan highlighted and failed solvers with their reason."""
    scale, unit = time_scale(comparison.time_unit)
    best = comparison.best
    _title(console, f"placer compare: {printable(comparison.problem)}")
    table = Table(box=box.SIMPLE_HEAD)
    unit = markup_safe(unit)
    _column(table, "solver")
    _column(table, f"max-load{f' ({unit})' if unit else ''}", "right")
    _column(table, "throughput", "right")
    _column(table, "vs single", "right")
    _column(table, "memory", "right")
    _column(table, "optimal", "center")
    _column(table, "time", "right")
    for row in comparison.rows:
        solver = markup_safe(row.solver)
        if row.error is not None:
            table.add_row(solver, "—", "—", "—", "—", "—", f"{row.seconds:.2g}", style="dim")
            continue
        is_best = best is not None and row is best
        table.add_row(
            solver + (" *" if is_best else ""),
            f"{row.max_load * scale:.6g}",
            "∞" if row.throughput is None else f"{row.throughput:.4g}",
            "—" if row.speedup_vs_single is None else f"{row.speedup_vs_single:.2f}×",
            format_bytes(row.peak_memory_bytes),
            "yes" if row.optimal else "no",
            f"{row.seconds:.2g}",
            style="bold green" if is_best else (None if row.valid else "red"),
        )
    console.print(table)
    time_unit = markup_safe(comparison.time_unit)
    per = f"samples/{time_unit}" if time_unit else "samples per time unit"
    console.print(
        f"* marks the least max-load; throughput in {per}; vs single: speed-up over "
        "everything on the best single device; memory: the fullest device's; time: solve seconds"
    )
    for row in comparison.rows:
        if row.error is not None:
            console.print(Text(f"{printable(row.solver)}: {printable(row.error)}", style="yellow"))


#: ``placer run`` explains a measured period this much longer than its slowest stage.
OUTSIDE_STAGES = 0.05


def render_run(report, console: Console) -> None:
    """Print ``placer run``'s measurements against the prediction (a
    :class:`placer.runtime.runner.RunReport`): a row per stage, the bottleneck marked, then the
    pipeline's throughput and bottleneck, predicted and measured."""
    title = (f"placer run: {printable(report.model)} — {report.microbatches} microbatches "
             f"of {report.samples_per_step} after {report.warmup} warm-up")  # fmt: skip
    _title(console, title)
    table = Table()
    _column(table, "stage", "right")
    _column(table, "device")
    for label in ("predicted", "measured", "error", "compute", "transfer", "cpu"):
        _column(table, label, "right")
    predicted, measured = report.predicted_bottleneck, report.measured_bottleneck
    for s, stage in enumerate(report.stages, start=1):
        marks = "p" if stage.device == predicted else ""
        marks += "m" if stage.device == measured else ""
        table.add_row(
            str(s),
            markup_safe(stage.device) + (f" *{marks}" if marks else ""),
            f"{stage.predicted * 1e3:.4g}",
            f"{stage.measured * 1e3:.4g}",
            f"{100 * stage.error:+.1f}%",
            f"{stage.compute * 1e3:.4g}",
            f"{stage.transfer * 1e3:.4g}",
            f"{stage.cpu * 1e3:.4g}",
            style="bold" if stage.device == measured else None,
        )
    console.print(table)
    console.print("times in ms per microbatch (medians); *p: predicted bottleneck, *m: "
                  "measured; error: (predicted - measured) / measured; cpu: the stage's CPU "
                  "time computing")  # fmt: skip
    console.print(
        f"throughput: predicted {_num(report.predicted_throughput)} samples/s (pipeline "
        f"simulator, steady state), measured {_num(report.measured_throughput)} samples/s "
        f"(error {100 * report.throughput_error:+.1f}%)"
    )
    same = "the same" if predicted == measured else "different"
    clear = "" if report.bottleneck_clear else " (predicted loads within 5% of each other)"
    console.print(f"bottleneck: predicted {markup_safe(predicted)}, measured "
                  f"{markup_safe(measured)}: {same}{clear}")  # fmt: skip
    if report.outside > OUTSIDE_STAGES:
        slowest = max(stage.measured for stage in report.stages)
        processes = len(report.stages) + 1
        cores = (f"; {report.cores} core{'' if report.cores == 1 else 's'} here for "
                 f"{processes} processes (the stages and the coordinator)"
                 if report.cores else "")  # fmt: skip
        console.print(
            f"note: a microbatch left the pipeline every {report.period * 1e3:.4g} ms, "
            f"{100 * report.outside:.0f}% more than its slowest stage's {slowest * 1e3:.4g} ms "
            f"of receiving, computing and sending: the stages waited outside them (for the "
            f"coordinator, or for a core{cores})"
        )
    if report.check_error is not None:
        console.print(f"--check: outputs within {report.check_error:.3g} (scaled) of the whole "
                      "model's")  # fmt: skip
