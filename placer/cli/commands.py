"""The ``placer`` commands: parse options, call :mod:`placer.api`, render.

:mod:`placer.cli` runs them (exit statuses, one-line errors, Ctrl-C).
"""

from __future__ import annotations

import contextlib
import io
import math
import threading
import time
from pathlib import Path

import click
from rich.console import Console
from rich.status import Status

from placer import __version__
from placer import api as app
from placer.choices import DType, Fusion, Mode, Optimizer
from placer.cli.started import command_started
from placer.comparison import compare as compare_solvers
from placer.comparison import default_solvers
from placer.costs.profiling import Device, ProfileOptions
from placer.errors import BelowThreshold, InputError, StageFailed
from placer.frontends.layers import CutRule, Granularity
from placer.frontends.onnx_checks import MAX_DIM
from placer.outputs.check import Limits, below, check_plan
from placer.outputs.result import PlacementResult
from placer.outputs.simulate import (
    MAX_MICROBATCHES,
    Schedule,
    check_schedule,
    default_schedule,
    is_training,
)
from placer.outputs.tables import (
    OutputFormat,
    dump_json,
    dump_yaml,
    output_console,
    render_comparison,
    render_summary,
    render_table,
    result_line,
    to_json,
    to_yaml,
)
from placer.runtime.runner import CHECK_TOLERANCE
from placer.solvers import BASELINES, SOLVERS, SolverOptions
from placer.solvers.base import MipBackend, command_deadline, relative_gap
from placer.util.fileio import check_outputs, streamed, write_outputs
from placer.util.text import first_line, markup_safe, printable
from placer.util.units import Range, parse_integer, parse_number

_FORMATS = click.Choice([f.value for f in OutputFormat])


class BoundedFloat(click.ParamType):
    """A finite number within a :class:`~placer.util.units.Range`.

    click's ``FloatRange`` lets ``nan`` through (every comparison with NaN is false, so
    a limit of NaN never fails) and ``inf`` too; this type refuses both, and any value
    outside the range, naming the range.
    """

    name = "number"

    def __init__(self, bounds: Range) -> None:
        self.bounds = bounds

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, float):  # a default
            return value
        try:
            number = parse_number(str(value))
        except ValueError:
            try:
                finite = math.isfinite(float(value))
            except (TypeError, ValueError, OverflowError):
                finite = True  # not a number at all
            what = "a number in ASCII decimal" if finite else "a finite number"
            self.fail(f"{_short(value)!r} is not {what}", param, ctx)
        if number not in self.bounds:
            self.fail(f"{_short(value)} is out of range ({self.bounds})", param, ctx)
        return number


class BoundedInt(click.IntRange):
    """click's ``IntRange``, read as ASCII decimal only: ``int()`` also takes ``١٢``
    and ``1_000``, which no other number placer reads does."""

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            try:
                value = parse_integer(value)
            except ValueError:
                self.fail(f"{_short(value)!r} is not a whole number in decimal", param, ctx)
        return super().convert(value, param, ctx)


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


#: Ranges of the numeric options (README, "Ranges of numbers"): generous for any real
#: run, and small enough that nothing they feed overflows (an int64 shape, a thread
#: pool, a DP table sized from --max-ideals).
TIME_LIMIT = BoundedFloat(Range(0, 1e6, "s", low_open=True))
MIP_GAP = BoundedFloat(Range(0, 1))
#: --fail-below, --max-load and --min-throughput compare with a plan's figures, which
#: the input ranges keep far below this.
LIMIT = BoundedFloat(Range(0, 1e30))
BATCH_SIZE = BoundedInt(1, MAX_DIM)
THREADS = BoundedInt(1, 256)
MAX_IDEALS = BoundedInt(1, 10**9)
MICROBATCHES = BoundedInt(1, MAX_MICROBATCHES)
MAX_PAIRS = BoundedInt(1, 10**15)


