"""Cluster descriptions: which devices a pipeline may use and how they are linked.

A cluster is a list of device groups (``count`` identical devices each, described by a
catalog type from :mod:`placer.costs.catalog`, by explicit figures, or by a type with some
figures overridden) and the links between and within groups.  Cluster files, their
checks and the default cluster are :mod:`placer.costs.cluster_file`'s; the format, its
defaults and examples are in ``docs/cluster.md``.  Every figure must lie in its field's
range (:data:`RANGES`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from placer.costs.catalog import PcieGen
from placer.costs.cores import deal_cores
from placer.errors import InputError
from placer.frontends.opcost import UNSHAPED, OpClass, ProductShape
from placer.problem import DeviceClass, LinkCost
from placer.util.units import (
    MAX_BYTES,
    Range,
    format_bytes,
)

__all__ = [
    "RANGES",
    "TIME_RANGE",
    "Cluster",
    "DeviceGroup",
    "Link",
    "nvlink_link",
    "pcie_link",
]

# Link defaults (see docs/cluster.md).  Datasheets quote raw signalling rates; copies
# reach roughly 80% of them (packet headers, DMA setup), so that is what a default link
# carries: PCIe 4.0 x16 is 31.5 GB/s raw per direction and 25.2 GB/s here.
LINK_EFFICIENCY = 0.8
PCIE_LATENCY = 10e-6  # s, a host-staged copy between two PCIe devices
NVLINK_LATENCY = 5e-6  # s, a peer-to-peer copy over NVLink

CUSTOM_TYPE = "custom"

#: Keys of a per-class ``efficiency`` mapping: the op classes, ``default`` (every class
#: not named), ``memory`` (streaming ops' share of bandwidth) and ``movement``.
CLASS_KEYS = tuple(c.value for c in OpClass)
EFFICIENCY_KEYS = ("default", "memory", *CLASS_KEYS)
#: How ``DeviceGroup.class_efficiency`` keys a class's figure with the runtime's
#: optimisations off (``efficiency: {unfused: {conv: ...}}`` in a file).
UNFUSED = "unfused."
#: Op classes and fused kernels (keyed as in ``DeviceGroup.class_efficiency``) that
#: ``placer calibrate`` measures and files it wrote before may lack, and the ops each
#: stands for.
MEASURED_SINCE = {"scalar": "LRN", "kernels.skip_norm": "SkipLayerNormalization"}
#: How ``DeviceGroup.class_efficiency`` keys a class's half-efficiency reduction length
#: (``efficiency: {half_at: {conv: 24}}`` in a file).
HALF_AT = "half_at."
#: Half-efficiency output channels per group and output positions per image of a
#: convolution (``half_at_channels``, ``half_at_positions`` in a file), and the share of
#: its rate a strided one keeps with the runtime's optimisations off (``strided``).
HALF_AT_CHANNELS = "half_at_channels."
HALF_AT_POSITIONS = "half_at_positions."
STRIDED = "strided."
#: How ``DeviceGroup.class_efficiency`` keys the efficiency of a kernel the runtime
#: fuses from several nodes, for the FLOPs of all its nodes (``efficiency: {kernels:
#: {skip_norm: 0.02}}`` in a file); a kernel without one is charged its nodes' classes.
KERNELS = "kernels."
#: The fused kernels a file may give a figure: ``skip_norm``, onnxruntime's
#: ``SkipLayerNormalization`` (a residual ``Add`` and the ``LayerNormalization`` after
#: it, :mod:`placer.frontends.fusion`).  Measured on this kind of machine's CPU (one
#: thread, 1024 x 768 floats), it took 4.8 ms where the ``Add`` and the
#: ``LayerNormalization`` took 1.0 ms one after the other.
KERNEL_KEYS = ("skip_norm",)
#: Every nested mapping of ``efficiency``, by its name in a file.
NESTED_EFFICIENCY = {
    prefix[:-1]: prefix for prefix in (UNFUSED, HALF_AT, HALF_AT_CHANNELS, HALF_AT_POSITIONS,
                                       STRIDED, KERNELS)
}  # fmt: skip
#: Most device groups a cluster may have: each is a device kind, and the exact DP's
#: table grows as the product of the kinds' device counts (plus one).
MAX_GROUPS = 32

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
    "efficiency": Range(1e-4, 1),
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
    layout : str
        The memory layout the runtime keeps convolution activations in: ``nchw`` (the
        ONNX model's own, which onnxruntime's CUDA provider and PyTorch keep by
        default) or ``nhwc`` (channels-last).  On an accelerator, a convolution on
        tensor cores (fp16, bf16, tf32) over ``nchw`` tensors also pays their conversion
        to NHWC and back (:func:`placer.costs.roofline.op_time`).
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
    layout: str = "nchw"

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
        >>> from placer.costs.cluster_file import parse_cluster
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
        >>> from placer.costs.cluster_file import parse_cluster
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
        self, dtype: str, op_class: str, *, unfused: bool = False,
        shape: ProductShape = UNSHAPED, kernel: str = "",
    ) -> float:
        """FLOP/s an op of ``op_class`` reaches at ``dtype``; ``unfused``: with the
        runtime's graph optimisations off (its figure under ``efficiency.unfused``, where
        the file gives one: onnxruntime's CPU convolutions run in a blocked layout only
        with them on); ``kernel``: inside the fused kernel of that name
        (:data:`KERNEL_KEYS`; its figure under ``efficiency.kernels``, where the file
        gives one).

        A product runs as a GEMM (``shape``, :class:`~placer.frontends.opcost.ProductShape`)
        of ``M`` rows (``channels``: a convolution's output channels per group), ``N``
        columns (``positions``: its output positions per image) and reduction length ``K``
        (``inner``: multiply-adds per output element).
        Where the file gives the class half-efficiency lengths (``half_at``: ``K0``,
        ``half_at_channels``: ``M0``, ``half_at_positions``: ``N0``), the class's
        efficiency is its figure times ``K / (K + K0)`` and the like for each: a
        convolution of 3 input channels, of 16 output channels, or over a 7x7 map keeps
        its vector units far less busy than one of 256 channels over 56x56 (for a
        depthwise one, ``N0`` is its fixed cost per channel).  ``M0``, ``N0`` and
        ``strided`` (the share a ``stride`` above 1 keeps: onnxruntime's plain depthwise
        kernel handles stride 1 only, so a strided depthwise one, which expands its
        input and runs as a GEMM, is charged ``strided`` in place of ``N0``'s factor)
        hold for the plain kernels the optimisations-off
        run uses, which they are measured on; the blocked-layout kernels the default
        level runs depend on ``K`` alone.

        Examples
        --------
        >>> from placer.costs.cluster_file import parse_cluster
        >>> t4 = parse_cluster("devices: [{type: t4, efficiency: {gemm: 1, other: 0.25}}]")
        >>> [t4.group("t4").compute_rate("fp32", c) / 1e12 for c in ("gemm", "other")]
        [8.1, 2.025]
        >>> cpu = parse_cluster(
        ...     "devices: [{type: cpu, efficiency: {conv: 1, half_at_positions: {conv: 49}}}]"
        ... ).group("cpu")
        >>> from placer.frontends.opcost import ProductShape
        >>> small = ProductShape(positions=49)
        >>> plain = cpu.compute_rate("fp32", "conv", unfused=True, shape=small)
        >>> plain / cpu.compute_rate("fp32", "conv", unfused=True), cpu.compute_rate(
        ...     "fp32", "conv", shape=small) / cpu.compute_rate("fp32", "conv")
        (0.5, 1.0)
        """
        figures = self.class_efficiency
        efficiency = figures.get(op_class, self.efficiency)
        if kernel and KERNELS + kernel in figures:
            return self.peak(dtype) * figures[KERNELS + kernel]
        if unfused:
            efficiency = figures.get(UNFUSED + op_class, efficiency)
            if shape.stride > 1:
                efficiency *= figures.get(STRIDED + op_class, 1.0)
        halves = tuple(figures.get(prefix + op_class, 0.0)
                       for prefix in (HALF_AT, HALF_AT_CHANNELS, HALF_AT_POSITIONS))  # fmt: skip
        return self.peak(dtype) * efficiency * narrowing(shape, halves, op_class, plain=unfused)

    def stream_rate(self, nbytes: float, op_class: str, *, cached: bool = True) -> float:
        """Bytes/s an op of ``op_class`` moving ``nbytes`` in all reaches: the cache's
        bandwidth when they fit in it (and ``cached``), else memory's
        (:attr:`dram_bandwidth`, which devices sharing a socket share), times the
        fraction of it the class reaches (``movement`` or ``transpose`` for data
        movement, ``memory`` otherwise)."""
        fits = cached and self.cache_bytes > 0 and nbytes <= self.cache_bytes
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
            prefix = next((p for p in NESTED_EFFICIENCY.values() if key.startswith(p)), None)
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
        >>> from placer.costs.cluster_file import parse_cluster
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
            "layout": self.layout,
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
    stale : tuple of (str, str)
        ``(op class, file)`` for each calibrated device file older than a class
        ``placer calibrate`` now measures (:meth:`notes_for`).
    """

    name: str
    groups: tuple[DeviceGroup, ...]
    default_link: Link
    links: Mapping[tuple[str, str], Link]
    stale: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def notes_for(self, classes: set[str]) -> list[str]:
        """What to say of this cluster to a model whose ops are of ``classes`` (and
        whose fused kernels are keyed as in ``class_efficiency``): each stale
        calibration of a class or kernel the model has."""
        return [
            f"{source}: calibrated before placer timed {what} (no '{kind}' efficiency): "
            f"the model's {what} {fallback}; run placer calibrate again"
            for kind, source in self.stale
            if kind in classes
            for what in [MEASURED_SINCE.get(kind, kind)]
            for fallback in ["kernels are charged their nodes' classes"
                             if kind.startswith(KERNELS) else "ops get the file's default"]
        ]  # fmt: skip

    def link(self, a: str, b: str) -> Link:
        """The link between a device of group ``a`` and one of group ``b`` (in any order).

        Raises
        ------
        KeyError
            ``a`` or ``b`` is not a group of this cluster.

        Examples
        --------
        >>> from placer.costs.cluster_file import default_cluster
        >>> cluster = default_cluster()
        >>> cluster.link("cpu", "a100-80gb") == cluster.link("a100-80gb", "cpu")
        True
        """
        for name in (a, b):
            if not any(group.name == name for group in self.groups):
                raise KeyError(f"no device group named {name!r} in cluster {self.name!r}")
        return self.links.get(pair_key(a, b), self.default_link)

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
        >>> from placer.costs.cluster_file import default_cluster
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


def narrowing(shape: ProductShape, halves: tuple[float, float, float], op_class: str, *,
              plain: bool) -> float:  # fmt: skip
    """The share of a wide GEMM's rate a product of ``shape`` reaches, with the
    half-efficiency lengths ``halves`` (``K0``, ``M0``, ``N0``; 0 for none):
    ``K/(K+K0) · M/(M+M0) · N/(N+N0)`` over the lengths known.  ``M0`` and ``N0`` hold
    for the ``plain`` kernels (the runtime's optimisations off) alone, and a depthwise
    ``N0`` is the stride-1 kernel's cost per channel: a strided depthwise convolution
    expands its input and runs as a GEMM, charged its ``strided`` share instead."""
    k0, m0, n0 = halves
    if not plain:
        m0 = n0 = 0.0  # the blocked-layout kernels depend on K alone
    elif shape.stride > 1 and op_class == OpClass.GROUPED_CONV.value:
        n0 = 0.0
    share = 1.0
    for length, half in zip((shape.inner, shape.channels, shape.positions), (k0, m0, n0),
                            strict=True):  # fmt: skip
        if half > 0 and length > 0:
            share *= length / (length + half)
    return share


def pair_key(a: str, b: str) -> tuple[str, str]:
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


