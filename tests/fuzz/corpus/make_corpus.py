"""Write the corpus of nasty input files that ``tests/fuzz/test_corpus.py`` runs one by one.

Usage::

    python tests/fuzz/corpus/make_corpus.py [OUTDIR]

writes ``cluster/``, ``workload/``, ``plan/``, ``costs/`` and ``onnx/`` under ``OUTDIR``
(default: the folder of this script), replacing what is there. Each file is small (the
largest is a 2,000-op chain) and aims at one way a hostile or unlucky user's file can
be wrong, or right in an unusual way: byte-order marks, CRLF, bytes that are not UTF-8,
NUL bytes, empty files, duplicate keys, YAML scalars that fail to construct, tags that
would run code, alias bombs, deep nesting, numbers past float and int64 range, extreme
but legal figures, rich markup and terminal escapes in names, and ONNX graphs that
break single assignment, carry odd attributes or dims, or point at files outside.

Plans are for the four-op chain ``n0 -> n1 -> n2 -> n3`` that the test builds, on the
built-in cluster (``a100-80gb:0``-``3``, ``cpu:0``). Nothing random is drawn and
nothing depends on placer's own output: running the script twice writes the same bytes,
and ``test_corpus.py`` checks that the committed files are what it writes.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import onnx
from onnx import AttributeProto, TensorProto, helper

BOM = b"\xef\xbb\xbf"
IR_VERSION = 8  # goes with opset 17
DEEP = 1200  # deeper than Python's default recursion limit

# --- cluster files ----------------------------------------------------------------------

CLUSTER = """name: corpus
devices:
  - type: a100-80gb
    count: 2
  - type: cpu
links:
  default: {bandwidth: 25GB/s, latency: 10us}
