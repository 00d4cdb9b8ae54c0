"""``placer report``: HTML that renders in a real browser with every stage and every
model name escaped, Markdown for PR comments, and the pipeline schedules."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from placer.evaluator import evaluate
from placer.frontends.workload import read_workload
from placer.outputs.report import to_html, to_markdown
from placer.outputs.result import from_plan
from placer.outputs.simulate import Pass, Work, simulate
from placer.problem import DeviceClass, DeviceKind, Op, Placement, Problem
from placer.solvers import SOLVERS, SolverOptions
from tests.conftest import REFERENCE, ROOT

CHROMIUM = "/usr/bin/chromium"
MOBILENET = ROOT / "sample_models" / "mobilenet_v2.onnx"
EVIL = "<script>alert(1)</script>"


@pytest.fixture
def evil_workload(tmp_path) -> Path:
    """bert24_training with a node named like a script tag and one with pipes."""
    document = json.loads((REFERENCE / "layer-graphs/bert24_training.json").read_text())
    document["nodes"][0]["name"] = EVIL
    document["nodes"][1]["name"] = "a|b"
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def plan(run_placer, evil_workload, tmp_path) -> Path:
    path = tmp_path / "plan.json"
    result = run_placer("place", evil_workload, "--solver", "dp", "-o", path)
    assert result.exit_code == 0, result.stderr
    return path


def _chromium() -> str | None:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.environ.get("PLACER_SKIP_BROWSER") == "1":
        return None
    pytest.fail(
        f"{CHROMIUM} is missing: install it (apt-get install -y chromium) or set "
        "PLACER_SKIP_BROWSER=1 to skip the browser checks"
    )


def _dump_dom(page: Path, profile: Path) -> str:
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_html_renders_every_stage_and_escapes_names(run_placer, evil_workload, plan, tmp_path):
    page = tmp_path / "report.html"
    result = run_placer("report", evil_workload, plan, "--html", page)
    assert result.exit_code == 0, result.stderr
    text = page.read_text()
    assert EVIL not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script" not in text.lower()  # no JavaScript at all
    assert "src=" not in text and "href=" not in text and "@import" not in text  # no network
    stages = [stage["device"] for stage in json.loads(plan.read_text())["stages"]]
    assert len(stages) > 2
    if _chromium() is None:
        pytest.skip(
            f"PLACER_SKIP_BROWSER=1 and {CHROMIUM} is missing: the HTML was checked but "
            "not rendered in a browser"
        )
    dom = _dump_dom(page, tmp_path / "profile")
    assert "<svg" in dom
    for device in stages:
        assert device in dom, device
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert EVIL not in dom
    assert "1F1B" in dom  # a training plan is scheduled one-forward-one-backward


def test_markdown_escapes_pipes_and_tags(run_placer, evil_workload, plan, tmp_path):
    path = tmp_path / "report.md"
    result = run_placer("report", evil_workload, plan, "--markdown", path)
    assert result.exit_code == 0, result.stderr
    text = path.read_text()
    assert "| # | device |" in text and "```text" in text and "█" in text
    for stage in json.loads(plan.read_text())["stages"]:
        assert stage["device"] in text


def test_markdown_cells_never_hold_raw_pipes_or_html() -> None:
    problem = read_workload(REFERENCE / "layer-graphs/bert24_inference.json")
    placement = SOLVERS["greedy"](problem, SolverOptions()).placement
    ops = list(problem.ops)
    ops[0] = replace(ops[0], key="x|<b>y</b>")
    problem = replace(problem, ops=tuple(ops), name="m|<i>")
    markdown = to_markdown(from_plan(problem, placement, 0.0))
    assert "x\\|&lt;b&gt;y&lt;/b&gt;" in markdown
    assert "m\\|&lt;i&gt;" in markdown
    assert "<b>" not in markdown and "<i>" not in markdown


def test_report_needs_an_output(run_placer, evil_workload, plan) -> None:
    result = run_placer("report", evil_workload, plan)
    assert result.exit_code == 2
    assert "--html FILE or --markdown FILE" in result.stderr


def _pipeline(latencies: list[tuple[float, float]]) -> tuple[Problem, Placement]:
    """A chain of one forward op per stage (and its backward op, when given), no
    communication."""
    count = len(latencies)
    kinds = (DeviceKind("d", DeviceClass.ACCELERATOR, count),)
    ops = [Op(i, f"f{i}", (f,), (True,), 0.0, 0.0, i) for i, (f, _) in enumerate(latencies)]
    edges = [(i, i + 1) for i in range(count - 1)]
    training = any(b for _, b in latencies)
    if training:
        ops += [Op(count + i, f"b{i}", (b,), (True,), 0.0, 0.0, i, backward=True)
                for i, (_, b) in enumerate(latencies)]  # fmt: skip
        edges += [(count + i + 1, count + i) for i in range(count - 1)]
        edges.append((count - 1, 2 * count - 1))
    devices = tuple(range(count)) * (2 if training else 1)
    return Problem("chain", tuple(ops), tuple(edges), kinds), Placement(devices)


def _slots(latencies, microbatches):
    problem, placement = _pipeline(latencies)
    evaluation = evaluate(problem, placement)
    sim = simulate(problem, placement, evaluation, microbatches)
    return [a for a in sim.activities if a.work is Work.COMPUTE]


def test_inference_timeline_fills_and_drains() -> None:
    slots = _slots([(1.0, 0), (2.0, 0), (1.0, 0)], 4)
    assert len(slots) == 12 and all(s.pass_ is Pass.FORWARD for s in slots)
    end = {(s.stage, s.microbatch): s.end for s in slots}
    # the slowest stage sets the pace: one microbatch every 2 time units
    assert max(end.values()) == pytest.approx(1 + 2 * 4 + 1)
    for s in slots:
        if s.stage:
            assert s.start >= end[(s.stage - 1, s.microbatch)] - 1e-12


def test_training_timeline_is_one_forward_one_backward() -> None:
    slots = _slots([(1.0, 2.0)] * 4, 8)
    assert len(slots) == 4 * 8 * 2
    done = {(s.stage, s.pass_, s.microbatch): s for s in slots}
    for s in slots:
        if s.pass_ is Pass.BACKWARD:
            before = (
                (s.stage, Pass.FORWARD, s.microbatch)
                if s.stage == 3
                else (s.stage + 1, Pass.BACKWARD, s.microbatch)
            )
            assert s.start >= done[before].end - 1e-12
    first = sorted((s for s in slots if s.stage == 0), key=lambda s: s.start)
    # stage 0 of 4 warms up with 3 forwards, then alternates
    assert [s.pass_ for s in first[:5]] == [Pass.FORWARD] * 4 + [Pass.BACKWARD]
    for stage in range(4):
        own = sorted((s for s in slots if s.stage == stage), key=lambda s: s.start)
        assert all(a.end <= b.start + 1e-12 for a, b in itertools.pairwise(own))


def test_chromium_is_where_the_test_looks() -> None:
    found = shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)
    if not found and os.environ.get("PLACER_SKIP_BROWSER") == "1":
        pytest.skip(f"PLACER_SKIP_BROWSER=1 and {CHROMIUM} is missing")
    assert found, f"{CHROMIUM} is missing: apt-get install -y chromium, or PLACER_SKIP_BROWSER=1"


def test_report_of_an_fp16_training_plan_costs_fp16_training(run_placer, tmp_path) -> None:
    """The regression: report without --dtype re-costed the plan at fp32 inference."""
    plan = tmp_path / "plan.json"
    flags = ("--dtype", "fp16", "--mode", "training")
    placed = run_placer("place", MOBILENET, *flags, "--solver", "greedy", "-o", plan)
    assert placed.exit_code == 0, placed.stderr
    throughput = json.loads(plan.read_text())["throughput"]
    markdown = tmp_path / "report.md"
    result = run_placer("report", MOBILENET, plan, "--markdown", markdown)
    assert result.exit_code == 0, result.stderr
    assert f"predicted throughput **{throughput:.4g} samples/s**" in markdown.read_text()
    fp32 = run_placer("place", MOBILENET, "--solver", "greedy", "--format", "json")
    assert f"**{json.loads(fp32.stdout)['throughput']:.4g} samples/s**" not in markdown.read_text()


def test_markdown_holds_no_control_characters() -> None:
    """A name with an escape sequence or a bidi override shows escaped, in cells and in
    the fenced chart alike: whoever cats the file sees text, not a retitled terminal."""
    problem = read_workload(REFERENCE / "layer-graphs/bert24_inference.json")
    placement = SOLVERS["greedy"](problem, SolverOptions()).placement
    ops = list(problem.ops)
    ops[0] = replace(ops[0], key="x\x1b]0;pwn\x07y")
    problem = replace(problem, ops=tuple(ops), name="m\u202eevil")
    markdown = to_markdown(from_plan(problem, placement, 0.0))
    assert "\x1b" not in markdown and "\x07" not in markdown and "\u202e" not in markdown
    assert "x\\x1b\\]0;pwn\\x07y" in markdown and "m\\u202eevil" in markdown


#: Names that would make links, images or code, run a script, or drive a terminal.
HOSTILE = [
    "[x](javascript:alert(1))",
    "![img](javascript:alert(2))",
    "\\[y](javascript:alert(3))",
    "`code`",
    "<javascript:alert(4)>",
    '" onmouseover="alert(5)',
    "n\x1b]0;pwn\x07\x1b[2J",
    "tail\\",
]


def _hostile_result():
    """bert24's greedy plan with hostile op, device and graph names."""
    problem = read_workload(REFERENCE / "layer-graphs/bert24_inference.json")
    placement = SOLVERS["greedy"](problem, SolverOptions()).placement
    ops = list(problem.ops)
    for i, name in enumerate(HOSTILE):
        ops[i] = replace(ops[i], key=name, name=name)
    # devices are named after their kind: "<kind>:<i>"
    names = itertools.cycle(HOSTILE[2:])
    kinds = tuple(replace(k, name=next(names)) for k in problem.kinds)
    problem = replace(problem, ops=tuple(ops), kinds=kinds, name=HOSTILE[0])
    return from_plan(problem, placement, 0.0)


