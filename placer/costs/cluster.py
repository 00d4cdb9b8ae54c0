"""Cluster descriptions: which devices a pipeline may use and how they are linked.

A cluster is a list of device groups (``count`` identical devices each, described by a
catalog type from :mod:`placer.costs.catalog`, by explicit figures, or by a type with some
figures overridden) and the links between and within groups.  The YAML format, its
defaults and examples are in ``docs/cluster.md``.

Every mistake in a file is one :class:`~placer.errors.ClusterSpecError` line of the form
``FILE:LINE: devices[1].memory: expected ..., got ...``.  Files are read with PyYAML's
safe loader only, and tags that could construct Python objects are refused before
anything is built from the document.  Every figure must lie in its field's range
(:data:`RANGES`), generous for real hardware but narrow enough that no time, size or
sum computed from it overflows or underflows.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from placer.costs.catalog import ASSUMED, CATALOG, DTYPES, DeviceType, PcieGen, device_type_names
from placer.costs.cores import MAX_CORE, deal_cores, parse_core_list
from placer.errors import ClusterSpecError, InputError
from placer.frontends.opcost import OpClass
from placer.problem import DeviceClass, LinkCost
from placer.util.inputs import read_text
from placer.util.safe_yaml import FieldPath, format_path, load_yaml, one_line, shown
from placer.util.units import (
    MAX_BYTES,
    Range,
    format_bytes,
    parse_bandwidth,
    parse_bytes,
    parse_flops,
    parse_fraction,
    parse_positive,
    parse_time,
)

__all__ = [
    "RANGES",
    "TIME_RANGE",
    "Cluster",
    "DeviceGroup",
    "Link",
    "default_cluster",
    "load_cluster",
    "parse_cluster",
]

# Link defaults (see docs/cluster.md).  Datasheets quote raw signalling rates; copies
# reach roughly 80% of them (packet headers, DMA setup), so that is what a default link
# carries: PCIe 4.0 x16 is 31.5 GB/s raw per direction and 25.2 GB/s here.
LINK_EFFICIENCY = 0.8
PCIE_LATENCY = 10e-6  # s, a host-staged copy between two PCIe devices
NVLINK_LATENCY = 5e-6  # s, a peer-to-peer copy over NVLink
UNKNOWN_HOST_LINK = PcieGen.GEN4  # for groups given by explicit figures only

KNOWN_DTYPES = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8")
CUSTOM_TYPE = "custom"

_TOP_FIELDS = ("name", "devices", "links", "calibration")
#: The runtime a ``calibration`` section may name (what ``placer calibrate`` measures in).
CALIBRATION_RUNTIMES = ("onnxruntime",)
_GROUP_FIELDS = (
    "name",
    "type",
    "count",
    "class",
    "peak_flops",
    "memory",
    "memory_bandwidth",
    "efficiency",
    "overhead",
    "pipeline",
    "cache",
    "cores",
    "shared_bandwidth",
    "host",
)
#: Keys of a per-class ``efficiency`` mapping: the op classes, ``default`` (every class
#: not named), ``memory`` (streaming ops' share of bandwidth) and ``movement``.
_CLASS_KEYS = tuple(c.value for c in OpClass)
EFFICIENCY_KEYS = ("default", "memory", *_CLASS_KEYS)
#: How ``DeviceGroup.class_efficiency`` keys a class's figure with the runtime's
#: optimisations off (``efficiency: {unfused: {conv: ...}}`` in a file).
UNFUSED = "unfused."
#: How ``DeviceGroup.class_efficiency`` keys a class's half-efficiency reduction length
#: (``efficiency: {half_at: {conv: 24}}`` in a file).
HALF_AT = "half_at."
_CACHE_FIELDS = ("size", "bandwidth")
_EXPLICIT_REQUIRED = ("peak_flops", "memory", "memory_bandwidth")
_LINKS_FIELDS = ("default", "pairs")
_LINK_FIELDS = ("bandwidth", "latency")
_PAIR_FIELDS = ("between", *_LINK_FIELDS)
_MAX_NODES = 100_000  # bounds alias expansion ("billion laughs")
#: Most device groups a cluster may have: each is a device kind, and the exact DP's
#: table grows as the product of the kinds' device counts (plus one).
MAX_GROUPS = 32
_MAX_CLUSTER_BYTES = 16 * 2**20  # a cluster file lists a few groups and links

#: Seconds a fixed cost may take (an op's overhead, a link's latency, a measured op
#: time): none at all, or from a picosecond to a day.
TIME_RANGE = Range(1e-12, 86_400, "s", zero=True)
#: The range of each figure of a cluster file (docs/cluster.md lists them).  From a
#: microcontroller to far past any machine built, yet every time placer derives stays
#: finite: FLOPs / (1 kFLOP/s · 0.1%) and bytes / 1 kB/s are at most a million times
#: the FLOPs or bytes, and a device count is capped at the model's ops when costed.
RANGES: dict[str, Range] = {
    "count": Range(1, 10**12),
    "peak_flops": Range(1e3, 1e21, "FLOP/s"),
    "memory": Range(1, MAX_BYTES, show=format_bytes),
    "memory_bandwidth": Range(1e3, 1e16, "bytes/s"),
    "shared_bandwidth": Range(1e3, 1e16, "bytes/s"),
    "efficiency": Range(1e-3, 1),
    "overhead": TIME_RANGE,
    "bandwidth": Range(1e3, 1e16, "bytes/s"),
    "latency": TIME_RANGE,
    "size": Range(1, MAX_BYTES, show=format_bytes),
    "half_at": Range(1e-3, 1e9),
}


@dataclass(frozen=True)
class Link:
    """A point-to-point link: a fixed latency plus a bandwidth.

    Parameters
    ----------
    bandwidth : float
        Bytes per second, one direction.
    latency : float
        Seconds per transfer, whatever its size.
    """

    bandwidth: float
    latency: float

    def transfer_time(self, nbytes: float) -> float:
        """Seconds to move ``nbytes`` across the link (none when there is nothing to move).

        Examples
        --------
        >>> Link(bandwidth=25e9, latency=10e-6).transfer_time(25e6)
        0.00101
        >>> Link(bandwidth=25e9, latency=10e-6).transfer_time(0)
        0.0
        """
        if nbytes < 0:
            raise ValueError(f"a transfer cannot move a negative number of bytes: {nbytes}")
        return self.cost().time(nbytes)

    def cost(self) -> LinkCost:
        """The link as the placement problem charges it (:class:`placer.problem.LinkCost`)."""
        return LinkCost(latency=self.latency, seconds_per_byte=1.0 / self.bandwidth)


@dataclass(frozen=True)
class DeviceGroup:
    """``count`` identical devices.

    Parameters
    ----------
    name : str
        Unique within the cluster.
    type : str
        The catalog type it was built from, or ``"custom"``.
    device_class : DeviceClass
        Accelerator or CPU.
    count : int
        Number of devices, at least 1.
    peak_flops : Mapping of str to float
        Dense peak FLOP/s per dtype (``"fp32"`` always present).
    memory_bytes : float
        Memory per device, bytes.
    memory_bandwidth : float
        Memory bandwidth per device, bytes/s.
    efficiency : float
        Fraction of peak FLOP/s operators achieve, in (0, 1].
    overhead : float
        Fixed seconds per operator (kernel launch, dispatch).
    pipeline : bool
        Whether the pipeline may use the group's devices (``pipeline: false`` in the
        file, or ``--exclude``, keeps them out: they get no stage).
    class_efficiency : Mapping of str to float
        Per op class (:class:`placer.frontends.opcost.OpClass` values), the fraction of peak its
        ops reach, overriding ``efficiency``; ``memory`` is the fraction of the
        bandwidth streaming ops reach, ``movement`` that of data-movement ops.
    cache_bytes, cache_bandwidth : float
        An op whose traffic fits in ``cache_bytes`` streams at ``cache_bandwidth``
        instead of ``memory_bandwidth`` (0: no cache level is modelled).
    cores : tuple of int
        CPU cores the group's devices are pinned to, ``count`` equal slices in order
        (:meth:`device_cores`); empty: not pinned.  No cost depends on them.
    shared_bandwidth : float
        Memory bandwidth all the group's devices share (one CPU socket), bytes/s; 0:
        none beyond each device's own (:attr:`dram_bandwidth`).
    host : str
        The machine the group's devices are in ("": the cluster's one machine).  No
        cost depends on it; the pipeline simulator shares each host's link to the
        others among the transfers that cross it (:mod:`placer.outputs.simulate`).
    """

    name: str
    type: str
    device_class: DeviceClass
    count: int
    peak_flops: Mapping[str, float]
    memory_bytes: float
    memory_bandwidth: float
    efficiency: float
    overhead: float
    pipeline: bool = True
    class_efficiency: Mapping[str, float] = field(default_factory=dict)
    cache_bytes: float = 0.0
    cache_bandwidth: float = 0.0
    cores: tuple[int, ...] = ()
    shared_bandwidth: float = 0.0
    host: str = ""

    def device_cores(self, index: int) -> tuple[int, ...]:
        """The cores device ``index`` (``name:index``) is pinned to: slice ``index``
        of ``count`` equal slices of :attr:`cores`, in order; empty when the group
        names none.

        Raises
        ------
        IndexError
            ``index`` is not one of the group's devices (0 to ``count - 1``).

        Examples
        --------
        >>> cpu = parse_cluster("devices: [{type: cpu, count: 2, cores: '0-3'}]").group("cpu")
        >>> cpu.device_cores(0), cpu.device_cores(1)
        ((0, 1), (2, 3))
        >>> parse_cluster("devices: [{type: cpu}]").group("cpu").device_cores(0)
        ()
        """
        return deal_cores(self.cores, self.count, index)

    @property
    def dram_bandwidth(self) -> float:
        """Bytes/s one device streams from memory (not cache) while every device of
        the group does: ``memory_bandwidth``, or its share of ``shared_bandwidth`` if
        that is less.  The cost model assumes all of them run at once, as a pipeline's
        stages do in steady state, so a device's costs do not depend on the others'.

        Examples
        --------
        >>> socket = parse_cluster(
        ...     "devices: [{type: cpu, count: 4, memory_bandwidth: 20GB/s, "
        ...     "shared_bandwidth: 60GB/s}]").group("cpu")
        >>> socket.dram_bandwidth / 1e9
        15.0
        """
        if not self.shared_bandwidth:
            return self.memory_bandwidth
        return min(self.memory_bandwidth, self.shared_bandwidth / self.count)

    def compute_rate(
        self, dtype: str, op_class: str, *, unfused: bool = False, inner: float = 0.0
    ) -> float:
        """FLOP/s an op of ``op_class`` reaches at ``dtype``; ``unfused``: with the
        runtime's graph optimisations off (its figure under ``efficiency.unfused``, where
        the file gives one: onnxruntime's CPU convolutions run in a blocked layout only
        with them on).  ``inner``: a product's multiply-adds per output element; where
        the file gives the class a half-efficiency length ``K0`` (``efficiency.half_at``),
        the class's efficiency is its figure times ``inner / (inner + K0)``: a
        convolution of 3 input channels, or a 1x1 one of 16, keeps its vector units
        far less busy than one of 256.

        Examples
        --------
        >>> t4 = parse_cluster("devices: [{type: t4, efficiency: {gemm: 1, other: 0.25}}]")
        >>> [t4.group("t4").compute_rate("fp32", c) / 1e12 for c in ("gemm", "other")]
        [8.1, 2.025]
        """
        efficiency = self.class_efficiency.get(op_class, self.efficiency)
        if unfused:
            efficiency = self.class_efficiency.get(UNFUSED + op_class, efficiency)
        half = self.class_efficiency.get(HALF_AT + op_class, 0.0)
        if half > 0 and inner > 0:
            efficiency *= inner / (inner + half)
        return self.peak(dtype) * efficiency

    def stream_rate(self, nbytes: float, op_class: str) -> float:
        """Bytes/s an op of ``op_class`` moving ``nbytes`` in all reaches: the cache's
        bandwidth when they fit in it, else memory's (:attr:`dram_bandwidth`, which
        devices sharing a socket share), times the fraction of it the class reaches
        (``movement`` or ``transpose`` for data movement, ``memory`` otherwise)."""
        fits = self.cache_bytes > 0 and nbytes <= self.cache_bytes
        bandwidth = self.cache_bandwidth if fits else self.dram_bandwidth
        key = op_class if op_class in ("movement", "transpose") else "memory"
        return bandwidth * self.class_efficiency.get(key, self.efficiency)

    @property
    def efficiency_spec(self) -> float | dict:
        """``efficiency`` as a cluster file gives it: a number, or per class."""
        if not self.class_efficiency:
            return self.efficiency
        spec: dict = {"default": self.efficiency}
        nested: dict[str, dict[str, float]] = {}
        for key, value in self.class_efficiency.items():
            prefix = next((p for p in (UNFUSED, HALF_AT) if key.startswith(p)), None)
            if prefix is None:
                spec[key] = value
            else:
                nested.setdefault(prefix[:-1], {})[key[len(prefix):]] = value
        spec.update(nested)
        return spec

    def peak(self, dtype: str) -> float:
        """Peak FLOP/s for ``dtype``; a dtype without native support runs at the fp32 rate.

        Examples
        --------
        >>> t4 = parse_cluster("devices: [{type: t4}]").group("t4")
        >>> t4.peak("bf16") == t4.peak("fp32") == 8.1e12
        True
        """
        return self.peak_flops.get(dtype, self.peak_flops["fp32"])

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON/YAML renderers (base units: bytes, FLOP/s, seconds)."""
        return {
            "name": self.name,
            "type": self.type,
            "class": self.device_class.value,
            "count": self.count,
            "peak_flops": dict(self.peak_flops),
            "memory_bytes": self.memory_bytes,
            "memory_bandwidth": self.memory_bandwidth,
            "efficiency": self.efficiency_spec,
            "overhead": self.overhead,
            "pipeline": self.pipeline,
            **(
                {"cache": {"size": self.cache_bytes, "bandwidth": self.cache_bandwidth}}
                if self.cache_bytes
                else {}
            ),
            **({"cores": list(self.cores)} if self.cores else {}),
            **({"shared_bandwidth": self.shared_bandwidth} if self.shared_bandwidth else {}),
            **({"host": self.host} if self.host else {}),
        }


