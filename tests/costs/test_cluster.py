"""Cluster files: the examples, the defaults, and one test per kind of mistake."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from placer.costs.catalog import ASSUMED, CATALOG, PcieGen
from placer.costs.cluster import Cluster, Link, nvlink_link, pcie_link
from placer.costs.cluster_file import default_cluster, load_cluster, parse_cluster
from placer.errors import ClusterSpecError, ExitStatus
from placer.problem import DeviceClass
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
GiB = 2**30


def write(tmp_path: Path, text: str, name: str = "cluster.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- what loads -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["4xa100.yaml", "2xa100_4xt4.yaml", "2node_h100.yaml", "cpu_only.yaml"]
)
def test_every_example_loads(name):
    cluster = load_cluster(EXAMPLES / name)
    assert isinstance(cluster, Cluster)
    names = [g.name for g in cluster.groups]
    for a in names:
        for b in names:
            link = cluster.link(a, b)
            assert link == cluster.link(b, a)
            assert link.bandwidth > 0 and link.latency >= 0


def test_example_figures():
    hetero = load_cluster(EXAMPLES / "2xa100_4xt4.yaml")
    assert [(g.name, g.count, g.type) for g in hetero.groups] == [
        ("a100", 2, "a100-40gb"),
        ("t4", 4, "t4"),
        ("cpu", 1, "cpu"),
    ]
    assert hetero.group("t4").efficiency == pytest.approx(0.4)
    assert hetero.group("cpu").memory_bytes == 512 * GiB
    assert hetero.link("t4", "a100").bandwidth == 12e9
    assert hetero.link("a100", "cpu") == Link(25e9, 10e-6)  # from links.default

    two_nodes = load_cluster(EXAMPLES / "2node_h100.yaml")
    assert two_nodes.link("node1", "node0").bandwidth == 25e9  # 200Gbps
    assert two_nodes.link("node0", "node0").bandwidth == 450e9


def test_default_cluster():
    cluster = default_cluster()
    assert cluster.name == "default: 4x a100-80gb + cpu"
    a100, cpu = cluster.groups
    assert (a100.type, a100.count, a100.device_class) == ("a100-80gb", 4, DeviceClass.ACCELERATOR)
    assert (cpu.type, cpu.count, cpu.device_class) == ("cpu", 1, DeviceClass.CPU)
    assert a100.memory_bytes == 80 * GiB
    assert a100.peak("bf16") == 312e12 and a100.peak("fp32") == 19.5e12
    assert cluster.link("a100-80gb", "a100-80gb") == nvlink_link(600e9)
    assert cluster.link("a100-80gb", "cpu") == pcie_link(PcieGen.GEN4)
    assert 25e9 < cluster.link("cpu", "a100-80gb").bandwidth < 25.5e9
    assert cluster.total_devices == 5
    assert cluster.to_dict()["groups"][0]["peak_flops"]["fp16"] == 312e12


def test_defaults_without_links():
    cluster = parse_cluster(
        textwrap.dedent("""
        devices:
          - {type: t4, count: 4}
          - {type: l4, count: 2}
          - {type: v100-32gb, count: 2, name: v100}
        """)
    )
    assert cluster.link("t4", "t4") == pcie_link(PcieGen.GEN3)  # no NVLink on a T4
    assert cluster.link("l4", "l4") == pcie_link(PcieGen.GEN4)
    assert cluster.link("t4", "l4") == pcie_link(PcieGen.GEN3)  # the older generation wins
    assert cluster.link("v100", "v100") == nvlink_link(300e9)
    # No native bf16 before Ampere: fall back to the fp32 rate.
    assert cluster.group("v100").peak("bf16") == 15.7e12


def test_overrides_and_explicit_groups():
    cluster = parse_cluster(
        textwrap.dedent("""
        name: mixed
        devices:
          - type: a100-80gb
            name: fast
            peak_flops: {fp16: 280TFLOPS}
            memory_bandwidth: 1.9TB/s
            efficiency: 60%
            overhead: 8us
          - name: asic
            peak_flops: 100TFLOPS
            memory: 32GiB
            memory_bandwidth: 1TB/s
            count: 3
        links:
          default: {bandwidth: 50GB/s}
          pairs:
            - {between: [asic, asic], latency: 2us}
        """)
    )
    fast, asic = cluster.groups
    assert fast.peak_flops == {"fp32": 19.5e12, "tf32": 156e12, "fp16": 280e12, "bf16": 312e12}
    assert fast.memory_bytes == 80 * GiB  # kept from the catalog
    assert (fast.memory_bandwidth, fast.efficiency, fast.overhead) == (1.9e12, 0.6, 8e-6)
    assert fast.class_efficiency == {}  # one number stands for every class
    assert fast.cache_bytes == CATALOG["a100-80gb"].cache_bytes  # kept from the catalog
    assert asic.type == "custom" and asic.device_class is DeviceClass.ACCELERATOR
    assert asic.peak("fp16") == asic.peak("fp32") == 100e12
    # explicit figures take the assumptions for their class, not some GPU's figures
    assumed = ASSUMED[DeviceClass.ACCELERATOR]
    assert (asic.efficiency, asic.overhead) == (assumed.efficiency, assumed.overhead)
    assert (asic.class_efficiency, asic.cache_bytes) == ({}, 0.0)
    assert cluster.default_link == Link(50e9, 10e-6)  # latency from the built-in default
    assert cluster.link("fast", "asic") == cluster.default_link
    assert cluster.link("asic", "asic") == Link(50e9, 2e-6)  # bandwidth from the default
    assert cluster.link("fast", "fast") == nvlink_link(600e9)


def test_links_as_a_bare_list():
    cluster = parse_cluster(
        "devices: [{type: t4}, {type: cpu}]\n"
        "links:\n  - {between: [cpu, t4], bandwidth: 10GB/s, latency: 1ms}\n"
    )
    assert cluster.link("t4", "cpu") == Link(10e9, 1e-3)


def test_cluster_name_defaults_to_file_stem(tmp_path):
    path = write(tmp_path, "devices: [{type: l4}]\n", "edge-box.yaml")
    assert load_cluster(path).name == "edge-box"


def test_link_lookup_rejects_unknown_group():
    with pytest.raises(KeyError, match="h100"):
        default_cluster().link("h100", "cpu")


def test_transfer_time():
    link = Link(bandwidth=10e9, latency=5e-6)
    assert link.transfer_time(10e9) == pytest.approx(1 + 5e-6)
    assert link.transfer_time(0) == 0.0


# --- what does not ----------------------------------------------------------------------


ERRORS = {
    "unknown layout": (
        """\
        devices:
          - type: t4
            layout: nhcw
        """,
        3,
        "devices[0].layout",
        "expected one of nchw, nhwc",
    ),
    "yaml syntax": (
        """\
        devices:
          - type: t4
           count: 2
        """,
        3,
        "",
        "not valid YAML",
    ),
    "unknown type": (
        """\
        devices:
          - type: t4
          - type: a100
        """,
        3,
        "devices[1].type",
        "a100-40gb, a100-80gb, h100-sxm",
    ),
    "negative value": (
        """\
        devices:
          - type: t4
          - type: cpu
            memory: -3GB
        """,
        4,
        "devices[1].memory",
        "positive",
    ),
    "non-numeric value": (
        """\
        devices:
          - type: t4
            memory_bandwidth: fast
        """,
        3,
        "devices[0].memory_bandwidth",
        "got 'fast'",
    ),
    "unit mismatch": (
        """\
        devices:
          - type: t4
            peak_flops: {fp16: 100GB/s}
        """,
        3,
        "devices[0].peak_flops.fp16",
        "FLOP",
    ),
    "missing devices": ("name: empty\n", 1, "", "missing field 'devices'"),
    "empty devices": ("devices: []\n", 1, "devices", "non-empty list"),
    "group without type or figures": (
        """\
        devices:
          - type: t4
          - count: 2
        """,
        3,
        "devices[1]",
        "missing field 'type'",
    ),
    "explicit group missing a figure": (
        """\
        devices:
          - name: asic
            peak_flops: 1TFLOPS
            memory: 1GB
        """,
        2,
        "devices[0]",
        "missing field 'memory_bandwidth'",
    ),
    "unknown field": (
        """\
        devices:
          - type: t4
            memroy: 8GB
        """,
        3,
        "devices[0].memroy",
        "did you mean 'memory'",
    ),
    "unknown top-level field": (
        "device:\n  - type: t4\n",
        1,
        "device",
        "did you mean 'devices'",
    ),
    "duplicate group names": (
        """\
        devices:
          - type: t4
          - type: l4
            name: t4
        """,
        4,
        "devices[1].name",
        "duplicate group name 't4'",
    ),
    "count zero": (
        """\
        devices:
          - type: t4
            count: 0
        """,
        3,
        "devices[0].count",
        "positive integer",
    ),
    "count not an integer": (
        """\
        devices:
          - type: t4
            count: 2.5
        """,
        3,
        "devices[0].count",
        "positive integer",
    ),
    "link to unknown group": (
        """\
        devices:
          - type: t4
          - type: cpu
        links:
          pairs:
            - between: [t4, gpu]
              bandwidth: 10GB/s
        """,
        6,
        "links.pairs[0].between[1]",
        "unknown group 'gpu'",
    ),
    "link given twice": (
        """\
        devices: [{type: t4}]
        links:
          pairs:
            - {between: [t4, t4], latency: 1us}
            - {between: [t4, t4], latency: 2us}
        """,
        5,
        "links.pairs[1].between",
        "already given",
    ),
    "link bandwidth without /s": (
        """\
        devices: [{type: t4}]
        links:
          default: {bandwidth: 25GB}
        """,
        3,
        "links.default.bandwidth",
        "add /s",
    ),
    "duplicate key": (
        """\
        devices:
          - type: t4
            type: l4
        """,
        3,
        "devices[0].type",
        "given twice",
    ),
    "unknown class": (
        """\
        devices:
          - type: t4
            class: gpu
        """,
        3,
        "devices[0].class",
        "accelerator, cpu",
    ),
    "efficiency above one": (
        """\
        devices:
          - type: t4
            efficiency: 120%
        """,
        3,
        "devices[0].efficiency",
        "at most 1",
    ),
    "custom tag": ("devices:\n  - type: !gpu t4\n", 2, "devices[0].type", "!gpu"),
}


@pytest.mark.parametrize("case", ERRORS, ids=list(ERRORS))
def test_errors_name_file_line_and_field(tmp_path, case):
    text, line, field, says = ERRORS[case]
    path = write(tmp_path, text)
    with pytest.raises(ClusterSpecError) as info:
        load_cluster(path)
    message = str(info.value)
    assert "\n" not in message
    prefix = f"{path}:{line}: "
    assert message.startswith(prefix), message
    if field:
        assert message[len(prefix) :].startswith(f"{field}: "), message
    assert says in message
    assert info.value.exit_status is ExitStatus.INVALID_INPUT == 2


def test_unit_errors_are_chained(tmp_path):
    path = write(tmp_path, "devices: [{type: t4, memory: lots}]\n")
    with pytest.raises(ClusterSpecError) as info:
        load_cluster(path)
    assert isinstance(info.value.__cause__, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(ClusterSpecError, match="no such file"):
        load_cluster(tmp_path / "absent.yaml")


def test_empty_file(tmp_path):
    with pytest.raises(ClusterSpecError, match=r":1: the file is empty"):
        load_cluster(write(tmp_path, ""))


@pytest.mark.parametrize(
    "tagged",
    [
        "devices: !!python/object/apply:os.system ['touch {marker}']\n",
        "devices:\n  - type: !!python/object/apply:os.system ['touch {marker}']\n",
        "devices:\n  - !!python/object/apply:subprocess.call [['touch', '{marker}']]\n",
        "name: !!python/name:os.system\ndevices: [{{type: t4}}]\n",
    ],
)
def test_python_tags_are_refused_and_never_run(tmp_path, tagged):
    marker = tmp_path / "pwned"
    path = write(tmp_path, tagged.format(marker=marker))
    with pytest.raises(ClusterSpecError) as info:
        load_cluster(path)
    message = str(info.value)
    assert re.match(rf"{re.escape(str(path))}:\d+: \S+: tag !!python/", message), message
    assert "nothing was executed" in message
    assert not marker.exists()


def test_recursive_alias_is_refused(tmp_path):
    with pytest.raises(ClusterSpecError, match="contains it"):
        load_cluster(write(tmp_path, "devices: &d [*d]\n"))


def test_alias_bomb_is_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    with pytest.raises(ClusterSpecError, match="aliases"):
        load_cluster(write(tmp_path, "\n".join(lines) + "\ndevices: [{type: t4}]\n"))


def test_yaml_in_the_docs_loads(tmp_path):
    docs = (ROOT / "docs" / "cluster.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", docs, re.S)
    assert len(blocks) >= 3
    # the device file an example names: the docs' own example of a measured CPU
    (measured,) = [block for block in blocks if "cache:" in block]
    (tmp_path / "local-cpu.yaml").write_text(textwrap.dedent(measured))
    for block in blocks:
        parse_cluster(textwrap.dedent(block), str(tmp_path / "cluster.md"))


# --- ranges and what a file may not be --------------------------------------------------

_EXPLICIT = {"name": "g", "peak_flops": "1TFLOPS", "memory": "1GiB", "memory_bandwidth": "1TB/s"}


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("peak_flops", "1e-20", "1e-20 is out of range (from 1000 to 1e+21 FLOP/s)"),
        ("peak_flops", "999FLOPS", "999FLOPS is out of range"),
        ("peak_flops", "{fp32: 1TFLOPS, fp16: 2e21}", "peak_flops.fp16: 2e21 is out of range"),
        ("memory", "16PiB", "16PiB is out of range (from 1 B to 8 PiB)"),
        ("memory", "0.5", "0.5 is out of range (from 1 B"),
        ("memory_bandwidth", "5e-324", "5e-324 is out of range (from 1000 to 1e+16 bytes/s)"),
        ("memory_bandwidth", "100PB/s", "out of range"),
        ("efficiency", "1e-300", "1e-300 is out of range (from 0.0001 to 1)"),
        ("overhead", "1e-300", "1e-300 is out of range (0, or from 1e-12 to 86400 s)"),
        ("overhead", "2days", "expected a time"),
        ("overhead", "1.0e+300", "out of range"),
        ("count", "10000000000001", "at most 1e+12"),
        ("count", str(10**400), "is out of range (largest: about 1.8e308)"),
        # 2**53 + 1: as a float it rounds to 2**53, which is in range; held exactly, it is not
        ("memory", "9007199254740993", "9007199254740993 is out of range (from 1 B to 8 PiB)"),
        ("memory", "9007199254740993 B", "9007199254740993 B is out of range (from 1 B to 8"),
        ("memory", "'8796093022209 KiB'", "8796093022209 KiB is out of range"),
        ("memory", "\u0661\u0662GB", "expected a size"),  # float() reads Arabic-Indic digits
        ("peak_flops", "\uff11TFLOPS", "expected a rate"),  # fullwidth 1
        ("efficiency", "{kernels: {skip_norm: 2}}", "kernels.skip_norm: expected a fraction"),
        ("efficiency", "{kernels: {attention: 0.5}}",
         "kernels.attention: unknown field (expected one of skip_norm)"),
        ("efficiency", "{kernels: 0.5}", "expected fractions per fused kernel"),
    ],
)
def test_each_figure_is_held_to_its_range(tmp_path, field, value, says) -> None:
    entry = {**_EXPLICIT, field: value}
    text = "devices:\n  - {" + ", ".join(f"{k}: {v}" for k, v in entry.items()) + "}\n"
    path = write(tmp_path, text)
    with pytest.raises(ClusterSpecError) as info:
        load_cluster(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: devices[0].{field}"), message
    assert says in message
    assert len(message) < 300


@pytest.mark.parametrize(
    ("link", "says"),
    [
        ("{bandwidth: 5e-324}", "links.default.bandwidth: 5e-324 is out of range"),
        ("{bandwidth: 1e17}", "links.default.bandwidth: 1e17 is out of range"),
        ("{latency: 1e-300}", "links.default.latency: 1e-300 is out of range"),
        ("{latency: 2e5}", "links.default.latency: 2e5 is out of range"),
    ],
)
def test_link_figures_are_held_to_their_range(tmp_path, link, says) -> None:
    with pytest.raises(ClusterSpecError, match=re.escape(says)):
        load_cluster(write(tmp_path, f"devices: [{{type: t4}}]\nlinks:\n  default: {link}\n"))


def test_the_extremes_of_every_range_are_accepted() -> None:
    cluster = parse_cluster(
        """
