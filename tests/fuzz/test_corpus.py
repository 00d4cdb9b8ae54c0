"""Run every file of the nasty-input corpus (``tests/fuzz/corpus/``, written by
``make_corpus.py`` beside it) through each command that reads its kind of file."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.fuzz.harness import Outcome, check_case, fails_with
from tests.fuzz.models import tiny_bytes
from tests.fuzz.test_fuzz_plans import _passes_only_finite

CORPUS = Path(__file__).parent / "corpus"

# Commands per kind of file: an id and the arguments, with {file} for the corpus file
# and {root} for the case directory (which holds chain.onnx, the four-op chain the plans
# and cost files are written for). An id ending in "-json" marks a command whose stdout
# must be strict JSON. Every file goes through the kind's first commands; files whose
# name says they carry odd names also through the table ("names") commands, which show
# names on the terminal.
CHAIN = "{root}/chain.onnx"
COMMANDS = {
    "cluster": [
        (
            "place-json",
            ("place", CHAIN, "--cluster", "{file}", "--solver", "dp", "--format", "json"),
        ),
    ],
    "workload": [
        ("place-json", ("place", "{file}", "--solver", "dp", "--format", "json")),
        (
            "compare-json",
            ("compare", "{file}", "--solvers", "dp,greedy,single,pipedream", "--format", "json"),
        ),
    ],
    "plan": [
        ("check", ("check", "{file}")),
        ("evaluate-json", ("evaluate", CHAIN, "{file}", "--format", "json")),
        (
            "report",
            ("report", CHAIN, "{file}", "--markdown", "{root}/r.md", "--html", "{root}/r.html"),
        ),
        ("split", ("split", CHAIN, "{file}", "-o", "{root}/stages")),
    ],
    "costs": [
        ("place-json", ("place", CHAIN, "--costs", "{file}", "--solver", "dp", "--format", "json")),
    ],
    "onnx": [
        ("place-json", ("place", "{file}", "--solver", "dp", "--format", "json")),
        ("inspect-json", ("inspect", "{file}", "--format", "json")),
    ],
}
NAMES_COMMANDS = {
    "cluster": [("place-table", ("place", CHAIN, "--cluster", "{file}", "--solver", "dp"))],
    "workload": [
        ("place-table", ("place", "{file}", "--solver", "dp")),
        ("compare-table", ("compare", "{file}", "--solvers", "dp,greedy")),
    ],
    "plan": [("evaluate-table", ("evaluate", CHAIN, "{file}"))],
    "costs": [],
    "onnx": [
        ("inspect-table", ("inspect", "{file}")),
        ("place-table", ("place", "{file}", "--solver", "dp")),
    ],
}
#: Cluster files with extreme but legal figures also go through the solvers whose
#: bounds and baselines divide by them (greedy's LP bound, auto's DP and bracket).
FIGURES_COMMANDS = [
    (
        "place-greedy-json",
        ("place", CHAIN, "--cluster", "{file}", "--solver", "greedy", "--format", "json"),
    ),
    ("place-auto-json", ("place", CHAIN, "--cluster", "{file}", "--format", "json")),
]
FIGURES = ("subnormal", "tiny", "huge", "million", "link_", "overhead", "efficiency")
#: Words in a file's name that say it carries odd names.
NAMED = ("name", "markup", "ansi", "bidi", "unicode", "utf8", "op_type")
#: Files that take seconds even when all is well: one command each.
ONE_COMMAND = ("alias_bomb", "chain_", "deep", "groups_", "wide_", "many_rows")
OUTPUTS = ["r.md", "r.html", "stages"]

# What some files must get, where the right answer is not in doubt: (kind, file) ->
# {command id or "*": allowed statuses}. Every other file must only keep the promises
# of the harness (a documented status, one line, nothing written on failure).
VALID = (0,)
REFUSED = (2,)
EXPECTED: dict[tuple[str, str], dict[str, tuple[int, ...]]] = {
    **{("cluster", name): {"*": VALID} for name in (
        "valid.yaml", "bom.yaml", "crlf.yaml", "bom_crlf.yaml",
    )},
    **{("cluster", name): {"*": REFUSED} for name in (
        "empty.yaml", "python_tag.yaml", "custom_tag.yaml", "alias_bomb.yaml", "self_alias.yaml",
        "merge_key.yaml", "date_scalar.yaml", "float_tag_abc.yaml", "bool_tag_maybe.yaml",
        "int_tag_empty.yaml", "nan.yaml", "inf.yaml", "float_overflow.yaml",
        "float_tag_overflow.yaml", "int_5000_digits.yaml", "count_zero.yaml",
        "count_2_63.yaml", "count_float.yaml", "count_bool.yaml", "not_utf8.yaml",
        "deep_flow.yaml", "deep_mapping.yaml", "duplicate_key.yaml", "duplicate_top_key.yaml",
        "two_documents.yaml", "top_list.yaml", "empty_devices.yaml", "unknown_type.yaml",
        "duplicate_group_names.yaml", "raw_nul_byte.yaml", "link_self_unknown.yaml",
    )},
    # extreme but legal figures: placed, or refused as out of range; never a diagnosis
    # ("not supported", "does not fit") that the device's real figures do not bear out
    **{("cluster", name): {"*": (0, 2)} for name in (
        "peak_flops_tiny.yaml", "peak_flops_subnormal.yaml", "peak_flops_huge.yaml",
        "memory_huge.yaml", "memory_bandwidth_subnormal.yaml", "efficiency_subnormal.yaml",
        "overhead_huge.yaml", "link_bandwidth_subnormal.yaml", "link_bandwidth_tiny.yaml",
        "link_latency_huge.yaml", "count_million.yaml",
    )},
    **{("workload", name): {"*": VALID} for name in ("valid.json", "bom.json", "crlf.json")},
    **{("workload", name): {"*": REFUSED} for name in (
        "empty.json", "null.json", "top_list.json", "not_utf8.json", "truncated.json",
        "trailing_garbage.json", "nan_latency.json", "infinity_latency.json",
        "negative_infinity.json", "overflow_latency.json", "negative_latency.json",
        "int_5000_digits.json", "deep_nesting.json", "deep_objects.json", "id_float.json",
        "id_string.json", "duplicate_id.json", "cycle.json", "self_loop.json",
        "dangling_edge.json", "edge_costs_disagree.json", "max_size_nan.json",
        "max_fpgas_negative.json", "nodes_empty.json", "raw_nul.json",
    )},
    ("workload", "no_devices.json"): {"*": (3,)},
    **{("plan", name): {"evaluate-json": VALID, "evaluate-table": VALID, "report": VALID,
                        "split": VALID} for name in ("valid.json", "valid.yaml", "bom.json")},
    **{("plan", name): {"*": REFUSED} for name in (
        "empty.json", "empty.yaml", "null.json", "top_list.json", "not_utf8.json",
        "not_utf8.yaml", "nul.yaml", "truncated.json", "max_load_date.yaml",
        "max_load_float_abc.yaml", "valid_bool_maybe.yaml", "python_tag.yaml",
        "alias_bomb.yaml", "deep.json", "deep.yaml", "duplicate_key.yaml",
        "max_load_5000_digits.json", "nodes_list_of_lists.json", "nodes_object.json",
        "nodes_string.json", "nodes_null.json", "device_list.json", "device_object.json",
        "device_number.json", "device_null.json",
    )},
    # check reads the plan alone: only the commands that read the model can tell these
    **{("plan", name): {"evaluate-json": REFUSED, "report": REFUSED, "split": REFUSED}
       for name in ("node_twice.json", "node_unknown.json", "other_model.json")},
    ("plan", "device_unknown.json"): {"evaluate-json": REFUSED, "report": REFUSED},
    **{("plan", name): {"check": (2, 4)} for name in (
        "max_load_nan.json", "max_load_infinity.json", "max_load_overflow.json",
        "max_load_inf.yaml", "max_load_nan.yaml", "throughput_infinity.json",
        "throughput_inf.yaml", "stage_load_nan.json", "stage_memory_inf.yaml",
        "load_disagrees.json", "over_memory_cap.json", "negative_load.json",
    )},
    **{("costs", name): {"*": VALID} for name in (
        "valid.csv", "valid.json", "bom.csv", "crlf.csv", "bom_crlf.csv", "json_bom.json",
        "comment.csv",
    )},
    **{("costs", name): {"*": REFUSED} for name in (
        "not_utf8.csv", "nul.csv", "nan.csv", "inf.csv", "overflow.csv", "negative.csv",
        "digits_5000.csv", "unknown_op.csv", "unknown_device.csv", "json_nan.json",
        "json_infinity.json", "json_overflow.json", "json_digits_5000.json",
        "json_null_seconds.json", "json_bool_seconds.json", "json_nested.json", "json_list.json",
        "json_deep.json", "json_not_utf8.json", "json_empty.json", "json_null.json",
        "wrong_extension.txt", "empty.csv", "json_duplicate_key.json", "two_comments.csv",
        "header_not_json.csv", "header_other_model.csv", "header_ansi_model.csv",
        "header_batch_bool.csv",
    )},
    **{("onnx", name): {"*": VALID} for name in ("valid_chain.onnx", "markup_names.onnx",
                                                  "ansi_names.onnx", "bidi_names.onnx")},
    **{("onnx", name): {"*": REFUSED} for name in (
        "empty.onnx", "text.onnx", "json.onnx", "zeros.onnx", "ones.onnx", "truncated.onnx",
        "no_nodes.onnx", "two_producers.onnx", "cycle.onnx", "self_loop.onnx",
        "missing_input.onnx", "unmade_output.onnx", "dim_negative.onnx",
        "weight_negative_dim.onnx", "conv_weight_negative_dim.onnx",
    )},
}  # fmt: skip

#: Files named by an ONNX model's external data: placer reads no weights, so it must
#: never open them.
FORBIDDEN = ("/etc/passwd", "/etc/shadow")
_opened: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and args and isinstance(args[0], str | bytes):
        path = args[0].decode(errors="replace") if isinstance(args[0], bytes) else args[0]
        if path.endswith(FORBIDDEN):
            _opened.append(path)


sys.addaudithook(_audit)  # audit hooks stay for the process; this one only records


def _never_opens_forbidden(outcome: Outcome) -> list[str]:
    found = [f"opened {path}, named by the model's external data" for path in _opened]
    _opened.clear()
    return found


def _commands(kind: str, name: str) -> list[tuple[str, tuple[str, ...]]]:
    commands = list(COMMANDS[kind])
    if any(word in name for word in NAMED):
        commands += NAMES_COMMANDS[kind]
    if kind == "cluster" and any(word in name for word in FIGURES):
        commands += FIGURES_COMMANDS
    if name.startswith(ONE_COMMAND):
        commands = commands[:1]
    return commands


def _cases() -> list:
    return [
        pytest.param(kind, path.name, command, id=f"{kind}/{path.name}/{command}")
        for kind in COMMANDS
        for path in sorted((CORPUS / kind).iterdir())
        for command, _ in _commands(kind, path.name)
    ]


def _expected(kind: str, name: str, command: str):
    statuses = EXPECTED.get((kind, name), {})
    allowed = statuses.get(command, statuses.get("*"))
    return fails_with(*allowed) if allowed is not None else None


@pytest.mark.parametrize(("kind", "name", "command"), _cases())
def test_corpus_file(run_placer, tmp_path, kind, name, command):
    """One corpus file through one command."""
    (tmp_path / "chain.onnx").write_bytes(tiny_bytes("chain.onnx"))
    file = tmp_path / name
    file.write_bytes((CORPUS / kind / name).read_bytes())
    args = dict(_commands(kind, name))[command]
    args = tuple(a.format(file=file, root=tmp_path) for a in args)
    promises = [p for p in (_expected(kind, name, command),) if p is not None]
    if kind == "plan" and command == "check":
        promises.append(_passes_only_finite(file))
    if kind == "onnx":
        _opened.clear()
        promises.append(_never_opens_forbidden)
    check_case(
        run_placer, tmp_path, *args, outputs=OUTPUTS, json_stdout=command.endswith("-json"),
        inputs=[file], extra=lambda outcome: [line for p in promises for line in p(outcome)],
    )  # fmt: skip


def test_corpus_is_what_the_generator_writes(tmp_path):
    """The committed corpus is exactly what ``make_corpus.py`` writes (no hand edits, no
    stale files)."""
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write(tmp_path)
    for kind in module.CATEGORIES:
        written = {p.name: p.read_bytes() for p in (tmp_path / kind).iterdir()}
        committed = {p.name: p.read_bytes() for p in (CORPUS / kind).iterdir()}
        assert sorted(written) == sorted(committed), kind
        different = [name for name in written if written[name] != committed[name]]
        assert not different, (kind, different[:5])


def test_corpus_files_are_small():
    sizes = {p: p.stat().st_size for p in CORPUS.rglob("*") if p.is_file()}
    assert max(sizes.values()) < 256 * 1024, max(sizes, key=sizes.get)
