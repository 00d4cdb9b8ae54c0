"""The placement problem: operators, their costs on each kind of device, and the devices.

Every input format (profiled workload JSON, ONNX model plus cluster) is turned into one
:class:`Problem`; every solver reads a :class:`Problem` and returns a :class:`Placement`;
the one evaluator (:mod:`placer.evaluator`) scores any placement of any problem.
See ``docs/model.md`` for the model in prose.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from placer.provenance import Provenance


class DeviceClass(str, Enum):
    """What a device is, as shown to users and in the JSON output."""

    ACCELERATOR = "accelerator"
    CPU = "cpu"


@dataclass(frozen=True)
class DeviceKind:
    """A group of ``count`` identical devices.

    Parameters
    ----------
    name : str
        Short name; devices are named ``f"{name}:{i}"``.
    device_class : DeviceClass
        Accelerator or CPU.
    count : int
        How many such devices the pipeline may use (it may use fewer).
    memory_bytes : float
        Capacity each device of this kind offers to the ops placed on it
        (``math.inf`` when unbounded, as for host CPUs in [1]_).
    pays_communication : bool
        Whether transfers across this device's boundary count towards its load.
        In [1]_ the CPU does not pay for communication; accelerators do.
    host : str
        The machine the devices are in ("" : the one machine of the cluster).  Only the
        pipeline simulator reads it: transfers between hosts share each host's link to
        the others (:mod:`placer.outputs.simulate`).
    """

    name: str
    device_class: DeviceClass
    count: int
    memory_bytes: float = math.inf
    pays_communication: bool = True
    host: str = ""


def usable_kinds(kinds: Sequence[DeviceKind], n_classes: int) -> tuple[DeviceKind, ...]:
    """``kinds`` with each count capped at ``n_classes``, the most devices a pipeline
    can use.

    Every device a pipeline uses holds a non-empty stage, and a colour class never
    splits, so a kind never contributes more devices than there are colour classes;
    capping the count changes no optimum, and keeps an absurd count (``maxFPGAs: 1e12``)
    from sizing the solvers' tables and device lists.

    Examples
    --------
    >>> kinds = [DeviceKind("accel", DeviceClass.ACCELERATOR, 10**12),
    ...          DeviceKind("cpu", DeviceClass.CPU, 1)]
    >>> [kind.count for kind in usable_kinds(kinds, 3)]
    [3, 1]
    """
    return tuple(replace(kind, count=min(kind.count, n_classes)) for kind in kinds)


def throughput(samples_per_step: int, max_load: float) -> float:
    """Samples per time unit of a pipeline whose slowest stage takes ``max_load`` per step
    of ``samples_per_step`` samples (infinite for a zero max-load).

    >>> throughput(8, 0.002), throughput(8, 0.0)
    (4000.0, inf)
    """
    return samples_per_step / max_load if max_load > 0 else math.inf


@dataclass(frozen=True)
class LinkCost:
    """Time to move ``n`` bytes over a link: ``latency + n * seconds_per_byte``."""

    latency: float
    seconds_per_byte: float

    def time(self, nbytes: float) -> float:
        """Seconds to move ``nbytes`` (0 for nothing to move)."""
        return self.latency + nbytes * self.seconds_per_byte if nbytes else 0.0

    def times(self, nbytes: np.ndarray) -> np.ndarray:
        """:meth:`time` of each entry of ``nbytes``, at once."""
        return np.where(nbytes > 0, self.latency + nbytes * self.seconds_per_byte, 0.0)


@dataclass(frozen=True)
class Device:
    """One device of the pipeline: an instance of a :class:`DeviceKind`."""

    name: str
    kind: int  # index into Problem.kinds


@dataclass(frozen=True)
class Op:
    """One operator (a node of the graph).

    Parameters
    ----------
    key : int or str
        The operator's identity in the input: a workload node id or an ONNX node name.
    name : str
        Human-readable name.
    latency : tuple of float
        Time per sample on one device of each kind (indexed like ``Problem.kinds``).
    supported : tuple of bool
        Whether each kind can run the op.
    size_bytes : float
        Memory the op needs on the device that holds it (weights, stashed state).
    transfer_cost : float
        Time to move the op's output across a device boundary; charged once per device
        whose boundary the op's out-edges cross (see ``docs/model.md``).  Used when the
        problem has no ``links``.
    output_bytes : float
        Bytes of the op's output that cross a boundary; with ``links`` the transfer time
        is that of the link crossed.
    color : int
        Colour class: ops with the same colour must share a device (a forward op and its
        backward op, weights shared by several ops).
    backward : bool
        Whether this is a backward (gradient) op of a training graph.
    scopes : tuple of str
        Module scope of each of :attr:`input_nodes` (``model.layers.3.mlp``; "" where
        the node has none, see :mod:`placer.frontends.layers`); ``()`` when the input names none.
    """

    key: int | str
    name: str
    latency: tuple[float, ...]
    supported: tuple[bool, ...]
    size_bytes: float
    transfer_cost: float
    color: int
    backward: bool = False
    output_bytes: float = 0.0
    members: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()

    @property
    def input_nodes(self) -> tuple[int | str, ...]:
        """The input's node ids this op stands for."""
        return self.members or (self.key,)


