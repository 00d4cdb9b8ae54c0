"""A CPU group's ``cores`` and ``shared_bandwidth``: how they read, and what they cost."""

from __future__ import annotations

import textwrap

import pytest

from placer.choices import Fusion
from placer.costs.cluster_file import load_cluster, parse_cluster
from placer.costs.cores import MAX_CORE
from placer.costs.roofline import CostOptions, build_problem
from placer.errors import ClusterSpecError
from placer.frontends.onnx_graph import GraphEdge, GraphNode, OpGraph
from placer.provenance import cluster_document, read_cluster_document

SOCKET = "{name: s, class: cpu, peak_flops: 100GFLOPS, memory: 16GiB, memory_bandwidth: 20GB/s"


def group(fields: str, count: int = 2):
    return parse_cluster(f"devices: [{SOCKET}, count: {count}, {fields}}}]", "c.yaml").group("s")


# --- cores ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cores", "expected"),
    [
        ("[0, 1, 2, 3]", (0, 1, 2, 3)),
        ("'0-3'", (0, 1, 2, 3)),
        ("'0-1,8-9'", (0, 1, 8, 9)),
        ("' 6 , 2-4 '", (6, 2, 3, 4)),
        ("[7, 3]", (7, 3)),  # the order written: device 0 gets 7
        ("0-1", (0, 1)),  # unquoted, YAML reads it as text
    ],
)
def test_cores_are_a_list_or_ranges(cores, expected) -> None:
    assert group(f"cores: {cores}").cores == expected


def test_each_device_gets_its_slice_of_the_cores_in_order() -> None:
    four = group("cores: '0-3,8-11'", count=4)
    assert [four.device_cores(i) for i in range(4)] == [(0, 1), (2, 3), (8, 9), (10, 11)]
    pair = group("cores: [5, 1]")
    assert (pair.device_cores(0), pair.device_cores(1)) == ((5,), (1,))
    assert group("cores: '0-5'", count=1).device_cores(0) == (0, 1, 2, 3, 4, 5)
    unpinned = group("overhead: 1us")
    assert unpinned.cores == () and unpinned.device_cores(1) == ()
    with pytest.raises(IndexError):
        pair.device_cores(2)


def test_cores_and_shared_bandwidth_are_written_and_read_back() -> None:
    cluster = parse_cluster(
        f"devices: [{SOCKET}, count: 2, cores: '0-3', shared_bandwidth: 30GB/s}}, {{type: t4}}]"
    )
    entry = cluster.group("s").to_dict()
    assert entry["cores"] == [0, 1, 2, 3] and entry["shared_bandwidth"] == 30e9
    assert "cores" not in cluster.group("t4").to_dict()
    assert "shared_bandwidth" not in cluster.group("t4").to_dict()
    # a plan records the cluster in the file format: the same cluster comes back
    assert read_cluster_document(cluster_document(cluster), "<plan>") == cluster


ERRORS = {
    "an accelerator": ("{type: t4, cores: [0]}", "devices[0].cores", "only a CPU group"),
    "an accelerator by class": (
        "{type: cpu, class: accelerator, cores: [0]}", "devices[0].cores", "only a CPU group"
    ),
    "a duplicate": ("{type: cpu, count: 2, cores: [0, 1, 0, 2]}", "devices[0].cores",
                    "core 0 is listed twice"),
    "a duplicate by ranges": ("{type: cpu, cores: '0-3,2'}", "devices[0].cores",
                              "core 2 is listed twice"),
    "a negative": ("{type: cpu, cores: [0, -1]}", "devices[0].cores[1]", "got -1"),
    "a negative in ranges": ("{type: cpu, cores: '-1-3'}", "devices[0].cores",
                             "is not a core number"),
    "too large": ("{type: cpu, cores: [70000]}", "devices[0].cores[0]",
                  f"from 0 to {MAX_CORE}, got 70000"),
    "a range too large": ("{type: cpu, cores: '0-99999999999'}", "devices[0].cores",
                          "core 99999999999 in '0-99999999999' is out of range"),
    "not a multiple of count": ("{type: cpu, count: 2, cores: '0-2'}", "devices[0].cores",
                                "3 cores cannot be dealt evenly to the group's 2 devices"),
    "fewer than count": ("{type: cpu, count: 4, cores: [0, 1]}", "devices[0].cores",
                         "expected a multiple of 4"),
    "a fraction": ("{type: cpu, cores: [0, 1.5]}", "devices[0].cores[1]", "got 1.5"),
    "a string in the list": ("{type: cpu, cores: [0, '1']}", "devices[0].cores[1]", "got '1'"),
    "a boolean": ("{type: cpu, cores: [true]}", "devices[0].cores[0]", "got True"),
    "a bare number": ("{type: cpu, cores: 4}", "devices[0].cores", "or a string of ranges"),
    "an empty list": ("{type: cpu, cores: []}", "devices[0].cores", "got an empty list"),
    "a mapping": ("{type: cpu, cores: {a: 1}}", "devices[0].cores", "got a mapping"),
    "an unparsable range": ("{type: cpu, cores: '0-3,x'}", "devices[0].cores",
                            "'x' is not a core number or a range of them"),
    "an empty range string": ("{type: cpu, cores: ''}", "devices[0].cores",
                              "'' is not a core number"),
    "a backward range": ("{type: cpu, cores: '3-0'}", "devices[0].cores", "runs backwards"),
    "a range of three": ("{type: cpu, cores: '0-2-4'}", "devices[0].cores",
                         "'0-2-4' is not a core number"),
    "no shared bandwidth": ("{type: cpu, shared_bandwidth: 0}", "devices[0].shared_bandwidth",
                            "expected a positive value"),
    "a shared rate in the wrong unit": ("{type: cpu, shared_bandwidth: 10GiB}",
                                        "devices[0].shared_bandwidth", "got '10GiB'"),
    "a shared bandwidth out of range": ("{type: cpu, shared_bandwidth: 1e17}",
                                        "devices[0].shared_bandwidth", "out of range"),
}  # fmt: skip


