"""Reports of a plan people can act on: a self-contained HTML page and Markdown for PR
comments (``placer report``).

The HTML page needs no network and no JavaScript: inline CSS and SVG show each stage's
compute and communication against the bottleneck, each device's memory against its
cap, a pipeline timeline of a few microbatches, and which op runs where.  Every name
that comes from a model or a cluster file is escaped.

The timeline is the pipeline simulator's run of the plan (:mod:`placer.outputs.simulate`): each
stage's receives, compute and sends for every microbatch, under the 1F1B schedule of
PipeDream-Flush [1]_ or GPipe's [2]_ in training, streaming in inference.

References
----------
.. [1] Narayanan et al. (2021). Memory-Efficient Pipeline-Parallel DNN Training. ICML.
.. [2] Huang et al. (2019). GPipe: Efficient Training of Giant Neural Networks using
   Pipeline Parallelism. NeurIPS.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass

from placer.outputs.result import PlacementResult
from placer.outputs.simulate import Activity, Pass, Schedule, Simulation, Work, simulate
from placer.util.text import printable
from placer.util.units import format_bytes


@dataclass(frozen=True)
class StageFigures:
    """What the report shows of one stage (times in the problem's unit)."""

    device: str
    device_type: str
    kind: int  # index into Problem.kinds
    forward: float
    backward: float
    compute: float
    communication: float
    memory_bytes: float
    memory_cap_bytes: float
    ops: tuple[int, ...]

    @property
    def load(self) -> float:
        return self.compute + self.communication


def stage_figures(result: PlacementResult) -> list[StageFigures]:
    """Per stage, in pipeline order: forward and backward time per microbatch, load
    and memory."""
    problem = result.problem
    figures = []
    for stage in result.evaluation.stages:
        device = problem.devices[stage.device]
        k = device.kind
        forward = sum(problem.ops[i].latency[k] for i in stage.ops if not problem.ops[i].backward)
        backward = stage.compute - forward
        training = any(op.backward for op in problem.ops)
        share = stage.communication / 2 if training else stage.communication
        figures.append(
            StageFigures(
                device=device.name,
                device_type=problem.kinds[k].name,
                kind=k,
                forward=forward + share,
                backward=backward + (stage.communication - share),
                compute=stage.compute,
                communication=stage.communication,
                memory_bytes=stage.memory_bytes,
                memory_cap_bytes=problem.capacity(k),
                ops=stage.ops,
            )
        )
    return figures


def is_training(result: PlacementResult) -> bool:
    """Whether the problem has backward ops (then the pipeline runs 1F1B)."""
    return any(op.backward for op in result.problem.ops)


def default_microbatches(stages: int) -> int:
    """Enough microbatches to show the pipeline full: at least 4, at least one per
    stage, at most 12."""
    return max(4, min(stages, 12))


# -- HTML ------------------------------------------------------------------------------

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1000px; color: #1f2328; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.bottleneck td { background: #ffebe9; font-weight: 600; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; }
dl.summary dt { color: #57606a; } dl.summary dd { margin: 0; }
.note { color: #9a6700; } .bad { color: #cf222e; font-weight: 600; }
svg text { font: 12px system-ui, sans-serif; fill: #1f2328; }
details { margin: .3em 0; } code { font-size: 90%; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px;
               vertical-align: middle; }
"""
_COMPUTE, _COMM, _BACKWARD, _MEMORY = "#0969da", "#fb8500", "#8250df", "#1a7f37"


def _e(value: object) -> str:
    """Escape a name for HTML text or an attribute, and write its control characters
    as escapes: the browser would hide them, but ``cat plan.html`` would replay them."""
    return html.escape(printable(str(value)), quote=True)


def _scale(unit: str) -> tuple[float, str]:
    return (1e3, "ms") if unit == "s" else (1.0, unit)


def _num(value: float) -> str:
    return f"{value:.4g}"


def _bytes(value: float) -> str:
    return "no cap" if math.isinf(value) else format_bytes(value)


def _of(cap: float) -> str:
    return f"of {_bytes(cap)}" if math.isfinite(cap) else "(no cap)"


def _svg(label: str, width: int, height: int) -> str:
    """The opening tag of a chart."""
    return (
        f'<svg role="img" aria-label="{label}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">'
    )


def _row_label(stage: StageFigures, y: float) -> str:
    """A chart row's device name, in the left column (:data:`_LABEL_W` wide)."""
    return f'<text x="0" y="{y}">{_e(stage.device)}</text>'


#: The charts' device column and row height.
_LABEL_W, _ROW_H = 150, 26


def _load_bars(stages: list[StageFigures], max_load: float, scale: float, unit: str) -> str:
    label_w, bar_w, row_h = _LABEL_W, 700, _ROW_H
    height = row_h * len(stages) + 30
    top = max(max_load, 1e-300)
    parts = [_svg("load per stage", label_w + bar_w + 150, height)]
    for i, stage in enumerate(stages):
        y = 10 + i * row_h
        compute_w = bar_w * stage.compute / top
        comm_w = bar_w * stage.communication / top
        bottleneck = stage.load >= max_load and max_load > 0
        parts.append(_row_label(stage, y + 15))
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{compute_w:.2f}" height="18" '
            f'fill="{_COMPUTE}"><title>compute {_num(stage.compute * scale)} {_e(unit)}'
            "</title></rect>"
        )
        parts.append(
            f'<rect x="{label_w + compute_w:.2f}" y="{y}" width="{comm_w:.2f}" height="18" '
            f'fill="{_COMM}"><title>communication {_num(stage.communication * scale)} '
            f"{_e(unit)}</title></rect>"
        )
        weight = ' font-weight="bold"' if bottleneck else ""
        parts.append(
            f'<text x="{label_w + compute_w + comm_w + 6:.2f}" y="{y + 14}"{weight}>'
            f"{_num(stage.load * scale)}{' (bottleneck)' if bottleneck else ''}</text>"
        )
    x = label_w + bar_w
    parts.append(
        f'<line x1="{x}" y1="4" x2="{x}" y2="{height - 22}" stroke="#cf222e" '
        'stroke-dasharray="4 3"/>'
    )
    parts.append(
        f'<text x="{x - 4}" y="{height - 8}" text-anchor="end">max-load '
        f"{_num(max_load * scale)} {_e(unit)}</text></svg>"
    )
    return "".join(parts)


def _memory_bars(stages: list[StageFigures]) -> str:
    label_w, bar_w, row_h = _LABEL_W, 700, _ROW_H
    finite = [s.memory_cap_bytes for s in stages if math.isfinite(s.memory_cap_bytes)]
    top = max([*finite, *(s.memory_bytes for s in stages), 1.0])
    parts = [_svg("memory per device", label_w + bar_w + 160, row_h * len(stages) + 10)]
    for i, stage in enumerate(stages):
        y = 8 + i * row_h
        used_w = bar_w * stage.memory_bytes / top
        over = stage.memory_bytes > stage.memory_cap_bytes
        parts.append(_row_label(stage, y + 14))
        if math.isfinite(stage.memory_cap_bytes):
            cap_w = bar_w * stage.memory_cap_bytes / top
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{cap_w:.2f}" height="18" fill="none" '
                'stroke="#57606a" stroke-dasharray="3 2"/>'
            )
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{used_w:.2f}" height="18" '
            f'fill="{"#cf222e" if over else _MEMORY}"/>'
        )
        parts.append(
            f'<text x="{label_w + max(used_w, 0) + 6:.2f}" y="{y + 14}">'
            f"{_bytes(stage.memory_bytes)} {_of(stage.memory_cap_bytes)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _timeline_svg(stages: list[StageFigures], activities: tuple[Activity, ...], scale: float,
                  unit: str) -> str:  # fmt: skip
    label_w, plot_w, row_h = _LABEL_W, 760, _ROW_H
    end = max((a.end for a in activities), default=0.0) or 1.0
    height = row_h * len(stages) + 34
    parts = [_svg("pipeline timeline", label_w + plot_w + 20, height)]
    for s, stage in enumerate(stages):
        parts.append(_row_label(stage, 10 + s * row_h + 14))
    for a in activities:
        if a.end <= a.start:
            continue
        x = label_w + plot_w * a.start / end
        w = max(plot_w * (a.end - a.start) / end, 0.5)
        y = 10 + a.stage * row_h
        if a.work is Work.COMPUTE:
            color = _COMPUTE if a.pass_ is Pass.FORWARD else _BACKWARD
        else:
            color = _COMM
        # a transfer its receiver does not pay for holds only the link: a thin bar
        top, tall = (y + 14, 4) if not a.holds_stage else (y, 18)
        what = f"{a.pass_.value} {a.work.value}"
        if a.source is not None:
            what += f" from {stages[a.source].device}"
        parts.append(
            f'<rect x="{x:.2f}" y="{top}" width="{w:.2f}" height="{tall}" fill="{color}" '
            f'stroke="#fff"><title>{_e(what)} of microbatch {a.microbatch + 1}: '
            f"{_num(a.start * scale)}–{_num(a.end * scale)} {_e(unit)}</title></rect>"
        )
        if a.work is Work.COMPUTE and w > 22:
            letter = "F" if a.pass_ is Pass.FORWARD else "B"
            parts.append(
                f'<text x="{x + w / 2:.2f}" y="{y + 13}" text-anchor="middle" '
                f'style="fill:#fff">{letter}{a.microbatch + 1}</text>'
            )
    y = height - 8
    parts.append(f'<text x="{label_w}" y="{y}">0</text>')
    parts.append(
        f'<text x="{label_w + plot_w}" y="{y}" text-anchor="end">{_num(end * scale)} '
        f"{_e(unit)}</text></svg>"
    )
    return "".join(parts)


def _simulation(result: PlacementResult, microbatches: int | None,
                schedule: Schedule | None) -> Simulation | None:  # fmt: skip
    """The run the timeline shows: the result's own when it has one of that length."""
    sim = result.simulation
    count = microbatches or (sim.microbatches if sim else None)
    count = count or default_microbatches(len(result.evaluation.stages))
    if sim is not None and sim.microbatches == count and schedule in (None, sim.schedule):
        return sim
    if not result.evaluation.contiguous:
        return None
    return simulate(result.problem, result.placement, result.evaluation, count, schedule)


def to_html(
    result: PlacementResult, microbatches: int | None = None, schedule: Schedule | None = None
) -> str:
    """The plan as one self-contained HTML page (inline CSS and SVG, no script); its
    timeline is a simulated run of ``microbatches`` microbatches under ``schedule``
    (defaults: the result's simulation, else one microbatch per stage, 4 to 12)."""
    problem, evaluation = result.problem, result.evaluation
    scale, unit = _scale(problem.time_unit)
    stages = stage_figures(result)
    training = is_training(result)
    sim = _simulation(result, microbatches, schedule)
    per = f"samples/{problem.time_unit}" if problem.time_unit else "samples per time unit"
    bottleneck = evaluation.bottleneck
    bottleneck_name = problem.devices[bottleneck.device].name if bottleneck else "—"
    unit_label = f" {unit}" if unit else ""

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>placer report: {_e(problem.name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>placer report: {_e(problem.name)}</h1>",
        '<dl class="summary">',
        f"<dt>max-load</dt><dd>{_num(result.max_load * scale)}{_e(unit_label)} per step"
        f" (bottleneck {_e(bottleneck_name)})</dd>",
        f"<dt>predicted throughput</dt><dd>{_num(result.throughput)} {_e(per)}</dd>",
        f"<dt>stages</dt><dd>{len(stages)} of {problem.total_devices} devices</dd>",
        f"<dt>mode</dt><dd>{'training' if training else 'inference'}</dd>",
        f"<dt>valid</dt><dd>{'yes' if evaluation.valid else '<span class=bad>no</span>'}</dd></dl>",
    ]
    out += [f'<p class="bad">invalid: {_e(v)}</p>' for v in evaluation.violations]
    out += [f'<p class="note">note: {_e(n)}</p>' for n in result.notes]

    out += _stage_table(stages, bottleneck_name, scale, unit_label)
    out.append("<h2>Load per stage</h2>")
    out.append(
        f'<p class="legend"><span style="background:{_COMPUTE}"></span>compute'
        f'<span style="background:{_COMM}"></span>communication; the dashed line is the '
        "bottleneck's load, which sets the throughput.</p>"
    )
    out.append(_load_bars(stages, result.max_load, scale, unit))
    out.append("<h2>Memory per device</h2>")
    out.append('<p class="legend">filled: memory the plan needs; dashed: the device\'s cap.</p>')
    out.append(_memory_bars(stages))
    out += _timeline_section(sim, stages, training, scale, unit, per)
    out += _ops_section(problem, stages, scale, unit_label)
    out.append("</body></html>\n")
    return "\n".join(out)


def _stage_table(stages, bottleneck_name: str, scale: float, unit_label: str) -> list[str]:
    """The HTML table of the stages, the bottleneck's row marked."""
    out: list[str] = []
    out.append(
        "<h2>Stages</h2><table><thead><tr><th>#</th><th>device</th><th>type</th>"
        f"<th>ops</th><th>compute{_e(unit_label)}</th><th>comm{_e(unit_label)}</th>"
        f"<th>load{_e(unit_label)}</th><th>memory</th><th>cap</th></tr></thead><tbody>"
    )
    for i, stage in enumerate(stages, start=1):
        mark = ' class="bottleneck"' if stage.device == bottleneck_name else ""
        out.append(
            f"<tr{mark}><td>{i}</td><td>{_e(stage.device)}</td><td>{_e(stage.device_type)}</td>"
            f'<td class="n">{len(stage.ops)}</td><td class="n">{_num(stage.compute * scale)}</td>'
            f'<td class="n">{_num(stage.communication * scale)}</td>'
            f'<td class="n">{_num(stage.load * scale)}</td>'
            f'<td class="n">{_bytes(stage.memory_bytes)}</td>'
            f'<td class="n">{_bytes(stage.memory_cap_bytes)}</td></tr>'
        )
    out.append("</tbody></table>")

    return out


def _timeline_section(sim, stages, training: bool, scale: float, unit: str, per: str):
    """The simulated run's heading, legend and SVG timeline (a note when the plan forms
    no pipeline)."""
    unit_label = f" {unit}" if unit else ""
    out: list[str] = []
    if sim is None:
        out.append("<h2>Pipeline timeline</h2>")
        out.append('<p class="note">not simulated: the plan is not contiguous, so its '
                   "stages form no pipeline.</p>")  # fmt: skip
    else:
        names = {Schedule.STREAM: "streaming", Schedule.GPIPE: "GPipe",
                 Schedule.ONE_F_ONE_B: "1F1B (PipeDream-Flush)"}  # fmt: skip
        out.append(f"<h2>Pipeline timeline: {sim.microbatches} microbatches, "
                   f"{names[sim.schedule]}</h2>")  # fmt: skip
        out.append(
            f'<p class="legend"><span style="background:{_COMPUTE}"></span>forward'
            + (f'<span style="background:{_BACKWARD}"></span>backward' if training else "")
            + f'<span style="background:{_COMM}"></span>receive and send (thin: a transfer '
            "only its link spends time on), as the pipeline simulator runs them: makespan "
            f"{_num(sim.makespan * scale)}{_e(unit_label)}, {_num(sim.throughput)} "
            f"{_e(per)} over the run, bubbles {100 * sim.bubble_fraction:.1f}% of stage "
            f"time; {_num(sim.steady_throughput)} {_e(per)} in steady state.</p>"
        )
        out.append(_timeline_svg(stages, sim.activities, scale, unit))

    return out


def _ops_section(problem, stages, scale: float, unit_label: str) -> list[str]:
    """Each stage's ops with their times, folded away on large plans."""
    out: list[str] = []
    out.append("<h2>Ops by stage</h2>")
    for i, stage in enumerate(stages, start=1):
        out.append(
            f"<details{' open' if len(stages) * len(stage.ops) <= 400 else ''}>"
            f"<summary>stage {i}: {_e(stage.device)}, {len(stage.ops)} ops</summary>"
            f"<table><thead><tr><th>op</th><th>name</th><th>time{_e(unit_label)}</th>"
            "</tr></thead><tbody>"
        )
        for index in stage.ops:
            op = problem.ops[index]
            out.append(
                f"<tr><td><code>{_e(op.key)}</code></td><td>{_e(op.name)}</td>"
                f'<td class="n">{_num(op.latency[stage.kind] * scale)}</td></tr>'
            )
        out.append("</tbody></table></details>")
    return out


# -- Markdown --------------------------------------------------------------------------


#: A backslash Markdown would read as escaping what follows: one before ASCII
#: punctuation, or at the end of a name (before whatever the report puts next).
_ESCAPING_BACKSLASH = re.compile(r"\\(?=[!-/:-@\[-`{-~]|$)")
#: Characters that make links, images and code spans: ``[x](javascript:...)``,
#: ``![x](...)``, ``[x]: url`` definitions, backticks (``<`` and ``>``, which make
#: autolinks and raw HTML, become entities).
_LINK_SYNTAX = re.compile(r"[\[\]`|]")


def _md(value: object) -> str:
    """Escape a name for Markdown text and table cells: no pipes, no raw HTML, no links,
    images or code spans, no control characters (an escape sequence would drive the
    terminal of whoever cats the file).

    Examples
    --------
    >>> _md("[x](javascript:alert(1))|<b>")
    '\\\\[x\\\\](javascript:alert(1))\\\\|&lt;b&gt;'
    """
    text = printable(str(value).replace("\n", " "))
    text = _ESCAPING_BACKSLASH.sub(r"\\\\", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _LINK_SYNTAX.sub(lambda match: "\\" + match.group(), text)


def _md_html(value: object) -> str:
    """Escape a name inside a raw HTML line of the Markdown (``<summary>``), where
    Markdown is not read: HTML escapes, control characters written as escapes."""
    return html.escape(printable(str(value).replace("\n", " ")), quote=False)


def to_markdown(result: PlacementResult, width: int = 40) -> str:
    """The plan as Markdown for a PR comment: summary, stage table, a text bar chart of
    load (compute ``█``, communication ``▒``) and memory, and the ops of each stage."""
    problem, evaluation = result.problem, result.evaluation
    scale, unit = _scale(problem.time_unit)
    stages = stage_figures(result)
    per = f"samples/{problem.time_unit}" if problem.time_unit else "samples per time unit"
    bottleneck = evaluation.bottleneck
    bottleneck_name = problem.devices[bottleneck.device].name if bottleneck else "—"
    unit_label = f" {unit}" if unit else ""
    lines = [
        f"### placer plan: {_md(problem.name)}",
        "",
        f"**max-load {_num(result.max_load * scale)}{_md(unit_label)}** (bottleneck "
        f"{_md(bottleneck_name)}), predicted throughput **{_num(result.throughput)} "
        f"{_md(per)}**, {len(stages)} stages"
        + ("" if evaluation.valid else ", **invalid**: " + _md("; ".join(evaluation.violations))),
        "",
    ]
    if (sim := result.simulation) is not None:
        lines += [
            f"simulated {sim.microbatches} microbatches ({sim.schedule.value}): makespan "
            f"{_num(sim.makespan * scale)}{_md(unit_label)}, {_num(sim.throughput)} "
            f"{_md(per)}, bubbles {100 * sim.bubble_fraction:.1f}% of stage time; steady "
            f"state {_num(sim.steady_throughput)} {_md(per)}",
            "",
        ]
    lines += [
        f"| # | device | ops | compute{unit_label} | comm{unit_label} | load{unit_label} "
        "| memory | cap |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for i, stage in enumerate(stages, start=1):
        name = _md(stage.device)
        if stage.device == bottleneck_name:
            name = f"**{name}** (bottleneck)"
        lines.append(
            f"| {i} | {name} | {len(stage.ops)} | {_num(stage.compute * scale)} | "
            f"{_num(stage.communication * scale)} | {_num(stage.load * scale)} | "
            f"{_bytes(stage.memory_bytes)} | {_bytes(stage.memory_cap_bytes)} |"
        )
    lines += ["", "```text"]
    lines += _text_charts(stages, result.max_load, width, scale, unit_label)
    lines += ["```", ""]
    for i, stage in enumerate(stages, start=1):
        names = ", ".join(_md(problem.ops[j].key) for j in stage.ops)
        lines.append(
            f"<details><summary>stage {i}: {_md_html(stage.device)}, {len(stage.ops)} ops"
            "</summary>"
        )
        lines += ["", names, "", "</details>"]
    for note in result.notes:
        lines.append(f"> note: {_md(note)}")
    return "\n".join(lines) + "\n"


def _text_charts(stages, max_load: float, width: int, scale: float, unit_label: str):
    """Text bar charts of each stage's load (compute ``█``, communication ``▒``; the
    bottleneck spans ``width``) and memory (``█`` used of the cap, ``·`` free)."""
    lines: list[str] = []
    top = max(max_load, 1e-300)
    label = max((len(s.device) for s in stages), default=6)
    # no way out of the fence, and no control characters inside it
    plain = {s.device: printable(s.device.replace("`", "'")) for s in stages}
    lines += [f"load (█ compute, ▒ communication; {width} = the bottleneck)"]
    for stage in stages:
        compute = round(width * stage.compute / top)
        comm = max(0, min(width - compute, round(width * stage.load / top) - compute))
        bar = ("█" * compute + "▒" * comm).ljust(width)
        lines.append(
            f"{plain[stage.device].ljust(label)} {bar} {_num(stage.load * scale)}{unit_label}"
        )
    lines.append("memory (█ used of the cap, · free)")
    for stage in stages:
        cap = stage.memory_cap_bytes
        if math.isfinite(cap) and cap > 0:
            used = min(width, round(width * stage.memory_bytes / cap))
            bar = "█" * used + "·" * (width - used)
        else:
            bar = "(no cap)".ljust(width)
        used = f"{_bytes(stage.memory_bytes)} {_of(cap)}"
        lines.append(f"{plain[stage.device].ljust(label)} {bar} {used}")
    return lines