def _input_shapes(values: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """``NAME=D0,D1,...`` options as shapes by input name: each input once (a second
    shape would silently replace the first), dims in ASCII decimal (``int`` would also
    take ``٨`` and ``1_28``)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for value in values:
        name, _, dims = value.partition("=")
        try:
            shape = tuple(parse_integer(d) for d in dims.split(","))
        except ValueError:  # not a decimal integer, or one of thousands of digits
            shape = ()
        if not name or not shape or any(not 1 <= d <= MAX_DIM for d in shape):
            raise click.BadParameter(
                f"{_short(value)!r}: expected NAME=D0,D1,... with integer dims from 1 "
                f"to {MAX_DIM:,}",
                param_hint="--input-shape",
            )
        if name in shapes:
            given = ",".join(map(str, shapes[name]))
            raise click.BadParameter(
                f"input {_short(name)!r} given twice ({given} and {_short(dims)}): give "
                "each input one shape",
                param_hint="--input-shape",
            )
        shapes[name] = shape
    return shapes


def _output_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse an empty output path (``-o ""``), which names no file."""
    if value == "":
        raise click.BadParameter("the output path is empty")
    return value


def _options(*decorators):
    """One decorator for a group of options: ``decorators`` applied to a command, the
    first one outermost (as if stacked with @)."""

    def apply(command):
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


#: Options that say how to cost an ONNX model (shared by place, evaluate, inspect).
model_options = _options(
    click.option("--cluster", type=click.Path(dir_okay=False),
                 help="Cluster YAML (docs/cluster.md); default: built-in 4x A100 + CPU."),
    click.option("--mode", type=click.Choice([m.value for m in Mode]), default="inference",
                 show_default=True, help="Place the forward pass, or forward + backward."),
    click.option("--batch-size", type=BATCH_SIZE, default=None,
                 help="Samples per step; resolves a symbolic batch dim "
                      "[default: the first dim of --input-shape, else 1]."),
    click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D0,D1,...",
                 help="Full shape of a graph input (repeatable)."),
    click.option("--dtype", type=click.Choice([d.value for d in DType]), default="fp32",
                 show_default=True, help="Arithmetic precision of the run."),
    click.option("--optimizer", type=click.Choice([o.value for o in Optimizer]), default="adam",
                 show_default=True, help="Optimiser state kept in training."),
    click.option("--costs", type=click.Path(dir_okay=False),
                 help="Measured per-op times (CSV op,device,seconds or JSON)."),
    click.option("--coarsen/--no-coarsen", default=False, show_default=True,
                 help="Merge trivially cheap ops into a neighbour first."),
    click.option("--fusion", type=click.Choice(["runtime", "none"]), default="runtime",
                 show_default=True,
                 help="Cost the kernels the runtime fuses (runtime), or every node "
                      "alone (none: the runtime's optimisations off)."),
)  # fmt: skip


#: Options that ask for a simulated run of the plan (place and evaluate).
simulation_options = _options(
    click.option("--microbatches", type=MICROBATCHES, default=None, metavar="N",
                 help="Simulate N microbatches through the plan: makespan, bubbles, "
                      "steady-state throughput (docs/model.md)."),
    click.option("--schedule", type=click.Choice([s.value for s in Schedule]),
                 default=None,
                 help="Schedule of the simulated run [inference: stream; training: "
                      "1f1b]."),
)  # fmt: skip


#: How a plan is written: its format and the file (shared by place and evaluate).
plan_output_options = _options(
    click.option("--format", "fmt", type=_FORMATS, default=None,
                 help="Output format [table]."),
    click.option("--output", "-o", type=click.Path(dir_okay=False), callback=_output_path,
                 help="Write to FILE atomically."),
)  # fmt: skip


def _schedule(problem, kwargs: dict) -> Schedule | None:
    """The schedule asked for, checked against the plan's mode before any solving."""
    schedule = Schedule(kwargs["schedule"]) if kwargs.get("schedule") else None
    if kwargs.get("microbatches") is None:
        if schedule is not None:
            raise InputError("--schedule sets the simulated run's schedule: give "
                             "--microbatches N too")  # fmt: skip
        return None
    training = is_training(problem)
    check_schedule(schedule or default_schedule(training), training)
    return schedule


def _simulated(result: PlacementResult, kwargs: dict, schedule: Schedule | None):
    if kwargs.get("microbatches") is None:
        return result
    return app.with_simulation(result, kwargs["microbatches"], schedule)


#: Options that say where a pipeline may be cut and which devices it may use
#: (shared by the commands that make or read plans: place, compare, evaluate, report).
cut_options = _options(
    click.option("--granularity", type=click.Choice([g.value for g in Granularity]),
                 default=Granularity.OP.value, show_default=True,
                 help="Cut anywhere (op) or only between layers (layer: each layer of "
                      "the model's module scopes stays on one device)."),
    click.option("--cut-at", "cut_at", metavar="REGEX", default=None,
                 help="Cut only between groups of ops: ops whose module scope matches "
                      "REGEX with the same prefix stay on one device."),
    click.option("--exclude", multiple=True, metavar="KIND",
                 help="Keep a device group (or every group of a type) out of the "
                      "pipeline (repeatable)."),
)  # fmt: skip


def _model(kwargs: dict) -> app.ModelOptions:
    return app.ModelOptions(
        cluster=kwargs.pop("cluster"),
        mode=Mode(kwargs.pop("mode")),
        dtype=DType(kwargs.pop("dtype")),
        optimizer=Optimizer(kwargs.pop("optimizer")),
        batch_size=kwargs.pop("batch_size"),
        input_shapes=_input_shapes(kwargs.pop("input_shape")),
        costs=kwargs.pop("costs"),
        coarsen=kwargs.pop("coarsen"),
        cut=CutRule(Granularity(kwargs.pop("granularity", "op")), kwargs.pop("cut_at", None)),
        exclude=tuple(kwargs.pop("exclude", ())),
        fusion=Fusion(kwargs.pop("fusion", "runtime")),
    )


