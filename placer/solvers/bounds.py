"""Lower bounds on the least max-load, to certify how far a placement is from optimal.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import math

import numpy as np

from placer.problem import Problem
from placer.solvers.blocks import BlockGraph
from placer.solvers.highs import silence_highs_banner


def trivial_bound(problem: Problem, blocks: BlockGraph) -> float:
    """The larger of two bounds that need no solver.

    * some device holds the slowest block, at no less than its cheapest feasible
      latency (over kinds that have devices, support it and can hold it);
    * the devices share at least every block's cheapest latency, so the busiest one
      carries at least the average.

    Runs in O(kinds · blocks).
    """
    kinds, latency = _feasible_latency(problem, blocks)
    if not kinds or not blocks.n_blocks:
        return 0.0
    cheapest = latency.min(axis=0)
    if not np.isfinite(cheapest).all():
        return math.inf  # some block fits nowhere: no placement at all
    return float(max(cheapest.max(), cheapest.sum() / problem.total_devices))


def _feasible_latency(problem: Problem, blocks: BlockGraph) -> tuple[list[int], np.ndarray]:
    """The kinds that have devices, and ``(those kinds, blocks)`` latencies with
    ``inf`` where a block is unsupported or over the kind's memory."""
    kinds = [k for k, kind in enumerate(problem.kinds) if kind.count > 0]
    return kinds, blocks.fit_latency(problem, kinds)


def volume_bound(problem: Problem, blocks: BlockGraph) -> float:
    """The least max-load of a *fractional* placement: each block's work may be split
    among kinds at will (its latency on each kind pro rata), communication and memory
    left out, every device of a kind loaded alike.

    Any placement that keeps each of ``blocks`` on one device is such a split, so this
    bounds them all: with :func:`placer.solvers.blocks.contract`'s blocks, every contiguous
    placement; with colour classes (``colour_blocks``), every placement.
    Unlike the average of :func:`trivial_bound`, it knows that a device does not count
    as much as another: four A100s and one host CPU are worth about 4.03 A100s for a
    transformer, not five.  It is the LP

        min T  s.t.  Σ_k x[b,k] = 1 (every block),  Σ_b latency[k,b] · x[b,k] ≤ count[k] · T,

    solved by HiGHS in milliseconds for thousands of blocks (the fractional relaxation of
    scheduling on unrelated machines, Lenstra, Shmoys and Tardos 1990).  Returns 0 when
    HiGHS is missing or does not solve it; the larger of this and the slowest block's
    cheapest latency otherwise.
    """
    try:
        import highspy
    except ImportError:
        return 0.0
    kinds, latency = _feasible_latency(problem, blocks)
    m = blocks.n_blocks
    if not kinds or not m:
        return 0.0
    cheapest = latency.min(axis=0)
    if not np.isfinite(cheapest).all():
        return math.inf
    scale = float(cheapest.max()) or 1.0  # times near 1 for the solver's tolerances
    pairs = [(b, j) for j in range(len(kinds)) for b in range(m) if np.isfinite(latency[j, b])]
    n = len(pairs) + 1  # the pairs' shares, then T
    # column by column: a share is in its block's row and its kind's; T in every kind's
    starts = np.arange(0, 2 * len(pairs) + 1, 2, dtype=np.int32)
    starts = np.append(starts, starts[-1] + len(kinds)).astype(np.int32)
    rows = np.array([r for b, j in pairs for r in (b, m + j)] + [m + j for j in range(len(kinds))],
                    dtype=np.int32)  # fmt: skip
    values = np.array(
        [v for b, j in pairs for v in (1.0, float(latency[j, b]) / scale)]
        + [-float(problem.kinds[k].count) for k in kinds]
    )
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, m + len(kinds)
    lp.col_cost_ = np.r_[np.zeros(n - 1), 1.0]
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.full(n, highspy.kHighsInf)
    lp.row_lower_ = np.r_[np.ones(m), np.full(len(kinds), -highspy.kHighsInf)]
    lp.row_upper_ = np.r_[np.ones(m), np.zeros(len(kinds))]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = starts
    lp.a_matrix_.index_ = rows
    lp.a_matrix_.value_ = values
    silence_highs_banner()
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.passModel(lp)
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return float(cheapest.max())
    # an optimum within HiGHS's feasibility and optimality tolerances (1e-7): a hair
    # below it is a bound
    value_t = min(highs.getInfo().objective_function_value, highs.getSolution().col_value[-1])
    return float(max(cheapest.max(), value_t * scale * (1 - 1e-6)))
