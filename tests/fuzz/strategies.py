"""Hypothesis strategies for hostile inputs: text files (JSON, YAML, CSV), ONNX graphs,
numbers for options and names for files.

Documents are built in two steps: a grammar draws a document that is valid, or nearly,
then edits corrupt it -- a value swapped for a nasty one at a random path, a key
dropped, repeated or renamed -- and the text is written out with nasty tokens that no
Python value stands for (``NaN``, ``1e400``, YAML tags, dates) and bent at the byte
level (a BOM, CRLF, truncation, bytes that are not UTF-8).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import strategies as st

# --- names ---------------------------------------------------------------------------

#: Names that have broken, or could break, a terminal, rich markup, a file name or a
#: parser: markup, escape sequences, line breaks, bidi overrides, lone surrogates,
#: wide and combining characters, path separators, spaces only, very long.
ODD_NAMES = [
    "",
    " ",
    "[/]",
    "[red]x",
    "[bold]a[/bold]",
    "a]b[c",
    "[link=http://x]y[/link]",
    ":smile:",
    "\x1b[31mred\x1b[0m",
    "\x1b]0;title\x07",
    "\x1b[2J",
    "a\nb",
    "a\rb",
    "tab\there",
    "\x00",
    "\x7f",
    "\x9b31m",
    "\u202eevil",
    "\u200b",
    "名前",
    "😀",
    "e\u0301",
    "a/b",
    "../x",
    "-x",
    "--help",
    "NaN",
    "null",
    "1e400",
    "'\"",
    "<script>x</script>",
    "&amp;",
    "%s%n",
    "{0}",
    "a" * 300,
    "\ud800",
]

names = st.one_of(
    st.sampled_from(ODD_NAMES),
    st.text(min_size=0, max_size=12),
    st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True),
)

# --- numbers -------------------------------------------------------------------------

#: Spellings of numbers for options and fields: special floats, signed zeros, values
#: past float or int64 range, subnormals, Python-only syntax, other scripts' digits.
NASTY_NUMBER_TEXTS = [
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "+inf",
    "Infinity",
    "infinity",
    "-0",
    "-0.0",
    "0",
    "0.0",
    "1e400",
    "-1e400",
    "1e-400",
    "5e-324",
    "4.9e-324",
    "2.2250738585072014e-308",
    "1.7976931348623157e308",
    "1e308",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "1" + "0" * 400,
    "9" * 5000,
    "1e9",
    "1_000",
    "0x10",
    "0o7",
    "0b1",
    " 5",
    "5 ",
    "",
    "1,5",
    "1.5.5",
    "\u0661\u0662",
    "\uff18",
    "½",
    "1e",
    "e1",
    ".",
    "-",
    "+1",
    "1j",
    "True",
    "1/2",
]

nasty_number_text = st.one_of(
    st.sampled_from(NASTY_NUMBER_TEXTS),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(2**70), 2**70).map(str),
)

# --- JSON with tokens no Python value stands for ------------------------------------


@dataclass(frozen=True)
class Raw:
    """A token written into the document's text as it is (``NaN``, ``1e400``, a tag)."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """A mapping written with its pairs as given: repeated keys stay repeated."""

    items: tuple[tuple[str, Any], ...]


DEEP = 1200  # deeper than Python's default recursion limit of 1000

#: Values that no valid field holds: non-finite and overflowing numbers, digits past
#: Python's int conversion limit, the wrong type, empty and deeply nested containers.
NASTY_JSON_TOKENS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1e-400",
    "5e-324",
    "-0",
    "-0.0",
    "1.7976931348623157e308",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "1" + "0" * 400,
    "9" * 5000,
    "1e999999999",
    "0.1e-99999",
    "true",
    "false",
    "null",
    '""',
    '"x"',
    '"NaN"',
    '"1e400"',
    '"Infinity"',
    "[]",
    "{}",
    "[[]]",
    '{"a": 1}',
    "[1, 2]",
    '"\\u0000"',
    '"\\ud800"',
    '"[/]"',
    '"\\u001b]0;t\\u0007"',
    '"\\u001b[31mred"',
    '"a\\nb"',
    '"\\u202e"',
    "[" * DEEP + "]" * DEEP,
    '{"a": ' * DEEP + "1" + "}" * DEEP,
    "1.5",
    "0",
    "-1",
    "3",
    "2",
    '"1"',
    '"0"',
    '"2"',
]