#: The field of :class:`app.ModelOptions` each model option's parameter fills.
_MODEL_FIELDS = {
    "cluster": "cluster", "mode": "mode", "dtype": "dtype", "optimizer": "optimizer",
    "batch_size": "batch_size", "input_shape": "input_shapes", "costs": "costs",
    "coarsen": "coarsen", "granularity": "cut", "cut_at": "cut", "exclude": "exclude",
    "fusion": "fusion",
}  # fmt: skip


def _given(ctx: click.Context) -> frozenset[str]:
    """The :class:`app.ModelOptions` fields the user set (on the command line or in the
    environment), as opposed to those left at their defaults: a plan's own options
    replace the defaults, and must agree with what the user set."""
    from click.core import ParameterSource

    defaults = (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
    return frozenset(
        field
        for param, field in _MODEL_FIELDS.items()
        if ctx.get_parameter_source(param) not in defaults
    )


def _warn(problem) -> None:
    """Print the problem's caveats about its costs (ops without a formula, ops a
    ``--costs`` file gives no time for, estimated shapes) on stderr.

    Called once a command has succeeded: a failure is one line on stderr, nothing more.
    """
    for caveat in problem.caveats:
        _warning(printable(caveat))
    _warn_shapes(problem.shapes_estimated, problem.tensor_count)


def _warn_shapes(estimated: int, total: int, where: str = "see placer inspect") -> None:
    """One line on stderr when shape inference left ``estimated`` of ``total`` tensor
    shapes unknown: every figure that rests on them is a guess."""
    if estimated:
        _warning(
            f"{estimated:,} of {total:,} tensor shapes unknown after shape inference; "
            f"their sizes are estimated ({where})"
        )


def _warning(text: str) -> None:
    click.echo(click.style("placer: warning: ", fg="yellow") + text, err=True)


def _output_format(fmt: str | None, output: str | None) -> OutputFormat:
    """The format to print or write in: ``--format``, else the output file's extension,
    else a table (on stdout, or a stream such as ``/dev/stdout`` or a pipe)."""
    if output is None:
        return OutputFormat(fmt or "table")
    implied = OutputFormat.from_path(output)
    if fmt and implied is not None and implied is not OutputFormat(fmt):
        # YAML in a .json file would break whatever reads it next
        raise InputError(
            f"{printable(output)}: --format {fmt} contradicts the extension, which means "
            f"{implied.value}; change one of them, or drop --format"
        )
    if fmt:
        return OutputFormat(fmt)
    if implied is not None:
        return implied
    if streamed(output):  # /dev/stdout, /dev/null, a FIFO: no file to name a format
        return OutputFormat.TABLE
    raise InputError(
        f"{printable(output)}: cannot tell the format from the extension; use .json, "
        ".yaml, .yml or .txt, or pass --format"
    )


def _check_output(fmt: str | None, output: str | None, inputs: dict[str, str | None]) -> None:
    """Refuse, before any work, an output placer could not write: an unknown format, a
    directory, or one of the command's ``inputs`` (which it would replace)."""
    check_outputs({"--output": output}, inputs)
    _output_format(fmt, output)


def _emit(result: PlacementResult, fmt: str | None, output: str | None) -> None:
    """Print or write the result; the output file's extension picks its format."""
    chosen = _output_format(fmt, output)
    if output is not None:
        if chosen is OutputFormat.TABLE:
            console = output_console(io.StringIO(), record=True)
            render_table(result, console)
            text = console.export_text()
        else:
            text = to_json(result) if chosen is OutputFormat.JSON else to_yaml(result)
        write_outputs([(output, text)])
        click.echo(f"wrote {printable(output)}: {printable(result_line(result))}", err=True)
        return
    if chosen is OutputFormat.TABLE:
        render_table(result, output_console())
    else:
        click.echo(to_json(result) if chosen is OutputFormat.JSON else to_yaml(result), nl=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="placer")
def cli() -> None:
    """Place the operators of a DNN on a pipeline of devices, optimally.

    MODEL is an ONNX model (.onnx); place, evaluate, compare and report also read a
    profiled workload (.json, the format of Tarnawski et al.'s code).  Run
    "placer COMMAND --help" for a command's options.
    """


#: Options that choose and tune the solver (shared by place and compare).
solver_options = _options(
    click.option("--solver", default="auto", show_default=True,
                 help=f"Solver: {', '.join(sorted(SOLVERS))}; auto picks the exact DP "
                      "when it can, else the MILP."),
    click.option("--max-ideals", type=MAX_IDEALS,
                 default=SolverOptions.max_ideals, show_default=True,
                 help="Above this many ideals the DP falls back to a linear order."),
    click.option("--max-pairs", type=MAX_PAIRS,
                 default=SolverOptions.max_pairs, show_default=True,
                 help="Above this many (ideal, sub-ideal) pairs, about 10^7 a second, "
                      "the DP falls back too."),
    click.option("--contiguous/--no-contiguous", default=True, show_default=True,
                 help="Require each device to hold a contiguous pipeline stage "
                      "(--no-contiguous: MILP only)."),
    click.option("--mip-solver", type=click.Choice([b.value for b in MipBackend]),
                 default=MipBackend.HIGHS.value, show_default=True,
                 help="MILP backend (HiGHS, or PuLP's bundled CBC)."),
    click.option("--time-limit", type=TIME_LIMIT, default=None,
                 help="Seconds the command may take, loading the model included: the DP, "
                      "building and running the MILP, the bounds [auto: the MILP gets 60]."),
    click.option("--mip-gap", type=MIP_GAP, default=None,
                 help="Relative gap at which the MILP may stop."),
    click.option("--threads", type=THREADS, default=None,
                 help="Threads for the MILP backend."),
)  # fmt: skip


def _solver(kwargs: dict, progress=None, started: float | None = None) -> SolverOptions:
    time_limit = kwargs.pop("time_limit")
    return SolverOptions(
        max_ideals=kwargs.pop("max_ideals"),
        max_pairs=kwargs.pop("max_pairs"),
        contiguous=kwargs.pop("contiguous"),
        mip_solver=MipBackend(kwargs.pop("mip_solver")),
        time_limit=time_limit,
        mip_gap=kwargs.pop("mip_gap"),
        threads=kwargs.pop("threads"),
        progress=progress,
        deadline=None if started is None else command_deadline(started, time_limit),
    )


#: Seconds a step runs before its spinner appears; quicker steps show nothing.
SPINNER_DELAY = 1.0


class DelayedStatus:
    """A spinner line on ``console`` that appears once a step has lasted ``delay`` seconds.

    Only on a terminal, so JSON on stdout and logs stay clean. Use as a context manager
    around the step; :meth:`update` changes the line, shown or not yet.
    """

    def __init__(self, console: Console, message: str, delay: float = SPINNER_DELAY) -> None:
        self._console = console
        self._message = message
        self._delay = delay
        self._lock = threading.Lock()  # the timer thread starts what __exit__ stops
        self._timer: threading.Timer | None = None
        self._status: Status | None = None
        self._done = False

    def __enter__(self) -> DelayedStatus:
        if self._console.is_terminal:
            self._timer = threading.Timer(self._delay, self._start)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _start(self) -> None:
        with self._lock:
            if not self._done:
                self._status = self._console.status(self._message)
                self._status.start()

    def update(self, message: str) -> None:
        """Show ``message`` instead (now if the spinner is up, else when it appears)."""
        with self._lock:
            self._message = message
            if self._status is not None:
                self._status.update(message)

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
            if self._status is not None:
                self._status.stop()


def _status(message: str) -> DelayedStatus:
    """A spinner on stderr for a step that lasts over a second (only on a terminal).

    ``message`` is text, not markup: a file name such as ``[/]x.onnx`` shows as it is.
    """
    return DelayedStatus(Console(stderr=True), markup_safe(message))


@contextlib.contextmanager
def _progress():
    """A live line on stderr while the MILP solves for over a second (only on a terminal)."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with DelayedStatus(console, "solving...") as status:

        def update(elapsed: float, incumbent: float | None, bound: float | None) -> None:
            parts = [f"solving: {elapsed:.0f} s"]
            if incumbent is not None:
                parts.append(f"incumbent {incumbent:.6g}")
            if bound is not None:
                parts.append(f"bound {bound:.6g}")
            if incumbent and bound is not None:
                parts.append(f"gap {100 * max(0.0, relative_gap(incumbent, bound)):.2f}%")
            status.update(", ".join(parts))

        yield update


@cli.command(short_help="Find the plan of MODEL with the least max-load.")
@click.argument("model", type=click.Path(dir_okay=False))
@model_options
@cut_options
@solver_options
@simulation_options
@plan_output_options
@click.option("--fail-below", type=LIMIT, default=None, metavar="THROUGHPUT",
              help="Exit with status 4 (after printing the plan) when the predicted "
                   "throughput is lower.")  # fmt: skip
def place(
    model: str, solver: str, fmt: str | None, output: str | None, fail_below: float | None,
    **kwargs,
) -> None:  # fmt: skip
    """Find the placement of MODEL (.onnx model or .json workload) with the least max-load."""
    started = command_started()  # --time-limit counts from the command's start
    inputs = {"MODEL": model, "--cluster": kwargs["cluster"], "--costs": kwargs["costs"]}
    _check_output(fmt, output, inputs)  # before minutes of solving
    with _status(f"loading {click.format_filename(model, shorten=True)}..."):
        # --coarsen: the figures printed are the model's own, not the merged graph's
        problem, full = app.load_searched_and_model(model, _model(kwargs))
    schedule = _schedule(problem, kwargs)
    with _progress() as progress:
        result = app.place(problem, solver, _solver(kwargs, progress, started))
    if full is not None:
        result = app.on_the_model(result, full)
    result = _simulated(result, kwargs, schedule)
    _emit(result, fmt, output)
    if fail_below is not None and result.throughput < fail_below:
        raise BelowThreshold(below(result.throughput, fail_below, result.problem.time_unit))
    _warn(problem)


def _plan_inputs(model: str, plan: str, kwargs: dict) -> dict[str, str | None]:
    """The files a command on MODEL and PLAN reads, which no output may overwrite."""
    return {"MODEL": model, "PLAN": plan, "--cluster": kwargs["cluster"],
            "--costs": kwargs["costs"]}  # fmt: skip


def _load_plan(model: str, plan: str, kwargs: dict):
    """MODEL's problem and PLAN's placement on it, costed with the options PLAN records
    (those given must agree)."""
    given = _given(click.get_current_context())
    with _status(f"loading {click.format_filename(model, shorten=True)}..."):
        return app.load_plan(model, plan, _model(kwargs), given)


@cli.command(short_help="Cost PLAN (placer's or an expert split) on MODEL.")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("plan", type=click.Path(dir_okay=False))
@model_options
@cut_options
@simulation_options
@plan_output_options
def evaluate(model: str, plan: str, fmt: str | None, output: str | None, **kwargs) -> None:
    """Evaluate the split in PLAN (placer's output or an expert split) for MODEL.

    A plan placer made is costed with the options it records; options given must agree.
    """
    _check_output(fmt, output, _plan_inputs(model, plan, kwargs))
    problem, placement = _load_plan(model, plan, kwargs)
    schedule = _schedule(problem, kwargs)
    with _status("evaluating..."):
        result = _simulated(app.evaluate_plan(problem, placement, recorded_in=plan), kwargs,
                            schedule)  # fmt: skip
    _emit(result, fmt, output)
    _warn(problem)


@cli.command(short_help="Show MODEL's ops, FLOPs, memory and dearest ops.")
@click.argument("model", type=click.Path(dir_okay=False))
@model_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table",
              show_default=True, help="Output format.")
@click.option("--costs-detail", is_flag=True,
              help="Also each op's predicted time on every device group of the cluster, "
                   "what bounds it (compute, memory, overhead) and the rate used.")  # fmt: skip
def inspect(model: str, fmt: str, costs_detail: bool, **kwargs) -> None:
    """Show MODEL's op types, parameters, FLOPs, memory and dearest ops."""
    with _status(f"loading {click.format_filename(model, shorten=True)}..."):
        summary = app.inspect(model, _model(kwargs), detail=costs_detail)
    if fmt == "table":
        render_summary(summary, output_console())
    elif fmt == "json":
        click.echo(dump_json(summary.to_dict()), nl=False)
    else:
        click.echo(dump_yaml(summary.to_dict()), nl=False)
    _warn_shapes(len(summary.unknown_shapes), summary.tensor_count, "the output lists them")


@cli.command(short_help="Line the optimal plan up against the baselines'.")
@click.argument("model", type=click.Path(dir_okay=False))
@model_options
@cut_options
@click.option("--solvers", default=None, metavar="NAME,NAME,...",
              help="Solvers to run, comma-separated [default: dp and every baseline "
                   f"({', '.join(BASELINES)}), plus milp on small instances].")
@click.option("--max-ideals", type=MAX_IDEALS, default=SolverOptions.max_ideals,
              show_default=True, help="Above this many ideals the DP falls back to a linear order.")
@click.option("--time-limit", type=TIME_LIMIT, default=None,
              help="Seconds the MILP may run [10].")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")  # fmt: skip
def compare(
    model: str, solvers: str | None, max_ideals: int, time_limit: float | None, fmt: str,
    **kwargs,
) -> None:  # fmt: skip
    """Compare the optimal plan of MODEL with the baselines' (max-load, speed-up, memory)."""
    with _status(f"loading {click.format_filename(model, shorten=True)}..."):
        problem = app.load_problem(model, _model(kwargs))
    if solvers is None:
        names = default_solvers(problem)
    else:
        names = [name.strip() for name in solvers.split(",") if name.strip()]
    options = SolverOptions(max_ideals=max_ideals, time_limit=time_limit)
    with _status("solving..."):
        comparison = compare_solvers(problem, names, options)
    if fmt == "json":
        click.echo(dump_json(comparison.to_dict()), nl=False)
    else:
        render_comparison(comparison, output_console())
    _warn(problem)


@cli.command(short_help="Write PLAN's report as HTML or Markdown.")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("plan", type=click.Path(dir_okay=False))
@model_options
@cut_options
@click.option("--html", "html_path", type=click.Path(dir_okay=False), metavar="FILE",
              callback=_output_path,
              help="Write a self-contained HTML page (no network, no script needed).")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False), metavar="FILE",
              callback=_output_path,
              help="Write Markdown for a PR comment.")
