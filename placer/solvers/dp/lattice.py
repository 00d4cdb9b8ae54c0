"""The lattice of ideals the DP runs over, and the placement its back pointers give.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from placer.problem import Placement, Problem
from placer.solvers.base import placement_of_stages
from placer.solvers.blocks import BlockGraph

__all__ = ["IDEALS_PER_CALL", "BackPointers", "Lattice", "backtrack", "make_lattice", "slices"]

#: Ideals per call of the kernels that scan every block or hyperedge of each ideal (the
#: cut lists, the bracket's charges): a fraction of a second, so that Ctrl-C is handled
#: in between.
IDEALS_PER_CALL = 4096


def slices(n: int) -> list[tuple[int, int]]:
    """``range(n)`` cut into ``(lo, hi)`` slices of :data:`IDEALS_PER_CALL` ideals, one
    per call of such a kernel."""
    return [(lo, min(n, lo + IDEALS_PER_CALL)) for lo in range(0, n, IDEALS_PER_CALL)]


class Lattice(NamedTuple):
    """The ideals (down-sets) of a block DAG: ``bits[i]`` is ideal ``i`` as a bitset
    (every ideal after its subsets, ``0`` the empty set, the last the whole set);
    ``sub_items[sub_start[i]:sub_start[i + 1]]`` are its Hasse predecessors (one block
    fewer); ``added[i]`` is the block whose addition first made it, to ``creator[i]``.

    A named tuple of arrays, so that the DP's numba kernels take it as one argument."""

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


@dataclass(frozen=True)
class BackPointers:
    """A DP's back pointers: ``start[s, i]`` is where the stage ending at ``i`` in state
    ``s`` starts (``i`` itself for a device left unused), ``kind[s, i]`` its kind, and
    ``strides`` the state's step per device of each kind."""

    start: np.ndarray
    kind: np.ndarray
    strides: np.ndarray

    def walk(self, s: int, end: int) -> list[tuple[int, int, int, int, int]]:
        """``(kind, start, end, state before, state after)`` of each stage of the split
        that reached state ``s`` at ``end``, in pipeline order (unused devices left
        out)."""
        stages = []
        j = end
        while j != 0:
            i, k = int(self.start[s, j]), int(self.kind[s, j])
            prev = s - int(self.strides[k])
            if i != j:
                stages.append((k, i, j, prev, s))
            s, j = prev, i
        stages.reverse()  # pipeline order
        return stages


def backtrack(problem: Problem, blocks: BlockGraph, lattice: Lattice, pointers: BackPointers,
              s: int) -> Placement:  # fmt: skip
    """The placement of the split that reached state ``s`` at the whole set."""
    end = pointers.start.shape[1] - 1
    stages = []
    for k, i, j, _, _ in pointers.walk(s, end):
        diff = lattice.bits[j] & ~lattice.bits[i]
        members = np.flatnonzero(
            np.unpackbits(diff.view(np.uint8), bitorder="little")[: blocks.n_blocks]
        )
        stages.append((k, members))
    return placement_of_stages(problem, blocks, stages)
