"""The command line itself: usage errors are one line, help and version still work,
output options are checked, and the spinner waits a second before it shows."""

from __future__ import annotations

import io
import json
import time

import pytest
from rich.console import Console

from placer.cli import DelayedStatus
from tests.conftest import REFERENCE

WORKLOAD = REFERENCE / "layer-graphs/bert24_inference.json"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("place",), ["Missing argument 'MODEL'", "(see 'placer place --help')"]),
        (("place", WORKLOAD, "--bogus"), ["No such option '--bogus'", "placer place --help"]),
        (("place", WORKLOAD, "--batch-size", "0"), ["--batch-size", "0 is not in the range"]),
        (("place", WORKLOAD, "--mode", "train"), ["--mode", "'train' is not one of"]),
        (("place", WORKLOAD, "--format", "xml"), ["--format", "'xml'"]),
        (("compare", WORKLOAD, "--format", "yaml"), ["(see 'placer compare --help')"]),
        (("frobnicate",), ["No such command 'frobnicate'", "(see 'placer --help')"]),
    ],
    ids=["missing arg", "unknown option", "batch 0", "bad mode", "bad format", "compare",
         "unknown command"],
)  # fmt: skip
def test_usage_errors_are_one_line(run_placer, args, fragments) -> None:
    result = run_placer(*args)
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("placer: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Usage:" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [("--help",), ("place", "--help"), ("check", "-h")])
def test_help_still_exits_0(run_placer, args) -> None:
    result = run_placer(*args)
    assert result.exit_code == 0, result.stderr
    assert "Usage: placer" in result.stdout


def test_version_still_exits_0(run_placer) -> None:
    result = run_placer("--version")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("placer, version ")


def test_format_that_contradicts_the_extension_is_refused(run_placer, tmp_path) -> None:
    path = tmp_path / "p.json"
    result = run_placer("place", WORKLOAD, "--solver", "greedy", "--format", "yaml", "-o", path)
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "p.json: --format yaml contradicts the extension" in lines[0]
    assert not path.exists()


@pytest.mark.parametrize(
    ("fmt", "name"), [("json", "p.json"), ("yaml", "p.yml"), ("table", "p.txt"), ("json", "p.out")]
)
def test_format_that_agrees_or_an_unknown_extension_is_fine(run_placer, tmp_path, fmt, name):
    path = tmp_path / name
    result = run_placer("place", WORKLOAD, "--solver", "greedy", "--format", fmt, "-o", path)
    assert result.exit_code == 0, result.stderr
    assert path.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("place", WORKLOAD, "-o", ""),
        ("evaluate", WORKLOAD, WORKLOAD, "--output", ""),
        ("report", WORKLOAD, WORKLOAD, "--html", ""),
        ("report", WORKLOAD, WORKLOAD, "--markdown", ""),
        ("split", "m.onnx", "plan.json", "-o", ""),
    ],
    ids=["place", "evaluate", "report html", "report markdown", "split"],
)
def test_an_empty_output_path_is_refused(run_placer, args) -> None:
    result = run_placer(*args)
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "the output path is empty" in lines[0], result.stderr


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=80), out


def test_spinner_stays_hidden_for_a_quick_step() -> None:
    console, out = _terminal()
    with DelayedStatus(console, "loading model...", delay=0.5):
        pass
    time.sleep(0.6)  # past the delay: a timer left running would draw now
    assert out.getvalue() == ""


def test_spinner_appears_once_a_step_has_lasted_the_delay() -> None:
    console, out = _terminal()
    with DelayedStatus(console, "loading model...", delay=0.05) as status:
        time.sleep(0.5)
        status.update("solving: 3 s")
        time.sleep(0.3)
    shown = out.getvalue()
    assert "loading model..." in shown and "solving: 3 s" in shown
    drawn = len(shown)
    time.sleep(0.3)
    assert len(out.getvalue()) == drawn  # stopped: nothing more is drawn


def test_spinner_never_shows_off_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    with DelayedStatus(console, "loading model...", delay=0.0):
        time.sleep(0.2)
    assert out.getvalue() == ""


def test_max_pairs_makes_the_dp_fall_back_and_says_so(run_placer) -> None:
    wide = REFERENCE / "layer-graphs/gnmt_inference.json"
    flags = ("--solver", "dp", "--format", "json")
    result = run_placer("place", wide, "--max-pairs", "1000", *flags)
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert not plan["optimal"]
    assert any("more than 1,000 ideal pairs" in note for note in plan["notes"])
    exact = json.loads(run_placer("place", wide, *flags).stdout)
    assert exact["optimal"] and exact["max_load"] <= plan["max_load"]