@click.option("--microbatches", type=BoundedInt(min=1, max=64), default=None,
              help="Simulate N microbatches: the timeline, and figures in both reports "
                   "[timeline only: one per stage, 4 to 12].")
@click.option("--schedule", type=click.Choice([s.value for s in Schedule]), default=None,
              help="Schedule of the simulated run [inference: stream; training: 1f1b].")
def report(
    model: str, plan: str, html_path: str | None, markdown_path: str | None, **kwargs
) -> None:
    """Report PLAN for MODEL as HTML (stage loads, memory, timeline, ops) or Markdown.

    A plan placer made is costed with the options it records; options given must agree.
    """
    from placer.outputs.report import to_html, to_markdown

    if html_path is None and markdown_path is None:
        raise InputError("placer report needs --html FILE or --markdown FILE (or both)")
    check_outputs({"--html": html_path, "--markdown": markdown_path},
                  _plan_inputs(model, plan, kwargs))  # fmt: skip
    problem, placement = _load_plan(model, plan, kwargs)
    microbatches = kwargs["microbatches"]
    chosen = _schedule(problem, {"microbatches": microbatches or 1, "schedule": kwargs["schedule"]})
    with _status("evaluating..."):
        result = app.evaluate_plan(problem, placement, bound=False)
        if microbatches is not None:
            result = app.with_simulation(result, microbatches, chosen)
    outputs = []
    if html_path is not None:
        outputs.append((html_path, to_html(result, microbatches, chosen)))
    if markdown_path is not None:
        outputs.append((markdown_path, to_markdown(result)))
    write_outputs(outputs)  # both or neither
    for path, _ in outputs:
        click.echo(f"wrote {printable(path)}", err=True)
    _warn(problem)


