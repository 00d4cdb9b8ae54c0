"""The lattice of ideals the DP runs over, and the placement its back pointers give.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from placer.problem import Placement, Problem
from placer.solvers.base import placement_of_stages
from placer.solvers.blocks import BlockGraph


@dataclass(frozen=True)
class Lattice:
    """The ideals (down-sets) of a block DAG: ``bits[i]`` is ideal ``i`` as a bitset
    (every ideal after its subsets, ``0`` the empty set, the last the whole set);
    ``sub_items[sub_start[i]:sub_start[i + 1]]`` are its Hasse predecessors (one block
    fewer); ``added[i]`` is the block whose addition first made it, to ``creator[i]``."""

    bits: np.ndarray
    sub_start: np.ndarray
    sub_items: np.ndarray
    added: np.ndarray
    creator: np.ndarray


def make_lattice(bits, child, parent, added, creator) -> Lattice:
    """The :class:`Lattice` of ideals ``bits`` with Hasse arcs ``parent[a] ⊂ child[a]``."""
    n = bits.shape[0]
    order = np.argsort(child, kind="stable")
    sub_items = parent[order]
    sub_start = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(child, minlength=n), out=sub_start[1:])
    return Lattice(bits, sub_start, sub_items, added, creator)


def backtrack(problem: Problem, blocks: BlockGraph, lattice: Lattice, back_ideal, back_kind,
              strides, s: int) -> Placement:  # fmt: skip
    """The placement of the split that reached state ``s`` at the whole set: the DP's
    back pointers ``back_ideal[s, i]`` (the sub-ideal where the stage ending at ``i``
    starts; ``i`` itself for a device left unused) and ``back_kind[s, i]`` (its kind)."""
    i = back_ideal.shape[1] - 1
    stages: list[tuple[int, np.ndarray]] = []
    while i != 0:
        j, k = int(back_ideal[s, i]), int(back_kind[s, i])
        if j != i:
            diff = lattice.bits[i] & ~lattice.bits[j]
            members = np.flatnonzero(
                np.unpackbits(diff.view(np.uint8), bitorder="little")[: blocks.n_blocks]
            )
            stages.append((k, members))
        s -= int(strides[k])
        i = j
    stages.reverse()  # pipeline order
    return placement_of_stages(problem, blocks, stages)