"""


def _cluster_with(field: str) -> bytes:
    """The base cluster with one more line in the A100 group."""
    return CLUSTER.replace("    count: 2\n", f"    count: 2\n    {field}\n").encode()


def _explicit(**figures: str) -> bytes:
    base = {
        "name": "asic",
        "class": "accelerator",
        "peak_flops": "20TFLOPS",
        "memory": "32GiB",
        "memory_bandwidth": "1TB/s",
    }
    base.update(figures)
    body = "".join(f"    {k}: {v}\n" for k, v in base.items())
    return f"devices:\n  - {body[4:]}".encode()


def _alias_bomb(key: str, levels: int) -> bytes:
    """``key`` holding 10**levels values through nested aliases ("billion laughs")."""
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, levels):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        text += f"{name}: &{name} [{', '.join(['*' + previous] * 10)}]\n"
    return (text + f"{key}: *{chr(ord('a') + levels - 1)}\n").encode()


def _groups(n: int) -> bytes:
    """``n`` device groups of one T4 each: every group is a device kind of its own."""
    return ("devices:\n" + "".join(f"  - {{type: t4, name: g{i}}}\n" for i in range(n))).encode()


def clusters() -> dict[str, bytes]:
    return {
        "valid.yaml": CLUSTER.encode(),
        "bom.yaml": BOM + CLUSTER.encode(),
        "crlf.yaml": CLUSTER.replace("\n", "\r\n").encode(),
        "bom_crlf.yaml": BOM + CLUSTER.replace("\n", "\r\n").encode(),
        "cr_only.yaml": CLUSTER.replace("\n", "\r").encode(),
        "empty.yaml": b"",
        "bom_only.yaml": BOM,
        "comment_only.yaml": b"# nothing here\n",
        "whitespace_only.yaml": b"  \n\t\n",
        "tab_indent.yaml": CLUSTER.replace("  - type: cpu", "\t- type: cpu").encode(),
        "duplicate_key.yaml": CLUSTER.replace(
            "    count: 2\n", "    count: 2\n    count: 3\n"
        ).encode(),
        "duplicate_top_key.yaml": (CLUSTER + "devices: []\n").encode(),
        "date_scalar.yaml": _cluster_with("memory: 2001-13-45"),
        "valid_date_scalar.yaml": _cluster_with("memory: 2001-12-14"),
        "float_tag_abc.yaml": _cluster_with("memory: !!float abc"),
        "bool_tag_maybe.yaml": _cluster_with("efficiency: !!bool maybe"),
        "int_tag_empty.yaml": _cluster_with("count: !!int"),
        "binary_tag.yaml": _cluster_with("memory: !!binary AAAA"),
        "set_tag.yaml": _cluster_with("memory: !!set {a, b}"),
        "python_tag.yaml": _cluster_with("memory: !!python/object/apply:os.system ['true']"),
        "custom_tag.yaml": _cluster_with("memory: !gigabytes 80"),
        "nul_byte.yaml": _cluster_with('name: "a\\0b"'),
        "raw_nul_byte.yaml": CLUSTER.encode().replace(b"corpus", b"cor\x00pus"),
        "nel_line_break.yaml": CLUSTER.encode().replace(b"corpus", b"cor\xc2\x85pus"),
        "not_utf8.yaml": CLUSTER.encode().replace(b"corpus", b"corp\xe9s"),
        "utf16.yaml": CLUSTER.encode("utf-16"),
        "deep_flow.yaml": ("devices: " + "[" * DEEP + "]" * DEEP + "\n").encode(),
        "deep_mapping.yaml": ("devices: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n").encode(),
        "int_5000_digits.yaml": _cluster_with("memory: " + "9" * 5000),
        "float_overflow.yaml": _cluster_with("memory: 1e400"),
        "float_tag_overflow.yaml": _cluster_with("memory: !!float 1e400"),
        "nan.yaml": _cluster_with("memory: .nan"),
        "inf.yaml": _cluster_with("memory: .inf"),
        "sexagesimal.yaml": _cluster_with("overhead: 1:30"),
        "yes_no.yaml": _cluster_with("class: no"),
        "count_zero.yaml": CLUSTER.replace("count: 2", "count: 0").encode(),
        "count_million.yaml": CLUSTER.replace("count: 2", "count: 1000000").encode(),
        "count_2_63.yaml": CLUSTER.replace("count: 2", "count: 9223372036854775808").encode(),
        "count_float.yaml": CLUSTER.replace("count: 2", "count: 2.5").encode(),
        "count_string.yaml": CLUSTER.replace("count: 2", 'count: "2"').encode(),
        "count_bool.yaml": CLUSTER.replace("count: 2", "count: true").encode(),
        "peak_flops_tiny.yaml": _explicit(peak_flops="1e-20"),
        "peak_flops_subnormal.yaml": _explicit(peak_flops="5e-324"),
        "peak_flops_huge.yaml": _explicit(peak_flops="1e308TFLOPS"),
        "memory_tiny.yaml": _explicit(memory="1"),
        "memory_huge.yaml": _explicit(memory="1e308TB"),
        "memory_bandwidth_subnormal.yaml": _explicit(memory_bandwidth="5e-324"),
        "efficiency_subnormal.yaml": _explicit(efficiency="5e-324"),
        "overhead_huge.yaml": _explicit(overhead="1e308s"),
        "overhead_negative_zero.yaml": _explicit(overhead="-0"),
        "fullwidth_digits.yaml": _explicit(memory="\uff18\uff10GiB"),
        "arabic_digits.yaml": _explicit(memory="\u0668\u0660GiB"),
        "link_bandwidth_subnormal.yaml": CLUSTER.replace("25GB/s", "5e-324").encode(),
        "link_bandwidth_tiny.yaml": CLUSTER.replace("25GB/s", "1e-300GB/s").encode(),
        "link_latency_huge.yaml": CLUSTER.replace("10us", "1e308s").encode(),
        "link_self_unknown.yaml": (
            CLUSTER + "  pairs:\n    - {between: [gpu, gpu], bandwidth: 1GB/s}\n"
        ).encode(),
        "link_three_groups.yaml": (
            CLUSTER + "  pairs:\n    - {between: [a100-80gb, cpu, cpu], bandwidth: 1GB/s}\n"
        ).encode(),
        "markup_names.yaml": CLUSTER.replace("corpus", '"[/]"')
        .replace("  - type: cpu", '  - type: cpu\n    name: "[bold]cpu[/]"')
        .encode(),
        "markup_group_name.yaml": CLUSTER.replace(
            "  - type: a100-80gb", '  - type: a100-80gb\n    name: "gpu[/]"'
        ).encode(),
        "ansi_name.yaml": CLUSTER.replace("corpus", '"\\e]0;pwned\\a\\e[2J"').encode(),
        "ansi_group_name.yaml": CLUSTER.replace(
            "  - type: a100-80gb", '  - type: a100-80gb\n    name: "\\e[31mred"'
        ).encode(),
        "bidi_name.yaml": CLUSTER.replace("corpus", '"\u202eevil"').encode(),
        "unicode_names.yaml": CLUSTER.replace(
            "  - type: cpu", "  - type: cpu\n    name: プロセッサ😀"
        ).encode(),
        "long_name.yaml": CLUSTER.replace("corpus", "n" * 20_000).encode(),
        "groups_50.yaml": _groups(50),
        "groups_200.yaml": _groups(200),
        "alias_bomb.yaml": _alias_bomb("devices", 9),
        "self_alias.yaml": b"devices: &a [*a]\n",
        "merge_key.yaml": b"base: &b {type: t4}\ndevices:\n  - <<: *b\n    count: 2\n",
        "two_documents.yaml": (CLUSTER + "---\n" + CLUSTER).encode(),
        "top_list.yaml": b"- type: t4\n",
        "top_scalar.yaml": b"a100\n",
        "top_null.yaml": b"~\n",
        "complex_key.yaml": b"? [devices]\n: []\n",
        "float_tag_empty.yaml": b"!!float\n...\n",
        "int_tag_document.yaml": b"!!int\n",
        "non_string_key.yaml": b"devices:\n  - {1: t4}\n",
        "empty_devices.yaml": b"devices: []\n",
        "devices_mapping.yaml": b"devices: {type: t4}\n",
        "unknown_type.yaml": b"devices:\n  - type: a100\n",
        "duplicate_group_names.yaml": (
            b"devices:\n  - {type: t4, name: x}\n  - {type: l4, name: x}\n"
        ),
        "unterminated_quote.yaml": b'devices:\n  - type: "t4\n',
        "bad_indent.yaml": b"devices:\n  - type: t4\n   count: 2\n",
        "tab_after_colon.yaml": b"devices:\n  - type:\tt4\n",
    }


# --- workload files -------------------------------------------------------------------


def _workload(**changes) -> dict:
    nodes = [
        {
            "name": f"op{i}",
            "id": i,
            "supportedOnFpga": 1,
            "cpuLatency": 2.0 + i,
            "fpgaLatency": 0.5 + i / 10,
            "isBackwardNode": 0,
            "colorClass": i,
            "size": 10.0,
        }
        for i in range(4)
    ]
    edges = [{"sourceId": i - 1, "destId": i, "cost": 0.25} for i in range(1, 4)]
    document = {
        "maxSizePerFPGA": 1000.0,
        "maxFPGAs": 2,
        "maxCPUs": 1,
        "nodes": nodes,
        "edges": edges,
    }
    document.update(changes)
    return document


def _node_field(field: str, token: str, node: int = 1) -> bytes:
    """The base workload with one node field written as the raw token."""
    document = _workload()
    document["nodes"][node][field] = "@@TOKEN@@"
    return json.dumps(document).replace('"@@TOKEN@@"', token).encode()


def _top_field(field: str, token: str) -> bytes:
    document = _workload()
    document[field] = "@@TOKEN@@"
    return json.dumps(document).replace('"@@TOKEN@@"', token).encode()


def _chain_workload(n: int, width: int = 1) -> bytes:
    nodes = [
        {"id": i, "supportedOnFpga": 1, "cpuLatency": 1.0, "fpgaLatency": 0.1, "isBackwardNode": 0}
        for i in range(n)
    ]
    edges = [{"sourceId": i - width, "destId": i, "cost": 0.01} for i in range(width, n)]
    return json.dumps(
        {"maxSizePerFPGA": 1e9, "maxFPGAs": 4, "maxCPUs": 1, "nodes": nodes, "edges": edges},
        separators=(",", ":"),
    ).encode()


def workloads() -> dict[str, bytes]:
    valid = json.dumps(_workload(), indent=1)
    edges_cost = _workload()
    edges_cost["edges"].append({"sourceId": 0, "destId": 2, "cost": 9.0})
    cycle = _workload()
    cycle["edges"].append({"sourceId": 3, "destId": 0, "cost": 0.25})
    self_loop = _workload()
    self_loop["edges"].append({"sourceId": 1, "destId": 1, "cost": 0.25})
    dangling = _workload()
    dangling["edges"].append({"sourceId": 3, "destId": 99, "cost": 0.25})
    duplicate_id = _workload()
    duplicate_id["nodes"][2]["id"] = 1
    markup = _workload()
    markup["nodes"][0]["name"] = "[/]"
    markup["nodes"][1]["name"] = "[bold red]x[/bold red]"
    ansi = _workload()
    ansi["nodes"][0]["name"] = "\x1b]0;pwned\x07\x1b[2J"
    ansi["nodes"][1]["name"] = "line\nbreak"
    unicode = _workload()
    unicode["nodes"][0]["name"] = "名前😀\u202eevil"
    huge_latency = _workload()
    for node in huge_latency["nodes"]:
        node["cpuLatency"] = node["fpgaLatency"] = 1.7976931348623157e308
    huge_cost = _workload()
    for edge in huge_cost["edges"]:
        edge["cost"] = 1.7976931348623157e308
    subnormal = _workload()
    for node in subnormal["nodes"]:
        node["cpuLatency"] = node["fpgaLatency"] = 5e-324
    zero = _workload()
    for node in zero["nodes"]:
        node["cpuLatency"] = node["fpgaLatency"] = 0.0
    unsupported = _workload(maxCPUs=0)
    for node in unsupported["nodes"]:
        node["supportedOnFpga"] = 0
    return {
        "valid.json": valid.encode(),
        "bom.json": BOM + valid.encode(),
        "crlf.json": valid.replace("\n", "\r\n").encode(),
        "empty.json": b"",
        "whitespace.json": b" \n",
        "null.json": b"null",
        "top_list.json": b"[]",
        "top_string.json": b'"workload"',
        "not_utf8.json": valid.encode().replace(b'"op0"', b'"op\xe90"'),
        "utf16.json": valid.encode("utf-16"),
        "nul_in_string.json": valid.encode().replace(b'"op0"', b'"op\\u00000"'),
        "raw_nul.json": valid.encode().replace(b'"op0"', b'"op\x000"'),
        "lone_surrogate.json": valid.encode().replace(b'"op0"', b'"\\ud800"'),
        "truncated.json": valid.encode()[: len(valid) // 2],
        "trailing_garbage.json": valid.encode() + b"}",
        "trailing_comma.json": valid.replace("\n}", ",\n}").encode(),
        "comment.json": b"// a workload\n" + valid.encode(),
        "single_quotes.json": valid.replace('"', "'").encode(),
        "two_documents.json": (valid + valid).encode(),
        "deep_nesting.json": _top_field("extra", "[" * DEEP + "]" * DEEP),
        "deep_objects.json": _top_field("extra", '{"a":' * DEEP + "1" + "}" * DEEP),
        "nan_latency.json": _node_field("cpuLatency", "NaN"),
        "infinity_latency.json": _node_field("fpgaLatency", "Infinity"),
        "negative_infinity.json": _node_field("cpuLatency", "-Infinity"),
        "overflow_latency.json": _node_field("cpuLatency", "1e400"),
        "negative_latency.json": _node_field("cpuLatency", "-1"),
        "negative_zero_latency.json": _node_field("cpuLatency", "-0.0"),
        "subnormal_latencies.json": json.dumps(subnormal).encode(),
        "zero_latencies.json": json.dumps(zero).encode(),
        "max_float_latencies.json": json.dumps(huge_latency).encode(),
        "max_float_edge_costs.json": json.dumps(huge_cost).encode(),
        "int_5000_digits.json": _node_field("cpuLatency", "9" * 5000),
        "int_400_digits.json": _node_field("cpuLatency", "1" + "0" * 400),
        "id_2_64.json": _node_field("id", "18446744073709551616"),
        "id_float.json": _node_field("id", "1.5"),
        "id_string.json": _node_field("id", '"1"'),
        "id_null.json": _node_field("id", "null"),
        "flag_string.json": _node_field("supportedOnFpga", '"yes"'),
        "flag_two.json": _node_field("isBackwardNode", "2"),
        "name_number.json": _node_field("name", "7"),
        "color_huge.json": _node_field("colorClass", "9223372036854775808"),
        "size_overflow.json": _node_field("size", "1e400"),
        "max_fpgas_huge.json": _top_field("maxFPGAs", "9223372036854775808"),
        "max_fpgas_million.json": _top_field("maxFPGAs", "1000000"),
        "max_fpgas_negative.json": _top_field("maxFPGAs", "-1"),
        "max_size_subnormal.json": _top_field("maxSizePerFPGA", "5e-324"),
        "max_size_nan.json": _top_field("maxSizePerFPGA", "NaN"),
        "no_devices.json": json.dumps(_workload(maxFPGAs=0, maxCPUs=0)).encode(),
        "nothing_fits.json": json.dumps(unsupported).encode(),
        "nodes_empty.json": json.dumps(_workload(nodes=[], edges=[])).encode(),
        "nodes_object.json": json.dumps(_workload(nodes={"a": 1})).encode(),
        "edges_missing.json": json.dumps(
            {k: v for k, v in _workload().items() if k != "edges"}
        ).encode(),
        "duplicate_key.json": valid.replace(
            '"maxFPGAs": 2', '"maxFPGAs": 2, "maxFPGAs": NaN'
        ).encode(),
        "duplicate_id.json": json.dumps(duplicate_id).encode(),
        "edge_costs_disagree.json": json.dumps(edges_cost).encode(),
        "cycle.json": json.dumps(cycle).encode(),
        "self_loop.json": json.dumps(self_loop).encode(),
        "dangling_edge.json": json.dumps(dangling).encode(),
        "markup_names.json": json.dumps(markup).encode(),
        "ansi_names.json": json.dumps(ansi).encode(),
        "unicode_names.json": json.dumps(unicode, ensure_ascii=False).encode(),
        "chain_1000.json": _chain_workload(1000),
        "wide_40.json": _chain_workload(80, width=40),
    }


# --- plans (of the four-op chain on the built-in cluster) ------------------------------


def _plan(**changes) -> dict:
    """A two-stage plan of the chain, figures consistent with each other."""
    stage = {
        "kind": "accelerator",
        "device_type": "a100-80gb",
        "compute": 2e-06,
        "communication": 1e-05,
        "load": 1.2e-05,
        "memory_bytes": 1024.0,
        "memory_cap_bytes": 85899345920.0,
    }
    document = {
        "placer_version": "0.1.0",
        "problem": "chain",
        "cluster": "default: 4x a100-80gb + cpu",
        "solver": "dp",
        "optimal": False,
        "max_load": 1.2e-05,
        "throughput": 1 / 1.2e-05,
        "time_unit": "s",
        "samples_per_step": 1,
        "lower_bound": 1e-06,
        "lower_bound_scope": "contiguous",
        "gap": 0.9166666666666666,
        "valid": True,
        "contiguous": True,
        "violations": [],
        "bottleneck": "a100-80gb:0",
        "stages": [
            {**stage, "device": "a100-80gb:0", "nodes": ["n0", "n1"]},
            {**stage, "device": "a100-80gb:1", "nodes": ["n2", "n3"]},
        ],
    }
    document.update(changes)
    return document


def _plan_token(path: tuple, token: str, yaml_file: bool = False) -> bytes:
    """The plan with the value at ``path`` written as the raw token."""
    document = _plan()
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "@@TOKEN@@"
    if yaml_file:
        import yaml

        text = yaml.safe_dump(document, sort_keys=False)
        return text.replace("'@@TOKEN@@'", token).replace("'@@TOKEN@@'", token).encode()
    return json.dumps(document, indent=1).replace('"@@TOKEN@@"', token).encode()


def _all_infinite(yaml_file: bool = False) -> str:
    """A plan whose figures agree with each other and are all infinite: a stage that
    never ends, throughput 0."""
    document = _plan(max_load="@@INF@@", throughput=0.0, gap=0.0)
    for stage in document["stages"]:
        stage.update(compute="@@INF@@", load="@@INF@@")
    if yaml_file:
        import yaml

        return yaml.safe_dump(document, sort_keys=False).replace("'@@INF@@'", ".inf")
    return json.dumps(document, indent=1).replace('"@@INF@@"', "Infinity")


def _stage_change(**changes) -> bytes:
    document = _plan()
    document["stages"][0].update(changes)
    return json.dumps(document).encode()


def plans() -> dict[str, bytes]:
    import yaml

    valid = json.dumps(_plan(), indent=1)
    valid_yaml = yaml.safe_dump(_plan(), sort_keys=False)
    training = _plan()
    training["stages"][1]["nodes"] = ["n2", "n3", "n0/grad"]
    expert = {"fpgas": [{"nodes": ["n0", "n1"]}, {"nodes": ["n2", "n3"]}], "cpus": []}
    expert_too_many = {"fpgas": [{"nodes": [f"n{i}"]} for i in range(4)] + [{"nodes": ["x"]}]}
    other_model = _plan()
    other_model["stages"][0]["nodes"] = ["fc1", "act1"]
    one_line = json.dumps(_plan())
    return {
        "valid.json": valid.encode(),
        "valid.yaml": valid_yaml.encode(),
        "bom.json": BOM + valid.encode(),
        "bom_crlf.yaml": BOM + valid_yaml.replace("\n", "\r\n").encode(),
        "empty.json": b"",
        "empty.yaml": b"",
        "null.json": b"null",
        "top_list.json": b"[]",
        "top_list.yaml": b"- stages\n",
        "not_utf8.json": valid.encode().replace(b'"chain"', b'"ch\xe9in"'),
        "not_utf8.yaml": valid_yaml.encode().replace(b"chain", b"ch\xe9in"),
        "utf16.json": valid.encode("utf-16"),
        "nul.yaml": valid_yaml.encode().replace(b"chain", b"ch\x00ain"),
        "truncated.json": valid.encode()[: len(valid) // 2],
        "max_load_nan.json": _plan_token(("max_load",), "NaN"),
        "max_load_infinity.json": _plan_token(("max_load",), "Infinity"),
        "max_load_overflow.json": _plan_token(("max_load",), "1e400"),
        "max_load_inf.yaml": _plan_token(("max_load",), ".inf", yaml_file=True),
        "max_load_nan.yaml": _plan_token(("max_load",), ".nan", yaml_file=True),
        "throughput_infinity.json": _plan_token(("throughput",), "Infinity"),
        "throughput_inf.yaml": _plan_token(("throughput",), ".inf", yaml_file=True),
        "stage_load_nan.json": _plan_token(("stages", 0, "load"), "NaN"),
        "stage_memory_inf.yaml": _plan_token(("stages", 0, "memory_bytes"), ".inf", yaml_file=True),
        "max_load_5000_digits.json": _plan_token(("max_load",), "9" * 5000),
        "samples_2_64.json": _plan_token(("samples_per_step",), "18446744073709551616"),
        "samples_zero.json": _plan_token(("samples_per_step",), "0"),
        "max_load_date.yaml": _plan_token(("max_load",), "2001-13-45", yaml_file=True),
        "max_load_float_abc.yaml": _plan_token(("max_load",), "!!float abc", yaml_file=True),
        "valid_bool_maybe.yaml": _plan_token(("valid",), "!!bool maybe", yaml_file=True),
        "python_tag.yaml": _plan_token(
            ("problem",), "!!python/object/apply:os.system ['true']", yaml_file=True
        ),
        "alias_bomb.yaml": _alias_bomb("stages", 7),
        "deep.json": _plan_token(("stats",), "[" * DEEP + "]" * DEEP),
        "deep.yaml": _plan_token(("stats",), "[" * DEEP + "]" * DEEP, yaml_file=True),
        "duplicate_key.json": one_line.replace(
            '"max_load": 1.2e-05', '"max_load": 1.2e-05, "max_load": 1e400'
        ).encode(),
        "duplicate_key.yaml": valid_yaml.replace(
            "max_load: 1.2e-05\n", "max_load: 1.2e-05\nmax_load: 1.0\n"
        ).encode(),
        "nodes_list_of_lists.json": _stage_change(nodes=[["n0"], ["n1"]]),
        "nodes_object.json": _stage_change(nodes={"n0": 1, "n1": 2}),
        "nodes_string.json": _stage_change(nodes="n0,n1"),
        "nodes_floats.json": _stage_change(nodes=[0.5, 1.5]),
        "nodes_bools.json": _stage_change(nodes=[True, False]),
        "nodes_null.json": _stage_change(nodes=[None]),
        "node_twice.json": _stage_change(nodes=["n0", "n0", "n1"]),
        "node_unknown.json": _stage_change(nodes=["n0", "n9"]),
        "node_markup.json": _stage_change(nodes=["n0", "[/]"]),
        "node_ansi.json": _stage_change(nodes=["n0", "\x1b]0;pwned\x07"]),
        "device_list.json": _stage_change(device=["a100-80gb:0"]),
        "device_object.json": _stage_change(device={"name": "a100-80gb:0"}),
        "device_number.json": _stage_change(device=0),
        "device_null.json": _stage_change(device=None),
        "device_markup.json": _stage_change(device="[/]"),
        "device_ansi.json": _stage_change(device="\x1b[2Ja100-80gb:0"),
        "device_unknown.json": _stage_change(device="tpu:0"),
        "device_twice.json": _stage_change(device="a100-80gb:1"),
        "stage_empty_nodes.json": _stage_change(nodes=[]),
        "all_infinite.json": _all_infinite().encode(),
        "all_infinite.yaml": _all_infinite(yaml_file=True).encode(),
        "stages_empty.json": json.dumps(_plan(stages=[])).encode(),
        "stages_object.json": json.dumps(_plan(stages={"a100-80gb:0": ["n0"]})).encode(),
        "negative_load.json": _stage_change(load=-1.0),
        "load_disagrees.json": _stage_change(load=1.0),
        "over_memory_cap.json": _stage_change(memory_bytes=1e12),
        "training_plan.json": json.dumps(training).encode(),
        "other_model.json": json.dumps(other_model).encode(),
        "expert.json": json.dumps(expert).encode(),
        "expert_too_many.json": json.dumps(expert_too_many).encode(),
        "expert_nodes_object.json": json.dumps({"fpgas": [{"nodes": {"n0": 1}}]}).encode(),
        "float_tag_empty.yaml": b"!!float\n...\n",
        "time_unit_ansi.json": json.dumps(_plan(time_unit="\x1b]0;pwned\x07s")).encode(),
        "time_unit_markup.json": json.dumps(_plan(time_unit="[/]")).encode(),
        "problem_name_ansi.json": json.dumps(_plan(problem="\x1b[2J\x9b31m")).encode(),
        "unknown_fields.json": json.dumps(_plan(extra={"x": [1, 2]}, __proto__=1)).encode(),
    }


# --- measured costs (for the chain on the built-in cluster) ----------------------------

CSV = "op,device,seconds\nn0,a100-80gb,0.001\nn1,cpu,0.002\n"


def _header(**fields) -> str:
    """A placer-profile header line, for a model that is not the chain (its fingerprint)."""
    document = {"model": "m.onnx", "fingerprint": "sha256:" + "0" * 64, "shapes": {},
                "batch_size": 1} | fields  # fmt: skip
    return "# placer-profile: " + json.dumps(document) + "\n"


def costs() -> dict[str, bytes]:
    valid_json = json.dumps({"n0": {"a100-80gb": 0.001}, "n1": {"cpu": 0.002}})

    def row(seconds: str, op: str = "n0", device: str = "a100-80gb") -> bytes:
        return f"op,device,seconds\n{op},{device},{seconds}\n".encode()

    def json_value(token: str) -> bytes:
        return ('{"n0": {"a100-80gb": ' + token + "}}").encode()

    return {
        "valid.csv": CSV.encode(),
        "valid.json": valid_json.encode(),
        "bom.csv": BOM + CSV.encode(),
        "crlf.csv": CSV.replace("\n", "\r\n").encode(),
        "bom_crlf.csv": BOM + CSV.replace("\n", "\r\n").encode(),
        "cr_only.csv": CSV.replace("\n", "\r").encode(),
        "not_utf8.csv": CSV.encode().replace(b"n1,", b"n\xe91,"),
        "utf16.csv": CSV.encode("utf-16"),
        "nul.csv": CSV.encode().replace(b"n1,", b"n\x001,"),
        "empty.csv": b"",
        "header_only.csv": b"op,device,seconds\n",
        "no_header.csv": b"n0,a100-80gb,0.001\n",
        "header_upper.csv": CSV.upper().encode(),
        "semicolons.csv": CSV.replace(",", ";").encode(),
        "columns_reordered.csv": b"seconds,op,device\n0.001,n0,a100-80gb\n",
        "extra_column.csv": b"op,device,seconds,note\nn0,a100-80gb,0.001,x\n",
        "short_row.csv": b"op,device,seconds\nn0,a100-80gb\n",
        "unterminated_quote.csv": b'op,device,seconds\n"n0,a100-80gb,0.001\n',
        "quoted.csv": b'"op","device","seconds"\n"n0","a100-80gb","0.001"\n',
        "duplicate_rows.csv": b"op,device,seconds\nn0,a100-80gb,0.001\nn0,a100-80gb,0.5\n",
        "nan.csv": row("nan"),
        "inf.csv": row("inf"),
        "overflow.csv": row("1e400"),
        "negative.csv": row("-1"),
        "negative_zero.csv": row("-0"),
        "subnormal.csv": row("5e-324"),
        "huge.csv": row("1e308"),
        "digits_5000.csv": row("9" * 5000),
        "underscores.csv": row("1_000"),
        "arabic_digit.csv": row("\u0661"),
        "empty_seconds.csv": row(""),
        "unknown_op.csv": row("0.001", op="conv9"),
        "markup_op.csv": row("0.001", op="[/]"),
        "ansi_op.csv": row("0.001", op="\x1b]0;pwned\x07"),
        "unknown_device.csv": row("0.001", device="tpu"),
        "markup_device.csv": row("0.001", device="[/]"),
        "grad_op_inference.csv": row("0.001", op="n0/grad"),
        "many_rows.csv": ("op,device,seconds\n" + "n0,cpu,0.001\n" * 5000).encode(),
        # one first line of comment, where placer profile says how it measured
        "comment.csv": ("# measured by hand\n" + CSV).encode(),
        "two_comments.csv": ("# one\n# two\n" + CSV).encode(),
        "header_not_json.csv": ("# placer-profile: {\n" + CSV).encode(),
        "header_other_model.csv": (_header(model="other.onnx") + CSV).encode(),
        "header_ansi_model.csv": (_header(model="\x1b]0;pwned\x07") + CSV).encode(),
        "header_batch_bool.csv": (_header(batch_size=True) + CSV).encode(),
        "json_nan.json": json_value("NaN"),
        "json_infinity.json": json_value("Infinity"),
        "json_overflow.json": json_value("1e400"),
        "json_digits_5000.json": json_value("9" * 5000),
        "json_string_seconds.json": json_value('"0.001"'),
        "json_null_seconds.json": json_value("null"),
        "json_bool_seconds.json": json_value("true"),
        "json_nested.json": json_value('{"x": 1}'),
        "json_list.json": b'[["n0", "a100-80gb", 0.001]]',
        "json_flat.json": b'{"n0": 0.001}',
        "json_deep.json": json_value("[" * DEEP + "]" * DEEP),
        "json_duplicate_key.json": b'{"n0": {"a100-80gb": 0.001, "a100-80gb": NaN}}',
        "json_bom.json": BOM + valid_json.encode(),
        "json_not_utf8.json": valid_json.encode().replace(b"n1", b"n\xe91"),
        "json_empty.json": b"",
        "json_null.json": b"null",
        "wrong_extension.txt": CSV.encode(),
        "upper_extension.CSV": CSV.encode(),
    }


# --- ONNX models ----------------------------------------------------------------------

#: Placeholders for names that are not UTF-8 (protobuf refuses them from Python), and
#: the bytes swapped in after serialisation.
BAD = {b"QQBAD0QQ": b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", b"QQBAD1QQ": b"ab\xc3(\x80\x81cd"}


def _serialise(model: onnx.ModelProto) -> bytes:
    data = model.SerializeToString()
    for placeholder, bad in BAD.items():
        data = data.replace(placeholder, bad)
    return data


def _model(nodes, inputs=None, outputs=None, initializers=(), opset=17, **graph) -> onnx.ModelProto:
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])]
    outputs = outputs or [
        helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)
    ]
    g = helper.make_graph(
        nodes, graph.get("name", "g"), inputs, outputs, initializer=list(initializers)
    )
    opsets = [helper.make_opsetid("", opset)] if opset is not None else []
    # a fixed IR version: helper's default follows the installed onnx, and the bytes must not
    return helper.make_model(g, opset_imports=opsets, ir_version=IR_VERSION)


def _relu_chain(names=("a", "b", "c"), op="Relu") -> onnx.ModelProto:
    nodes, previous = [], "x"
    for i, name in enumerate(names):
        nodes.append(helper.make_node(op, [previous], [f"t{i}"], name=name))
        previous = f"t{i}"
    return _model(nodes)


def _dims_model(dims) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)]
    return _model([helper.make_node("Relu", ["x"], ["y"], name="relu")], inputs=inputs)


def _with_attribute(attribute: AttributeProto, op: str = "Relu") -> onnx.ModelProto:
    node = helper.make_node(op, ["x"], ["y"], name="node")
    node.attribute.append(attribute)
    return _model([node])


def _scan(num_scan_inputs) -> onnx.ModelProto:
    body = helper.make_graph(
        [helper.make_node("Identity", ["s"], ["o"], name="body_identity")],
        "body",
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, [8])],
    )
    node = helper.make_node(
        "Scan", ["x"], ["y"], name="scan", body=body, num_scan_inputs=num_scan_inputs
    )
    return _model([node])


def _wide(width: int) -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", ["x"], [f"r{i}"], name=f"relu{i}") for i in range(width)]
    nodes.append(helper.make_node("Sum", [f"r{i}" for i in range(width)], ["y"], name="sum"))
    return _model(nodes)


def _external_data(location: str) -> onnx.ModelProto:
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8, 8])
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value=location)
    weight.external_data.add(key="length", value="256")
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")
    return _model([node], initializers=[weight])


def models() -> dict[str, bytes]:
    chain = _relu_chain()
    data = _serialise(chain)
    two_producers = _relu_chain()
    two_producers.graph.node[2].output[0] = "t0"
    two_producers.graph.output[0].name = "t0"
    cycle = _relu_chain()
    cycle.graph.node[0].input.append("t2")
    self_loop = _relu_chain()
    self_loop.graph.node[1].input.append("t1")
    missing_input = _relu_chain()
    missing_input.graph.node[1].input[0] = "nobody"
    unmade_output = _relu_chain()
    unmade_output.graph.output[0].name = "nobody"
    reversed_order = _relu_chain()
    nodes = list(reversed_order.graph.node)
    del reversed_order.graph.node[:]
    reversed_order.graph.node.extend(reversed(nodes))
    no_output = _model(
        [
            helper.make_node("ConstantOfShape", ["shape"], [], name="cos"),
            helper.make_node("Relu", ["x"], ["y"], name="relu"),
        ],
        initializers=[helper.make_tensor("shape", TensorProto.INT64, [1], [4])],
    )
    huge_weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**20, 2**20])
    ir0 = _relu_chain()
    ir0.ir_version = 0
    function = helper.make_function(
        "local",
        "Fn",
        ["a"],
        ["b"],
        [helper.make_node("Fn", ["a"], ["b"], domain="local")],
        [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
    )
    recursive = _model([helper.make_node("Fn", ["x"], ["y"], domain="local", name="call")])
    recursive.functions.append(function)
    recursive.opset_import.append(helper.make_opsetid("local", 1))
    einsum = _model([helper.make_node("Einsum", ["x"], ["y"], equation="ij->ji", name="einsum")])
    ref_attr = AttributeProto(name="alpha", ref_attr_name="outer", type=AttributeProto.FLOAT)
    typeless = AttributeProto(name="alpha")
    return {
        "valid_chain.onnx": data,
        "empty.onnx": b"",
        "text.onnx": b"hello, this is not a model\n",
        "json.onnx": b'{"graph": {"node": []}}',
        "zeros.onnx": b"\x00" * 256,
        "ones.onnx": b"\xff" * 256,
        "truncated.onnx": data[: len(data) // 2],
        "truncated_by_one.onnx": data[:-1],
        "appended_garbage.onnx": data + b"\xff\xff\xff\xff",
        "doubled.onnx": data + data,
        "varint_bomb.onnx": b"\x3a" + b"\xff" * 9 + b"\x01",
        "no_nodes.onnx": _serialise(
            _model([], outputs=[helper.make_tensor_value_info("x", 1, None)])
        ),
        "markup_names.onnx": _serialise(_relu_chain(names=("[/]", "[bold]b[/bold]", "[link=x]c"))),
        "ansi_names.onnx": _serialise(_relu_chain(names=("\x1b]0;pwned\x07", "\x1b[2J", "a\nb"))),
        "bidi_names.onnx": _serialise(_relu_chain(names=("\u202eevil", "\u200b", "名前😀"))),
        "duplicate_names.onnx": _serialise(_relu_chain(names=("same", "same", "same"))),
        "unnamed_nodes.onnx": _serialise(_relu_chain(names=("", "", ""))),
        "names_like_grad.onnx": _serialise(_relu_chain(names=("a/grad", "a", "7"))),
        "long_name.onnx": _serialise(_relu_chain(names=("n" * 20_000, "b", "c"))),
        "not_utf8_name.onnx": _serialise(_relu_chain(names=("QQBAD0QQ", "b", "c"))),
        "not_utf8_op_type.onnx": _serialise(_relu_chain(op="QQBAD1QQ")),
        "markup_op_type.onnx": _serialise(_relu_chain(op="[/]")),
        "not_utf8_graph_name.onnx": _serialise(
            _model([helper.make_node("Relu", ["x"], ["y"], name="r")], name="QQBAD0QQ")
        ),
        "markup_graph_name.onnx": _serialise(
            _model([helper.make_node("Relu", ["x"], ["y"], name="r")], name="[/]")
        ),
        "two_producers.onnx": _serialise(two_producers),
        "cycle.onnx": _serialise(cycle),
        "self_loop.onnx": _serialise(self_loop),
        "missing_input.onnx": _serialise(missing_input),
        "unmade_output.onnx": _serialise(unmade_output),
        "reversed_order.onnx": _serialise(reversed_order),
        "dim_int64_max.onnx": _serialise(_dims_model([1, 2**63 - 1])),
        "dims_past_int64.onnx": _serialise(_dims_model([2**62, 2**62, 2**62])),
        "dims_past_float.onnx": _serialise(_dims_model([2**62] * 40)),
        "dim_negative.onnx": _serialise(_dims_model([1, -8])),
        "dim_zero.onnx": _serialise(_dims_model([0, 8])),
        "dim_symbolic_empty.onnx": _serialise(_dims_model(["", 8])),
        "dim_markup.onnx": _serialise(_dims_model(["[/]", 8])),
        "rank_64.onnx": _serialise(_dims_model([1] * 64)),
        "string_input.onnx": _serialise(
            _model(
                [helper.make_node("Identity", ["x"], ["y"], name="id")],
                inputs=[helper.make_tensor_value_info("x", TensorProto.STRING, [4])],
            )
        ),
        "undefined_elem_type.onnx": _serialise(
            _model(
                [helper.make_node("Relu", ["x"], ["y"], name="r")],
                inputs=[helper.make_tensor_value_info("x", 0, [4])],
            )
        ),
        "attribute_not_utf8.onnx": _serialise(
            _with_attribute(helper.make_attribute("mode", b"\xff\xfe"))
        ),
        "attribute_ref_attr_name.onnx": _serialise(_with_attribute(ref_attr, op="LeakyRelu")),
        "attribute_without_type.onnx": _serialise(_with_attribute(typeless, op="LeakyRelu")),
        "attribute_nan.onnx": _serialise(
            _with_attribute(helper.make_attribute("alpha", float("nan")), op="LeakyRelu")
        ),
        "attribute_int_max.onnx": _serialise(
            _with_attribute(helper.make_attribute("axis", 2**63 - 1), op="Softmax")
        ),
        "attribute_graph_empty.onnx": _serialise(
            _with_attribute(helper.make_attribute("body", helper.make_graph([], "e", [], [])))
        ),
        "scan_num_inputs_string.onnx": _serialise(_scan("one")),
        "scan_num_inputs_float.onnx": _serialise(_scan(1.5)),
        "scan_num_inputs_zero.onnx": _serialise(_scan(0)),
        "scan_num_inputs_huge.onnx": _serialise(_scan(2**62)),
        "constant_of_shape_no_output.onnx": _serialise(no_output),
        "if_without_branches.onnx": _serialise(
            _model(
                [
                    helper.make_node("Greater", ["x", "x"], ["c"], name="gt"),
                    helper.make_node("If", ["c"], ["y"], name="if"),
                ]
            )
        ),
        "unknown_op.onnx": _serialise(_relu_chain(op="FooBar")),
        "custom_domain.onnx": _serialise(
            _model([helper.make_node("Thing", ["x"], ["y"], domain="com.example", name="t")])
        ),
        "no_opset.onnx": _serialise(
            _model([helper.make_node("Relu", ["x"], ["y"], name="r")], opset=None)
        ),
        "opset_1.onnx": _serialise(
            _model([helper.make_node("Relu", ["x"], ["y"], name="r")], opset=1)
        ),
        "opset_99.onnx": _serialise(
            _model([helper.make_node("Relu", ["x"], ["y"], name="r")], opset=99)
        ),
        "ir_version_0.onnx": _serialise(ir0),
        "weight_4_tib_no_data.onnx": _serialise(
            _model(
                [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                initializers=[huge_weight],
            )
        ),
        "weight_negative_dim.onnx": _serialise(
            _model(
                [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                initializers=[TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8, -4])],
            )
        ),
        "conv_weight_negative_dim.onnx": _serialise(
            _model(
                [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=2)],
                initializers=[TensorProto(name="w", data_type=22, dims=[1, -1, 2**40])],
            )
        ),
        "external_data_absolute.onnx": _serialise(_external_data("/etc/passwd")),
        "external_data_parent.onnx": _serialise(_external_data("../../../../etc/shadow")),
        "recursive_function.onnx": _serialise(recursive),
        "einsum.onnx": _serialise(einsum),
        "wide_64.onnx": _serialise(_wide(64)),
        "chain_2000.onnx": _serialise(_relu_chain(names=tuple(f"r{i}" for i in range(2000)))),
    }


CATEGORIES = {
    "cluster": clusters,
    "workload": workloads,
    "plan": plans,
    "costs": costs,
    "onnx": models,
}


def write(out_dir: Path) -> None:
    """Write every category of the corpus under ``out_dir``, replacing what is there."""
    for category, make in CATEGORIES.items():
        directory = out_dir / category
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        for name, data in sorted(make().items()):
            (directory / name).write_bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path(__file__).parent)
    write(parser.parse_args().out_dir)


if __name__ == "__main__":
    main()