devices:
  - {name: slow, class: accelerator, count: 1000000000000, peak_flops: 1kFLOPS, memory: 1,
     memory_bandwidth: 1kB/s, efficiency: 0.0001, overhead: 86400}
  - {name: fast, class: cpu, peak_flops: 1e21, memory: 8PiB, memory_bandwidth: 1e16,
     efficiency: 1, overhead: 1e-12}
links:
  default: {bandwidth: 1kB/s, latency: 0}
  pairs: [{between: [fast, fast], bandwidth: 10PB/s, latency: 1e-12}]
"""
    )
    slow, fast = cluster.groups
    assert (slow.count, slow.peak("fp16"), slow.memory_bytes) == (10**12, 1e3, 1.0)
    assert (fast.memory_bytes, fast.overhead) == (2**53, 1e-12)
    assert cluster.link("fast", "fast").bandwidth == 1e16


def test_yaml_that_does_not_construct_names_line_and_field(tmp_path) -> None:
    path = write(tmp_path, "devices:\n  - type: t4\n    memory: 2001-13-45\n")
    with pytest.raises(ClusterSpecError) as info:
        load_cluster(path)
    assert str(info.value) == (
        f"{path}:3: devices[0].memory: '2001-13-45' cannot be read as a date or time "
        "(month must be in 1..12)"
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("devices: [{type: t4, memory: .inf}]\n", "devices[0].memory: '.inf' is not a finite"),
        ("devices: [{type: t4, count: !!int 1x}]\n", "devices[0].count: '1x' cannot be read"),
        ("devices: [{type: t4}]\nname: a\x00b\n", ":2: not valid YAML: character #x0000"),
        ("devices: " + "[" * 100 + "]" * 100 + "\n", ":1: nested more than 64 levels deep"),
    ],
    ids=["inf", "bad-int", "nul", "deep"],
)
def test_yaml_errors_in_cluster_text_are_one_line(text, says) -> None:
    with pytest.raises(ClusterSpecError) as info:
        parse_cluster(text, "c.yaml")
    assert says in str(info.value) and "\n" not in str(info.value)


def test_a_cluster_that_is_not_a_regular_utf8_file_is_one_line(tmp_path) -> None:
    with pytest.raises(ClusterSpecError, match="is a character device, not a cluster file"):
        load_cluster("/dev/zero")
    with pytest.raises(ClusterSpecError, match="is a directory, not a cluster file"):
        load_cluster(tmp_path)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"name: caf\xe9\ndevices: [{type: t4}]\n")
    with pytest.raises(ClusterSpecError, match=r"latin1.yaml:1: not UTF-8 text \(byte 0xe9"):
        load_cluster(latin1)


def test_the_shipped_cluster_figures_are_in_range() -> None:
    for path in EXAMPLES.glob("*.yaml"):
        load_cluster(path)
    assert all(1 <= t.memory_bytes <= 2**53 for t in CATALOG.values())


def test_more_device_groups_than_the_format_allows_is_one_line() -> None:
    from placer.costs.cluster import MAX_GROUPS

    groups = "".join(f"  - {{type: t4, name: g{i}}}\n" for i in range(MAX_GROUPS + 1))
    message = r"c.yaml:1: devices: 33 device groups, more than 32"
    with pytest.raises(ClusterSpecError, match=message):
        parse_cluster("devices:\n" + groups, "c.yaml")
    assert len(parse_cluster("devices:\n" + groups.split("\n", 1)[1], "c.yaml").groups) == 32


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("1:30", "devices[0].count: write 90 in decimal, not '1:30'"),
        ("0x10", "devices[0].count: write 16 in decimal, not '0x10'"),
        ("0b101", "devices[0].count: write 5 in decimal, not '0b101'"),
        ("1_000", "devices[0].count: write 1000 in decimal, not '1_000'"),
        ("017", "devices[0].count: write 15 in decimal, not '017' (YAML reads a leading 0 as "
         "octal)"),
        ("!!int '0x10'", "devices[0].count: write 16 in decimal, not '0x10'"),
        ("0o17", "devices[0].count: expected a positive integer"),  # YAML 1.1: a string
        ("\uff12", "devices[0].count: expected a positive integer"),  # a string too
    ],
    ids=["sexagesimal", "hex", "binary", "underscore", "octal", "tagged-hex", "0o", "fullwidth"],
)  # fmt: skip
def test_a_count_must_be_written_in_decimal(tmp_path, value, says) -> None:
    # YAML 1.1 reads 1:30 as 90 (base 60): nobody counting devices means that
    path = write(tmp_path, f"devices:\n  - type: t4\n    count: {value}\n")
    with pytest.raises(ClusterSpecError) as info:
        load_cluster(path)
    assert str(info.value).startswith(f"{path}:3: {says}"), str(info.value)


def test_decimal_numbers_of_every_form_still_read() -> None:
    cluster = parse_cluster(
        "devices:\n  - {type: t4, count: +2, efficiency: .5, overhead: 1.0e-06}\n"
        "  - {type: cpu, memory: 1.5e+10, peak_flops: 2000.}\n"
    )
    t4, cpu = cluster.groups
    assert (t4.count, t4.efficiency, t4.overhead) == (2, 0.5, 1e-6)
    assert (cpu.memory_bytes, cpu.peak("fp32")) == (1.5e10, 2000.0)


def test_a_date_is_shown_as_written(tmp_path) -> None:
    path = write(tmp_path, "devices:\n  - type: t4\n    memory: 2001-12-01\n")
    with pytest.raises(ClusterSpecError) as info:
        load_cluster(path)
    message = str(info.value)
    assert "got '2001-12-01'" in message and "datetime" not in message, message
    # a name is text, whatever it looks like
    assert parse_cluster("name: 2001-12-01\ndevices: [{type: t4}]\n").name == "2001-12-01"


LOCAL = textwrap.dedent(
    """\
    name: local
    devices:
      - name: local-cpu
        class: cpu
        peak_flops: {fp32: 200 GFLOP/s}
        memory: 16 GiB
        memory_bandwidth: 25 GB/s
        cache: {size: 768 KiB, bandwidth: 95 GB/s}
        efficiency: {default: 0.5, gemm: 1.0, grouped_conv: 0.05, memory: 1.0}
        overhead: 0.25 us
    calibration: {runtime: onnxruntime, version: "1.20.0", threads: 1}
    """
)


def test_a_device_file_is_a_type_other_cluster_files_name(tmp_path) -> None:
    (tmp_path / "local-cpu.yaml").write_text(LOCAL)
    sub = tmp_path / "clusters"
    sub.mkdir()
    path = sub / "pair.yaml"
    path.write_text("devices:\n  - {type: ../local-cpu.yaml, count: 2, overhead: 1us}\n")
    group = load_cluster(path).group("local-cpu")
    assert group.count == 2 and group.device_class is DeviceClass.CPU
    assert group.peak("fp32") == 200e9 and group.overhead == 1e-6  # overridden
    assert group.cache_bytes == 768 * 2**10 and group.cache_bandwidth == 95e9
    assert group.compute_rate("fp32", "grouped_conv") == pytest.approx(10e9)
    assert group.compute_rate("fp32", "reduction") == pytest.approx(100e9)
    assert group.stream_rate(2**20, "elementwise") == 25e9  # over the cache: memory's
    assert group.stream_rate(2**10, "elementwise") == 95e9


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("{type: ./missing.yaml}", "devices[0].type: device file './missing.yaml'"),
        ("{type: ./two.yaml}", "describes 2 device groups"),
        ("{type: ./nested.yaml}", "names a device file in turn"),
        ("{type: ./local-cpu.yaml, efficiency: {gemm: 2}}", "efficiency.gemm"),
        ("{type: ./local-cpu.yaml, efficiency: {warp: 0.5}}", "warp"),
        ("{type: ./local-cpu.yaml, cache: {size: 1MiB}}", "missing field 'bandwidth'"),
    ],
)
def test_bad_device_files_and_class_figures_are_one_line(tmp_path, entry, says) -> None:
    (tmp_path / "local-cpu.yaml").write_text(LOCAL)
    (tmp_path / "two.yaml").write_text("devices: [{type: t4}, {type: cpu}]\n")
    (tmp_path / "nested.yaml").write_text("devices: [{type: ./local-cpu.yaml}]\n")
    path = tmp_path / "c.yaml"
    path.write_text(f"devices:\n  - {entry}\n")
    with pytest.raises(ClusterSpecError) as err:
        load_cluster(path)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_calibration_for_another_runtime_is_refused() -> None:
    text = LOCAL.replace("runtime: onnxruntime", "runtime: tensorrt")
    with pytest.raises(ClusterSpecError, match=r"calibration\.runtime: unknown runtime"):
        parse_cluster(text, "local.yaml")


def test_a_catalog_gpu_brings_its_per_class_figures_and_cache():
    a100, t4 = parse_cluster(
        "devices: [{type: a100-40gb}, {type: t4, efficiency: {conv: 0.5}, cache: "
        "{size: 4MiB, bandwidth: 1TB/s}}]"
    ).groups
    catalog = CATALOG["a100-40gb"]
    assert a100.class_efficiency == catalog.class_efficiency and a100.class_efficiency
    assert (a100.cache_bytes, a100.cache_bandwidth) == (40 * 2**20, 7219e9)
    assert a100.compute_rate("fp16", "gemm") == 312e12 * catalog.class_efficiency["gemm"]
    assert a100.stream_rate(1e9, "elementwise") == 1555e9 * catalog.class_efficiency["memory"]
    assert a100.stream_rate(1e6, "elementwise") == 7219e9 * catalog.class_efficiency["memory"]
    # a mapping overrides the classes it names and keeps the type's others
    assert t4.class_efficiency["conv"] == 0.5
    assert t4.class_efficiency["gemm"] == CATALOG["t4"].class_efficiency["gemm"]
    assert (t4.cache_bytes, t4.cache_bandwidth) == (4 * 2**20, 1e12)
    assert CATALOG["t4"].cache_bytes == 0  # no published L2 bandwidth to model it with
