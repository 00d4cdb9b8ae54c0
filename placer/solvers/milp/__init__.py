"""Mixed-integer linear program for device placement, solved through PuLP ([1]_, Section 5).

The problem is first contracted into blocks (:mod:`placer.solvers.blocks`); the MILP assigns
blocks, not ops.  Two models:

* **contiguous** (the default, the DP's model): ``T`` pipeline positions, one per
  device.  ``x[b, t, k]`` puts block ``b`` at position ``t`` on a device of kind ``k``;
  ``kind[t, k]`` gives position ``t`` kind ``k``, at most ``count_k`` positions per
  kind.  The prefix ``y[b, t] = sum over t' <= t of x[b, t', ·]`` is an ideal of the
  block DAG (``y[v, t] <= y[u, t]`` for every arc ``u -> v``), so stage ``t`` is
  ``y[·, t] - y[·, t-1]`` and the stages form a chain of ideals -- exactly the
  contiguous placements, since a stage graph is acyclic iff its stages can be put in
  an order that every arc follows.  Used positions come first and hold a block each,
  which removes the empty positions' symmetry;
* **non-contiguous**: ``x[b, d]`` puts block ``b`` (a colour class) on device ``d``.
  Devices of one kind are identical, so they are ordered by the smallest block they
  hold: device ``j`` may hold ``b`` only if device ``j - 1`` holds a block before
  ``b``.

Communication is exact.  When a device's transfers cost the same whatever device is
at the other end (the model of [1]_, or one link speed), it is charged on the hypergraph
of transfers: a device pays ``w(h)`` when hyperedge ``h`` meets it without lying inside
it.  With ``r`` one member of ``h``, that is when ``x[b, ·] != x[r, ·]`` for some member
``b``, so ``cut[h, ·] >= x[b, ·] - x[r, ·]`` and ``cut[h, ·] >= x[r, ·] - x[b, ·]``
(``2 (|h| - 1)`` rows).  With links of different speeds, each transfer is charged over
the link it crosses: the receiver by the kind its sender runs on, the sender by the
slowest link to its receivers
(:func:`~placer.solvers.milp.charges.link_charges`).  The charge variables may be
continuous: each only covers expressions of the assignment, and only the bottleneck
device's are pushed down to their floor.

One module per job: the built model and its slot grid (``model``), the MILP's
building (``build``) with its scaled units (``scaling``), ordering rows (``order``)
and charges (``charges``); the warm start (``warm_start``), the backends HiGHS and CBC
(``backends``), the placement read back (``readback``), the solver that puts them
together (``solve``), and the LP relaxation's lower bound (``relaxation``).

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

from placer.solvers.milp.backends import DEFAULT_GAP, solve_relaxation
from placer.solvers.milp.build import MAX_MILP_TERMS, build_model, estimated_terms
from placer.solvers.milp.model import MilpModel, OutOfTime
from placer.solvers.milp.relaxation import MAX_LP_VARIABLES, lower_bound
from placer.solvers.milp.solve import solve_milp

__all__ = [
    "DEFAULT_GAP",
    "MAX_LP_VARIABLES",
    "MAX_MILP_TERMS",
    "MilpModel",
    "OutOfTime",
    "build_model",
    "estimated_terms",
    "lower_bound",
    "solve_milp",
    "solve_relaxation",
]
