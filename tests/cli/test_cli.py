"""The command line itself: usage errors are one line, help and version still work,
output options are checked, and the spinner waits a second before it shows."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console

from placer.cli.commands import DelayedStatus
from placer.outputs.tables import dump_json, dump_yaml, plain
from tests.conftest import REFERENCE, ROOT, one_line_error

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


def test_the_command_list_says_each_command_whole(run_placer) -> None:
    """Every command's summary fits the listing (click cuts a long one with "...")."""
    from placer.cli.commands import cli

    listing = run_placer("--help").stdout.split("Commands:")[1]
    rows = [line.split(None, 1) for line in listing.strip().splitlines()]
    assert sorted(name for name, _ in rows) == sorted(cli.commands)
    for name, summary in rows:
        assert not summary.endswith("..."), (name, summary)
        assert summary.endswith("."), (name, summary)


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


MOBILENET = ROOT / "sample_models" / "mobilenet_v2.onnx"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--time-limit", "nan"), "'--time-limit': 'nan' is not a finite number"),
        (("--time-limit", "inf"), "'--time-limit': 'inf' is not a finite number"),
        (("--time-limit", "0"), "'--time-limit': 0 is out of range (over 0, at most 1e+06 s)"),
        (("--time-limit", "1e999"), "'1e999' is not a finite number"),
        (("--mip-gap", "nan"), "'--mip-gap': 'nan' is not a finite number"),
        (("--mip-gap", "1.5"), "'--mip-gap': 1.5 is out of range (from 0 to 1)"),
        (("--mip-gap", "ten"), "'--mip-gap': 'ten' is not a number"),
        (("--threads", "1000000000"), "'--threads': 1000000000 is not in the range 1<=x<=256"),
        (("--batch-size", str(2**63)), "'--batch-size': 9223372036854775808 is not in the range"),
        (("--max-ideals", str(10**20)), "'--max-ideals': 100000000000000000000 is not in the"),
        (("--max-pairs", str(2**64)), "'--max-pairs'"),
        (("--fail-below", "nan"), "'--fail-below': 'nan' is not a finite number"),
        # int() and float() take other scripts' digits and underscores; placer does not
        (("--threads", "\u0662"), "'--threads': '\u0662' is not a whole number in decimal"),
        (("--time-limit", "\u0661\u0660"), "'--time-limit': '\u0661\u0660' is not a number in"),
        (("--max-ideals", "1_000"), "'--max-ideals': '1_000' is not a whole number in decimal"),
        (("--batch-size", "\uff12"), "'--batch-size': '\uff12' is not a whole number in"),
    ],
)
def test_numeric_options_are_finite_and_bounded(run_placer, args, fragment) -> None:
    one_line_error(run_placer("place", WORKLOAD, *args), fragment)


def test_compare_time_limit_must_be_finite(run_placer) -> None:
    one_line_error(run_placer("compare", WORKLOAD, "--time-limit", "nan"), "not a finite number")


@pytest.mark.parametrize(
    "shape", ["input=1,3,224,9223372036854775808", "input=1,3,0,224", "input=1,3,2e3,224",
              "input=1," + "9" * 5000, "input=1,3,\u0662\u0662\u0664,224",
              "input=1,3,2_24,224", "input=1,3,\uff12\uff12\uff14,224"],
)  # fmt: skip
def test_input_shape_dims_are_bounded(run_placer, shape) -> None:
    result = run_placer("place", MOBILENET, "--input-shape", shape)
    line = one_line_error(result, "--input-shape", "integer dims from 1 to 2,147,483,647")
    assert len(line) < 300


def test_an_input_given_two_shapes_is_refused(run_placer) -> None:
    # the last one used to win silently
    result = run_placer(
        "place", MOBILENET, "--input-shape", "input=1,3,224,224", "--input-shape", "input=2,3,96,96"
    )
    one_line_error(
        result, "--input-shape", "input 'input' given twice (1,3,224,224 and 2,3,96,96)"
    )


def test_yaml_output_of_an_onnx_model_is_plain(run_placer, tmp_path) -> None:
    result = run_placer("place", MOBILENET, "--format", "yaml")
    assert result.exit_code == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    assert document["problem"] == "mobilenet_v2" and document["stats"]
    path = tmp_path / "plan.yml"
    assert run_placer("place", MOBILENET, "-o", path).exit_code == 0
    assert run_placer("check", path).exit_code == 0