@dataclass(frozen=True)
class Cluster:
    """Device groups and the links between them.

    Parameters
    ----------
    name : str
        Shown in reports.
    groups : tuple of DeviceGroup
        In the order of the file.
    default_link : Link
        The link between two groups when ``links`` has no entry for them.
    links : Mapping of (str, str) to Link
        Keyed by a sorted pair of group names (``(a, a)`` for devices within group ``a``).
        Links are symmetric: look them up with :meth:`link`.  Clusters read from a file
        have an entry for every pair, defaults included.
    """

    name: str
    groups: tuple[DeviceGroup, ...]
    default_link: Link
    links: Mapping[tuple[str, str], Link]

    def link(self, a: str, b: str) -> Link:
        """The link between a device of group ``a`` and one of group ``b`` (in any order).

        Raises
        ------
        KeyError
            ``a`` or ``b`` is not a group of this cluster.

        Examples
        --------
        >>> cluster = default_cluster()
        >>> cluster.link("cpu", "a100-80gb") == cluster.link("a100-80gb", "cpu")
        True
        """
        for name in (a, b):
            if not any(group.name == name for group in self.groups):
                raise KeyError(f"no device group named {name!r} in cluster {self.name!r}")
        return self.links.get(_pair(a, b), self.default_link)

    def group(self, name: str) -> DeviceGroup:
        """The group called ``name``.

        Raises
        ------
        KeyError
            No such group.
        """
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(f"no device group named {name!r} in cluster {self.name!r}")

    @property
    def total_devices(self) -> int:
        return sum(group.count for group in self.groups)

    @property
    def pipeline_groups(self) -> tuple[DeviceGroup, ...]:
        """The groups whose devices the pipeline may use (``pipeline`` true)."""
        return tuple(group for group in self.groups if group.pipeline)

    def excluding(self, kinds: Sequence[str]) -> Cluster:
        """This cluster with the groups named by ``kinds`` kept out of the pipeline
        (``--exclude``): each is a group name or a device type (every group of it).

        Raises
        ------
        InputError
            A name is neither a group nor a type of the cluster, or every group would
            be kept out.

        Examples
        --------
        >>> [g.pipeline for g in default_cluster().excluding(["cpu"]).groups]
        [True, False]
        """
        if not kinds:
            return self
        names = ", ".join(group.name for group in self.groups)
        out: set[str] = set()
        for kind in kinds:
            matched = {g.name for g in self.groups if kind in (g.name, g.type)}
            if not matched:
                raise InputError(
                    f"--exclude {kind!r}: no device group or type of that name in cluster "
                    f"{self.name!r} (groups: {names})"
                )
            out |= matched
        groups = tuple(
            replace(group, pipeline=False) if group.name in out else group
            for group in self.groups
        )
        if not any(group.pipeline for group in groups):
            raise InputError(
                f"--exclude {' --exclude '.join(kinds)}: keeps every device group of "
                f"cluster {self.name!r} out of the pipeline ({names}); leave at least one in"
            )
        return replace(self, groups=groups)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON/YAML renderers (base units: bytes/s, seconds)."""
        return {
            "name": self.name,
            "groups": [group.to_dict() for group in self.groups],
            "default_link": _link_dict(self.default_link),
            "links": [
                {"between": list(pair), **_link_dict(link)}
                for pair, link in sorted(self.links.items())
            ],
        }


def _link_dict(link: Link) -> dict[str, float]:
    return {"bandwidth": link.bandwidth, "latency": link.latency}


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def pcie_link(gen: PcieGen) -> Link:
    """Default link over PCIe of generation ``gen`` (x16, 80% of the raw rate).

    Examples
    --------
    >>> round(pcie_link(PcieGen.GEN4).bandwidth / 1e9, 1)
    25.2
    """
    return Link(LINK_EFFICIENCY * gen.raw_bandwidth, PCIE_LATENCY)


def nvlink_link(total_bandwidth: float) -> Link:
    """Default link over NVLink whose datasheet figure (both directions) is given.

    Examples
    --------
    >>> nvlink_link(600e9).bandwidth / 1e9  # A100: 300 GB/s each way, 80% of it
    240.0
    """
    return Link(LINK_EFFICIENCY * total_bandwidth / 2, NVLINK_LATENCY)


DEFAULT_BETWEEN_GROUPS = pcie_link(PcieGen.GEN4)
"""Link between groups when neither the file nor the catalog says more."""

DEFAULT_CLUSTER_YAML = """\
name: "default: 4x a100-80gb + cpu"
devices:
  - type: a100-80gb
    count: 4
  - type: cpu
