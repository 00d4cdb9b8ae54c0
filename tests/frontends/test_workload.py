"""Every rule of the workload format gives one line naming the node or edge and field."""

from __future__ import annotations

import copy
import json
import os
import time

import pytest

from placer.errors import ExitStatus, WorkloadFormatError
from placer.frontends.workload import parse_workload
from tests.conftest import one_line_error

BASE = {
    "maxSizePerFPGA": 100.0,
    "maxFPGAs": 2,
    "maxCPUs": 1,
    "nodes": [
        {"id": 1, "supportedOnFpga": 1, "cpuLatency": 4.0, "fpgaLatency": 1.0,
         "isBackwardNode": 0, "colorClass": 1, "size": 10.0},
        {"id": 2, "supportedOnFpga": True, "cpuLatency": 4.0, "fpgaLatency": 1.0,
         "isBackwardNode": 0, "colorClass": 2},
        {"id": 3, "supportedOnFpga": 0, "cpuLatency": 2.0, "fpgaLatency": 0.5,
         "isBackwardNode": 1, "colorClass": 2},
    ],
    "edges": [
        {"sourceId": 1, "destId": 2, "cost": 0.5},
        {"sourceId": 2, "destId": 3, "cost": 0.25, "size": 3},
    ],
}  # fmt: skip


def mutated(change) -> dict:
    document = copy.deepcopy(BASE)
    change(document)
    return document


def test_valid_document_parses() -> None:
    problem = parse_workload(BASE)
    assert [op.key for op in problem.ops] == [1, 2, 3]
    assert problem.ops[0].supported == (True, True)
    assert problem.ops[2].supported == (False, True)
    assert problem.ops[1].transfer_cost == 0.25
    assert problem.ops[1].size_bytes == 0.0  # size may be absent
    assert problem.kinds[0].count == 2 and problem.kinds[1].count == 1


@pytest.mark.parametrize("count", [10**12, 10**5])
def test_absurd_device_counts_are_capped_at_the_colour_classes(run_placer, tmp_path, count):
    document = {**BASE, "maxFPGAs": count, "maxCPUs": count}
    classes = len({node.get("colorClass", node["id"]) for node in BASE["nodes"]})
    assert classes < len(BASE["nodes"])  # a class of two nodes: the cap is the classes
    assert [kind.count for kind in parse_workload(document).kinds] == [classes, classes]
    plans = {}
    for devices in (count, classes):  # as many devices of each kind as there are classes
        path = tmp_path / f"w{devices}.json"
        path.write_text(json.dumps({**BASE, "maxFPGAs": devices, "maxCPUs": devices}))
        started = time.perf_counter()
        result = run_placer("place", path, "--solver", "dp", "--format", "json")
        assert result.exit_code == 0, result.stderr
        assert time.perf_counter() - started < 10
        plans[devices] = json.loads(result.stdout)["max_load"]
    assert plans[count] == plans[classes]


def test_node_without_colour_class_is_alone() -> None:
    def drop(d):
        del d["nodes"][0]["colorClass"]
        del d["nodes"][1]["colorClass"]

    problem = parse_workload(mutated(drop))
    assert len({op.color for op in problem.ops}) == 3