@cli.command(short_help="Cut an ONNX MODEL into one submodel per stage.")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("plan", type=click.Path(dir_okay=False))
@click.option("--output", "-o", "out_dir", type=click.Path(file_okay=False), required=True,
              callback=_output_path,
              help="Directory for the submodels and manifest.json (created if missing).")
@click.option("--batch-size", type=BATCH_SIZE, default=None,
              help="Samples per step, for the bytes crossing each cut [default: the first "
                   "dim of --input-shape, else 1].")
@click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D0,D1,...",
              help="Full shape of a graph input (repeatable).")  # fmt: skip
def split(
    model: str, plan: str, out_dir: str, batch_size: int | None, input_shape: tuple[str, ...]
) -> None:
    """Cut MODEL (.onnx) into one submodel per stage of PLAN (an inference plan).

    The bytes at each cut are counted at the plan's batch size and input shapes.
    """
    from placer.outputs.split import split_model

    if not model.lower().endswith(".onnx"):
        raise InputError(f"{model}: placer split reads .onnx models")
    options = app.ModelOptions(batch_size=batch_size, input_shapes=_input_shapes(input_shape))
    options = app.split_options(model, plan, options, _given(click.get_current_context()))
    with _status(f"splitting {click.format_filename(model, shorten=True)}..."):
        manifest = split_model(
            model, plan, out_dir, batch_size=app.given_batch(options),
            input_shapes=options.input_shapes,
        )  # fmt: skip
    count = len(manifest.stages)
    stages = f"{count} stage{'' if count == 1 else 's'}"
    click.echo(f"wrote {stages} and manifest.json to {printable(out_dir)}", err=True)
    _warn_shapes(manifest.shapes_estimated, manifest.tensor_count)


