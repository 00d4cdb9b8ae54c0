"""The ``placer`` command: parses options, calls :mod:`placer.app`, renders."""

from __future__ import annotations

import contextlib
import io
import json
import sys

import click
import yaml
from rich.console import Console

from placer import __version__, app
from placer.errors import ExitStatus, InputError, PlacerError
from placer.fileio import write_atomic
from placer.render import OutputFormat, render_summary, render_table, to_json, to_yaml
from placer.result import PlacementResult
from placer.solvers import SOLVERS, SolverOptions
from placer.solvers.base import MipBackend

_FORMATS = click.Choice([f.value for f in OutputFormat])


def _input_shapes(values: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for value in values:
        name, _, dims = value.partition("=")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            shape = ()
        if not name or not shape or any(d <= 0 for d in shape):
            raise click.BadParameter(
                f"{value!r}: expected NAME=D0,D1,... with positive integer dims",
                param_hint="--input-shape",
            )
        shapes[name] = shape
    return shapes


def model_options(command):
    """Options that say how to cost an ONNX model (shared by place, evaluate, inspect)."""
    decorators = [
        click.option("--cluster", type=click.Path(dir_okay=False),
                     help="Cluster YAML (docs/cluster.md); default: built-in 4x A100 + CPU."),
        click.option("--mode", type=click.Choice(["inference", "training"]), default="inference",
                     show_default=True, help="Place the forward pass, or forward + backward."),
        click.option("--batch-size", type=click.IntRange(min=1), default=None,
                     help="Samples per step; resolves a symbolic batch dim "
                          "[default: the first dim of --input-shape, else 1]."),
        click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D0,D1,...",
                     help="Full shape of a graph input (repeatable)."),
        click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32",
                     show_default=True, help="Arithmetic precision of the run."),
        click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam",
                     show_default=True, help="Optimiser state kept in training."),
        click.option("--costs", type=click.Path(dir_okay=False),
                     help="Measured per-op times (CSV op,device,seconds or JSON)."),
        click.option("--coarsen/--no-coarsen", default=False, show_default=True,
                     help="Merge trivially cheap ops into a neighbour first."),
    ]  # fmt: skip
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _model(kwargs: dict) -> app.ModelOptions:
    return app.ModelOptions(
        cluster=kwargs.pop("cluster"),
        mode=kwargs.pop("mode"),
        dtype=kwargs.pop("dtype"),
        optimizer=kwargs.pop("optimizer"),
        batch_size=kwargs.pop("batch_size"),
        input_shapes=_input_shapes(kwargs.pop("input_shape")),
        costs=kwargs.pop("costs"),
        coarsen=kwargs.pop("coarsen"),
    )


def _warn(problem) -> None:
    """Print the problem's caveats about its costs (ops without a formula) on stderr."""
    for note in problem.notes:
        if note.startswith("no FLOP formula"):
            click.echo(click.style("placer: warning: ", fg="yellow") + note, err=True)


def _emit(result: PlacementResult, fmt: str | None, output: str | None) -> None:
    """Print or write the result; the output file's extension picks its format."""
    if output is not None:
        chosen = OutputFormat(fmt) if fmt else OutputFormat.from_path(output)
        if chosen is None:
            raise InputError(
                f"{output}: cannot tell the format from the extension; use .json, .yaml, "
                ".yml or .txt, or pass --format"
            )
        if chosen is OutputFormat.TABLE:
            console = Console(record=True, width=120, file=io.StringIO())
            render_table(result, console)
            text = console.export_text()
        else:
            text = to_json(result) if chosen is OutputFormat.JSON else to_yaml(result)
        write_atomic(output, text)
        click.echo(f"wrote {output}", err=True)
        return
    chosen = OutputFormat(fmt or "table")
    if chosen is OutputFormat.TABLE:
        render_table(result, Console())
    else:
        click.echo(to_json(result) if chosen is OutputFormat.JSON else to_yaml(result), nl=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="placer")
def cli() -> None:
    """Place the operators of a DNN on a pipeline of devices, optimally."""


