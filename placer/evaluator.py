"""The one evaluator: load, memory and validity of any placement of any problem.

Every solver's claimed objective is checked against :func:`evaluate` in the tests, and
every number placer prints comes from it.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

from dataclasses import dataclass

from placer.graphs import topological_order
from placer.problem import Placement, Problem
from placer.util.units import format_bytes

__all__ = ["DeviceLoad", "Evaluation", "evaluate"]


@dataclass(frozen=True)
class DeviceLoad:
    """What one device does per sample under a placement."""

    device: int  # index into Problem.devices
    ops: tuple[int, ...]
    compute: float
    communication: float
    memory_bytes: float

    @property
    def load(self) -> float:
        return self.compute + self.communication


@dataclass(frozen=True)
class Evaluation:
    """The score of a placement.

    ``stages`` lists the devices that hold at least one op, in pipeline order when the
    placement is contiguous (a topological order of the stage graph), else by device
    index.  ``violations`` is empty exactly when the placement is valid.
    """

    stages: tuple[DeviceLoad, ...]
    max_load: float
    contiguous: bool
    violations: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.violations

    @property
    def bottleneck(self) -> DeviceLoad | None:
        return max(self.stages, key=lambda s: s.load, default=None)


def evaluate(
    problem: Problem, placement: Placement, *, require_contiguous: bool = True
) -> Evaluation:
    """Score a placement.

    Parameters
    ----------
    problem : Problem
    placement : Placement
        A device index for every op.
    require_contiguous : bool
        Whether a non-contiguous placement counts as a violation.

    Returns
    -------
    Evaluation

    Notes
    -----
    The model of [1]_: the load of a device is the sum of its ops' latencies on its kind,
    plus, if its kind pays for communication, ``transfer_cost(u)`` once for every op ``u``
    that has an out-edge ``(u, v)`` with exactly one of ``u, v`` on the device.  With
    per-link costs (``problem.links``), a receiver pays the transfer over the link from
    the sender, and the sender pays once, over the slowest link its output crosses.  The
    objective is the max-load over devices.  A side computation
    (:class:`~placer.problem.Replica`) adds its latency and memory, once, to every device
    that holds an op needing it.  A placement is contiguous when the graph of
    stages (devices, with an arc wherever a pipeline edge goes from one to another) is
    acyclic: then every device holds a contiguous set and the stages form a pipeline.

    Runs in O(ops + edges + replica readers + devices²).
    """
    assignment = placement.device_of_op
    if len(assignment) != len(problem.ops):
        raise ValueError(f"placement has {len(assignment)} entries for {len(problem.ops)} ops")
    n_dev = len(problem.devices)
    compute, memory, members, violations = _work(problem, assignment)
    communication = _communication(problem, assignment)
    violations += _split_colours(problem, assignment)
    violations += _over_memory(problem, memory, members)

    order = _stage_order(problem, assignment, n_dev)
    contiguous = order is not None
    if not contiguous:
        if require_contiguous:
            violations.append("placement is not contiguous: the stage graph has a cycle")
        order = list(range(n_dev))

    stages = tuple(
        DeviceLoad(d, tuple(members[d]), compute[d], communication[d], memory[d])
        for d in order
        if members[d]
    )
    max_load = max((s.load for s in stages), default=0.0)
    return Evaluation(stages, max_load, contiguous, tuple(violations))


def _work(problem: Problem, assignment: tuple[int, ...]):
    """``(compute, memory, members, violations)`` per device: its ops' latencies and
    sizes, plus each side computation one of its ops needs (once); the ops it holds; an
    op on a kind that cannot run it is a violation."""
    devices = problem.devices
    n_dev = len(devices)
    compute = [0.0] * n_dev
    memory = [0.0] * n_dev
    members: list[list[int]] = [[] for _ in range(n_dev)]
    violations: list[str] = []
    for i, (op, d) in enumerate(zip(problem.ops, assignment, strict=True)):
        if not 0 <= d < n_dev:
            raise ValueError(f"op {op.key!r} is placed on device {d}, which does not exist")
        k = devices[d].kind
        compute[d] += op.latency[k]
        memory[d] += op.size_bytes
        members[d].append(i)
        if not op.supported[k]:
            violations.append(f"op {op.key} ({op.name}) is not supported on {devices[d].name}")
    for replica in problem.replicas:
        # recomputed once on every device holding an op that needs it
        for d in {assignment[i] for i in replica.readers}:
            compute[d] += replica.latency[devices[d].kind]
            memory[d] += replica.size_bytes
    return compute, memory, members, violations


def _communication(problem: Problem, assignment: tuple[int, ...]) -> list[float]:
    """What each device pays for transfers: a receiver its link from the sender, the
    sender once, at the slowest link its output crosses (kinds that pay only)."""
    devices, kinds = problem.devices, problem.kinds
    communication = [0.0] * len(devices)
    for u, succ in enumerate(problem.successors):
        if not succ:
            continue
        home = assignment[u]
        crossed = {assignment[v] for v in succ} - {home}
        if not crossed:
            continue
        home_kind = devices[home].kind
        charges = [
            (d, problem.transfer(u, home_kind, devices[d].kind)) for d in sorted(crossed)
        ]
        if kinds[home_kind].pays_communication:
            communication[home] += max(cost for _, cost in charges)
        for d, cost in charges:
            if kinds[devices[d].kind].pays_communication:
                communication[d] += cost
    return communication


def _split_colours(problem: Problem, assignment: tuple[int, ...]) -> list[str]:
    """The first colour class the placement puts on two devices, as a violation."""
    devices = problem.devices
    color_device: dict[int, int] = {}
    for i, op in enumerate(problem.ops):
        first = color_device.setdefault(op.color, assignment[i])
        if first != assignment[i]:
            return [
                f"colour class {op.color} is split over {devices[first].name} and "
                f"{devices[assignment[i]].name} (op {op.key})"
            ]
    return []


def _over_memory(problem: Problem, memory: list[float], members) -> list[str]:
    """Add the working memory of each device in use to ``memory``; the devices then over
    their capacity, as violations."""
    violations = []
    for d, device in enumerate(problem.devices):
        if members[d]:
            memory[d] += problem.reserved_bytes  # working memory of a device in use
        cap = problem.capacity(device.kind)
        if memory[d] > cap:
            violations.append(
                f"{device.name} holds {format_bytes(memory[d])}, over its "
                f"{format_bytes(cap)} ({memory[d]:.6g} > {cap:.6g} bytes)"
            )
    return violations


def is_contiguous(problem: Problem, placement: Placement) -> bool:
    """Whether ``placement``'s stage graph is acyclic, the test :func:`evaluate` makes
    (cheaper than the whole evaluation: enumerations filter with it)."""
    assignment = placement.device_of_op
    return _stage_order(problem, assignment, len(problem.devices)) is not None


def _stage_order(problem: Problem, assignment: tuple[int, ...], n_dev: int) -> list[int] | None:
    """A topological order of the stage graph, or None if it has a cycle."""
    arcs = {
        (assignment[u], assignment[v])
        for u, v in problem.pipeline_edges
        if assignment[u] != assignment[v]
    }
    return topological_order(range(n_dev), arcs)  # the lowest device first when ready