#: ``placer run``'s microbatches (README, "Ranges of numbers").
RUN_MICROBATCHES = BoundedInt(1, 100_000)
RUN_WARMUP = BoundedInt(0, 10_000)
RUN_TIMEOUT = BoundedFloat(Range(1.0, 86_400.0))


@cli.command(name="run", short_help="Run PLAN as a pipeline of processes; measure it.")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("plan", type=click.Path(dir_okay=False))
@model_options
@click.option("--microbatches", type=RUN_MICROBATCHES, default=32, show_default=True,
              help="Microbatches measured (each of the plan's batch size).")
@click.option("--warmup", type=RUN_WARMUP, default=4, show_default=True,
              help="Microbatches run first and not measured.")
@click.option("--inputs", type=click.Path(dir_okay=False), default=None, metavar="FILE.npz",
              help="The model's inputs (one array per input name) [random ones].")
@click.option("--check", is_flag=True,
              help="Compare the pipeline's outputs with the whole model's, run in one "
                   "session (to 1e-5).")
@click.option("--timeout", type=RUN_TIMEOUT, default=120.0, show_default=True,
              help="Seconds without progress after which a stage counts as hung.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), callback=_output_path,
              help="Write to FILE atomically.")  # fmt: skip
def run_command(model: str, plan: str, fmt: str, output: str | None, **kwargs) -> None:
    """Run PLAN (an inference plan) for MODEL as a pipeline of one process per stage on
    this machine, and print what it measures against what placer predicted.

    CPU stages are pinned to the cores of their cluster group (cores: in the cluster
    file); accelerator stages run through onnxruntime's CUDA provider.
    """
    from placer.outputs.tables import render_run
    from placer.runtime.runner import RunOptions

    if not model.lower().endswith(".onnx"):
        raise InputError(f"{model}: placer run runs .onnx models")
    # the run's own options; what is left in kwargs are the model options
    inputs, check = kwargs.pop("inputs"), kwargs.pop("check")
    check_outputs({"--output": output}, {"MODEL": model, "PLAN": plan, "--inputs": inputs})
    given = _given(click.get_current_context())
    how = RunOptions(microbatches=kwargs.pop("microbatches"), warmup=kwargs.pop("warmup"),
                     inputs=_npz(inputs) if inputs is not None else None, check=check,
                     timeout=kwargs.pop("timeout"))  # fmt: skip
    with _progress_bar("running") as progress:
        report = app.run(model, plan, _model(kwargs), given, how, progress)
    if fmt == "json":
        text = dump_json(report.to_dict())
    else:
        console = output_console(io.StringIO(), record=True) if output else output_console()
        render_run(report, console)
        text = console.export_text() if output else None
    if output is not None:
        write_outputs([(output, text)])
        click.echo(f"wrote {printable(output)}", err=True)
    elif text is not None:
        click.echo(text, nl=False)
    if check and report.check_error is not None and report.check_error > CHECK_TOLERANCE:
        raise StageFailed(
            f"--check: the pipeline's outputs differ from the whole model's by "
            f"{report.check_error:.3g} (scaled), more than {CHECK_TOLERANCE:g}"
        )


