"""Fuzz the command-line options: numbers (NaN, infinities, signed zeros, values past
float and int64 range, other scripts' digits), names of solvers and formats, input
shapes."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.harness import Outcome, case_dir, check_case, fuzz_settings
from tests.fuzz.models import plan_for, tiny_bytes
from tests.fuzz.strategies import names, nasty_number_text

#: (command, option, extra arguments): every numeric option of every command. The MILP
#: runs only on the four-op chain, where it is instant.
NUMERIC = [
    ("place", "--batch-size", ("--solver", "dp")),
    ("place", "--max-ideals", ("--solver", "dp")),
    ("place", "--max-pairs", ("--solver", "dp")),
    ("place", "--fail-below", ("--solver", "dp")),
    ("place", "--time-limit", ("--solver", "milp")),
    ("place", "--mip-gap", ("--solver", "milp", "--time-limit", "2")),
    ("place", "--time-limit", ("--solver", "auto")),
    ("evaluate", "--batch-size", ()),
    ("inspect", "--batch-size", ()),
    ("compare", "--time-limit", ("--solvers", "dp,greedy,milp")),
    ("compare", "--max-ideals", ("--solvers", "dp,greedy")),
    ("compare", "--batch-size", ("--solvers", "dp,greedy")),
    ("report", "--microbatches", ()),
    ("report", "--batch-size", ()),
    ("split", "--batch-size", ()),
    ("check", "--max-load", ()),
    ("check", "--min-throughput", ()),
]
#: Options whose value is a float: a NaN or an infinity must be refused (a limit that
#: is NaN makes a CI gate that cannot fail).
FLOAT_OPTIONS = {"--fail-below", "--time-limit", "--mip-gap", "--max-load", "--min-throughput"}
#: ``--threads`` reaches HiGHS, which starts that many threads: only values that cannot
#: start a machine-filling number of them are drawn.
THREADS = ["nan", "inf", "-1", "0", "1", "2", "1.5", "", " 1", "1e9", "9223372036854775808",
           "18446744073709551616", "-9223372036854775809", "0x2", "\u0662"]  # fmt: skip


def _args(root, command: str) -> tuple:
    model, plan = root / "chain.onnx", root / "plan.json"
    if command in ("place", "inspect", "compare"):
        return (command, model)
    if command == "check":
        return (command, plan)
    if command == "split":
        return (command, model, plan, "-o", root / "stages")
    if command == "report":
        return (command, model, plan, "--markdown", root / "r.md")
    return (command, model, plan)


def _refuses_non_finite(option: str, value: str):
    """A float option given NaN or an infinity (``1e400`` overflows to one) must be
    refused with status 2."""
    try:
        number = float(value)
    except ValueError:
        return None
    if option not in FLOAT_OPTIONS or math.isfinite(number):
        return None

    def promise(outcome: Outcome) -> list[str]:
        if outcome.exit_code == 2:
            return []
        return [f"{option} {value!r} (not finite) accepted: exit {outcome.exit_code}"]

    return promise


def _setup(root) -> None:
    (root / "chain.onnx").write_bytes(tiny_bytes("chain.onnx"))
    (root / "plan.json").write_text(plan_for("chain.onnx"))


def _case(command: str, option: str) -> tuple:
    return next(c for c in NUMERIC if c[0] == command and c[1] == option)


@fuzz_settings(150)
@given(case=st.sampled_from(NUMERIC), value=nasty_number_text)
# the cases of the issue, always run: a CI gate given NaN, and a batch past float range
@example(case=_case("check", "--max-load"), value="nan")
@example(case=_case("check", "--max-load"), value="inf")
@example(case=_case("place", "--mip-gap"), value="nan")
@example(case=_case("place", "--fail-below"), value="nan")
@example(case=_case("place", "--batch-size"), value="1" + "0" * 400)
@example(case=_case("evaluate", "--batch-size"), value="9223372036854775808")
def test_numeric_options(run_placer, tmp_path, case, value):
    command, option, extra = case
    with case_dir(tmp_path) as root:
        _setup(root)
        fmt = ("--format", "json") if command in ("place", "evaluate", "compare") else ()
        check_case(
            run_placer, root, *_args(root, command), *extra, *fmt, f"{option}={value}",
            outputs=["stages", "r.md"], json_stdout=bool(fmt),
            extra=_refuses_non_finite(option, value),
        )  # fmt: skip


@fuzz_settings(20)
@given(value=st.sampled_from(THREADS))
def test_threads(run_placer, tmp_path, value):
    with case_dir(tmp_path) as root:
        _setup(root)
        check_case(
            run_placer, root, "place", root / "chain.onnx", "--solver", "milp",
            "--time-limit", "2", "--format", "json", f"--threads={value}", json_stdout=True,
        )  # fmt: skip


@fuzz_settings(80)
@given(
    option=st.sampled_from(["--solver", "--format", "--mode", "--dtype", "--optimizer",
                            "--mip-solver", "--solvers", "--input-shape", "--granularity",
                            "--cut-at", "--exclude"]),
    value=st.one_of(names, st.sampled_from([
        "dp", "DP", "dp ", "milp,dp", "dp,,dp", ",", "dp,dp", "greedy,unknown", "x=1,8",
        "x=0,8", "x=-1,8", "x=1,8,", "x=", "=1,8", "x=1e400", "x=9223372036854775808,8",
        "x=1,\u0668", "y=1,8", "x=1,8=2", "x=99999999999,99999999999", "x==1",
        "layer", "op", "(", ")", "(?x)a # c", "(?i)", ".*", "\\", "[", "cpu", "a100-80gb",
    ])),
)  # fmt: skip
def test_named_options(run_placer, tmp_path, option, value):
    """Names of solvers, formats, modes and dtypes, and input shapes, odd or unknown."""
    with case_dir(tmp_path) as root:
        _setup(root)
        command = "compare" if option == "--solvers" else "place"
        extra = ("--solver", "dp") if option not in ("--solver", "--solvers") else ()
        check_case(run_placer, root, command, root / "chain.onnx", *extra, f"{option}={value}")


#: Options that contradict each other or the file they are given with.
COMBINATIONS = [
    ("place", "{model}", "--input-shape", "x=1,64", "--input-shape", "x=2,64"),
    ("place", "{model}", "--batch-size", "2", "--input-shape", "x=4,64"),
    ("place", "{model}", "--input-shape", "nobody=1,64"),
    ("place", "{model}", "--format", "json", "-o", "{root}/plan.yaml"),
    ("place", "{model}", "--format", "table", "-o", "{root}/plan.json"),
    ("place", "{model}", "-o", "{root}/plan.onnx"),
    ("place", "{model}", "--solver", "greedy", "--no-contiguous"),
    ("place", "{model}", "--solver", "dp", "--mip-solver", "cbc", "--time-limit", "1"),
    ("place", "{root}/plan.json"),
    ("place", "{workload}", "--cluster", "{root}/none.yaml"),
    ("place", "{workload}", "--mode", "training"),
    ("inspect", "{workload}"),
    ("split", "{workload}", "{root}/plan.json", "-o", "{root}/stages"),
    ("split", "{model}", "{model}", "-o", "{root}/stages"),
    ("check", "{model}"),
    ("evaluate", "{model}", "{model}"),
    ("evaluate", "{model}", "{workload}"),
    ("report", "{model}", "{root}/plan.json"),
    ("report", "{model}", "{root}/plan.json", "--html", "{root}/r.html",
     "--markdown", "{root}/r.html"),
    ("report", "{model}", "{root}/plan.json", "--html", "{root}/plan.json"),
    ("compare", "{model}", "--solvers", ""),
    ("compare", "{model}", "--solvers", "milp", "--time-limit", "1e-9"),
    ("place", "{model}", "--solver", "milp", "--time-limit", "1e-9"),
    ("place", "{model}", "--solver", "milp", "--mip-gap", "1e300", "--time-limit", "2"),
    ("place", "{model}", "--solver", "dp", "--max-ideals", "1", "--time-limit", "2"),
    ("place", "{model}", "--granularity", "layer", "--cut-at", "x"),
    ("place", "{model}", "--exclude", "cpu", "--exclude", "a100-80gb"),
    ("place", "{workload}", "--exclude", "cpu"),
    ("evaluate", "{model}", "{root}/plan.json", "--granularity", "layer"),
    ("--version",),
    ("place",),
    ("nosuchcommand",),
]  # fmt: skip


@pytest.mark.parametrize("args", COMBINATIONS, ids=lambda a: " ".join(a)[:60])
def test_option_combinations(run_placer, tmp_path, args):
    _setup(tmp_path)
    from tests.fuzz.models import workload_document

    (tmp_path / "workload.json").write_text(json.dumps(workload_document()))
    values = {"model": tmp_path / "chain.onnx", "workload": tmp_path / "workload.json",
              "root": tmp_path}  # fmt: skip
    filled = tuple(a.format(**values) for a in args)
    check_case(
        run_placer, tmp_path, *filled,
        outputs=["plan.yaml", "plan.json", "plan.onnx", "stages", "r.html"],
    )  # fmt: skip