@dataclass(frozen=True)
class Replica:
    """A side computation that every device needing it recomputes, never placed or sent.

    ONNX subgraphs that depend only on graph inputs and constants, not on activations
    (position ids, rotary tables, attention-mask expansion), are run by every stage
    that reads them, the way folded weights are copied into every stage
    (:mod:`placer.frontends.onnx_graph`, ``docs/model.md``).  A device pays ``latency[k]`` and
    ``size_bytes`` once if it holds at least one op of ``readers``.

    Parameters
    ----------
    key : str
        The ONNX node name.
    latency : tuple of float
        Time per sample on one device of each kind (forward, plus backward in training
        when it holds learned parameters).
    size_bytes : float
        Memory it needs on each device that computes it.
    readers : tuple of int
        Op indices that need its output, directly or through other replicas.
    members : tuple of str
        ONNX names it stands for (empty: just ``key``).
    weight : bool
        Whether it is a weight several ops read (``key`` names the tensor), which every
        device holding one of them keeps a copy of (no time, ``size_bytes`` of memory),
        rather than a computation.
    """

    key: str
    latency: tuple[float, ...]
    size_bytes: float
    readers: tuple[int, ...]
    members: tuple[str, ...] = ()
    weight: bool = False

    @property
    def input_nodes(self) -> tuple[str, ...]:
        return self.members or (self.key,)


@dataclass(frozen=True)
class Problem:
    """A costed placement problem: graph, device kinds and per-kind costs.

    ``edges`` are pairs of op indices ``(source, destination)``; the forward ops form a
    DAG, backward ops never feed forward ops.  ``time_unit`` names the unit of every
    latency and of the max-load ("" when the input does not say).  ``samples_per_step``
    is how many samples one pipeline step processes (the batch size), so the throughput
    is ``samples_per_step / max_load`` samples per time unit.  ``links[a][b]`` is the
    link between a device of kind ``a`` and one of kind ``b`` (symmetric); without it,
    every op's ``transfer_cost`` is charged as in [1]_.  ``cluster`` names the cluster an
    ONNX model was costed on (None for a workload, which carries its own devices).
    ``provenance`` is what the problem was made from (the input's fingerprint and the
    costing options), recorded in plans; it takes no part in comparisons.  ``replicas``
    are side computations that each device recomputes for the ops it holds
    (:class:`Replica`).
    ``shapes_estimated`` counts the tensors of an ONNX model whose shapes neither shape
    inference could tell, so that its costs are estimates, out of ``tensor_count``, the
    tensors whose shapes the costs need (both 0 for a workload).
    ``reserved_bytes`` is the working memory every device holding a stage keeps besides
    its ops' sizes (inference: the activations live at once, at their peak over a pass);
    each kind's ``memory_bytes`` is what is left for the ops, so solvers compare sizes
    with ``memory_bytes`` alone, and the evaluator reports a stage's memory with it.
    ``caveats`` are the notes a command also warns of on stderr (ops costed without a
    FLOP formula, a ``--costs`` file that does not cover the model); each is in
    ``notes`` too.
    """

    name: str
    ops: tuple[Op, ...]
    edges: tuple[tuple[int, int], ...]
    kinds: tuple[DeviceKind, ...]
    time_unit: str = ""
    samples_per_step: int = 1
    notes: tuple[str, ...] = field(default=())
    links: tuple[tuple[LinkCost, ...], ...] | None = None
    cluster: str | None = None
    provenance: Provenance | None = field(default=None, compare=False)
    replicas: tuple[Replica, ...] = ()
    shapes_estimated: int = 0
    tensor_count: int = 0
    reserved_bytes: float = 0.0
    caveats: tuple[str, ...] = ()

    def capacity(self, kind: int) -> float:
        """What a device of ``kind`` has in all: the room its ops may fill
        (``DeviceKind.memory_bytes``) and the working memory it keeps
        (``reserved_bytes``)."""
        return self.kinds[kind].memory_bytes + self.reserved_bytes

    def transfer(self, op: int, sender_kind: int, receiver_kind: int) -> float:
        """Time to move op ``op``'s output between devices of the two kinds."""
        if self.links is None:
            return self.ops[op].transfer_cost
        return self.links[sender_kind][receiver_kind].time(self.ops[op].output_bytes)

    @cached_property
    def devices(self) -> tuple[Device, ...]:
        """All devices, kind by kind, in the order of ``kinds``, named ``kind:index``."""
        return tuple(
            Device(f"{kind.name}:{i}", k)
            for k, kind in enumerate(self.kinds)
            for i in range(kind.count)
        )

    @cached_property
    def index_of_key(self) -> dict[int | str, int]:
        """Op index of each input key (and of each member of a merged op)."""
        index: dict[int | str, int] = {}
        for i, op in enumerate(self.ops):
            for key in (op.key, *op.members):
                index[key] = i
        return index

    @cached_property
    def successors(self) -> tuple[tuple[int, ...], ...]:
        """Distinct destinations of each op's out-edges."""
        out: list[set[int]] = [set() for _ in self.ops]
        for u, v in self.edges:
            out[u].add(v)
        return tuple(tuple(sorted(s)) for s in out)

    @cached_property
    def pipeline_edges(self) -> tuple[tuple[int, int], ...]:
        """Edges that order the stages of a pipeline (the contiguity graph).

        Forward edges, plus, for a colour class that has backward ops but no forward op,
        the mirror image ``(v, u)`` of each backward edge ``(u, v)`` touching it, so that
        such a class sits where its forward op would have been (as in [1]_'s code).
        """
        forward_colors = {op.color for op in self.ops if not op.backward}
        result = []
        for u, v in self.edges:
            a, b = self.ops[u], self.ops[v]
            if not a.backward and not b.backward:
                result.append((u, v))
            elif (
                a.backward
                and b.backward
                and (a.color not in forward_colors or b.color not in forward_colors)
            ):
                result.append((v, u))
        return tuple(result)

    @property
    def total_devices(self) -> int:
        return sum(kind.count for kind in self.kinds)


@dataclass(frozen=True)
class Placement:
    """A device index (into ``Problem.devices``) for every op, in op order."""

    device_of_op: tuple[int, ...]