def _strict(text: str):
    def refuse(constant: str):
        raise AssertionError(f"{constant} in placer's JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    "args",
    [
        ("place", WORKLOAD, "--format", "json"),
        ("compare", WORKLOAD, "--format", "json", "--solvers", "dp,single"),
        ("inspect", MOBILENET, "--format", "json"),
    ],
)
def test_json_output_is_strict(run_placer, tmp_path, args) -> None:
    result = run_placer(*args)
    assert result.exit_code == 0, result.stderr
    _strict(result.stdout)


def test_an_unbounded_throughput_is_null_not_infinity(run_placer, tmp_path) -> None:
    # every op free: the max-load is 0 and the throughput unbounded
    workload = tmp_path / "free.json"
    nodes = [{"id": i, "supportedOnFpga": 1, "cpuLatency": 0, "fpgaLatency": 0,
              "isBackwardNode": 0} for i in (1, 2)]  # fmt: skip
    workload.write_text(json.dumps({"maxSizePerFPGA": 1, "maxFPGAs": 1, "maxCPUs": 1,
                                    "nodes": nodes, "edges": []}))  # fmt: skip
    for args in (("place", workload), ("compare", workload, "--solvers", "dp,single")):
        result = run_placer(*args, "--format", "json")
        assert result.exit_code == 0, result.stderr
        document = _strict(result.stdout)
        row = document["results"][0] if "results" in document else document
        assert row["max_load"] == 0 and row["throughput"] is None
    path = tmp_path / "plan.yaml"
    assert run_placer("place", workload, "-o", path).exit_code == 0
    assert yaml.safe_load(path.read_text())["throughput"] is None


def test_plain_makes_numpy_and_infinities_portable() -> None:
    data = {"a": (np.float64(1.5), np.int64(2), math.inf, -math.inf, math.nan), "b": [np.bool_(1)]}
    assert plain(data) == {"a": [1.5, 2, None, None, None], "b": [True]}
    assert type(plain(np.float32(0.5))) is float
    assert yaml.safe_load(dump_yaml(data)) == plain(data)
    assert _strict(dump_json(data)) == plain(data)


def test_a_cost_warning_follows_success_and_never_joins_an_error(run_placer, tmp_path) -> None:
    """'no FLOP formula' is said once the command succeeded; a failure stays one line."""
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [helper.make_node("Mystery", ["x"], ["y"], name="m\x1b[2J", domain="acme")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("acme", 1)]
    )
    path = tmp_path / "m.onnx"
    save(model, path)
    placed = run_placer("place", path, "--format", "json")
    assert placed.exit_code == 0, placed.stderr
    (line,) = placed.stderr.strip().splitlines()
    assert line.startswith("placer: warning: no FLOP formula") and "Mystery" in line
    one_line_error(run_placer("place", path, "--fail-below", "1e29"), "below", status=4)


def test_a_reader_that_goes_away_ends_placer_quietly(tmp_path) -> None:
    """``placer ... | head -1``: the rest of the output is dropped, status 0, no noise."""
    for fmt in ("table", "json"):
        process = subprocess.Popen(
            [sys.executable, "-m", "placer", "place", str(WORKLOAD), "--format", fmt],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        process.stdout.close()  # the reader leaves before placer has written anything
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 0, stderr
        assert stderr == b""


def _placer(*args: str, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "placer", *args], capture_output="stdout" not in popen,
        timeout=120, check=False, **popen,
    )  # fmt: skip


@pytest.mark.parametrize("args", [("place", str(WORKLOAD)), ("place", str(WORKLOAD), "--format",
                                  "json"), ("--help",)], ids=["table", "json", "help"])  # fmt: skip
def test_standard_output_that_refuses_the_result_is_one_line(args) -> None:
    """``placer ... > /dev/full``: the result is lost, and placer says so (exit 2)."""
    with open("/dev/full", "w") as full:
        done = _placer(*args, stdout=full, stderr=subprocess.PIPE)
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().splitlines() == [
        "placer: error: cannot write to standard output: No space left on device"
    ]


def test_a_closed_standard_output_is_one_line() -> None:
    done = _placer("place", str(WORKLOAD), stdout=None, stderr=subprocess.PIPE,
                   preexec_fn=lambda: os.close(1))  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "placer: error: cannot write to standard output: it is closed"
    ]


