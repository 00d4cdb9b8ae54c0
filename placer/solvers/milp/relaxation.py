"""The LP relaxation of the MILP as a lower bound on the least max-load.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import math

import pulp

from placer.problem import Problem
from placer.solvers.blocks import colour_blocks, contract
from placer.solvers.bounds import trivial_bound
from placer.solvers.milp.backends import solve_relaxation
from placer.solvers.milp.build import build_model

#: Beyond about this many MILP variables the LP relaxation is not attempted: building
#: the model alone takes seconds (PuLP), and HiGHS seldom solves the LP in time.
MAX_LP_VARIABLES = 10_000


def lower_bound(problem: Problem, *, contiguous: bool = True, time_limit: float = 10.0) -> float:
    """The best lower bound placer can prove quickly on the optimal max-load.

    Parameters
    ----------
    problem : Problem
    contiguous : bool
        Bound the contiguous optimum (the DP's model) or the unrestricted one.
    time_limit : float
        Seconds HiGHS may spend on the LP relaxation.

    Returns
    -------
    float
        The maximum of :func:`trivial_bound` and, when HiGHS is installed, the model
        has at most :data:`MAX_LP_VARIABLES` variables and the LP solves to optimality
        in time, the LP relaxation of the MILP (:mod:`placer.solvers.milp`).

    Notes
    -----
    With links of different speeds the relaxation is that of the MILP's per-link model,
    whose charges are exact at every integer point.

    Examples
    --------
    >>> from placer.frontends.workload import parse_workload
    >>> doc = {"maxSizePerFPGA": 10, "maxFPGAs": 2, "maxCPUs": 0, "edges": [],
    ...        "nodes": [{"id": i, "supportedOnFpga": 1, "cpuLatency": 9.0,
    ...                   "fpgaLatency": float(i), "isBackwardNode": 0} for i in (1, 2, 3)]}
    >>> lower_bound(parse_workload(doc))
    3.0
    """
    blocks = contract(problem) if contiguous else colour_blocks(problem)
    best = trivial_bound(problem, blocks)
    if not math.isfinite(best) or not pulp.HiGHS().available():
        return best
    devices = problem.total_devices
    kinds = sum(1 for kind in problem.kinds if kind.count > 0)
    estimate = blocks.n_blocks * devices * kinds + len(blocks.hyperedges) * devices * kinds
    if estimate > MAX_LP_VARIABLES:
        return best
    model = build_model(problem, blocks, contiguous=contiguous, relax=True)
    relaxed = solve_relaxation(model, time_limit)
    if relaxed is not None and math.isfinite(relaxed):
        # a hair below, so that rounding in the LP never overstates the bound
        best = max(best, relaxed * model.time_scale * (1 - 1e-9))
    return best