@pytest.mark.parametrize(("entry", "where", "says"), ERRORS.values(), ids=ERRORS)
def test_bad_cores_and_shared_bandwidth_are_one_line(entry, where, says) -> None:
    with pytest.raises(ClusterSpecError) as err:
        parse_cluster(f"name: x\ndevices:\n  - {entry}\n", "c.yaml")
    message = str(err.value)
    assert message.startswith(f"c.yaml:3: {where}: "), message
    assert says in message and "\n" not in message, message


LOCAL = textwrap.dedent(
    """\
    devices:
      - name: local-cpu
        class: cpu
        count: 2
        peak_flops: {fp32: 200 GFLOP/s}
        memory: 16 GiB
        memory_bandwidth: 20 GB/s
        shared_bandwidth: 30 GB/s
        cores: 0-3
    calibration: {runtime: onnxruntime, version: "1.20.0", threads: 2}
    """
)


def test_a_device_file_brings_its_cores_for_as_many_devices(tmp_path) -> None:
    (tmp_path / "local-cpu.yaml").write_text(LOCAL)
    path = tmp_path / "c.yaml"

    def read(entry: str):
        path.write_text(f"devices:\n  - {entry}\n")
        return load_cluster(path).group("local-cpu")

    same = read("{type: ./local-cpu.yaml, count: 2}")
    assert same.cores == (0, 1, 2, 3) and same.device_cores(1) == (2, 3)
    assert same.shared_bandwidth == 30e9
    # laid out for two devices: another count drops them, the socket's bandwidth stays
    one = read("{type: ./local-cpu.yaml}")
    assert one.cores == () and one.shared_bandwidth == 30e9
    given = read("{type: ./local-cpu.yaml, count: 4, cores: '0-3', shared_bandwidth: 40GB/s}")
    assert given.device_cores(3) == (3,) and given.shared_bandwidth == 40e9
    with pytest.raises(ClusterSpecError, match=r"c\.yaml:2: devices\[0\]\.cores: 4 cores"):
        read("{type: ./local-cpu.yaml, count: 3, cores: '0-3'}")


# --- shared bandwidth -------------------------------------------------------------------

CACHED = "cache: {size: 1MiB, bandwidth: 100GB/s}, efficiency: {default: 0.5, memory: 0.8}"


def times(fields: str, count: int = 2) -> tuple[float, float, float]:
    """Predicted seconds of an Add over 12 MB (from memory), an in-place Relu over 8 kB
    (from the cache: on a CPU an op writing a fresh buffer streams from memory) and a
    GEMM whose 400 MB of weights bound it by memory, on one device of the group."""
    cluster = parse_cluster(
        f"devices: [{SOCKET}, count: {count}, overhead: 1us, {CACHED}, {fields}}}]"
    )
    nodes = (
        GraphNode("big", "Add", 1e6, 8e6, 4e6, 0, 0.0, 4e6, True),
        GraphNode("small", "Relu", 1e3, 4e3, 4e3, 0, 0.0, 4e3, True, in_place=True),
        GraphNode("mm", "MatMul", 2e8, 4e8, 4e5, 10**8, 4e8, 4e5, True),
    )
    edges = tuple(GraphEdge(i, i + 1, f"t{i}", 4e3) for i in range(len(nodes) - 1))
    problem = build_problem(OpGraph("g", nodes, edges, 0.0, 4, ()), cluster,
                            CostOptions(fusion=Fusion.NONE))  # fmt: skip
    big, small, mm = (op.latency[0] for op in problem.ops)
    return big, small, mm


def test_devices_sharing_a_socket_stream_from_memory_at_their_share() -> None:
    alone = times("pipeline: true")
    # two devices on a socket that streams no faster than one: each gets half
    big, small, mm = times("shared_bandwidth: 20GB/s")
    assert big == pytest.approx(12e6 / (10e9 * 0.8) + 1e-6)
    assert big - 1e-6 == pytest.approx(2 * (alone[0] - 1e-6))  # exactly twice the time
    assert small == alone[1]  # from the cache: unshared
    assert mm - 1e-6 == pytest.approx(2 * (alone[2] - 1e-6))  # a GEMM's weights too
    # a socket with bandwidth to spare changes nothing
    assert times("shared_bandwidth: 40GB/s") == alone
    assert times("shared_bandwidth: 1TB/s") == alone
    # in between: each of three devices gets a third of 30 GB/s
    assert times("shared_bandwidth: 30GB/s", count=3)[0] == pytest.approx(
        12e6 / (10e9 * 0.8) + 1e-6
    )


def test_cores_change_no_cost() -> None:
    assert times("cores: '0-3'") == times("pipeline: true")