CASES = [
    ("missing top field", lambda d: d.pop("maxFPGAs"), ["missing field 'maxFPGAs'"]),
    ("negative count", lambda d: d.update(maxCPUs=-1), ["'maxCPUs'", "non-negative"]),
    ("memory as string", lambda d: d.update(maxSizePerFPGA="16GB"), ["'maxSizePerFPGA'", "number"]),
    ("no nodes", lambda d: d.update(nodes=[], edges=[]), ["field 'nodes'", "non-empty list"]),
    ("nodes not a list", lambda d: d.update(nodes={}), ["'nodes'", "a list"]),
    ("missing node field", lambda d: d["nodes"][1].pop("cpuLatency"),
     ["nodes[1] (id 2)", "missing field 'cpuLatency'"]),
    ("negative latency", lambda d: d["nodes"][0].update(fpgaLatency=-1),
     ["nodes[0] (id 1)", "'fpgaLatency'", "non-negative"]),
    ("negative size", lambda d: d["nodes"][0].update(size=-5), ["nodes[0] (id 1)", "'size'"]),
    ("latency wrong type", lambda d: d["nodes"][0].update(cpuLatency="fast"),
     ["'cpuLatency'", "number"]),
    ("latency is a bool", lambda d: d["nodes"][0].update(cpuLatency=True), ["'cpuLatency'"]),
    ("supported flag 2", lambda d: d["nodes"][0].update(supportedOnFpga=2),
     ["'supportedOnFpga'", "0/1"]),
    ("backward flag string", lambda d: d["nodes"][0].update(isBackwardNode="no"),
     ["'isBackwardNode'"]),
    ("id not integer", lambda d: d["nodes"][0].update(id="a"), ["nodes[0]", "'id'", "integer"]),
    ("duplicate id", lambda d: d["nodes"][1].update(id=1),
     ["nodes[1] (id 1)", "duplicate node id 1"]),
    ("dangling edge", lambda d: d["edges"][0].update(destId=9),
     ["edges[0] (1 -> 9)", "'destId'", "node 9"]),
    ("missing edge cost", lambda d: d["edges"][0].pop("cost"),
     ["edges[0] (1 -> 2)", "missing field 'cost'"]),
    ("negative edge cost", lambda d: d["edges"][0].update(cost=-1), ["edges[0]", "'cost'"]),
    ("self loop", lambda d: d["edges"][0].update(destId=1), ["edges[0] (1 -> 1)", "loop"]),
    ("cycle", lambda d: d["edges"].append({"sourceId": 2, "destId": 1, "cost": 0.25}),
     ["edges: the graph has a cycle: ", "1 -> 2", "2 -> 1"]),
    ("backward to forward", lambda d: d["edges"].append({"sourceId": 3, "destId": 1, "cost": 1}),
     ["edges[2] (3 -> 1)", "backward node 3 to forward node 1"]),
    ("two costs from one node",
     lambda d: d["edges"].append({"sourceId": 1, "destId": 3, "cost": 0.7}),
     ["edges[2] (1 -> 3)", "'cost'", "edges[0]", "same node 1"]),
]  # fmt: skip


@pytest.mark.parametrize(("label", "change", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_naming_the_field(label, change, fragments) -> None:
    with pytest.raises(WorkloadFormatError) as info:
        parse_workload(mutated(change), source="w.json")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("w.json: ")
    for fragment in fragments:
        assert fragment in message


def test_cli_bad_workload_exit_2(run_placer, tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(mutated(lambda d: d["nodes"][0].update(fpgaLatency=-1))))
    result = run_placer("place", path)
    assert result.exit_code == ExitStatus.INVALID_INPUT == 2
    assert "fpgaLatency" in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_workload_without_nodes_exit_2(run_placer, tmp_path) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps(mutated(lambda d: d.update(nodes=[], edges=[]))))
    result = run_placer("place", path)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f"placer: error: {path}: field 'nodes' must be a non-empty list, got []"
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("{not json", "not valid JSON"), ("[1, 2]", "top level"), ("", "not valid JSON")],
)
def test_cli_unreadable_workload(run_placer, tmp_path, content, fragment) -> None:
    path = tmp_path / "w.json"
    path.write_text(content)
    result = run_placer("place", path)
    assert result.exit_code == 2
    assert fragment in result.stderr


def test_cli_missing_file_and_bad_options(run_placer, tmp_path) -> None:
    assert run_placer("place", tmp_path / "absent.json").exit_code == 2
    workload = tmp_path / "w.json"
    workload.write_text(json.dumps(BASE))
    unknown = run_placer("place", workload, "--solver", "magic")
    assert unknown.exit_code == 2 and "dp" in unknown.stderr and "magic" in unknown.stderr
    assert run_placer("place", workload, "--format", "xml").exit_code == 2
    assert run_placer("place", workload, "--output", tmp_path / "plan.xyz").exit_code == 2
    assert not (tmp_path / "plan.xyz").exists()