nasty_json = st.one_of(
    st.sampled_from(NASTY_JSON_TOKENS).map(Raw),
    names,
    st.integers(-(2**66), 2**66),
    st.floats(allow_nan=False, allow_infinity=False),
)


def to_json(value: Any, indent: bool = True) -> str:
    """Write ``value`` as JSON, :class:`Raw` tokens and :class:`Pairs` as they are."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        return (
            "{" + ", ".join(f"{json.dumps(k)}: {to_json(v, indent)}" for k, v in value.items) + "}"
        )
    if isinstance(value, dict):
        sep = ",\n" if indent else ", "
        return (
            "{" + sep.join(f"{json.dumps(k)}: {to_json(v, indent)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ", ".join(to_json(v, indent) for v in value) + "]"
    if isinstance(value, float) and value != value:  # NaN from a draw: keep it raw
        return "NaN"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (UnicodeEncodeError, ValueError):
        return json.dumps(value)


# --- YAML with tokens no Python value stands for ------------------------------------

#: YAML scalars that fail to construct, mean something else in YAML 1.1 (``1:30`` is
#: 90, ``no`` is false), carry refused tags, refer to themselves, or nest too deeply.
NASTY_YAML_TOKENS = [
    ".nan",
    ".NaN",
    ".inf",
    "-.inf",
    "1e400",
    "-1e400",
    "5e-324",
    "-0",
    "2001-13-45",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "!!float abc",
    "!!float 1e400",
    "!!bool maybe",
    "!!int 0x",
    "!!int " + "9" * 5000,
    "!!binary AAA",
    "!!set {a}",
    "!!omap [a: 1]",
    "!!timestamp yesterday",
    "!!str",
    "!!null x",
    "~",
    "null",
    "yes",
    "no",
    "on",
    "off",
    "0o17",
    "0x_",
    "1_000",
    "1:30",
    "0b101",
    "&a [*a]",
    "*undefined",
    '"\\x00"',
    '"\\ud800"',
    '"\\e[31mred"',
    '"\\e]0;t\\a"',
    "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system",
    "!custom x",
    "[" * DEEP + "]" * DEEP,
    "{a: " * DEEP + "1" + "}" * DEEP,
    "'[/]'",
    "|\n  multi\n  line",
    ">-\n  folded",
    "? complex key",
    "[]",
    "{}",
    "''",
    "-",
    "!!float",
    "9" * 5000,
    "0." + "0" * 400 + "1",
    "1e-320",
    "1e308",
    "1.8e308",
    "~/.ssh",
]


def to_yaml(value: Any, raw: dict[str, str]) -> str:
    """Write ``value`` as YAML; a :class:`Raw` becomes a placeholder, then its text."""
    marks: dict[str, str] = {}

    def swap(node: Any) -> Any:
        if isinstance(node, Raw):
            key = f"zzraw{len(marks)}zz"
            marks[key] = raw.get(node.text, node.text)
            return key
        if isinstance(node, Pairs):
            key = f"zzpairs{len(marks)}zz"
            inner = ", ".join(f"{json.dumps(k)}: {yaml_scalar(v)}" for k, v in node.items)
            marks[key] = "{" + inner + "}"
            return key
        if isinstance(node, dict):
            return {str(k): swap(v) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [swap(v) for v in node]
        return node

    def yaml_scalar(node: Any) -> str:
        """``node`` in YAML's flow style (JSON is flow YAML), raw tokens as they are."""
        if isinstance(node, Raw):
            return raw.get(node.text, node.text)
        if isinstance(node, Pairs):
            return (
                "{" + ", ".join(f"{json.dumps(k)}: {yaml_scalar(v)}" for k, v in node.items) + "}"
            )
        if isinstance(node, dict):
            return (
                "{"
                + ", ".join(f"{json.dumps(str(k))}: {yaml_scalar(v)}" for k, v in node.items())
                + "}"
            )
        if isinstance(node, list | tuple):
            return "[" + ", ".join(yaml_scalar(v) for v in node) + "]"
        if isinstance(node, float) and node != node:
            return ".nan"
        if isinstance(node, float) and node in (float("inf"), float("-inf")):
            return ".inf" if node > 0 else "-.inf"
        return json.dumps(node)

    text = yaml.safe_dump(swap(value), sort_keys=False, allow_unicode=True, width=10**6)
    for key, token in marks.items():
        if "\n" in token:  # block scalars need the key's indentation
            token = json.dumps(token)
        text = re.sub(rf"(?<![\w]){key}(?![\w])", lambda _m, t=token: t, text)
    return text


