"""Record what placer prints, to check that a refactoring changes none of it.

``python bench/outputs.py record DIR`` runs ``place``, ``evaluate``, ``compare`` and
``inspect`` (table and JSON) and ``report`` (HTML and Markdown) on every workload under
``tests/data/dnn-partitioning`` (the expert plans included) and on every sample model
(both modes, the built-in cluster and ``examples/2xa100_4xt4.yaml``), each in a fresh
process, and writes one file per command with its exit status, stdout and stderr (the
checkout's path written ``<root>``, so that two checkouts compare).
``python bench/outputs.py diff OLD NEW`` lists the files that differ and exits 1 if any
does.

Only what depends on the clock is masked: the ``solve_seconds`` of JSON plans, the
``seconds`` of ``compare --format json`` and the time column of ``compare``'s table
(whose rows are compared token by token, since that column's width sets the table's).
Everything else must match byte for byte.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLACER = [sys.executable, "-m", "placer"]
WORKLOADS = ROOT / "tests" / "data" / "dnn-partitioning"
SHAPES = {
    "bert_base": ["--input-shape", "input_ids=8,128"],
    "gpt2_small": ["--input-shape", "input_ids=8,128"],
    "mobilenet_v2": ["--input-shape", "input=8,3,224,224"],
}
CLUSTERS = {
    "default": [],
    "2xa100_4xt4": ["--cluster", str(ROOT / "examples" / "2xa100_4xt4.yaml")],
}
#: JSON keys whose values are wall-clock times.
CLOCK_KEYS = {"solve_seconds", "seconds"}


def cases() -> list[tuple[str, Path, list[str], Path | None]]:
    """``(name, input, options, expert plan or None)`` for every case recorded."""
    found = []
    for path in sorted((WORKLOADS / "layer-graphs").glob("*.json")):
        found.append((path.stem, path, [], None))
    for path in sorted((WORKLOADS / "operator-graphs").glob("*.json")):
        found.append((f"op-{path.stem}", path, [], None))
    for expert in sorted((WORKLOADS / "human-experts").glob("*_expert.json")):
        graph = WORKLOADS / "layer-graphs" / expert.name.replace("_expert", "")
        if graph.exists():
            found.append((f"expert-{expert.stem}", graph, [], expert))
    for model, shape in SHAPES.items():
        for cluster, where in CLUSTERS.items():
            for mode in ("inference", "training"):
                options = [*shape, *where, "--mode", mode]
                found.append((f"{model}-{cluster}-{mode}", ROOT / "sample_models" /
                              f"{model}.onnx", options, None))  # fmt: skip
    return found


def _run(args: list[str]) -> str:
    done = subprocess.run([*PLACER, *args], capture_output=True, text=True, cwd=ROOT)
    stdout = _mask(done.stdout, timed_table=args[0] == "compare")
    return f"exit {done.returncode}\n--- stdout\n{stdout}--- stderr\n{done.stderr}"


def _mask(text: str, *, timed_table: bool = False) -> str:
    """``text`` with clock readings replaced by ``<t>``: JSON keys of
    :data:`CLOCK_KEYS`, and the last column of a ``timed_table``'s rows."""
    try:
        data = json.loads(text)
    except ValueError:
        if not timed_table:
            return text
        # the time column's width sets the table's: compare the tokens of each line
        masked = re.sub(r"(?m)^(\s+\S.*?\s)[0-9.e+-]+(\s*)$", r"\1<t>\2", text)
        lines = (" ".join(line.split()) for line in masked.splitlines())
        return "".join(re.sub("─+", "─", line) + "\n" for line in lines)
    return json.dumps(_mask_json(data), indent=2, sort_keys=True) + "\n"


def _mask_json(value):
    if isinstance(value, dict):
        return {k: "<t>" if k in CLOCK_KEYS else _mask_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_json(v) for v in value]
    return value


def record(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, options, expert in cases():
            print(name, flush=True)
            plan = expert or Path(tmp) / f"{name}.json"
            runs = {}
            if expert is None:
                runs["place"] = ["place", str(path), *options]
                runs["place-json"] = ["place", str(path), *options, "--format", "json",
                                      "-o", str(plan)]  # fmt: skip
                runs["compare"] = ["compare", str(path), *options]
                runs["compare-json"] = ["compare", str(path), *options, "--format", "json"]
                runs["inspect"] = ["inspect", str(path), *options]
                runs["inspect-json"] = ["inspect", str(path), *options, "--format", "json"]
            runs["evaluate"] = ["evaluate", str(path), str(plan)]
            runs["evaluate-json"] = ["evaluate", str(path), str(plan), "--format", "json"]
            html, markdown = Path(tmp) / f"{name}.html", Path(tmp) / f"{name}.md"
            runs["report"] = ["report", str(path), str(plan), *options, "--microbatches", "6",
                              "--html", str(html), "--markdown", str(markdown)]  # fmt: skip
            for command, args in runs.items():
                text = _run(args)
                if command == "place-json" and plan.exists():
                    text += "--- plan\n" + _mask(plan.read_text())
                for written in (html, markdown) if command == "report" else ():
                    if written.exists():
                        text += f"--- {written.suffix}\n" + written.read_text()
                text = text.replace(tmp, "<tmp>").replace(str(ROOT), "<root>")
                (out / f"{name}.{command}.txt").write_text(text)


def diff(old: Path, new: Path) -> int:
    names = sorted({p.name for p in old.glob("*.txt")} | {p.name for p in new.glob("*.txt")})
    differing = 0
    for name in names:
        a, b = old / name, new / name
        left = a.read_text().splitlines(keepends=True) if a.exists() else []
        right = b.read_text().splitlines(keepends=True) if b.exists() else []
        if left != right:
            differing += 1
            sys.stdout.writelines(difflib.unified_diff(left, right, str(a), str(b), n=1))
    print(f"{len(names)} outputs, {differing} differ")
    return 1 if differing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("record").add_argument("out", type=Path)
    compare = sub.add_parser("diff")
    compare.add_argument("old", type=Path)
    compare.add_argument("new", type=Path)
    args = parser.parse_args()
    if args.command == "record":
        record(args.out)
        return 0
    return diff(args.old, args.new)


if __name__ == "__main__":
    sys.exit(main())
