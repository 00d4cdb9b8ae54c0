"""Reader for profiled workloads in the JSON format of [1]_'s public code.

Every rule of the format is checked, and a breach is one :class:`WorkloadFormatError`
line naming the file, the node or edge, and the field.  Each number must lie in its
field's range (:data:`RANGES`, listed in ``docs/model.md``).

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from placer.errors import InfeasiblePlacement, WorkloadFormatError
from placer.graphs import acyclic_part
from placer.problem import DeviceClass, DeviceKind, Op, Problem, usable_kinds
from placer.util.inputs import load_json, read_text
from placer.util.units import MAX_BYTES, Range, format_bytes, format_bytes_apart

_COST_TOLERANCE = 1e-6  # as [1]_'s reader: outgoing costs of one node must agree to this

#: Largest integer every JSON reader holds exactly (2**53 - 1, JavaScript's
#: Number.MAX_SAFE_INTEGER): node ids and colour classes come back in plans.
MAX_ID = 2**53 - 1


def _whole(value: float) -> str:
    return f"{value:,.0f}"


_ID = Range(-MAX_ID, MAX_ID, show=_whole)
_COUNT = Range(0, 10**12, show=_whole)
_SIZE = Range(0, MAX_BYTES, show=format_bytes)
_TIME = Range(1e-12, 1e12, "time units", zero=True)
#: The range of each number of a workload (docs/model.md lists them).  Times are in the
#: workload's own unit; a million ops of the largest time still sum to a finite load,
#: and a samples-per-time-unit throughput of the least non-zero one is finite too.
RANGES: dict[str, Range] = {
    "maxSizePerFPGA": _SIZE,
    "maxFPGAs": _COUNT,
    "maxCPUs": _COUNT,
    "id": _ID,
    "colorClass": _ID,
    "sourceId": _ID,
    "destId": _ID,
    "cpuLatency": _TIME,
    "fpgaLatency": _TIME,
    "cost": _TIME,
    "size": _SIZE,
}


def read_workload(path: str | Path) -> Problem:
    """Read and validate a workload file.

    Parameters
    ----------
    path : str or Path
        A JSON file with ``maxSizePerFPGA``, ``maxFPGAs``, ``maxCPUs``, ``nodes`` and
        ``edges`` (see ``docs/model.md``).

    Returns
    -------
    Problem
        Two device kinds: ``accel`` (``maxFPGAs`` accelerators of ``maxSizePerFPGA``
        bytes, paying for communication) and ``cpu`` (``maxCPUs`` CPUs, unbounded
        memory, every op supported, no communication cost); each count is capped at the
        number of colour classes (:func:`~placer.problem.usable_kinds`).

    Raises
    ------
    WorkloadFormatError
        The file is missing, is not JSON, or breaks a rule of the format (an empty
        ``nodes`` list included).
    InfeasiblePlacement
        ``maxFPGAs`` and ``maxCPUs`` are both 0.
    """
    path = Path(path)
    text = read_text(path, what="a workload", error=WorkloadFormatError)
    document = load_json(text, str(path), error=WorkloadFormatError)
    return parse_workload(document, name=path.stem, source=str(path))


def parse_workload(document: Any, name: str = "workload", source: str = "<workload>") -> Problem:
    """Validate a decoded workload document and build its :class:`Problem`.

    Examples
    --------
    >>> doc = {"maxSizePerFPGA": 10, "maxFPGAs": 2, "maxCPUs": 0,
    ...        "nodes": [{"id": 1, "supportedOnFpga": 1, "cpuLatency": 2.0,
    ...                   "fpgaLatency": 1.0, "isBackwardNode": 0}],
    ...        "edges": []}
    >>> parse_workload(doc).ops[0].latency
    (1.0, 2.0)
    """
    check = _Checker(source)
    if not isinstance(document, dict):
        raise WorkloadFormatError(f"{source}: the top level must be a JSON object")
    if "placer_version" in document and "stages" in document:
        raise WorkloadFormatError(
            f"{source}: a placer plan, not a model or workload (placer evaluate MODEL "
            f"{source} reads it back)"
        )
    max_size = check.number(document, "maxSizePerFPGA", "")
    max_fpgas = check.count(document, "maxFPGAs", "")
    max_cpus = check.count(document, "maxCPUs", "")
    nodes = check.array(document, "nodes", "")
    if not nodes:
        raise check.fail("nodes", "", "a non-empty list", nodes)
    edges = check.array(document, "edges", "")

    ops, index_of_id = _nodes(check, nodes, source)
    pairs = _edges(check, edges, ops, index_of_id, source)

    total = sum(op.size_bytes for op in ops)
    if total > MAX_BYTES:
        total_shown, cap_shown = format_bytes_apart(total, MAX_BYTES)
        raise WorkloadFormatError(
            f"{source}: nodes: the sizes add up to {total_shown}, more than placer "
            f"handles ({cap_shown}, up to which sums of bytes are exact)"
        )
    _check_acyclic(ops, pairs, source)
    if max_fpgas == 0 and max_cpus == 0:
        # said here, where the fields are known; the solvers only see kinds with no devices
        raise InfeasiblePlacement(
            f"{source}: no devices to place on: fields 'maxFPGAs' and 'maxCPUs' are both 0"
        )
    kinds = usable_kinds(
        (
            DeviceKind("accel", DeviceClass.ACCELERATOR, max_fpgas, max_size, True),
            DeviceKind("cpu", DeviceClass.CPU, max_cpus, math.inf, False),
        ),
        len({op.color for op in ops}),
    )
    return Problem(name=name, ops=tuple(ops), edges=tuple(dict.fromkeys(pairs)), kinds=kinds)


def _nodes(check: _Checker, nodes: list, source: str) -> tuple[list[Op], dict[int, int]]:
    """The ops of the document's ``nodes`` (each in its colour class, a fresh one where
    it names none), and the op index of each node id."""
    ops: list[Op] = []
    index_of_id: dict[int, int] = {}
    used_colors: set[int] = set()
    explicit_color: list[int | None] = []
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]"
        if not isinstance(node, dict):
            raise WorkloadFormatError(f"{source}: {where} must be an object")
        node_id = check.integer(node, "id", where)
        where = f"nodes[{i}] (id {node_id})"
        if node_id in index_of_id:
            raise WorkloadFormatError(f"{source}: {where}: duplicate node id {node_id}")
        supported = check.flag(node, "supportedOnFpga", where)
        cpu_latency = check.number(node, "cpuLatency", where)
        fpga_latency = check.number(node, "fpgaLatency", where)
        size = check.number(node, "size", where) if "size" in node else 0.0
        backward = check.flag(node, "isBackwardNode", where)
        color = check.integer(node, "colorClass", where) if "colorClass" in node else None
        label = node.get("name", str(node_id))
        if not isinstance(label, str):
            raise WorkloadFormatError(f"{source}: {where}: field 'name' must be a string")
        if color is not None:
            used_colors.add(color)
        explicit_color.append(color)
        index_of_id[node_id] = len(ops)
        ops.append(
            Op(
                key=node_id,
                name=label,
                latency=(fpga_latency, cpu_latency),
                supported=(supported, True),
                size_bytes=size,
                transfer_cost=0.0,
                color=0,
                backward=backward,
            )
        )
    # A node without a colour class is alone in a fresh one.
    fresh = max(used_colors, default=0) + 1
    for i, color in enumerate(explicit_color):
        if color is None:
            color, fresh = fresh, fresh + 1
        ops[i] = replace(ops[i], color=color)
    return ops, index_of_id



def _edges(check: _Checker, edges: list, ops: list[Op], index_of_id, source: str):
    """The op pairs of the document's ``edges``; each op's transfer cost set (in
    ``ops``) from the edges leaving it, which must agree."""
    pairs: list[tuple[int, int]] = []
    cost_of: dict[int, tuple[float, int]] = {}
    for j, edge in enumerate(edges):
        where = f"edges[{j}]"
        if not isinstance(edge, dict):
            raise WorkloadFormatError(f"{source}: {where} must be an object")
        src = check.integer(edge, "sourceId", where)
        dst = check.integer(edge, "destId", where)
        where = f"edges[{j}] ({src} -> {dst})"
        cost = check.number(edge, "cost", where)
        if "size" in edge:
            check.number(edge, "size", where)
        for end, node_id in (("sourceId", src), ("destId", dst)):
            if node_id not in index_of_id:
                raise WorkloadFormatError(
                    f"{source}: {where}: field '{end}' names node {node_id}, which does not exist"
                )
        if src == dst:
            raise WorkloadFormatError(f"{source}: {where}: an edge may not loop on one node")
        u, v = index_of_id[src], index_of_id[dst]
        if ops[u].backward and not ops[v].backward:
            raise WorkloadFormatError(
                f"{source}: {where}: edge from backward node {src} to forward node {dst}"
            )
        if u in cost_of and abs(cost_of[u][0] - cost) > _COST_TOLERANCE:
            raise WorkloadFormatError(
                f"{source}: {where}: field 'cost' is {cost} but edges[{cost_of[u][1]}] from "
                f"the same node {src} costs {cost_of[u][0]}; edges leaving one node must "
                "cost the same"
            )
        cost_of.setdefault(u, (cost, j))
        pairs.append((u, v))
    for u, (cost, _) in cost_of.items():
        ops[u] = replace(ops[u], transfer_cost=cost)
    return pairs


def _check_acyclic(ops: list[Op], edges: list[tuple[int, int]], source: str) -> None:
    """Raise naming one cycle if the edges have any (Kahn's algorithm, then a walk)."""
    ordered = set(acyclic_part(range(len(ops)), edges))
    if len(ordered) == len(ops):
        return
    # Every node left has an in-edge from another node left: walk back until one repeats.
    left = {i for i in range(len(ops)) if i not in ordered}
    pred = {v: u for u, v in edges if u in left and v in left}
    walk, node = [], next(iter(left))
    while node not in walk:
        walk.append(node)
        node = pred[node]
    cycle = walk[walk.index(node) :][::-1]
    names = " -> ".join(str(ops[i].key) for i in [*cycle, cycle[0]])
    raise WorkloadFormatError(f"{source}: edges: the graph has a cycle: {names}")


class _Checker:
    """Typed field access that raises one-line errors naming the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def _get(self, obj: dict[str, Any], key: str, where: str) -> Any:
        if key not in obj:
            place = f"{where}: " if where else ""
            raise WorkloadFormatError(f"{self.source}: {place}missing field '{key}'")
        return obj[key]

    def fail(self, key: str, where: str, expected: str, value: Any) -> WorkloadFormatError:
        place = f"{where}: " if where else ""
        return WorkloadFormatError(
            f"{self.source}: {place}field '{key}' must be {expected}, got {_shown(value)}"
        )

    def number(self, obj: dict[str, Any], key: str, where: str) -> float:
        value = self._get(obj, key, where)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, where, "a number", value)
        bounds = RANGES[key]
        if value not in bounds:
            raise self.fail(key, where, f"a{_sign(bounds)} number ({bounds})", value)
        return float(value)

    def integer(self, obj: dict[str, Any], key: str, where: str) -> int:
        value = self._get(obj, key, where)
        bounds = RANGES[key]
        if isinstance(value, float) and value.is_integer() and value in bounds:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value not in bounds:
            article = "a" if _sign(bounds) else "an"
            raise self.fail(key, where, f"{article}{_sign(bounds)} integer ({bounds})", value)
        return value

    def count(self, obj: dict[str, Any], key: str, where: str) -> int:
        return self.integer(obj, key, where)

    def flag(self, obj: dict[str, Any], key: str, where: str) -> bool:
        value = self._get(obj, key, where)
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        raise self.fail(key, where, "true/false or 0/1", value)

    def array(self, obj: dict[str, Any], key: str, where: str) -> list[Any]:
        value = self._get(obj, key, where)
        if not isinstance(value, list):
            raise self.fail(key, where, "a list", value)
        return value


def _sign(bounds: Range) -> str:
    return " non-negative" if bounds.low == 0 or bounds.zero else ""


def _shown(value: Any) -> str:
    """``value`` as JSON, kept short for a message."""
    text = json.dumps(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