# --- editing a document --------------------------------------------------------------


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _set(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    if isinstance(document, dict):
        copy = dict(document)
        copy[head] = _set(document[head], tuple(rest), value)
        return copy
    copy = list(document)
    copy[head] = _set(document[head], tuple(rest), value)
    return copy


def _get(document: Any, path: tuple) -> Any:
    for key in path:
        document = document[key]
    return document


@st.composite
def edited(draw, document: Any, values: st.SearchStrategy = nasty_json, max_edits: int = 3) -> Any:
    """``document`` with up to ``max_edits`` edits at random paths: a value replaced, a
    key removed, repeated with another value, or renamed; a list emptied or grown."""
    count = 0 if draw(st.integers(0, 9)) < 3 else draw(st.integers(1, max_edits))
    for _ in range(count):
        paths = _paths(document)
        if len(paths) > 1 and draw(st.integers(0, 9)):
            paths = paths[1:]  # the whole document only now and then
        path = draw(st.sampled_from(paths))
        target = _get(document, path)
        kind = draw(
            st.sampled_from(
                ["replace", "replace", "replace", "drop", "repeat", "rename", "grow", "wrap"]
            )
        )
        if kind == "replace" or not path:
            document = _set(document, path, draw(values))
            continue
        parent_path, key = path[:-1], path[-1]
        parent = _get(document, parent_path)
        if kind == "drop":
            if isinstance(parent, dict):
                parent = {k: v for k, v in parent.items() if k != key}
            else:
                parent = [v for i, v in enumerate(parent) if i != key]
        elif kind == "repeat" and isinstance(parent, dict):
            parent = Pairs((*parent.items(), (key, draw(values))))
            document = _set(document, parent_path, parent)
            break  # a Pairs cannot be edited further
        elif kind == "rename" and isinstance(parent, dict):
            new = draw(
                st.sampled_from(
                    [key.upper(), key + " ", " " + key, key.replace("a", "а"), "", key * 2]
                )
            )
            parent = {(new if k == key else k): v for k, v in parent.items()}
        elif kind == "grow" and isinstance(target, list):
            extra = draw(st.integers(1, 3))
            parent = _set(
                parent, (key,), target + ([target[0]] * extra if target else [draw(values)])
            )
        elif kind == "wrap":
            parent = _set(
                parent, (key,), draw(st.sampled_from([[target], {"value": target}, [[target]]]))
            )
        document = _set(document, parent_path, parent)
    return document


# --- text and bytes ------------------------------------------------------------------

BOM = "\ufeff"


@st.composite
def bent_text(draw, text: str) -> bytes:
    """``text`` encoded, then bent: a BOM, CRLF or CR line ends, tabs, a NUL, bytes that
    are not UTF-8, UTF-16, truncation, trailing garbage, a repeated copy. Left as it is
    in six cases out of ten, so that the content's own faults are reached too."""
    if draw(st.integers(0, 9)) < 6:
        return text.encode("utf-8", "surrogatepass")
    kind = draw(
        st.sampled_from(
            [
                "none",
                "none",
                "none",
                "bom",
                "crlf",
                "cr",
                "tabs",
                "nul",
                "latin1",
                "utf16",
                "truncate",
                "garbage",
                "twice",
                "empty",
                "whitespace",
                "bom_crlf",
                "invalid_byte",
            ]
        )
    )
    if kind == "bom":
        return (BOM + text).encode()
    if kind == "bom_crlf":
        return (BOM + text.replace("\n", "\r\n")).encode()
    if kind == "crlf":
        return text.replace("\n", "\r\n").encode()
    if kind == "cr":
        return text.replace("\n", "\r").encode()
    if kind == "tabs":
        return text.replace("  ", "\t").encode()
    data = text.encode("utf-8", "surrogatepass")
    if kind == "nul":
        at = draw(st.integers(0, len(data)))
        return data[:at] + b"\x00" + data[at:]
    if kind == "latin1":
        return text.encode("latin-1", "replace") + "é".encode("latin-1")
    if kind == "utf16":
        return text.encode("utf-16", "surrogatepass")
    if kind == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == "garbage":
        return data + draw(
            st.sampled_from(
                [b"}", b"]]", b"\n---\nx: 1\n", b"\x80", b" trailing", b",", b"\n...\n"]
            )
        )
    if kind == "twice":
        return data + b"\n" + data
    if kind == "empty":
        return b""
    if kind == "whitespace":
        return draw(st.sampled_from([b" ", b"\n\n", b"\t", BOM.encode(), b"\r\n"]))
    if kind == "invalid_byte":
        at = draw(st.integers(0, len(data)))
        return (
            data[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf5"]))
            + data[at:]
        )
    return data


# --- clusters ------------------------------------------------------------------------

CATALOG = ["a100-40gb", "a100-80gb", "h100-sxm", "v100-32gb", "t4", "l4", "cpu"]

# Each quantity in three tiers: ordinary values, legal extremes (subnormal, near the
# float limit, absurd but positive) and values that must be refused.
# fmt: off
FIGURES = {
    "size": (
        ["80GiB", "40GB", "512MiB", "1.5TB", "4096", "80 GiB"],
        ["1", "1e-20", "5e-324", "1e308TB", "1e30", "1 B", "1.7976931348623157e308"],
        ["1e400GB", "0", "-1GB", "NaN GB", "inf", "\uff18\uff10GiB", "80GB/s", "80 gigs", ""],
    ),
    "flops": (
        ["312TFLOPS", "19.5 TFLOP/s", "900 GFLOPS", "1e12", "312tflops"],
        ["1e-20", "5e-324", "1e308", "1e308TFLOPS", "1 FLOPS", "1e-300"],
        ["1e400", "0", "-1TFLOPS", "nanTFLOPS", "inf", "12 apples"],
    ),
    "bandwidth": (
        ["600GB/s", "25Gbps", "100Gbit/s", "1.6TB/s", "32GBps"],
        ["5e-324", "1e-300GB/s", "1e308TB/s", "1 B/s", "1e-20"],
        ["1e400GB/s", "0GB/s", "12gb/s", "-5GB/s", "inf GB/s", "fast"],
    ),
    "time": (
        ["5us", "5\u00b5s", "2ms", "0", "1s", "100ns"],
        ["1e308s", "5e-324", "1e-300", "1e30", "-0"],
        ["1e400us", "nan s", "-1us", "1 fortnight", "inf"],
    ),
    "fraction": (
        ["0.5", "60%", "1", "100%"],
        ["1e-300", "5e-324", "1e-20"],
        ["0%", "1.0000001", "nan%", "0", "-0.5", "2"],
    ),
    "count": (
        [1, 2, 4],
        [64, 1000, 2**31, 10**6],
        [0, -1, 1.5, "3", True, None, 2**63, 10**20, "1e6", [], {}, 1e400],
    ),
}
# fmt: on
_TIERS = ["ok"] * 7 + ["extreme"] * 2 + ["bad"]


@st.composite
def figure(draw, kind: str) -> Any:
    """A value of quantity ``kind``: ordinary mostly, sometimes extreme or invalid, and
    sometimes a raw JSON/YAML token (NaN, 1e400, a huge integer)."""
    ok, extreme, bad = FIGURES[kind]
    tier = draw(st.sampled_from(_TIERS))
    if tier == "bad" and draw(st.booleans()):
        return Raw(draw(st.sampled_from(NASTY_JSON_TOKENS[:18])))
    return draw(st.sampled_from({"ok": ok, "extreme": extreme, "bad": bad}[tier]))


def _maybe(draw, chance: int = 3) -> bool:
    return draw(st.integers(0, chance)) == 0


#: A CPU group's ``cores``: lists and range strings, valid or not for the group's count.
core_lists = st.one_of(
    st.lists(st.integers(0, 7), min_size=1, max_size=8, unique=True),
    st.lists(st.one_of(st.integers(-2, 70_000), st.booleans(), st.floats(), st.text(max_size=2)),
             max_size=4),
    st.sampled_from(["0-3", "0-1,4-5", "7", "3-0", "0-2-4", "x", "", " 1 - 2 ,5", "1,1",
                     "0-99999999999", "-1", "٠-١"]),
    st.integers(-2, 8),
)  # fmt: skip


def _socket(draw, group: dict[str, Any]) -> None:
    """Sometimes a socket's figures: shared bandwidth and cores (on any class)."""
    if _maybe(draw):
        group["shared_bandwidth"] = draw(figure("bandwidth"))
    if _maybe(draw):
        group["cores"] = draw(core_lists)
    if _maybe(draw):
        group["layout"] = draw(st.sampled_from(["nchw", "nhwc"]))


@st.composite
def device_groups(draw, index: int) -> dict:
    """One device group: a catalog type with overrides, or explicit figures."""
    if draw(st.integers(0, 2)):
        kinds = CATALOG * 4 + ["a100", "TPU", ""]
        group: dict[str, Any] = {"type": draw(st.sampled_from(kinds))}
        if draw(st.booleans()):
            group["name"] = draw(st.one_of(st.just(f"g{index}"), names))
        if draw(st.booleans()):
            group["count"] = draw(figure("count"))
        for key, kind in (("efficiency", "fraction"), ("overhead", "time"), ("memory", "size")):
            if _maybe(draw):
                group[key] = draw(figure(kind))
        if _maybe(draw):
            flops = figure("flops")
            group["peak_flops"] = draw(st.one_of(
                flops,
                st.fixed_dictionaries({"fp32": flops}, optional={"fp16": flops, "int4": flops}),
            ))  # fmt: skip
        _socket(draw, group)
        return group
    group = {
        "name": draw(st.one_of(st.just(f"g{index}"), names)),
        "class": draw(st.sampled_from(["accelerator"] * 3 + ["cpu"] * 2 + ["gpu", "", "CPU"])),
        "peak_flops": draw(figure("flops")),
        "memory": draw(figure("size")),
        "memory_bandwidth": draw(figure("bandwidth")),
    }
    if draw(st.booleans()):
        group["efficiency"] = draw(figure("fraction"))
    if draw(st.booleans()):
        group["overhead"] = draw(figure("time"))
    if draw(st.booleans()):
        group["count"] = draw(figure("count"))
    _socket(draw, group)
    return group


@st.composite
def cluster_documents(draw) -> dict:
    """A cluster file's document: catalog and explicit groups with ordinary, extreme or
    invalid figures, links between known, unknown and repeated groups."""
    groups = [draw(device_groups(i)) for i in range(draw(st.sampled_from([1, 1, 2, 2, 3, 0])))]
    document: dict[str, Any] = {}
    if draw(st.booleans()):
        document["name"] = draw(names)
    document["devices"] = groups
    group_names = [g.get("name", g.get("type", "x")) for g in groups] or ["x"]
    if draw(st.booleans()):
        member = st.one_of(st.sampled_from(group_names), st.sampled_from(group_names), names)
        link = st.fixed_dictionaries(
            {"between": st.one_of(st.lists(member, min_size=2, max_size=2),
                                  st.lists(member, max_size=3))},
            optional={"bandwidth": figure("bandwidth"), "latency": figure("time")},
        )  # fmt: skip
        pairs = draw(st.lists(link, max_size=3))
        if draw(st.booleans()):
            document["links"] = pairs
        else:
            links: dict[str, Any] = {"pairs": pairs}
            if draw(st.booleans()):
                links["default"] = draw(st.fixed_dictionaries(
                    {}, optional={"bandwidth": figure("bandwidth"), "latency": figure("time")}
                ))  # fmt: skip
            document["links"] = links
    return document


@st.composite
def cluster_files(draw) -> bytes:
    """The bytes of a cluster YAML file, built, edited and bent."""
    document = draw(edited(draw(cluster_documents()), max_edits=2))
    raw = {token: token for token in NASTY_YAML_TOKENS}
    values = st.sampled_from(NASTY_YAML_TOKENS).map(Raw)
    if _maybe(draw, 4):
        document = draw(edited(document, values=values, max_edits=2))
    return draw(bent_text(to_yaml(document, raw)))


# --- workloads -----------------------------------------------------------------------


@st.composite
def workload_files(draw) -> bytes:
    """The bytes of a workload JSON file: a valid chain, edited and bent."""
    from tests.fuzz.models import workload_document

    document = workload_document(draw(st.integers(1, 5)), training=draw(st.booleans()))
    document = draw(edited(document, max_edits=3))
    return draw(bent_text(to_json(document)))


# --- plans ---------------------------------------------------------------------------

PLAN_VALUES = st.one_of(
    nasty_json,
    st.sampled_from(
        [
            [["n0"]],
            [{"a": 1}],
            [1.5],
            [True],
            [None],
            "n0",
            {"n0": 1},
            ["n0", "n0"],
            ["n9"],
            ["n0/grad"],
            ["a100-80gb:0"],
            {"x": 1},
            "a100-80gb:0 ",
            "A100-80GB:0",
            "cpu:0",
            "a100-80gb:9",
            [],
            [Raw("NaN")],
            [Raw("1e400")],
            ["[/]"],
            ["\x1b]0;t\x07"],
        ]
    ),
)


@st.composite
def plan_documents(draw, plan: str) -> Any:
    """``plan`` (placer's JSON output, :func:`tests.fuzz.models.plan_for`), edited."""
    document = json.loads(plan)
    if draw(st.integers(0, 5)) == 0:  # the expert split format of the paper's code
        document = {
            "fpgas": [{"nodes": stage["nodes"]} for stage in document["stages"]],
            "cpus": [],
        }
    return draw(edited(document, values=PLAN_VALUES, max_edits=3))


@st.composite
def plan_files(draw, plan: str) -> tuple[str, bytes]:
    """``plan`` (placer's JSON output) edited, as a JSON or YAML file: ``(suffix, bytes)``."""
    document = draw(plan_documents(plan))
    suffix = draw(st.sampled_from([".json", ".json", ".yaml", ".yml"]))
    if suffix == ".json":
        text = to_json(document)
    else:
        raw = {"NaN": ".nan", "Infinity": ".inf", "-Infinity": "-.inf"}
        if draw(st.integers(0, 2)) == 0:
            document = draw(
                edited(document, values=st.sampled_from(NASTY_YAML_TOKENS).map(Raw), max_edits=2)
            )
        text = to_yaml(document, raw)
    return suffix, draw(bent_text(text))


# --- measured costs ------------------------------------------------------------------

COST_OPS = ["n0", "n1", "n2", "n3", "n0/grad", "unknown", "", "[/]", "\x1b[2J", "N0", " n0", "n0 "]
COST_DEVICES = ["a100-80gb", "cpu", "gpu", "", "A100-80GB", "[/]", "cpu "]
SECONDS = [
    "0.001",
    "1e-6",
    "0",
    "-0",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e400",
    "1e-400",
    "5e-324",
    "-1",
    "",
    " 1",
    "1,5",
    "9" * 5000,
    "1e308",
    "0x10",
    "1_0",
    "\u0661",
    "null",
    "true",
]


@st.composite
def cost_files(draw) -> tuple[str, bytes]:
    """A ``--costs`` file for the chain model: ``(suffix, bytes)``, CSV or JSON."""
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(COST_OPS),
                st.sampled_from(COST_DEVICES),
                st.one_of(st.sampled_from(SECONDS), nasty_number_text),
            ),
            min_size=0,
            max_size=4,
        )
    )
    suffix = draw(st.sampled_from([".csv", ".csv", ".json", ".CSV", ".txt"]))
    if suffix.lower() == ".json":
        if draw(st.booleans()):
            document: Any = {}
            for op, device, seconds in rows:
                document.setdefault(op, {})[device] = (
                    Raw(seconds) if _is_json_number(seconds) else seconds
                )
            document = draw(edited(document, max_edits=2))
        else:
            document = draw(
                st.one_of(nasty_json, st.just([["n0", "cpu", 1.0]]), st.just({"n0": 1.0}))
            )
        text = to_json(document)
    else:
        header = draw(
            st.sampled_from(
                [
                    "op,device,seconds",
                    "\ufeffop,device,seconds",
                    "OP,DEVICE,SECONDS",
                    "op;device;seconds",
                    "seconds,op,device",
                    "op,device",
                    "op,device,seconds,extra",
                    "",
                    "op,op,seconds",
                    "op , device , seconds",
                ]
            )
        )
        quote = draw(st.booleans())
        lines = [header]
        for op, device, seconds in rows:
            cells = [op, device, seconds]
            if quote:
                cells = ['"' + c.replace('"', '""') + '"' for c in cells]
            lines.append(",".join(cells) + draw(st.sampled_from(["", "", ",", ",x"])))
        text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n", '\n"unterminated']))
    return suffix, draw(bent_text(text))


def _is_json_number(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?|NaN|-?Infinity", text))


# --- output file names ---------------------------------------------------------------

_NAME_ALPHABET = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/")


@st.composite
def output_names(draw) -> str:
    """A file name for ``-o``: odd characters, up to past the 255-byte limit, with or
    without an extension placer knows."""
    stem = draw(
        st.one_of(
            st.text(_NAME_ALPHABET, min_size=1, max_size=20),
            st.integers(200, 260).map(lambda n: "p" * n),
            st.sampled_from(
                ["-x", "--help", " ", ".", "..", ".hidden", "a b", "ä", "😀" * 60, "x" * 250]
            ),
        )
    )
    suffix = draw(
        st.sampled_from(
            [".json", ".yaml", ".yml", ".txt", ".JSON", "", ".json/", ".md", ".json.tmp"]
        )
    )
    return stem + suffix