def _npz(path: str) -> dict:
    """The arrays of an ``.npz`` file, read without pickles.

    Raises
    ------
    InputError
        Unreadable, not an ``.npz`` archive, or holding object arrays.
    """
    import zipfile

    import numpy as np

    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):  # a lone .npy array
            raise InputError(f"{printable(path)}: not an .npz archive of arrays (one per "
                             "input name)")  # fmt: skip
        with archive:
            return {name: archive[name] for name in archive.files}
    except OSError as err:
        raise InputError(f"{printable(path)}: cannot read it ({err.strerror or err})") from err
    except (ValueError, zipfile.BadZipFile, EOFError) as err:
        reason = first_line(err)
        raise InputError(f"{printable(path)}: not an .npz archive of arrays ({reason})") from err


#: Runs of ``placer profile`` (README, "Ranges of numbers").
REPEAT = BoundedInt(1, 10_000)
WARMUP = BoundedInt(0, 10_000)


@contextlib.contextmanager
def _progress_bar(what: str):
    """A progress bar of the runs on stderr (only on a terminal); yields the callback
    :func:`placer.costs.profiling.profile_model` tells, or None."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(markup_safe(what), total=None)

        def update(doing: str, done: int, total: int) -> None:
            bar.update(task, description=markup_safe(f"{what}: {doing}"), completed=done,
                       total=total)  # fmt: skip

        yield update


@cli.command(short_help="Time each op of MODEL in onnxruntime, for --costs.")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True,
              callback=_output_path, help="The costs CSV to write (atomically).")
@click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D0,D1,...",
              help="Full shape of a graph input (repeatable).")
@click.option("--batch-size", type=BATCH_SIZE, default=None,
              help="Samples per run; resolves a symbolic batch dim "
                   "[default: the first dim of --input-shape, else 1].")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda[:N]",
              help="Where onnxruntime runs the model.")
@click.option("--device-name", default=None, metavar="NAME",
              help="What the device column says: a group name or device type of the "
                   "cluster the times are for [default: cpu or cuda].")
@click.option("--threads", type=THREADS, default=1, show_default=True,
              help="onnxruntime's intra-op threads.")
@click.option("--repeat", type=REPEAT, default=10, show_default=True,
              help="Timed runs; each op's median is kept.")
@click.option("--warmup", type=WARMUP, default=3, show_default=True,
              help="Runs before the timed ones.")
@click.option("--fusion", type=click.Choice([f.value for f in Fusion]), default="runtime",
              show_default=True,
              help="runtime: onnxruntime's default fusions, each fused node's time given "
                   "to one op (what place costs by default); none: its optimisations off, "
                   "its nodes the model's.")
def profile(model: str, output: str, **kwargs) -> None:
    """Measure each op of MODEL (.onnx) in onnxruntime; write the times for --costs."""
    check_outputs({"--output": output}, {"MODEL": model})
    device_name = kwargs["device_name"]
    if not output.lower().endswith(".csv") and not streamed(output):
        raise InputError(f"{printable(output)}: placer profile writes CSV; name the output .csv")
    if device_name is not None and (not device_name or device_name != device_name.strip()):
        raise InputError(
            f"--device-name: expected a group name or device type, got {device_name!r}"
        )
    how = ProfileOptions(
        device=Device.parse(kwargs["device"]), threads=kwargs["threads"],
        repeat=kwargs["repeat"], warmup=kwargs["warmup"], fusion=Fusion(kwargs["fusion"]),
        device_name=device_name,
    )  # fmt: skip
    options = app.ModelOptions(batch_size=kwargs["batch_size"],
                               input_shapes=_input_shapes(kwargs["input_shape"]))  # fmt: skip
    began = time.monotonic()
    with _progress_bar(f"profiling {click.format_filename(model, shorten=True)}") as progress:
        measured = app.profile(model, options, how, progress)
    write_outputs([(output, measured.to_csv())])
    took = time.monotonic() - began
    total = sum(seconds for _, seconds in measured.seconds)
    click.echo(
        f"wrote {printable(output)}: {len(measured.seconds):,} of {measured.ops:,} ops, "
        f"{total * 1e3:.4g} ms in all (each op's median of {how.repeat} runs; a whole run "
        f"took {measured.run_seconds * 1e3:.4g} ms, their median), profiled in {took:.1f} s",
        err=True,
    )
    for note in measured.notes:
        _warning(printable(note))


@cli.command(short_help="Check a plan file against limits, for CI.")
@click.argument("plan", type=click.Path(dir_okay=False))
@click.option("--max-load", type=LIMIT, default=None,
              help="Fail (status 4) when the plan's max-load is above this.")
@click.option("--min-throughput", type=LIMIT, default=None,
              help="Fail (status 4) when the predicted throughput is below this.")  # fmt: skip
def check(plan: str, max_load: float | None, min_throughput: float | None) -> None:
    """Check a plan file (placer's JSON or YAML) for CI: well-formed, valid, within limits."""
    document = check_plan(plan, Limits(max_load=max_load, min_throughput=min_throughput))
    unit = f" {printable(document['time_unit'])}" if document["time_unit"] else ""
    throughput = document["throughput"]
    shown = "unbounded" if throughput is None else f"{throughput:.6g}"
    click.echo(
        f"{printable(plan)}: ok: max-load {document['max_load']:.6g}{unit}, throughput {shown}"
    )
    estimated = document.get("shapes_estimated") or 0
    if estimated:
        _warning(
            f"{printable(plan)} was costed with {estimated:,} tensor shapes unknown after "
            "shape inference; their sizes were estimated"
        )


@cli.command(short_help="Measure this machine's device; write a cluster file.")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda[:N]",
              help="The local device to measure, in onnxruntime.")
