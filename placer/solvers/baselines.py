"""Baseline placements: how pipelines are commonly split by hand or by simpler tools.

Each baseline walks the blocks of the problem (:mod:`placer.solvers.blocks`: colour classes
kept whole) in one topological order and cuts that order into consecutive stages, so
every placement it returns is valid and contiguous, and the exact DP of [1]_ is never
worse.  They answer "how much does the optimum gain over what people do?":

``pipedream``
    The DP over a linear order, the partitioner of PipeDream [2]_ (without its stage
    replication), generalised to several device kinds.
``uniform``
    GPipe's default [3]_: the same number of ops on every accelerator.
``params``
    DeepSpeed's ``partition_method="parameters"`` [4]_: the same number of parameter
    bytes (``size``) on every accelerator.
``greedy``
    Fill the devices one after the other until each carries its share of the total
    compute, as a practitioner balancing stages by hand does (e.g. torchgpipe's
    ``balance`` lists [5]_); communication is ignored when cutting.
``single``
    Everything on the best single device that can hold it all: the "single GPU"
    baseline of device-placement papers [6]_.

Every baseline reports ``optimal = False`` and the evaluator's max-load as its
objective; one that cannot respect memory or support raises
:class:`~placer.errors.InfeasiblePlacement` saying why.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
.. [2] Narayanan et al. (2019). PipeDream: Generalized Pipeline Parallelism for DNN
   Training. SOSP.
.. [3] Huang et al. (2019). GPipe: Efficient Training of Giant Neural Networks using
   Pipeline Parallelism. NeurIPS.
.. [4] Rasley et al. (2020). DeepSpeed: System Optimizations Enable Training Deep
   Learning Models with Over 100 Billion Parameters. KDD.
.. [5] Kim et al. (2020). torchgpipe: On-the-fly Pipeline Parallelism for Training
   Giant Models. arXiv:2004.09910.
.. [6] Mirhoseini et al. (2017). Device Placement Optimization with Reinforcement
   Learning. ICML.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from placer.errors import InfeasiblePlacement
from placer.evaluator import evaluate
from placer.problem import DeviceClass, Placement, Problem
from placer.solvers.base import SolveResult, SolverOptions
from placer.solvers.blocks import BlockGraph, contract
from placer.solvers.dp.search import solve_chain
from placer.util.units import format_bytes_apart


def solve_pipedream(problem: Problem, options: SolverOptions | None = None) -> SolveResult:
    """PipeDream's partitioner [2]_: the optimal split of one topological order.

    Notes
    -----
    The DP of :func:`placer.solvers.dp.search.solve_chain` over the m + 1 prefixes of the
    order: O(m² · S) time for m blocks and S device-count states.
    """
    started = time.perf_counter()
    blocks = contract(problem)
    placement = solve_chain(problem, blocks, _order(blocks))
    if placement is None:
        raise InfeasiblePlacement(
            "pipedream: no split of the topological order fits the devices' memory "
            "and supported ops"
        )
    return _result("pipedream", problem, placement, started)


def solve_uniform(problem: Problem, options: SolverOptions | None = None) -> SolveResult:
    """GPipe-style split [3]_: equally many ops per accelerator, in topological order.

    Notes
    -----
    A colour class cannot be cut, so the split minimises the largest op count of a
    stage by bisection: O(m log(n)) for m blocks and n ops.
    """
    started = time.perf_counter()
    blocks = contract(problem)
    weights = [float(len(ops)) for ops in blocks.ops_of_block]
    placement = _split_evenly("uniform", problem, blocks, weights)
    return _result("uniform", problem, placement, started)


def solve_params(problem: Problem, options: SolverOptions | None = None) -> SolveResult:
    """DeepSpeed-style split [4]_: equally many parameter bytes per accelerator.

    Ops' ``size`` stands for their parameters (in training it also holds optimiser
    state and stashed activations, which grow with it).  When no op has a size, the
    split falls back to equal op counts and says so in ``notes``.
    """
    started = time.perf_counter()
    blocks = contract(problem)
    weights = [float(s) for s in blocks.size]
    notes: tuple[str, ...] = ()
    if not any(weights):
        weights = [float(len(ops)) for ops in blocks.ops_of_block]
        notes = ("params: no op has a size, so the split is by op count",)
    placement = _split_evenly("params", problem, blocks, weights)
    return _result("params", problem, placement, started, notes)


def solve_greedy(problem: Problem, options: SolverOptions | None = None) -> SolveResult:
    """Fill devices in topological order until each reaches a common load target.

    The target is the time the accelerators would take if the work split perfectly in
    proportion to their speeds, ``T = 1 / Σ_d 1 / W(d)``, where ``W(d)`` is the compute
    of the whole model on device ``d``'s kind (``total / devices`` when they are all
    alike).  Accelerators are filled in the order of the problem's kinds: a block joins
    the current device when that brings its compute closer to ``T`` and fits its memory
    and supported ops, else the next device opens; the last accelerator takes the rest,
    and CPUs take what no accelerator can run or hold.  Communication is ignored when
    cutting.

    Notes
    -----
    O(m + devices) for m blocks.
    """
    started = time.perf_counter()
    blocks = contract(problem)
    targets = _preference(problem, accelerators_only=True)
    devices = _preference(problem, accelerators_only=False)
    whole = [float(np.sum(np.where(np.isfinite(row), row, 0.0))) for row in blocks.latency]
    speed = sum(
        1 / whole[problem.devices[d].kind] for d in targets if whole[problem.devices[d].kind] > 0
    )
    target = 1 / speed if speed > 0 else 0.0
    assignment = np.empty(blocks.n_blocks, dtype=np.int64)
    position, load, memory = 0, 0.0, 0.0
    used = False
    for b in _order(blocks):
        while True:
            device = devices[position]
            k = problem.devices[device].kind
            latency = float(blocks.latency[k, b])
            fits = blocks.fits(problem, b, k, beside=memory)
            unlimited = position >= len(targets) - 1
            closer = abs(load + latency - target) <= abs(load - target)
            if fits and (not used or unlimited or closer):
                break
            if position == len(devices) - 1:
                raise InfeasiblePlacement(
                    f"greedy: ran out of devices at op {_op_name(problem, blocks, b)}: "
                    f"{_why_not(problem, blocks, [b], [device])}"
                )
            position, load, memory, used = position + 1, 0.0, 0.0, False
        assignment[b] = device
        load += latency
        memory += blocks.size[b]
        used = True
    placement = Placement(tuple(int(assignment[b]) for b in blocks.block_of_op))
    return _result("greedy", problem, placement, started)


def solve_single(problem: Problem, options: SolverOptions | None = None) -> SolveResult:
    """Everything on the single device with the least load that can hold it all.

    Raises
    ------
    InfeasiblePlacement
        No device supports every op and has the memory for all of them.
    """
    started = time.perf_counter()
    blocks = contract(problem)
    best: tuple[float, Placement] | None = None
    everything = list(range(blocks.n_blocks))
    candidates = []
    for k, kind in enumerate(problem.kinds):
        if kind.count == 0:
            continue
        device = next(d for d, dev in enumerate(problem.devices) if dev.kind == k)
        candidates.append(device)
        if not np.all(np.isfinite(blocks.latency[k])):
            continue
        if float(np.sum(blocks.size)) > kind.memory_bytes:
            continue
        placement = Placement((device,) * len(problem.ops))
        value = evaluate(problem, placement).max_load
        if best is None or value < best[0]:
            best = (value, placement)
    if best is None:
        raise InfeasiblePlacement(
            "single: no one device can hold the whole model: "
            + _why_not(problem, blocks, everything, candidates)
        )
    return _result("single", problem, best[1], started)


# -- helpers ---------------------------------------------------------------------------


def _order(blocks: BlockGraph) -> list[int]:
    """The topological order every baseline walks (blocks are numbered in one)."""
    return list(range(blocks.n_blocks))


def _preference(problem: Problem, *, accelerators_only: bool) -> list[int]:
    """Devices in the order stages take them: accelerators (kind order), then CPUs."""
    devices = problem.devices
    accelerators = [
        d for d, dev in enumerate(devices)
        if problem.kinds[dev.kind].device_class is DeviceClass.ACCELERATOR
    ]  # fmt: skip
    cpus = [d for d in range(len(devices)) if d not in set(accelerators)]
    if accelerators_only and accelerators:
        return accelerators
    return accelerators + cpus


def _split_evenly(
    name: str, problem: Problem, blocks: BlockGraph, weights: Sequence[float]
) -> Placement:
    """Cut the order into one stage per accelerator with balanced ``weights``, then
    give each stage its accelerator (or, if that one cannot run or hold it, the
    fastest free device that can)."""
    targets = _preference(problem, accelerators_only=True)
    segments = _balanced(_order(blocks), weights, len(targets))
    free = _preference(problem, accelerators_only=False)
    device_of_block = np.empty(blocks.n_blocks, dtype=np.int64)
    for i, segment in enumerate(segments):
        able = [d for d in free if _can_hold(problem, blocks, segment, d)]
        if not able:
            first, last = segment[0], segment[-1]
            raise InfeasiblePlacement(
                f"{name}: no free device can take stage {i + 1} (ops "
                f"{_op_name(problem, blocks, first)} to {_op_name(problem, blocks, last)}): "
                + _why_not(problem, blocks, segment, free)
            )
        device = (
            targets[i]
            if targets[i] in able
            else min(able, key=lambda d: (_latency(problem, blocks, segment, d), d))
        )
        free.remove(device)
        device_of_block[segment] = device
    return Placement(tuple(int(device_of_block[b]) for b in blocks.block_of_op))


def _balanced(order: list[int], weights: Sequence[float], parts: int) -> list[list[int]]:
    """Cut ``order`` into at most ``parts`` runs minimising the heaviest run.

    Bisection on the heaviest run's weight; a run is closed as soon as the next item
    would push it over.  O(m log(total / tolerance)).
    """

    def runs(limit: float) -> list[list[int]]:
        result: list[list[int]] = []
        current: list[int] = []
        weight = 0.0
        for b in order:
            if current and weight + weights[b] > limit:
                result.append(current)
                current, weight = [], 0.0
            current.append(b)
            weight += weights[b]
        return [*result, current] if current else result

    if not order:
        return []
    low = max(weights[b] for b in order)
    high = sum(weights[b] for b in order)
    if len(runs(low)) <= parts:
        return runs(low)
    for _ in range(100):
        if high - low <= 1e-12 * high:
            break
        middle = (low + high) / 2
        if len(runs(middle)) <= parts:
            high = middle
        else:
            low = middle
    return runs(high)


def _can_hold(problem: Problem, blocks: BlockGraph, segment: list[int], device: int) -> bool:
    kind = problem.kinds[problem.devices[device].kind]
    k = problem.devices[device].kind
    return bool(
        np.all(np.isfinite(blocks.latency[k, segment]))
        and float(np.sum(blocks.size[segment])) <= kind.memory_bytes
    )


def _latency(problem: Problem, blocks: BlockGraph, segment: list[int], device: int) -> float:
    return float(np.sum(blocks.latency[problem.devices[device].kind, segment]))


def _why_not(problem: Problem, blocks: BlockGraph, segment: list[int], devices: list[int]) -> str:
    """Why none of ``devices`` can take ``segment``, one reason per device kind."""
    if not devices:
        return "every device is already used"
    reasons = []
    for k in sorted({problem.devices[d].kind for d in devices}):
        kind = problem.kinds[k]
        unsupported = [b for b in segment if not math.isfinite(blocks.latency[k, b])]
        if unsupported:
            reasons.append(f"{kind.name} cannot run op {_op_name(problem, blocks, unsupported[0])}")
            continue
        need = float(np.sum(blocks.size[segment]))
        offers, needed = format_bytes_apart(kind.memory_bytes, need)
        reasons.append(f"{kind.name} offers {offers}, {needed} needed")
    return "; ".join(reasons)


def _op_name(problem: Problem, blocks: BlockGraph, block: int) -> str:
    op = problem.ops[blocks.ops_of_block[block][0]]
    return str(op.key) if op.name in ("", str(op.key)) else f"{op.key} ({op.name})"


def _result(
    name: str, problem: Problem, placement: Placement, started: float, notes: tuple[str, ...] = ()
) -> SolveResult:
    evaluation = evaluate(problem, placement)
    if not evaluation.valid:
        raise RuntimeError(f"{name} built an invalid placement: {evaluation.violations[0]}")
    return SolveResult(
        solver=name,
        placement=placement,
        objective=evaluation.max_load,
        optimal=False,
        seconds=time.perf_counter() - started,
        stats={"stages": float(len(evaluation.stages))},
        notes=notes,
    )
