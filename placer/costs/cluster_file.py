"""Cluster files: the YAML format of ``docs/cluster.md`` read into a
:class:`~placer.costs.cluster.Cluster`, and the built-in default cluster.

Every mistake in a file is one :class:`~placer.errors.ClusterSpecError` line of the form
``FILE:LINE: devices[1].memory: expected ..., got ...``.  Files are read with PyYAML's
safe loader only, and tags that could construct Python objects are refused before
anything is built from the document.  Every figure must lie in its field's range
(:data:`placer.costs.cluster.RANGES`), generous for real hardware but narrow enough
that no time, size or sum computed from it overflows or underflows.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from placer.costs.catalog import (
    ASSUMED,
    CATALOG,
    DTYPES,
    DeviceType,
    PcieGen,
    device_type_names,
)
from placer.costs.cluster import (
    CLASS_KEYS,
    CUSTOM_TYPE,
    EFFICIENCY_KEYS,
    KERNEL_KEYS,
    MAX_GROUPS,
    MEASURED_SINCE,
    NESTED_EFFICIENCY,
    RANGES,
    Cluster,
    DeviceGroup,
    Link,
    nvlink_link,
    pair_key,
    pcie_link,
)

__all__ = ["DEFAULT_CLUSTER_YAML", "default_cluster", "load_cluster", "parse_cluster"]
from placer.costs.cores import MAX_CORE, parse_core_list
from placer.errors import ClusterSpecError
from placer.problem import DeviceClass
from placer.util.inputs import read_text
from placer.util.safe_yaml import FieldPath, format_path, load_yaml, one_line, shown
from placer.util.units import (
    parse_bandwidth,
    parse_bytes,
    parse_flops,
    parse_fraction,
    parse_positive,
    parse_time,
)

UNKNOWN_HOST_LINK = PcieGen.GEN4  # for groups given by explicit figures only
KNOWN_DTYPES = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8")
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
    "layout",
)
#: The convolution layouts a group may name (``layout``; docs/cluster.md).
LAYOUTS = ("nchw", "nhwc")
_CACHE_FIELDS = ("size", "bandwidth")
_EXPLICIT_REQUIRED = ("peak_flops", "memory", "memory_bandwidth")
_LINKS_FIELDS = ("default", "pairs")
_LINK_FIELDS = ("bandwidth", "latency")
_PAIR_FIELDS = ("between", *_LINK_FIELDS)
_MAX_NODES = 100_000  # bounds alias expansion ("billion laughs")
_MAX_CLUSTER_BYTES = 16 * 2**20  # a cluster file lists a few groups and links
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
        self.calibrated = False  # the file has the record placer calibrate writes
        self.stale: list[tuple[str, str]] = []  # Cluster.stale, a referenced file's too

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
        if self.calibrated:
            self.stale += [(kind, self.source) for kind in MEASURED_SINCE
                           if any(kind not in spec.group.class_efficiency for spec in specs)]
        return Cluster(name, tuple(s.group for s in specs), default_link, links,
                       tuple(dict.fromkeys(self.stale)))  # fmt: skip

    def calibration(self, value: Any) -> None:
        """The record ``placer calibrate`` leaves: informational, but it must say a
        runtime placer knows."""
        path: FieldPath = ("calibration",)
        entry = self.mapping(value, path, "a mapping (the record placer calibrate writes)")
        runtime = entry.get("runtime")
        self.calibrated = True
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
        layout = entry.get("layout", referenced.layout if referenced else "nchw")
        if layout not in LAYOUTS:
            raise self.error(
                (*path, "layout"),
                f"expected one of {', '.join(LAYOUTS)} (how the runtime lays out "
                f"convolution activations), got {shown(layout)}",
            )
        group = DeviceGroup(
            name=name,
            type=catalog.name if catalog else CUSTOM_TYPE,  # a device file: its figures
            device_class=device_class,
            count=count,
            pipeline=pipeline,
            cores=cores,
            host=host,
            layout=layout,
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
        self.stale += cluster.stale
        return cluster.groups[0]

    def efficiency(
        self, value: Any, path: FieldPath, default: float, classes: dict[str, float]
    ) -> tuple[float, dict[str, float]]:
        """``(efficiency, class_efficiency)``: a number applies to every class; a
        mapping gives some classes (``default`` for the others)."""
        if not isinstance(value, dict):
            return self.quantity(value, path, parse_fraction), {}
        self.fields(value, path, (*EFFICIENCY_KEYS, *NESTED_EFFICIENCY))
        if not value:
            raise self.error(path, "expected a fraction, or fractions per op class")
        figures = {
            key: self.quantity(figure, (*path, key), parse_fraction, "efficiency")
            for key, figure in value.items()
            if key not in NESTED_EFFICIENCY
        }
        lengths = (parse_positive, "half_at")
        nested = {
            "unfused": ("fractions per op class (with the runtime's optimisations off)",
                        parse_fraction, "efficiency"),
            "half_at": ("multiply-adds per output per op class", *lengths),
            "half_at_channels": ("output channels per group per op class", *lengths),
            "half_at_positions": ("output positions per image per op class", *lengths),
            "strided": ("fractions per op class (strided, with the runtime's optimisations off)",
                        parse_fraction, "efficiency"),
            "kernels": ("fractions per fused kernel", parse_fraction, "efficiency"),
        }  # fmt: skip
        for name, (what, parse, ranged) in nested.items():
            if name not in value:
                continue
            inner_path = (*path, name)
            entries = self.mapping(value[name], inner_path, what)
            self.fields(entries, inner_path, KERNEL_KEYS if name == "kernels" else CLASS_KEYS)
            figures.update(
                (NESTED_EFFICIENCY[name] + key,
                 self.quantity(figure, (*inner_path, key), parse, ranged))
                for key, figure in entries.items()
            )  # fmt: skip
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
            pair_key(a.group.name, b.group.name): _default_link(
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
            key = pair_key(*ends)
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