@click.option("--threads", type=THREADS, default=1, show_default=True,
              help="onnxruntime intra-op threads (one: timed by thread CPU time).")
@click.option("--count", type=BoundedInt(1, 4096), default=1, show_default=True,
              help="Devices like it in the cluster written (on a CPU: pinned to cores, "
                   "their shared memory bandwidth measured).")
@click.option("--dtype", type=click.Choice(["fp32", "fp16"]), default="fp32",
              show_default=True, help="Precision to measure (fp16: cuda only).")
@click.option("--name", default=None, metavar="NAME",
              help="The device group's name [local-cpu, local-cuda].")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True,
              callback=_output_path, help="The cluster file to write (YAML).")  # fmt: skip
def calibrate(
    device: str, threads: int, count: int, dtype: str, name: str | None, output: str
) -> None:
    """Measure this machine's DEVICE per op class and write a cluster file of it.

    Microbenchmarks in onnxruntime (GEMM, Conv, depthwise Conv, elementwise, reductions,
    data movement, the per-op overhead), medians of repeats; under a minute.  The file
    works with --cluster as it is, and as a group's type in other cluster files.
    """
    from placer.costs.calibrate import calibrate as measure
    from placer.costs.calibrate import cluster_yaml

    name = name or ("local-cpu" if device == "cpu" else "local-cuda")
    if not name.strip() or printable(name) != name:
        raise InputError(f"--name {name!r}: expected a plain device group name")
    implied = OutputFormat.from_path(output)
    if implied not in (None, OutputFormat.YAML):
        # a cluster file is YAML: JSON tools would choke on it under a .json name
        suffix = Path(output).suffix
        raise InputError(
            f"{printable(output)}: a cluster file is YAML: name it .yaml or .yml, not "
            f"{printable(suffix)}"
        )
    check_outputs({"--output": output}, {})
    with _steps("calibrating") as progress:
        calibration = measure(device, threads, count, dtype, progress)
    write_outputs([(output, cluster_yaml(calibration, name))])
    shared = (
        f" ({calibration.shared_bandwidth / 1e9:.4g} GB/s shared by {count})"
        if calibration.shared_bandwidth
        else ""
    )
    click.echo(
        f"wrote {printable(output)}: {name}: peak {calibration.peak_flops / 1e9:.4g} GFLOP/s, "
        f"memory {calibration.memory_bandwidth / 1e9:.4g} GB/s{shared}, overhead "
        f"{calibration.overhead * 1e6:.3g} us per op ({calibration.setup.timer})",
        err=True,
    )


@contextlib.contextmanager
def _steps(what: str):
    """A progress bar on stderr over named steps (only on a terminal); yields the
    ``progress(step, done, total)`` callback, or None."""
    from rich.progress import BarColumn, Progress, TextColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(TextColumn(f"{what}: {{task.description}}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), console=console,
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task("", total=None)

        def progress(step: str, done: int, total: int) -> None:
            bar.update(task, description=markup_safe(step), completed=done, total=total)

        yield progress
