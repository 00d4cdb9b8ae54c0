"""Compiling the DP's numba kernels ahead of the first placement.

numba compiles each kernel the first time it runs and keeps the machine code in its disk
cache (next to the package, or under ``NUMBA_CACHE_DIR``).  Compiling them all takes
seconds (5 s of a 10 s ``--time-limit`` on Llama, from an empty cache, made the command
take 15 s), and a time limit cannot cut a compilation short.  :func:`compile_kernels`
runs every kernel once on a small problem, so that later commands find them cached:
``make`` does it when it installs placer, and ``python -m placer.solvers.dp.warmup``
does it for an installation made otherwise.

The problem is a layered graph of parallel branches (a lattice wider than a chain) on
three device kinds whose links differ (a host CPU behind a slower link), run through the
steps :mod:`placer.solvers.dp.search` takes on a wide lattice under a time limit: the
linear orders' sweeps, the bracket, the pair estimate, the exact runs within a cap,
the neighbour DP and the relaxation of :mod:`placer.solvers.dp.relax`.
"""

from __future__ import annotations

import math
import time

__all__ = ["compile_kernels", "warmup_problem"]


def warmup_problem():
    """Four layers of three parallel branches each, joined between layers, on two
    accelerators and a host CPU whose link is ten times slower than theirs."""
    from placer.problem import DeviceClass, DeviceKind, LinkCost, Op, Problem

    kinds = (
        DeviceKind("fast", DeviceClass.ACCELERATOR, 2, 1e9),
        DeviceKind("slow", DeviceClass.ACCELERATOR, 1, 1e9),
        DeviceKind("cpu", DeviceClass.CPU, 1, math.inf),
    )
    near, far = LinkCost(1e-6, 1e-9), LinkCost(1e-5, 1e-8)
    links = tuple(tuple(far if "cpu" in (a.name, b.name) else near for b in kinds)
                  for a in kinds)  # fmt: skip
    ops: list[Op] = []
    edges: list[tuple[int, int]] = []

    def op(latency: float, out: float) -> int:
        index = len(ops)
        ops.append(Op(key=index, name=f"op{index}", latency=(latency, 2 * latency, 8 * latency),
                      supported=(True, True, True), size_bytes=1e6, transfer_cost=0.0,
                      color=index, output_bytes=out))  # fmt: skip
        return index

    join = op(0.1, 4e5)
    for layer in range(4):
        branches = []
        for branch in range(3):
            first = op(0.2 + 0.1 * branch, 2e5)
            second = op(0.3 + 0.05 * layer, 2e5)
            edges += [(join, first), (first, second)]
            branches.append(second)
        join = op(0.1, 4e5)
        edges += [(b, join) for b in branches]
    return Problem(name="warmup", ops=tuple(ops), edges=tuple(edges), kinds=kinds, links=links)


def compile_kernels() -> float:
    """Run every DP kernel once (compiling those numba's cache lacks); the seconds it
    took."""
    from placer.solvers import SolverOptions
    from placer.solvers.dp import relax, search

    started = time.perf_counter()
    problem = warmup_problem()
    options = SolverOptions(deadline=time.monotonic() + 3600)
    run = search._Search(problem, options, refine=False)
    lattice = search._ideal_lattice(run.blocks, run.max_ideals, options)
    stages = search._Stages(run.blocks, lattice)
    found = run.bracket(stages)
    run.linear_orders()
    run.estimate_pairs(stages)
    # the exact runs and the neighbour DP, capped just above the bound (the work windows)
    run.exact(stages, True, found, found.lower * 1.01 + 1e-12, found.lower)
    run.exact(stages, True, found)
    # the relaxation of a graph too wide: the knapsack test of what the blocks left out
    # need, whose kernel no other step runs
    dropped = relax.incomparable(run.blocks).argsort()[-2:].tolist()
    sub, kept = relax.without_blocks(problem, run.blocks, dropped)
    relax.slack_bound(problem, run.blocks, (dropped, sub, kept), (0.0, run.best.value),
                      options, search._absorbing)  # fmt: skip
    return time.perf_counter() - started


if __name__ == "__main__":
    print(f"compiled the DP's kernels in {compile_kernels():.1f} s")