RANGE_CASES = [
    ("id past 2**53", lambda d: d["nodes"][0].update(id=2**53 + 1),
     ["nodes[0]", "'id'", "9,007,199,254,740,991"]),
    ("id as a huge float", lambda d: d["nodes"][0].update(id=1e300), ["'id'", "1e+300"]),
    ("colour class past 2**53", lambda d: d["nodes"][0].update(colorClass=-(2**60)),
     ["'colorClass'", "-9,007,199,254,740,991"]),
    ("edge end past 2**53", lambda d: d["edges"][0].update(destId=2**62), ["'destId'"]),
    ("count over 10**12", lambda d: d.update(maxFPGAs=10**12 + 1),
     ["'maxFPGAs'", "non-negative integer (from 0 to 1,000,000,000,000)"]),
    ("memory over 8 PiB", lambda d: d.update(maxSizePerFPGA=2.0**54),
     ["'maxSizePerFPGA'", "from 0 B to 8 PiB"]),
    ("size over 8 PiB", lambda d: d["nodes"][0].update(size=2**60), ["nodes[0] (id 1)", "'size'"]),
    ("sizes adding up past 8 PiB",
     lambda d: [n.update(size=2.0**52) for n in d["nodes"]], ["nodes: the sizes add up to 12 PiB"]),
    ("subnormal latency", lambda d: d["nodes"][0].update(cpuLatency=5e-324),
     ["'cpuLatency'", "(0, or from 1e-12 to 1e+12 time units), got 5e-324"]),
    ("latency over 1e12", lambda d: d["nodes"][0].update(fpgaLatency=2e12), ["'fpgaLatency'"]),
    ("subnormal cost", lambda d: d["edges"][0].update(cost=1e-300),
     ["edges[0] (1 -> 2)", "'cost'"]),
    ("huge list in a field", lambda d: d["nodes"][0].update(size=list(range(10_000))),
     ["'size'", "a number, got [0, 1, 2"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "change", "fragments"), RANGE_CASES, ids=[c[0] for c in RANGE_CASES]
)
def test_every_number_is_held_to_its_range(label, change, fragments) -> None:
    with pytest.raises(WorkloadFormatError) as info:
        parse_workload(mutated(change), source="w.json")
    message = str(info.value)
    assert "\n" not in message and len(message) < 300, message
    for fragment in fragments:
        assert fragment in message


def test_the_extremes_of_every_range_are_accepted() -> None:
    def extremes(d):
        d.update(maxSizePerFPGA=2.0**53, maxFPGAs=10**12, maxCPUs=0)
        d["nodes"][0].update(id=-(2**53 - 1), cpuLatency=1e12, fpgaLatency=1e-12, size=2**52)
        d["nodes"][1].update(id=2**53 - 1, colorClass=2**53 - 1, size=2.0**52)
        d["edges"] = [{"sourceId": -(2**53 - 1), "destId": 2**53 - 1, "cost": 1e12}]

    problem = parse_workload(mutated(extremes))
    assert problem.ops[0].latency == (1e-12, 1e12)
    assert sum(op.size_bytes for op in problem.ops) == 2**53


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"maxFPGAs": NaN}', ":1:14: not valid JSON: NaN is not a number JSON allows"),
        ('{"maxFPGAs": Infinity}', "Infinity is not a number JSON allows"),
        ('{"maxSizePerFPGA": 1e400}', ":1:20: not valid JSON: the number 1e400 is out of range"),
        ('{"maxFPGAs": ' + "9" * 5000 + "}", "an integer with too many digits"),
        ("[" * 1000 + "]" * 1000, "nested 1000 levels deep (at most 64)"),
    ],
    ids=["nan", "infinity", "overflow", "digits", "deep"],
)
def test_cli_refuses_json_that_is_not_strict(run_placer, tmp_path, content, fragment) -> None:
    path = tmp_path / "w.json"
    path.write_text(content)
    one_line_error(run_placer("place", path), str(path), fragment)


def test_cli_refuses_a_workload_that_is_no_regular_utf8_file(run_placer, tmp_path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    one_line_error(run_placer("place", fifo), "is a FIFO (named pipe), not a workload file")
    one_line_error(run_placer("place", "/dev/zero"), "unsupported input type")
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    one_line_error(run_placer("place", link), "is a character device, not a workload file")
    latin1 = tmp_path / "w.json"
    latin1.write_bytes(b'{"name": "caf\xe9"}')
    one_line_error(run_placer("place", latin1), "w.json:1: not UTF-8 text (byte 0xe9")