def _rendered(markdown: str) -> str:
    """The HTML a CommonMark renderer with GitHub's tables makes of ``markdown``."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(markdown)


def test_markdown_names_make_no_links_images_or_code() -> None:
    markdown = to_markdown(_hostile_result())
    page = _rendered(markdown)
    assert "<a " not in page and "<img" not in page and "<code>" not in page
    assert "javascript:" not in "".join(_attributes(page).values())
    # each name still reads as it is, once rendered
    for name in HOSTILE[:4]:
        assert name in page, name
    assert "&lt;javascript:alert(4)&gt;" in page
    assert "n\\x1b]0;pwn\\x07\\x1b[2J" in page
    assert "\x1b" not in markdown and "\x07" not in markdown


def test_markdown_escapes_only_the_backslashes_markdown_would_read() -> None:
    """``\\x1b`` (a control character written out) stays as it is; a backslash that
    would escape the next character, or whatever follows the name, is doubled."""
    from placer.outputs.report import _md

    assert _md("a\x1bb") == "a\\x1bb"
    assert _md("a\\[b") == "a\\\\\\[b"
    assert _md("tail\\") == "tail\\\\"
    assert _rendered("**" + _md("tail\\") + "**") == "<p><strong>tail\\</strong></p>\n"


def _attributes(page: str) -> dict[str, str]:
    """Every attribute of every element of ``page``: ``{"tag.attr#n": value}``."""
    from html.parser import HTMLParser

    found: dict[str, str] = {}

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            for name, value in attrs:
                found[f"{tag}.{name}#{len(found)}"] = value or ""

    Collect().feed(page)
    return found


def test_html_names_reach_no_attribute_and_no_terminal() -> None:
    page = to_html(_hostile_result())
    attributes = _attributes(page)
    assert attributes
    for key, value in attributes.items():
        name = key.split(".", 1)[1].split("#")[0]
        assert not name.startswith("on"), key
        assert name not in {"href", "src", "xlink:href", "action", "formaction"}, key
        assert "javascript" not in value.lower() and "alert" not in value, (key, value)
    assert "<a " not in page and "<script" not in page.lower()
    assert "\x1b" not in page and "\x07" not in page
    assert "n\\x1b]0;pwn\\x07\\x1b[2J" in page
    assert "&quot; onmouseover=&quot;alert(5)" in page