"""


def default_cluster() -> Cluster:
    """Four A100 80GB GPUs on NVLink and one host CPU, linked over PCIe 4.0.

    Examples
    --------
    >>> cluster = default_cluster()
    >>> [(g.name, g.count) for g in cluster.groups]
    [('a100-80gb', 4), ('cpu', 1)]
    """
    return parse_cluster(DEFAULT_CLUSTER_YAML, "<default cluster>")


def load_cluster(path: str | Path, *, nested: bool = False) -> Cluster:
    """Read and validate a cluster file.

    Parameters
    ----------
    path : str or Path
        A YAML file in the format of ``docs/cluster.md``.

    Returns
    -------
    Cluster
        Named by the file's ``name`` field, else by the file's stem.

    Raises
    ------
    ClusterSpecError
        The file is missing or unreadable, is not YAML, or breaks a rule of the format.
    """
    path = Path(path)
    text = read_text(
        path, what="a cluster", error=ClusterSpecError, max_bytes=_MAX_CLUSTER_BYTES
    )
    return parse_cluster(text, str(path), nested=nested)


def parse_cluster(text: str, source: str = "<cluster>", *, nested: bool = False) -> Cluster:
    """Validate a cluster description given as YAML text.

    Parameters
    ----------
    text : str
        The YAML document.
    source : str
        Where ``text`` came from, for error messages (a file name); a group's ``type``
        naming a device file is read relative to its folder.
    nested : bool
        Whether this is a device file named by another file (which may not name one in
        turn).

    Returns
    -------
    Cluster

    Raises
    ------
    ClusterSpecError
        One line: ``SOURCE:LINE: FIELD.PATH: what was expected, got what``.

    Examples
    --------
    >>> cluster = parse_cluster("devices: [{type: t4, count: 2}, {type: cpu}]")
    >>> cluster.group("t4").count, round(cluster.link("t4", "cpu").bandwidth / 1e9, 1)
    (2, 12.6)
    """
    document, lines = load_yaml(
        text,
        source,
        error=ClusterSpecError,
        what="a cluster file",
        empty="a mapping with 'devices'",
        max_values=_MAX_NODES,
    )
    spec = _Spec(source, lines, nested=nested)
    default_name = Path(source).stem if not source.startswith("<") else "cluster"
    return spec.cluster(document, default_name)


# --- the cluster format -----------------------------------------------------------------


@dataclass(frozen=True)
class _GroupSpec:
    """A group as resolved from the file, before links are worked out."""

    group: DeviceGroup
    catalog: DeviceType | None


class _Spec:
    """Validates the plain data of one cluster file, failing with file:line:path."""

    def __init__(self, source: str, lines: dict[FieldPath, int], *, nested: bool = False):
        self.source = source
        self.lines = lines
        self.nested = nested  # a device file named by another file's type

    def error(self, path: FieldPath, message: str) -> ClusterSpecError:
        line = next(
            (self.lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in self.lines),
            1,
        )
        where = f"{format_path(path)}: " if path else ""
        return ClusterSpecError(one_line(f"{self.source}:{line}: {where}{message}"))

    # -- generic checks

    def mapping(self, value: Any, path: FieldPath, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected {what}, got {shown(value)}")
        return value

    def fields(self, value: dict[str, Any], path: FieldPath, allowed: tuple[str, ...]) -> None:
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.error(
                    (*path, key), f"unknown field ({hint}expected one of {', '.join(allowed)})"
                )

    def text(self, value: Any, path: FieldPath) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(path, f"expected a non-empty name, got {shown(value)}")
        return value

    def quantity(
        self, value: Any, path: FieldPath, parse: Callable[..., float], field: str | None = None
    ) -> float:
        """``value`` parsed, and held to the range of its field (``field``, else the last
        part of ``path`` that names one: ``peak_flops`` for ``devices[0].peak_flops.fp16``;
        ``efficiency.memory`` needs ``field`` to be read as an efficiency) before it
        becomes a float: ``memory: 9007199254740993`` is over 8 PiB, though as a float it
        would round to 8 PiB exactly."""
        field = field or next(p for p in reversed(path) if isinstance(p, str) and p in RANGES)
        try:
            return parse(value, within=RANGES[field])
        except ValueError as err:
            raise self.error(path, str(err)) from err

    # -- the document

    def cluster(self, document: Any, default_name: str) -> Cluster:
        top = self.mapping(document, (), "a mapping with 'devices' (and optionally 'links')")
        self.fields(top, (), _TOP_FIELDS)
        name = self.text(top["name"], ("name",)) if "name" in top else default_name
        if "calibration" in top:
            self.calibration(top["calibration"])
        if "devices" not in top:
            raise self.error((), "missing field 'devices' (a list of device groups)")
        devices = top["devices"]
        if not isinstance(devices, list) or not devices:
            raise self.error(
                ("devices",), f"expected a non-empty list of device groups, got {shown(devices)}"
            )
        if len(devices) > MAX_GROUPS:
            raise self.error(
                ("devices",),
                f"{len(devices)} device groups, more than {MAX_GROUPS}: give identical devices "
                "one group with 'count: N'",
            )
        specs: list[_GroupSpec] = []
        seen: dict[str, int] = {}
        for index, entry in enumerate(devices):
            spec = self.group(entry, ("devices", index))
            name_path = ("devices", index, "name")
            if spec.group.name in seen:
                raise self.error(
                    name_path,
                    f"duplicate group name {spec.group.name!r} (devices[{seen[spec.group.name]}] "
                    "has it too; give each group its own 'name')",
                )
            seen[spec.group.name] = index
            specs.append(spec)
        if not any(spec.group.pipeline for spec in specs):
            raise self.error(
                ("devices",),
                "every group has 'pipeline: false': leave at least one in the pipeline",
            )
        default_link, links = self.links(top.get("links"), specs)
        return Cluster(name, tuple(s.group for s in specs), default_link, links)

    def calibration(self, value: Any) -> None:
        """The record ``placer calibrate`` leaves: informational, but it must say a
        runtime placer knows."""
        path: FieldPath = ("calibration",)
        entry = self.mapping(value, path, "a mapping (the record placer calibrate writes)")
        runtime = entry.get("runtime")
        if runtime not in CALIBRATION_RUNTIMES:
            raise self.error(
                (*path, "runtime"),
                f"unknown runtime {shown(runtime)} (placer reads calibrations measured "
                f"with {', '.join(CALIBRATION_RUNTIMES)})",
            )

    def group(self, entry: Any, path: FieldPath) -> _GroupSpec:
        entry = self.mapping(entry, path, "a device group (a mapping with 'type' or figures)")
        self.fields(entry, path, _GROUP_FIELDS)
        catalog, referenced = self.group_type(entry, path)
        name, count, device_class = self.group_identity(entry, path, catalog, referenced)
        figures = self.group_figures(entry, path, device_class, catalog, referenced)
        cores = self.cores(entry, path, device_class, count, referenced)
        host = self.text(entry["host"], (*path, "host")) if "host" in entry else ""
        pipeline = entry.get("pipeline", True)
        if not isinstance(pipeline, bool):
            raise self.error(
                (*path, "pipeline"),
                f"expected true or false (false keeps the group out of the pipeline), "
                f"got {shown(pipeline)}",
            )
        group = DeviceGroup(
            name=name,
            type=catalog.name if catalog else CUSTOM_TYPE,  # a device file: its figures
            device_class=device_class,
            count=count,
            pipeline=pipeline,
            cores=cores,
            host=host,
            **figures,
        )
        return _GroupSpec(group, catalog)

    def group_type(self, entry: dict[str, Any], path: FieldPath):
        """``(catalog type, referenced device file's group)`` of a group (at most one;
        neither for a group of explicit figures, which must then give them and a name)."""
        catalog: DeviceType | None = None
        referenced: DeviceGroup | None = None
        if "type" in entry and _is_file_reference(entry["type"]):
            if self.nested:
                raise self.error(
                    (*path, "type"),
                    "a device file's group names a device file in turn; give its figures",
                )
            referenced = self.referenced(entry["type"], (*path, "type"))
        elif "type" in entry:
            type_name = entry["type"]
            if not isinstance(type_name, str) or type_name not in CATALOG:
                close = difflib.get_close_matches(str(type_name), CATALOG, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.error(
                    (*path, "type"),
                    f"unknown device type {shown(type_name)} ({hint}known types: "
                    f"{device_type_names()}, or a device file such as ./local-cpu.yaml)",
                )
            catalog = CATALOG[type_name]
        else:
            given = [f for f in _EXPLICIT_REQUIRED if f in entry]
            if not given:
                raise self.error(
                    path,
                    f"missing field 'type' (one of {device_type_names()}), or explicit "
                    f"figures {', '.join(_EXPLICIT_REQUIRED)}",
                )
            for field in _EXPLICIT_REQUIRED:
                if field not in entry:
                    raise self.error(
                        path,
                        f"missing field {field!r} (a group without 'type' needs "
                        f"{', '.join(_EXPLICIT_REQUIRED)})",
                    )
            if "name" not in entry:
                raise self.error(path, "missing field 'name' (a group without 'type' needs one)")

        return catalog, referenced

    def group_identity(self, entry, path: FieldPath, catalog, referenced):
        """``(name, count, device class)`` of a group, its type's where not given."""
        if "name" in entry:
            name = self.text(entry["name"], (*path, "name"))
        else:
            name = referenced.name if referenced else catalog.name
        count = entry.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count not in RANGES["count"]:
            raise self.error(
                (*path, "count"),
                f"expected a positive integer, at most {RANGES['count'].high:.0e}, "
                f"got {shown(count)}",
            )
        if "class" in entry:
            try:
                device_class = DeviceClass(entry["class"])
            except ValueError as err:
                raise self.error(
                    (*path, "class"),
                    f"expected one of {', '.join(c.value for c in DeviceClass)}, "
                    f"got {shown(entry['class'])}",
                ) from err
        elif referenced:
            device_class = referenced.device_class
        else:
            device_class = catalog.device_class if catalog else DeviceClass.ACCELERATOR
        return name, count, device_class

    def group_figures(self, entry, path: FieldPath, device_class, catalog, referenced):
        """The :class:`DeviceGroup` figures of a group: those given, else its type's (a
        group of explicit figures takes the assumed efficiency and overhead of its
        class, and no catalog type's per-class figures or cache)."""
        base = referenced or catalog or ASSUMED[device_class]

        peak_flops = self.peak_flops(entry, path, referenced or catalog)
        memory = (
            self.quantity(entry["memory"], (*path, "memory"), parse_bytes)
            if "memory" in entry
            else base.memory_bytes
        )
        bandwidth = (
            self.quantity(entry["memory_bandwidth"], (*path, "memory_bandwidth"), parse_bandwidth)
            if "memory_bandwidth" in entry
            else base.memory_bandwidth
        )
        efficiency, class_efficiency = base.efficiency, dict(
            getattr(base, "class_efficiency", {})
        )
        if "efficiency" in entry:
            efficiency, class_efficiency = self.efficiency(
                entry["efficiency"], (*path, "efficiency"), efficiency, class_efficiency
            )
        cache_bytes = getattr(base, "cache_bytes", 0.0)
        cache_bandwidth = getattr(base, "cache_bandwidth", 0.0)
        if "cache" in entry:
            cache_bytes, cache_bandwidth = self.cache(entry["cache"], (*path, "cache"))
        overhead = (
            self.quantity(entry["overhead"], (*path, "overhead"), parse_time)
            if "overhead" in entry
            else base.overhead
        )
        shared_bandwidth = (
            self.quantity(entry["shared_bandwidth"], (*path, "shared_bandwidth"), parse_bandwidth)
            if "shared_bandwidth" in entry
            else getattr(base, "shared_bandwidth", 0.0)
        )
        return {
            "peak_flops": peak_flops,
            "memory_bytes": memory,
            "memory_bandwidth": bandwidth,
            "efficiency": efficiency,
            "overhead": overhead,
            "class_efficiency": class_efficiency,
            "cache_bytes": cache_bytes,
            "cache_bandwidth": cache_bandwidth,
            "shared_bandwidth": shared_bandwidth,
        }

    def cores(
        self,
        entry: dict[str, Any],
        path: FieldPath,
        device_class: DeviceClass,
        count: int,
        referenced: DeviceGroup | None,
    ) -> tuple[int, ...]:
        """The cores a CPU group's devices are pinned to: a list of core numbers or a
        string of ranges, ``count × k`` distinct cores.  A group naming a device file
        keeps the file's cores only for as many devices as the file describes: they
        were laid out for that count."""
        if "cores" not in entry:
            keep = referenced is not None and referenced.count == count
            return referenced.cores if keep and device_class is DeviceClass.CPU else ()
        value, field_path = entry["cores"], (*path, "cores")
        if device_class is not DeviceClass.CPU:
            raise self.error(
                field_path,
                f"only a CPU group's devices are pinned to cores (this group's class is "
                f"{device_class.value})",
            )
        if isinstance(value, str):
            try:
                cores = parse_core_list(value)
            except ValueError as err:
                raise self.error(field_path, str(err)) from err
        elif isinstance(value, list) and value:
            for index, core in enumerate(value):
                whole = isinstance(core, int) and not isinstance(core, bool)
                if not whole or not 0 <= core <= MAX_CORE:
                    raise self.error(
                        (*field_path, index),
                        f"expected a core number from 0 to {MAX_CORE}, got {shown(core)}",
                    )
            cores = tuple(value)
        else:
            raise self.error(
                field_path,
                "expected a list of core numbers ([0, 1]) or a string of ranges "
                f"('0-3,8-11'), got {shown(value)}",
            )
        seen: set[int] = set()
        for core in cores:
            if core in seen:
                raise self.error(field_path, f"core {core} is listed twice")
            seen.add(core)
        if len(cores) % count:
            raise self.error(
                field_path,
                f"{len(cores)} cores cannot be dealt evenly to the group's {count} devices "
                f"(expected a multiple of {count}: the same number for each device)",
            )
        return cores

    def referenced(self, value: str, path: FieldPath) -> DeviceGroup:
        """The one device group of the cluster file ``value`` names (relative to this
        file's folder), such as one ``placer calibrate`` wrote."""
        here = Path(self.source).parent if not self.source.startswith("<") else Path()
        target = here / value
        try:
            cluster = load_cluster(target, nested=True)
        except ClusterSpecError as err:
            raise self.error(path, f"device file {value!r}: {err}") from err
        if len(cluster.groups) != 1:
            raise self.error(
                path,
                f"device file {value!r} describes {len(cluster.groups)} device groups; "
                "a type names a file of one group",
            )
        return cluster.groups[0]

    def efficiency(
        self, value: Any, path: FieldPath, default: float, classes: dict[str, float]
    ) -> tuple[float, dict[str, float]]:
        """``(efficiency, class_efficiency)``: a number applies to every class; a
        mapping gives some classes (``default`` for the others)."""
        if not isinstance(value, dict):
            return self.quantity(value, path, parse_fraction), {}
        self.fields(value, path, (*EFFICIENCY_KEYS, "unfused", "half_at"))
        if not value:
            raise self.error(path, "expected a fraction, or fractions per op class")
        figures = {
            key: self.quantity(figure, (*path, key), parse_fraction, "efficiency")
            for key, figure in value.items()
            if key not in ("unfused", "half_at")
        }
        nested = {
            "unfused": (UNFUSED, "fractions per op class (with the runtime's optimisations off)",
                        parse_fraction, "efficiency"),
            "half_at": (HALF_AT, "multiply-adds per output per op class", parse_positive,
                        "half_at"),
        }  # fmt: skip
        for name, (prefix, what, parse, ranged) in nested.items():
            if name not in value:
                continue
            inner_path = (*path, name)
            entries = self.mapping(value[name], inner_path, what)
            self.fields(entries, inner_path, _CLASS_KEYS)
            figures.update(
                (prefix + key, self.quantity(figure, (*inner_path, key), parse, ranged))
                for key, figure in entries.items()
            )
        default = figures.pop("default", default)
        return default, {**classes, **figures}

    def cache(self, value: Any, path: FieldPath) -> tuple[float, float]:
        """``(size, bandwidth)`` of a cache level."""
        entry = self.mapping(value, path, "a cache level (a mapping with size and bandwidth)")
        self.fields(entry, path, _CACHE_FIELDS)
        for key in _CACHE_FIELDS:
            if key not in entry:
                raise self.error(path, f"missing field {key!r} (a cache needs size and bandwidth)")
        size = self.quantity(entry["size"], (*path, "size"), parse_bytes)
        bandwidth = self.quantity(entry["bandwidth"], (*path, "bandwidth"), parse_bandwidth)
        return size, bandwidth

    def peak_flops(
        self, entry: dict[str, Any], path: FieldPath, catalog: DeviceType | DeviceGroup | None
    ) -> dict[str, float]:
        base = dict(catalog.peak_flops) if catalog else {}
        if "peak_flops" not in entry:
            return base
        value, field_path = entry["peak_flops"], (*path, "peak_flops")
        if not isinstance(value, dict):
            rate = self.quantity(value, field_path, parse_flops)
            return {dtype: rate for dtype in DTYPES}
        self.fields(value, field_path, KNOWN_DTYPES)
        if not value:
            raise self.error(field_path, "expected FLOP/s per dtype (such as fp32: 19.5TFLOPS)")
        base.update(
            {
                dtype: self.quantity(v, (*field_path, dtype), parse_flops)
                for dtype, v in value.items()
            }
        )
        if "fp32" not in base:
            raise self.error(
                field_path, "missing field 'fp32' (the rate other dtypes fall back to)"
            )
        return base

    # -- links

    def link(self, value: Any, path: FieldPath, fallback: Link, allowed: tuple[str, ...]) -> Link:
        entry = self.mapping(value, path, "a link (a mapping with bandwidth and/or latency)")
        self.fields(entry, path, allowed)
        if not any(f in entry for f in _LINK_FIELDS):
            raise self.error(path, "missing field 'bandwidth' (or 'latency')")
        bandwidth = (
            self.quantity(entry["bandwidth"], (*path, "bandwidth"), parse_bandwidth)
            if "bandwidth" in entry
            else fallback.bandwidth
        )
        latency = (
            self.quantity(entry["latency"], (*path, "latency"), parse_time)
            if "latency" in entry
            else fallback.latency
        )
        return Link(bandwidth, latency)

    def links(
        self, value: Any, specs: list[_GroupSpec]
    ) -> tuple[Link, dict[tuple[str, str], Link]]:
        path: FieldPath = ("links",)
        pairs_path: FieldPath = ("links", "pairs")
        if value is None:
            value = {}
        elif isinstance(value, list):  # shorthand: only the pairs, as links[i]
            value, pairs_path = {"pairs": value}, path
        section = self.mapping(value, path, "a mapping with 'default' and/or 'pairs'")
        self.fields(section, path, _LINKS_FIELDS)
        default_link = (
            self.link(section["default"], (*path, "default"), DEFAULT_BETWEEN_GROUPS, _LINK_FIELDS)
            if "default" in section
            else DEFAULT_BETWEEN_GROUPS
        )

        by_name = {s.group.name: s for s in specs}
        links = {
            _pair(a.group.name, b.group.name): _default_link(
                a, b, default_link, "default" in section
            )
            for i, a in enumerate(specs)
            for b in specs[i:]
        }
        pairs = section.get("pairs", [])
        if not isinstance(pairs, list):
            raise self.error(
                pairs_path,
                f"expected a list of {{between: [a, b], bandwidth, latency}}, got {shown(pairs)}",
            )
        given: dict[tuple[str, str], int] = {}
        for index, entry in enumerate(pairs):
            entry_path: FieldPath = (*pairs_path, index)
            entry = self.mapping(entry, entry_path, "{between: [a, b], bandwidth, latency}")
            if "between" not in entry:
                raise self.error(entry_path, "missing field 'between' (two group names)")
            ends = entry["between"]
            if not isinstance(ends, list) or len(ends) != 2:
                raise self.error(
                    (*entry_path, "between"), f"expected two group names, got {shown(ends)}"
                )
            for side, end in enumerate(ends):
                if not isinstance(end, str) or end not in by_name:
                    close = difflib.get_close_matches(str(end), by_name, n=1, cutoff=0.6)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    raise self.error(
                        (*entry_path, "between", side),
                        f"unknown group {shown(end)} ({hint}groups: {', '.join(by_name)})",
                    )
            key = _pair(*ends)
            if key in given:
                raise self.error(
                    (*entry_path, "between"),
                    f"the link between {key[0]!r} and {key[1]!r} is already given in "
                    f"{format_path((*pairs_path, given[key]))}",
                )
            given[key] = index
            links[key] = self.link(entry, entry_path, links[key], _PAIR_FIELDS)
        return default_link, links


def _is_file_reference(value: Any) -> bool:
    """Whether a group's ``type`` names a device file rather than a catalog type."""
    return isinstance(value, str) and (
        value.startswith(("./", "../", "/")) or value.endswith((".yaml", ".yml"))
    )


def _default_link(a: _GroupSpec, b: _GroupSpec, between: Link, between_given: bool) -> Link:
    """The link of a pair of groups the file does not list (see docs/cluster.md)."""
    if a is b:
        # CPU sockets talk over their own interconnect, not PCIe: use the general default.
        if a.catalog is None or a.group.device_class is DeviceClass.CPU:
            return between
        if a.catalog.nvlink_bandwidth is not None:
            return nvlink_link(a.catalog.nvlink_bandwidth)
        return pcie_link(a.catalog.host_link)
    if between_given:
        return between
    # Traffic between two groups goes through the host, at the older PCIe generation.
    gens = [s.catalog.host_link if s.catalog else UNKNOWN_HOST_LINK for s in (a, b)]
    return pcie_link(min(gens, key=lambda g: g.raw_bandwidth))
