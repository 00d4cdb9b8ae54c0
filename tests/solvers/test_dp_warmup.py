"""The DP's kernels compiled ahead of the first placement (placer.solvers.dp.warmup)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

#: In a fresh interpreter: the warm-up, then every kernel the solvers call from Python
#: (``kernels.NAME`` in the modules that import a kernel module under that name, and
#: ``cut_totals``) must have been compiled or loaded from numba's cache: a kernel that
#: only other kernels call is compiled into them (its own entry stays empty when they
#: come from the cache).
_CHECK = """
import re
from pathlib import Path
from numba.core.registry import CPUDispatcher
from placer.solvers.dp import _bracket_kernels, _chain_kernels, _ideal_kernels, _neighbour_kernels
from placer.solvers.dp.warmup import compile_kernels
compile_kernels()
callers = {"search": _ideal_kernels, "bracket": _bracket_kernels, "chain": _chain_kernels,
           "neighbours": _neighbour_kernels}
here = Path(_ideal_kernels.__file__).parent
used = [(_ideal_kernels, "cut_totals")]
for name, module in callers.items():
    text = (here / f"{name}.py").read_text()
    used += [(module, kernel) for kernel in sorted(set(re.findall(r"\\bkernels\\.(\\w+)", text)))]
missed = [f"{m.__name__}.{k}" for m, k in used
          if isinstance(getattr(m, k), CPUDispatcher) and not getattr(m, k).signatures]
print(len(used), " ".join(missed))
"""


def test_the_warmup_runs_every_kernel() -> None:
    """Every kernel the solvers call gets compiled by the warm-up (a kernel added
    later without a path here fails this test, and its first call would compile it
    inside a time limit)."""
    done = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True,
                          cwd=ROOT, check=True)  # fmt: skip
    count, *missed = done.stdout.split()
    assert int(count) >= 10 and missed == []


def test_the_warmup_problem_is_wide_and_its_links_differ() -> None:
    from placer.solvers.blocks import contract
    from placer.solvers.dp.warmup import warmup_problem

    problem = warmup_problem()
    blocks = contract(problem)
    assert not blocks.exact_communication  # the neighbour DP runs
    assert len(blocks.edges) > blocks.n_blocks - 1  # not a chain: a lattice of ideals