def solver_options(command):
    """Options that choose and tune the solver (shared by place and compare)."""
    decorators = [
        click.option("--solver", default="auto", show_default=True,
                     help=f"Solver: {', '.join(sorted(SOLVERS))}; auto picks the exact DP "
                          "when it can, else the MILP."),
        click.option("--max-ideals", type=click.IntRange(min=1),
                     default=SolverOptions.max_ideals, show_default=True,
                     help="Above this many ideals the DP falls back to a linear order."),
        click.option("--contiguous/--no-contiguous", default=True, show_default=True,
                     help="Require each device to hold a contiguous pipeline stage "
                          "(--no-contiguous: MILP only)."),
        click.option("--mip-solver", type=click.Choice([b.value for b in MipBackend]),
                     default=MipBackend.HIGHS.value, show_default=True,
                     help="MILP backend (HiGHS, or PuLP's bundled CBC)."),
        click.option("--time-limit", type=click.FloatRange(min=0, min_open=True),
                     default=None, help="Seconds the MILP may run [auto: 60]."),
        click.option("--mip-gap", type=click.FloatRange(min=0), default=None,
                     help="Relative gap at which the MILP may stop."),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="Threads for the MILP backend."),
    ]  # fmt: skip
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _solver(kwargs: dict, progress=None) -> SolverOptions:
    return SolverOptions(
        max_ideals=kwargs.pop("max_ideals"),
        contiguous=kwargs.pop("contiguous"),
        mip_solver=MipBackend(kwargs.pop("mip_solver")),
        time_limit=kwargs.pop("time_limit"),
        mip_gap=kwargs.pop("mip_gap"),
        threads=kwargs.pop("threads"),
        progress=progress,
    )


@contextlib.contextmanager
def _progress():
    """A live line on stderr while the MILP solves (only on a terminal)."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with console.status("solving...") as status:

        def update(elapsed: float, incumbent: float | None, bound: float | None) -> None:
            parts = [f"solving: {elapsed:.0f} s"]
            if incumbent is not None:
                parts.append(f"incumbent {incumbent:.6g}")
            if bound is not None:
                parts.append(f"bound {bound:.6g}")
            if incumbent and bound is not None:
                parts.append(f"gap {100 * max(0.0, incumbent - bound) / incumbent:.2f}%")
            status.update(", ".join(parts))

        yield update


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@model_options
@solver_options
@click.option("--format", "fmt", type=_FORMATS, default=None, help="Output format [table].")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE atomically.")
def place(model: str, solver: str, fmt: str | None, output: str | None, **kwargs) -> None:
    """Find the placement of MODEL (.onnx model or .json workload) with the least max-load."""
    problem = app.load_problem(model, _model(kwargs))
    _warn(problem)
    with _progress() as progress:
        result = app.place(problem, solver, _solver(kwargs, progress))
    _emit(result, fmt, output)


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("plan", type=click.Path(dir_okay=False))
@model_options
@click.option("--format", "fmt", type=_FORMATS, default=None, help="Output format [table].")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE atomically.")
def evaluate(model: str, plan: str, fmt: str | None, output: str | None, **kwargs) -> None:
    """Evaluate the split in PLAN (placer's output or an expert split) for MODEL."""
    problem = app.load_problem(model, _model(kwargs))
    result = app.evaluate_plan(problem, plan)
    _emit(result, fmt, output)


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@model_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table",
              show_default=True, help="Output format.")  # fmt: skip
def inspect(model: str, fmt: str, **kwargs) -> None:
    """Show MODEL's op types, parameters, FLOPs, memory and dearest ops."""
    summary = app.inspect(model, _model(kwargs))
    if fmt == "table":
        render_summary(summary, Console())
    elif fmt == "json":
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        click.echo(yaml.safe_dump(summary.to_dict(), sort_keys=False), nl=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, turning user errors into one line and an exit status."""
    try:
        cli.main(args=argv, prog_name="placer", standalone_mode=False)
    except PlacerError as err:
        click.echo(click.style("placer: error: ", fg="red", bold=True) + str(err), err=True)
        sys.exit(err.exit_status)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except click.UsageError as err:
        err.show()
        sys.exit(ExitStatus.INVALID_INPUT)
    except click.ClickException as err:
        err.show()
        sys.exit(ExitStatus.INVALID_INPUT)
    except (click.Abort, KeyboardInterrupt):
        click.echo("placer: interrupted", err=True)
        sys.exit(ExitStatus.INTERRUPTED)
    sys.exit(ExitStatus.OK)