def test_a_terminal_that_cannot_show_the_table_gets_escapes() -> None:
    done = _placer("place", str(WORKLOAD), env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0, done.stderr
    assert "\\u2014" in done.stdout.decode("ascii")  # the title's dash, escaped


# -- outputs never replace inputs, and are refused before any work ---------------------


def _no_work(*_args, **_kwargs):
    raise AssertionError("the output should have been refused before any work")


@pytest.fixture
def inputs(tmp_path, monkeypatch) -> Path:
    """A workload, a model, a cluster, a costs table and a plan in tmp_path; loading a
    model or a plan fails the test."""
    from placer import api as app
    (tmp_path / "wl.json").write_bytes(WORKLOAD.read_bytes())
    (tmp_path / "model.onnx").write_bytes(b"not read")
    (tmp_path / "c.yaml").write_text("name: not read\n")
    (tmp_path / "costs.json").write_text("{}\n")
    (tmp_path / "plan.json").write_text("{}\n")
    monkeypatch.setattr(app, "load_problem", _no_work)
    monkeypatch.setattr(app, "load_plan", _no_work)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "victim", "option"),
    [
        (["place", "wl.json", "-o", "wl.json"], "MODEL", "--output"),
        (["place", "model.onnx", "--cluster", "c.yaml", "-o", "c.yaml"], "--cluster", "--output"),
        (["place", "model.onnx", "--costs", "costs.json", "-o", "costs.json"], "--costs",
         "--output"),
        (["evaluate", "wl.json", "plan.json", "-o", "plan.json"], "PLAN", "--output"),
        (["evaluate", "model.onnx", "plan.json", "--cluster", "c.yaml", "-o", "c.yaml"],
         "--cluster", "--output"),
        (["report", "wl.json", "plan.json", "--markdown", "plan.json"], "PLAN", "--markdown"),
        (["report", "wl.json", "plan.json", "--html", "wl.json"], "MODEL", "--html"),
        (["report", "model.onnx", "plan.json", "--costs", "costs.json", "--html", "r.html",
          "--markdown", "costs.json"], "--costs", "--markdown"),
    ],
    ids=["place model", "place cluster", "place costs", "evaluate plan", "evaluate cluster",
         "report markdown plan", "report html model", "report costs"],
)  # fmt: skip
def test_an_output_never_replaces_an_input(run_placer, inputs, monkeypatch, args, victim, option):
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    monkeypatch.chdir(inputs)
    one_line_error(run_placer(*args), f"{option} would write over {victim} (")
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_an_output_linked_to_an_input_is_refused(run_placer, inputs, link) -> None:
    output = inputs / "out.json"
    if link == "symlink":
        output.symlink_to("wl.json")
    else:
        os.link(inputs / "wl.json", output)
    one_line_error(run_placer("place", inputs / "wl.json", "-o", output), "would write over MODEL")
    assert (inputs / "wl.json").read_bytes() == WORKLOAD.read_bytes()


@pytest.mark.parametrize("exists", [False, True])
def test_a_regular_file_without_a_known_extension_is_refused_before_work(
    run_placer, inputs, exists
) -> None:
    output = inputs / "plan"
    if exists:
        output.write_text("kept\n")
    result = run_placer("place", inputs / "wl.json", "-o", output)
    one_line_error(result, "plan: cannot tell the format from the extension")
    assert output.read_text() == "kept\n" if exists else not output.exists()


def test_an_output_in_a_missing_directory_is_refused_before_work(run_placer, inputs) -> None:
    result = run_placer("place", inputs / "wl.json", "-o", inputs / "nowhere" / "plan.json")
    one_line_error(result, "plan.json: cannot write: no such directory")
    assert not (inputs / "nowhere").exists()


def test_the_installed_command_starts_its_clock_before_the_heavy_imports() -> None:
    """The installed ``placer`` starts counting --time-limit when :mod:`placer.cli`
    loads: before click, rich, numpy and the solvers (0.6-0.7 s), which its
    ``--time-limit`` covers as it covers loading the model."""
    code = (
        "import sys, time; before = time.monotonic(); import placer.cli; "
        "from placer.cli.started import LOADED, command_started; "
        "heavy = [m for m in ('click', 'rich', 'numpy', 'numba', 'pulp', 'onnx') "
        "if m in sys.modules]; "
        "print(heavy, before <= LOADED == command_started() <= time.monotonic())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT)  # fmt: skip
    assert done.stdout.split() == ["[]", "True"], done.stdout + done.stderr


def test_the_time_limit_counts_from_the_start_of_the_command(run_placer, monkeypatch) -> None:
    """Loading the model is part of it: the solve's deadline is the command's start plus
    the limit, less the reserve for what follows the solve (5%, at most 2 s)."""
    from placer import api

    seen = {}
    solve = api.place

    def place(problem, solver, options):
        seen["deadline"], seen["called"] = options.deadline, time.monotonic()
        return solve(problem, solver, options)

    monkeypatch.setattr(api, "place", place)
    before = time.monotonic()
    result = run_placer("place", WORKLOAD, "--time-limit", "40")
    assert result.exit_code == 0, result.stderr
    assert before + 38.0 <= seen["deadline"] <= seen["called"] + 38.0
