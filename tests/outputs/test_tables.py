"""Tables on a terminal and in a pipe: names shown as text, figures never cut short."""

from __future__ import annotations

import io
import re
from pathlib import Path

import onnx
import pytest
from onnx import helper
from rich.console import Console
from rich.text import Text

from placer.comparison import Comparison, ComparisonRow
from placer.outputs.tables import UNBOUNDED_WIDTH, output_console, render_comparison
from tests.conftest import one_line_error
from tests.frontends.test_onnx_graph import value

#: Names as hostile as a file can make them: rich markup, an OSC sequence that would
#: retitle the terminal, a newline, a bidirectional override, a NUL.
NODE_NAMES = ("[/]bad[red]\x1b]0;pwn\x07", "ok\n\u202eevil\x00")
SHOWN = (r"[/]bad[red]\x1b]0;pwn\x07", r"ok\x0a\u202eevil\x00")
DEVICE = "[/]cpu\x1b[31m|x"
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def hostile_model(tmp_path: Path, name: str = "m.onnx") -> Path:
    nodes = [
        helper.make_node("Relu", ["x"], ["h"], name=NODE_NAMES[0]),
        helper.make_node("Neg", ["h"], ["y"], name=NODE_NAMES[1]),
    ]
    graph = helper.make_graph(nodes, "[bold]graph\x1b[2J", [value("x", [1, 4])], [value("y", None)])
    path = tmp_path / name
    onnx.save(helper.make_model(graph), str(path))
    return path


def hostile_cluster(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(
        'name: "[red]box[/]"\n'
        "devices:\n"
        '  - {type: cpu, name: "[/]cpu\\e[31m|x"}\n'
        '  - {type: t4, name: "t4[bold]"}\n',
        encoding="utf-8",
    )
    return path


def assert_text_only(output: str) -> None:
    """No raw control character (escape, bell, NUL, bidi override) reached the output."""
    assert not RAW_CONTROL.search(output), repr(output)


def test_place_table_shows_hostile_names_as_text(run_placer, tmp_path):
    result = run_placer("place", hostile_model(tmp_path), "--cluster", hostile_cluster(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert_text_only(result.stdout)
    assert r"[/]cpu\x1b[31m|x" in result.stdout
    assert r"placer: [bold]graph\x1b[2J" in result.stdout
    assert "note: cluster: [red]box[/]" in result.stdout


def test_inspect_shows_hostile_names_as_text(run_placer, tmp_path):
    result = run_placer("inspect", hostile_model(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert_text_only(result.stdout)
    for shown in SHOWN:
        assert shown in result.stdout


def test_compare_shows_hostile_names_as_text(run_placer, tmp_path):
    cluster = hostile_cluster(tmp_path)
    result = run_placer("compare", hostile_model(tmp_path), "--cluster", cluster)
    assert result.exit_code == 0, result.stderr
    assert_text_only(result.stdout)
    assert r"placer compare: [bold]graph\x1b[2J" in result.stdout


def test_a_table_written_to_a_file_shows_names_as_text(run_placer, tmp_path):
    plan = tmp_path / "plan.txt"
    args = ("--cluster", hostile_cluster(tmp_path), "-o", plan)
    assert run_placer("place", hostile_model(tmp_path), *args).exit_code == 0
    text = plan.read_text(encoding="utf-8")
    assert_text_only(text)
    assert r"[/]cpu\x1b[31m|x" in text and "…" not in text


def test_an_error_line_is_printable_as_a_whole(run_placer, tmp_path):
    missing = tmp_path / "gone\x1b]0;pwn\x07\u202e.onnx"
    result = run_placer("inspect", missing)
    line = one_line_error(result, "no such file", r"gone\x1b]0;pwn\x07\u202e.onnx")
    assert_text_only(line)


def test_an_error_quoting_a_hostile_node_name_is_one_printable_line(run_placer, tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["h"], name="a\nb\x1b[2J"),
        helper.make_node("Neg", ["x"], ["h"], name="c\x1b[31m"),
    ]
    graph = helper.make_graph(nodes, "g", [value("x", [4])], [value("h", [4])])
    path = tmp_path / "dup.onnx"
    onnx.save(helper.make_model(graph), str(path))
    line = one_line_error(run_placer("inspect", path), "is produced twice")
    assert_text_only(line)


def test_status_messages_are_text_not_markup(run_placer, tmp_path, monkeypatch):
    import placer.cli.commands

    shown: list[str] = []

    class Recording:
        def __init__(self, console, message, delay=0.0):
            shown.append(message)

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return None

        def update(self, message):
            shown.append(message)

    monkeypatch.setattr(placer.cli.commands, "DelayedStatus", Recording)
    path = hostile_model(tmp_path, "[red]m[b].onnx")  # a file name holds no "/"
    assert run_placer("inspect", path).exit_code == 0
    assert [Text.from_markup(message).plain for message in shown] == ["loading [red]m[b].onnx..."]


# -- widths ----------------------------------------------------------------------------


def comparison() -> Comparison:
    row = ComparisonRow(
        solver="a-solver-with-a-rather-long-name",
        max_load=0.123456789,
        throughput=12345678.9,
        optimal=True,
        seconds=1234.5,
        speedup_vs_single=12.34,
        peak_memory_bytes=123456789012.0,
        valid=True,
    )
    failed = ComparisonRow(
        "milp\x1b[2J[red]", None, None, False, 0.5, None, None, False, error="no plan [/]"
    )
    return Comparison("model-with-a-long-name-" * 3, "s", (row, failed))


FIGURES = ("a-solver-with-a-rather-long-name", "123.457", "1.235e+07", "12.34×", "115 GiB",
           "1.2e+03", "throughput", "vs single")  # fmt: skip


def test_a_pipe_gets_every_figure_in_full():
    out = io.StringIO()
    console = output_console(out)
    assert console.width == UNBOUNDED_WIDTH
    render_comparison(comparison(), console)
    shown = out.getvalue()
    assert "…" not in shown
    for figure in FIGURES:
        assert figure in shown, figure
    assert_text_only(shown)
    assert r"milp\x1b[2J[red]: no plan [/]" in shown


def test_a_narrow_terminal_folds_figures_instead_of_cutting_them():
    out = io.StringIO()
    render_comparison(comparison(), Console(file=out, force_terminal=True, width=40))
    shown = out.getvalue()
    assert "…" not in shown
    assert_text_only(re.sub(r"\x1b\[[0-9;]*m", "", shown))  # rich's own colours aside


def test_a_terminal_keeps_its_width(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert output_console(Terminal()).width != UNBOUNDED_WIDTH


@pytest.mark.parametrize("command", ["compare", "inspect"])
def test_cli_tables_in_a_pipe_are_not_cut_at_80_columns(run_placer, tmp_path, command):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="n" * 120)]
    graph = helper.make_graph(nodes, "g" * 90, [value("x", [1, 4])], [value("y", None)])
    path = tmp_path / "wide.onnx"
    onnx.save(helper.make_model(graph), str(path))
    result = run_placer(command, path)
    assert result.exit_code == 0, result.stderr
    assert "…" not in result.stdout
    assert "g" * 90 in result.stdout
    if command == "compare":
        assert "throughput" in result.stdout
    else:
        assert "n" * 120 in result.stdout
