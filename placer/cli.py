"""The ``placer`` command: parses options, calls :mod:`placer.app`, renders."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from placer import __version__, app
from placer.errors import ExitStatus, InputError, PlacerError
from placer.fileio import write_atomic
from placer.render import OutputFormat, render_table, to_json, to_yaml
from placer.result import PlacementResult
from placer.solvers import SOLVERS, SolverOptions

_FORMATS = click.Choice([f.value for f in OutputFormat])


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
            console = Console(record=True, width=120, file=open("/dev/null", "w"))  # noqa: SIM115
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


@cli.command()
@click.argument("workload", type=click.Path(dir_okay=False))
@click.option(
    "--solver",
    default="dp",
    show_default=True,
    help=f"Solver to use: {', '.join(sorted(SOLVERS))}.",
)
@click.option("--format", "fmt", type=_FORMATS, default=None, help="Output format [table].")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE atomically.")
@click.option(
    "--max-ideals",
    type=click.IntRange(min=1),
    default=SolverOptions.max_ideals,
    show_default=True,
    help="Above this many ideals the DP falls back to a linear order (not optimal).",
)
def place(workload: str, solver: str, fmt: str | None, output: str | None, max_ideals: int) -> None:
    """Find the placement of WORKLOAD with the least max-load."""
    problem = app.load_problem(workload)
    result = app.place(problem, solver, SolverOptions(max_ideals=max_ideals))
    _emit(result, fmt, output)


@cli.command()
@click.argument("workload", type=click.Path(dir_okay=False))
@click.argument("plan", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=_FORMATS, default=None, help="Output format [table].")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE atomically.")
def evaluate(workload: str, plan: str, fmt: str | None, output: str | None) -> None:
    """Evaluate the split in PLAN (placer's JSON output or an expert split) for WORKLOAD."""
    problem = app.load_problem(workload)
    result = app.evaluate_plan(problem, plan)
    _emit(result, fmt, output)


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
