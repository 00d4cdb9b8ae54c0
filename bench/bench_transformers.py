"""``make bench-transformers``: whole ``placer place`` commands on exported transformers.

``python bench/bench_transformers.py [--time-limit S] [--runs N] [--models ...]
[--clusters ...] [--modes ...]``

For each model that ``bench/build_transformers.py`` exported, each cluster (placer's
built-in default and ``examples/2xa100_4xt4.yaml``) and each mode (inference, training),
``placer place MODEL --batch-size 8 --input-shape ...`` (sequences of 128 tokens, the T5
decoder's too; images 224 × 224) runs in a fresh process with ``--time-limit`` and
``--format json -o PLAN``, ``--runs`` times. The table gives the graph's node count, the
blocks and ideals placer reports (``n/a`` where its stats have none), the solver that made
the plan, the median wall time, the largest peak resident memory of the process, the
max-load, the proven lower bound, the gap and whether the plan is proven optimal. A
command still running at 3 × the limit is killed and recorded as a timeout.

Each plan is then checked with ``placer evaluate MODEL PLAN``: the evaluator's max-load
must equal the one ``place`` printed to a relative 1e-9; a row that differs is flagged.
The raw rows go to ``bench/results/transformers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from build_transformers import BATCH, DEFAULT_OUT, MODELS, SEQ  # noqa: E402  (path fix above)

CLUSTERS = {"default": None, "2xa100_4xt4": ROOT / "examples" / "2xa100_4xt4.yaml"}
MODES = ("inference", "training")
RESULTS = ROOT / "bench" / "results" / "transformers.json"
#: A command still running at this multiple of --time-limit is killed.
KILL_FACTOR = 3
#: The largest relative difference allowed between place's and evaluate's max-load.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Run:
    """One finished (or killed) process: exit code, wall seconds, peak RSS, stderr tail."""

    returncode: int | None
    wall: float
    peak_bytes: int
    stderr: str
    timed_out: bool = False


@dataclass
class Row:
    """One model × cluster × mode: the plan's figures and the evaluator's check."""

    model: str
    nodes: int
    cluster: str
    mode: str
    status: str = "ok"
    wall: list[float] = field(default_factory=list)
    peak_bytes: int = 0
    solver: str | None = None
    blocks: int | None = None
    ideals: int | None = None
    max_load: float | None = None
    lower_bound: float | None = None
    gap: float | None = None
    optimal: bool | None = None
    solve_seconds: float | None = None
    choice: str = ""
    notes: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    evaluated_max_load: float | None = None
    relative_difference: float | None = None
    error: str = ""
    command: str = ""


def timed(command: list[str], limit: float) -> Run:
    """Run ``command`` in a fresh process group; kill the group after ``limit`` seconds.

    Returns
    -------
    Run
        The exit code (None when killed), wall seconds, the process's peak resident
        memory (``wait4``'s ``ru_maxrss``, the largest of it and its children) and the
        last lines of its standard error.

    Notes
    -----
    ``ru_maxrss`` counts from the fork, so it includes the few MiB this script occupies
    at that moment (about 16 MiB): negligible beside placer's hundreds.
    """
    with tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(limit, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        stderr.seek(0)
        tail = "\n".join(stderr.read().strip().splitlines()[-5:])
    code = None if killed.is_set() else process.returncode
    return Run(code, wall, usage.ru_maxrss * 1024, tail, killed.is_set())


def count_nodes(path: Path) -> int:
    """Nodes of the ONNX graph at ``path`` (its main graph; weights not read)."""
    import onnx

    return len(onnx.load(path, load_external_data=False).graph.node)


def shape_options(model: str) -> list[str]:
    """``--batch-size 8 --input-shape NAME=D0,...`` for every input of ``model``."""
    options = ["--batch-size", str(BATCH)]
    for name, shape in MODELS[model].input_shapes(BATCH, SEQ).items():
        options += ["--input-shape", f"{name}={','.join(map(str, shape))}"]
    return options


def bench_one(
    path: Path, cluster: str, mode: str, time_limit: float, runs: int, plans: Path
) -> Row:
    """Place ``path`` ``runs`` times on ``cluster`` in ``mode``, then evaluate the plan."""
    model = path.stem
    row = Row(model, count_nodes(path), cluster, mode)
    common = [*shape_options(model), "--mode", mode]
    if CLUSTERS[cluster] is not None:
        common += ["--cluster", str(CLUSTERS[cluster])]
    plan = plans / f"{model}-{cluster}-{mode}.json"
    placer = [sys.executable, "-m", "placer"]
    command = [*placer, "place", str(path), *common, "--time-limit", f"{time_limit:g}",
               "--format", "json", "-o", str(plan)]  # fmt: skip
    row.command = " ".join(command[2:])
    for _ in range(runs):
        plan.unlink(missing_ok=True)
        run = timed(command, KILL_FACTOR * time_limit)
        row.wall.append(run.wall)
        row.peak_bytes = max(row.peak_bytes, run.peak_bytes)
        if run.timed_out:
            row.status, row.error = "timeout", f"killed at {KILL_FACTOR} × {time_limit:g} s"
            return row
        if run.returncode != 0:
            row.status, row.error = f"exit {run.returncode}", run.stderr
            return row
    document = json.loads(plan.read_text())
    stats = document.get("stats", {})
    row.solver = document["solver"]
    row.blocks, row.ideals, row.stats = stats.get("blocks"), stats.get("ideals"), stats
    row.max_load, row.lower_bound = document["max_load"], document.get("lower_bound")
    row.gap, row.optimal = document.get("gap"), document["optimal"]
    row.solve_seconds, row.notes = document.get("solve_seconds"), document.get("notes", [])
    # Why auto took that solver (placer says so in a note); kept for the JSON rows.
    row.choice = next((n for n in row.notes if n.startswith("auto chose")), "")

    evaluated = plan.with_suffix(".evaluated.json")
    check = [*placer, "evaluate", str(path), str(plan), *common, "--format", "json",
             "-o", str(evaluated)]  # fmt: skip
    run = timed(check, KILL_FACTOR * time_limit)
    if run.returncode != 0:
        row.status = "evaluate failed"
        row.error = f"{' '.join(check[2:])}: exit {run.returncode}: {run.stderr}"
        return row
    row.evaluated_max_load = json.loads(evaluated.read_text())["max_load"]
    row.relative_difference = abs(row.evaluated_max_load - row.max_load) / max(
        abs(row.max_load), sys.float_info.min
    )
    if row.relative_difference > TOLERANCE:
        row.status = "evaluate differs"
    return row


def _seconds(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1e3:.4g} ms" if x < 1 else f"{x:.4g} s"


def render(rows: list[Row], time_limit: float, runs: int) -> None:
    """Print ``rows`` as a rich table, problems in red."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"placer place on transformers: --time-limit {time_limit:g}, "
                        f"median of {runs} fresh process{'es' if runs > 1 else ''}")  # fmt: skip
    words = ("model", "cluster", "mode", "solver", "auto's reason")
    for name in ("model", "nodes", "cluster", "mode", "blocks", "ideals", "solver", "wall s",
                 "peak MiB", "max-load", "bound", "gap", "optimal", "evaluate Δ",
                 words[-1]):  # fmt: skip
        table.add_column(name, justify="left" if name in words else "right")
    for row in rows:
        wall = statistics.median(row.wall) if row.wall else None
        failed = row.status != "ok"
        table.add_row(
            row.model, f"{row.nodes:,}", row.cluster, row.mode,
            "n/a" if row.blocks is None else f"{row.blocks:,}",
            "n/a" if row.ideals is None else f"{row.ideals:,}",
            row.solver or row.status,
            "-" if wall is None else f"{wall:.1f}",
            f"{row.peak_bytes / 2**20:,.0f}",
            _seconds(row.max_load), _seconds(row.lower_bound),
            "-" if row.gap is None else f"{row.gap:.3%}",
            "-" if row.optimal is None else ("yes" if row.optimal else "no"),
            "-" if row.relative_difference is None else f"{row.relative_difference:.1e}",
            row.choice.partition(": ")[2][:60],
            style="red" if failed else None,
        )  # fmt: skip
    console = Console(width=None if sys.stdout.isatty() else 200)  # logs are not 80 wide
    console.print(table)
    for row in rows:
        if row.status != "ok":
            console.print(f"[red]{row.model} {row.cluster} {row.mode}: {row.status}[/red]: "
                          f"{row.error}\n  {row.command}", highlight=False)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--clusters", nargs="+", choices=list(CLUSTERS), default=list(CLUSTERS))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--time-limit", type=float, default=60)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    missing = [m for m in args.models if not (args.models_dir / f"{m}.onnx").exists()]
    if missing:
        raise SystemExit(f"not built: {', '.join(missing)} (run bench/build_transformers.py)")
    rows = []
    with tempfile.TemporaryDirectory() as plans:
        for model in args.models:
            for cluster in args.clusters:
                for mode in args.modes:
                    path = args.models_dir / f"{model}.onnx"
                    row = bench_one(path, cluster, mode, args.time_limit, args.runs, Path(plans))
                    wall = statistics.median(row.wall) if row.wall else 0
                    print(f"{model} {cluster} {mode}: {row.status}, {wall:.1f} s", flush=True)
                    rows.append(row)
                    args.results.parent.mkdir(parents=True, exist_ok=True)
                    args.results.write_text(json.dumps(
                        {"time_limit": args.time_limit, "runs": args.runs,
                         "rows": [asdict(r) for r in rows]}, indent=1))  # fmt: skip
    render(rows, args.time_limit, args.runs)


if __name__ == "__main__":
    main()
